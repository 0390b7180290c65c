"""The models and the Alembic migrations describe the same schema, on every backend."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from db.migrate import alembic_config, upgrade_async
from db.models import Base, OutboxMessage, TaskCard, TaskEvent
from db.session import create_engine
from db.types import UTCDateTime


async def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            def diff(sync_conn):  # type: ignore[no-untyped-def]
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(context, Base.metadata)

            differences = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert differences == [], f"models and migrations differ: {differences}"


async def test_every_table_has_its_constraints(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            def uniques(sync_conn):  # type: ignore[no-untyped-def]
                insp = inspect(sync_conn)
                return {
                    "answers": insp.get_unique_constraints("answers"),
                    "inbox": insp.get_unique_constraints("inbox"),
                    "indexes": insp.get_indexes("inspections"),
                }

            found = await conn.run_sync(uniques)
    finally:
        await engine.dispose()
    # The business keys that make redelivered updates harmless.
    assert any(set(u["column_names"]) == {"inspection_id", "item_key"} for u in found["answers"])
    assert any(u["column_names"] == ["update_id"] for u in found["inbox"])
    assert any(i["name"] == "uq_inspections_open_per_site" and i["unique"]
               for i in found["indexes"])


async def test_0005_moves_the_cards_places_into_task_cards(database_url: str) -> None:
    """Where a card is was kept on the task row (the latest card of a group speaking for it,
    or a photo card a handler posted itself), in the outbox's sent card rows, and (its version)
    in the card's dedup key: the migration brings them together in task_cards."""
    cfg = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, cfg, "0004_english_names")
    when = datetime(2026, 11, 23, 1, tzinfo=UTC)
    units = sa.table("units", sa.column("id"), sa.column("code"), sa.column("name_zh"),
                     sa.column("name_en"), sa.column("kind"))
    tasks = sa.table("tasks", sa.column("id"), sa.column("source"), sa.column("unit_id"),
                     sa.column("title"), sa.column("status"), sa.column("escalation_level"),
                     sa.column("version"), sa.column("due_at", UTCDateTime()),
                     sa.column("created_at", UTCDateTime()), sa.column("card_chat_id"),
                     sa.column("card_message_id"))
    outbox = sa.table("outbox", sa.column("id"), sa.column("dedup_key"), sa.column("chat_id"),
                      sa.column("method"), sa.column("params", sa.JSON()), sa.column("status"),
                      sa.column("attempts"), sa.column("created_at", UTCDateTime()),
                      sa.column("sent_at", UTCDateTime()), sa.column("sent_message_id"),
                      sa.column("purpose"), sa.column("ref_id"))
    task = dict(source="finding", unit_id=1, title="t", status="open", escalation_level=0,
                due_at=when, created_at=when)
    row = dict(params={}, attempts=0, created_at=when, purpose="task_card")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(units).values(id=1, code="u", name_zh="单位",
                                                       name_en="", kind="community"))
            await conn.execute(sa.insert(tasks), [
                # A text card replaced by a handler's photo card (message 70).
                dict(task, id=1, version=3, card_chat_id=-100, card_message_id=70),
                # The task row and the outbox agree.
                dict(task, id=2, version=1, card_chat_id=-100, card_message_id=30),
            ])
            await conn.execute(sa.insert(outbox), [
                dict(row, id=1, dedup_key="task:1:card:-100:new:0", chat_id=-100,
                     method="sendMessage", status="sent", sent_at=when, sent_message_id=10,
                     ref_id=1),
                dict(row, id=2, dedup_key="task:1:card:-200:new:0", chat_id=-200,
                     method="sendPhoto", status="sent", sent_at=when, sent_message_id=20,
                     ref_id=1),
                dict(row, id=3, dedup_key="task:1:card:-300:again:3", chat_id=-300,
                     method="sendMessage", status="pending", sent_at=None, sent_message_id=None,
                     ref_id=1),
                dict(row, id=4, dedup_key="task:2:card:-100:new:1", chat_id=-100,
                     method="sendPhoto", status="sent", sent_at=when, sent_message_id=30,
                     ref_id=2),
                dict(row, id=5, dedup_key="task:2:edit:-100:1", chat_id=-100,
                     method="editMessageCaption", status="sent", sent_at=when,
                     sent_message_id=30, ref_id=None, purpose=None),
            ])
            # Dropping the task row's columns must not take its history with it (a copied
            # table would cascade on SQLite).
            await conn.execute(sa.insert(TaskEvent.__table__).values(
                task_id=1, at=when, action="created", data={}))
        await upgrade_async(database_url)
        async with engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(TaskEvent)) == 1
            cards = (await conn.execute(sa.select(
                TaskCard.task_id, TaskCard.chat_id, TaskCard.message_id, TaskCard.version,
                TaskCard.has_photo).order_by(TaskCard.task_id, TaskCard.chat_id))).all()
            versions = dict((await conn.execute(
                sa.select(OutboxMessage.id, OutboxMessage.ref_version))).all())
    finally:
        await engine.dispose()
    assert [tuple(c) for c in cards] == [
        (1, -200, 20, 0, True), (1, -100, 70, 3, True), (2, -100, 30, 1, True)]
    assert versions == {1: 0, 2: 0, 3: 3, 4: 1, 5: None}


async def test_replicas_upgrading_at_once_take_turns(database_url: str) -> None:
    """Issue 13: replicas started together each upgrade at start. From an empty schema, three
    concurrent upgrades must all succeed and leave the schema at head once (PostgreSQL takes
    turns on an advisory lock; SQLite's single writer serialises them anyway)."""
    if not database_url.startswith("postgresql"):
        return  # one process per SQLite database (the bot refuses a second one)
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "base")
    # Separate processes, as replicas are (Alembic's context is one per process).
    upgrades = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from db.migrate import upgrade; upgrade(sys.argv[1])",
        database_url, stderr=asyncio.subprocess.PIPE) for _ in range(3)]
    for process in upgrades:
        _, err = await process.communicate()
        assert process.returncode == 0, err.decode()
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                       ).scalars().all()
    finally:
        await engine.dispose()
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert version == [head]


async def test_0006_adds_outbox_claims_and_goes_back(database_url: str) -> None:
    """Claims, chat paces and the send budget come and go with 0006; queued rows stay."""
    cfg = alembic_config(database_url)
    engine = create_engine(database_url)

    async def schema() -> tuple[set[str], set[str], list[tuple[int, float]]]:
        async with engine.connect() as conn:
            def read(sync_conn):  # type: ignore[no-untyped-def]
                insp = inspect(sync_conn)
                tables = set(insp.get_table_names())
                budget = (list(sync_conn.execute(sa.text("SELECT id, tokens FROM send_budget")))
                          if "send_budget" in tables else [])
                return tables, {c["name"] for c in insp.get_columns("outbox")}, budget

            return await conn.run_sync(read)  # type: ignore[no-any-return]

    try:
        tables, columns, budget = await schema()
        assert {"outbox_chats", "send_budget"} <= tables
        assert {"claimed_by", "claimed_until"} <= columns
        assert [row[0] for row in budget] == [1]  # the one bucket is there from the start
        async with engine.begin() as conn:
            await conn.execute(sa.insert(OutboxMessage.__table__).values(
                dedup_key="k", chat_id=1, method="sendMessage", params={}, status="pending",
                attempts=0, created_at=datetime(2026, 11, 23, tzinfo=UTC), claimed_by="r1"))
        await asyncio.to_thread(command.downgrade, cfg, "0005_task_cards")
        tables, columns, _ = await schema()
        assert not {"outbox_chats", "send_budget"} & tables
        assert not {"claimed_by", "claimed_until"} & columns
        await asyncio.to_thread(command.upgrade, cfg, "head")
        async with engine.connect() as conn:
            kept = (await conn.execute(sa.text("SELECT dedup_key, claimed_by FROM outbox"))).all()
        assert [tuple(r) for r in kept] == [("k", None)]
    finally:
        await engine.dispose()
