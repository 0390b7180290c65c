"""The press path reads from memory: it must never act on state the database no longer holds.

Each test changes the inspection behind the progress cache's back, the way a second process or
an operator's SQL would (plain SQL, no ORM session, so no eviction), or through another of the
bot's own paths (a typed note), and checks what the inspector sees and what is stored.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import WenmingApplication, build_core
from bot.domain.standards import Standard
from bot.render.callbacks import parse_step
from bot.render.i18n import t
from db.models import Answer, Inspection
from tests.bot.conftest import (
    ZH,
    Chat,
    action,
    data_where,
    deps_of,
    header,
    open_hotel,
    record,
    verdict,
)
from tests.bot.fakes import FakeBotAPI
from tests.conftest import make_settings

Sessions = async_sessionmaker[AsyncSession]


async def behind_the_cache(db: Sessions, **values: object) -> None:
    """Change the one inspection as another writer would, bumping its version."""
    async with db() as s, s.begin():
        await s.execute(update(Inspection).values(version=Inspection.version + 1, **values)
                        .execution_options(synchronize_session=False))


async def on_another_replica(database_url: str, workdir: Path, **values: object) -> None:
    """Change the one inspection through a second core on the same database, as another
    replica would: its own caches, its own commits (this bot's cache hears nothing)."""
    other = build_core(make_settings(database_url, workdir))
    try:
        async with other.uow() as uow:
            inspection = (await uow.session.scalars(select(Inspection))).one()
            for name, value in values.items():
                setattr(inspection, name, value)
            await uow.commit(mark_update_handled=False)
    finally:
        await other.close()


@pytest.mark.parametrize("elsewhere", ["plain_sql", "another_replica"])
async def test_a_press_after_the_inspection_moved_on_elsewhere_is_refused_as_stale(
    zhang: Chat, api: FakeBotAPI, db: Sessions, hotel_standard: Standard, elsewhere: str,
    database_url: str, tmp_path: Path,
) -> None:
    msg = await open_hotel(zhang)
    msg = await zhang.press(msg, data_where(msg, verdict("c")))  # item 2; the cache is warm
    if elsewhere == "plain_sql":
        await behind_the_cache(db, step=5)
    else:
        await on_another_replica(database_url, tmp_path / "other", step=5)

    shown = await zhang.press(msg, data_where(msg, verdict("c")))

    # The cached step (item 2) is not written over the stored one (item 6).
    # Read again, the press is one from an older screen: the inspector is told so.
    assert api.answers[zhang.query_id]["text"] == t(ZH, "checklist.stale_step")
    # ... and the screen shows where the inspection really is, with live buttons.
    assert shown["text"].startswith(header(hotel_standard, 6))
    rec = await record(db)
    assert rec.inspection.step == 5
    assert set(rec.answers) == {hotel_standard.items[0].key}


async def test_a_press_after_the_inspection_was_submitted_elsewhere_says_so(
    zhang: Chat, api: FakeBotAPI, db: Sessions
) -> None:
    msg = await open_hotel(zhang)
    msg = await zhang.press(msg, data_where(msg, verdict("c")))
    await behind_the_cache(db, status="submitted")

    await zhang.press(msg, data_where(msg, verdict("c")))

    assert api.answers[zhang.query_id]["text"] == t(ZH, "inspect.already_submitted")
    assert len((await record(db)).answers) == 1


async def test_a_note_typed_between_presses_is_kept_by_the_next_press(
    zhang: Chat, db: Sessions, hotel_standard: Standard
) -> None:
    """The note goes through the ORM path; the press after it must not write the item back
    as the cache knew it (without the note)."""
    msg = await open_hotel(zhang)
    msg = await zhang.press(msg, data_where(msg, verdict("c")))
    await zhang.press(msg, data_where(msg, action("note")))
    screen = await zhang.say("门口灭火器已过期一个月")
    msg = await zhang.press(screen, data_where(screen, verdict("b")))

    assert msg["text"].startswith(header(hotel_standard, 3))
    second = hotel_standard.items[1].key
    async with db() as s:
        answer = (await s.scalars(select(Answer).where(Answer.item_key == second))).one()
    assert (answer.verdict, answer.remark) == ("basic", "门口灭火器已过期一个月")


async def test_a_restarted_bot_reads_the_inspection_once_and_goes_on(
    zhang: Chat, app: WenmingApplication, db: Sessions, hotel_standard: Standard
) -> None:
    msg = await open_hotel(zhang)
    msg = await zhang.press(msg, data_where(msg, verdict("c")))
    deps_of(app).press.cache.evict(parse_step(data_where(msg, verdict("c"))).inspection_id)

    msg = await zhang.press(msg, data_where(msg, verdict("n")))

    rec = await record(db)
    assert rec.answers[hotel_standard.items[1].key].verdict == "noncompliant"
    if hotel_standard.items[1].photo_on_fail:
        assert (rec.inspection.step, rec.inspection.awaiting) == (1, "photo")
    else:
        assert (rec.inspection.step, rec.inspection.awaiting) == (2, None)
        assert msg["text"].startswith(header(hotel_standard, 3))
