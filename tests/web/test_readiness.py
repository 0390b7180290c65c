"""`GET /readyz` on the running bot (issue 13): 200 when the database answers, the schema is at
the head migration, the Bot API answered recently and the outbox drains; otherwise 503 naming
each failing check and why."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp
from alembic import command

from bot.app import Wenming
from db.migrate import alembic_config, head_revision, upgrade_async
from db.models import OutboxMessage
from db.types import utcnow
from tests.conftest import Harness, wait_until
from tests.e2e.test_webhook import settled

SOMEONE = 29001  # a person who has started the bot


def bot_of(harness: Harness) -> Wenming:
    assert isinstance(harness.bot, Wenming)
    return harness.bot


async def readyz(harness: Harness) -> tuple[int, dict[str, Any]]:
    http = bot_of(harness).http
    assert http is not None
    async with aiohttp.ClientSession() as session, session.get(f"{http.url}/readyz") as resp:
        return resp.status, await resp.json()


async def test_a_healthy_bot_is_ready(harness: Harness) -> None:
    status, body = await readyz(harness)
    assert status == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "schema", "bot_api", "outbox"}
    assert all(check == {"status": "ok"} for check in body["checks"].values())


async def test_a_database_one_migration_behind_is_not_ready(harness: Harness) -> None:
    url = harness.settings.database_url.reveal()
    # The seeding's updates first: handled on a schema one migration behind the code, a
    # newcomer's would fail (as they would in production, which is what /readyz is for).
    await settled(harness)
    await asyncio.to_thread(command.downgrade, alembic_config(url), "-1")
    status, body = await readyz(harness)
    assert status == 503
    assert body["status"] == "unready"
    schema = body["checks"]["schema"]
    assert schema["status"] == "failing"
    assert head_revision() in schema["reason"] and "wenming db upgrade" in schema["reason"]
    assert body["checks"]["database"] == {"status": "ok"}
    await upgrade_async(url)
    status, body = await readyz(harness)
    assert status == 200, body


async def test_an_old_due_outbox_message_makes_the_bot_unready_until_it_is_sent(
    harness: Harness,
) -> None:
    bot = bot_of(harness)
    await harness.sb.create_user("测试", user_id=SOMEONE, started=True)  # type: ignore[attr-defined]
    await bot.outbox.stop()  # a stuck sender: nothing drains
    async with harness.sessions() as session, session.begin():
        session.add(OutboxMessage(dedup_key="test:stuck", chat_id=SOMEONE, method="sendMessage",
                                  params={"text": "still there?"},
                                  created_at=utcnow() - timedelta(seconds=900)))
        # Waiting on a flood wait is not being stuck: a row not yet due does not count.
        session.add(OutboxMessage(dedup_key="test:later", chat_id=SOMEONE + 1,
                                  method="sendMessage", params={"text": "later"},
                                  created_at=utcnow() - timedelta(seconds=3600),
                                  not_before=utcnow() + timedelta(hours=1)))
    status, body = await readyz(harness)
    assert status == 503
    outbox = body["checks"]["outbox"]
    assert outbox["status"] == "failing"
    assert "waited 90" in outbox["reason"] and "limit 300 s" in outbox["reason"], outbox
    assert "2 pending" in outbox["reason"]
    bot.outbox.start()
    await harness.sb.wait_for_bot_message(SOMEONE)  # type: ignore[attr-defined]
    await wait_until(lambda: _is_ready(harness), timeout=5)  # once it is recorded as sent


async def test_a_silent_bot_api_makes_the_bot_unready(harness: Harness) -> None:
    await harness.restart(ready_bot_api_max_age=1)
    sb: Any = harness.sb
    await sb.inject_fault("getUpdates", count=100_000, drop=True)
    await sb.inject_fault("getMe", count=100_000, drop=True)
    await asyncio.sleep(1.5)

    async def unready() -> bool:
        status, body = await readyz(harness)
        return status == 503 and body["checks"]["bot_api"]["status"] == "failing"

    await wait_until(unready, timeout=20)
    _status, body = await readyz(harness)
    assert "getMe failed" in body["checks"]["bot_api"]["reason"]
    await sb.clear_faults()
    await wait_until(lambda: _is_ready(harness), timeout=20)


async def _is_ready(harness: Harness) -> bool:
    status, _body = await readyz(harness)
    return status == 200
