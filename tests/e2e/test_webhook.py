"""Webhook mode through the sandbox: Telegram's posts are checked, stored once, handled once;
switching between polling and webhook loses nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from sqlalchemy import func, select

from bot.app import Wenming, build_application
from db.models import InboxUpdate
from tests.conftest import WEBHOOK_PATH, WEBHOOK_SECRET, Harness, wait_until, webhook_settings
from tests.e2e.chat import Chat, body

INSPECTOR = 10001
RESIDENT = 20001
HEADER = "X-Telegram-Bot-Api-Secret-Token"


def hook_url(h: Harness) -> str:
    return f"{h.bot.http.url}{WEBHOOK_PATH}"  # type: ignore[attr-defined]


async def a_start_update(h: Harness, user_id: int, update_id: int) -> dict[str, Any]:
    """A /start update as Telegram would post it (the user as the sandbox knows them; they
    have talked to the bot before, so it may answer)."""
    await Chat(h.sb, user_id).say("/start")  # type: ignore[arg-type]
    user = next(u for u in await h.sb.users() if u["id"] == user_id)  # type: ignore[attr-defined]
    sender = {k: user[k] for k in ("id", "is_bot", "first_name") if k in user}
    return {"update_id": update_id, "message": {
        "message_id": 900_000 + update_id % 1000, "date": 1_700_000_000,
        "chat": {"id": user_id, "type": "private", "first_name": sender["first_name"]},
        "from": sender, "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}


async def post(url: str, *, data: bytes | None = None, json: Any = None,
               secret: str | None = WEBHOOK_SECRET) -> int:
    headers = {HEADER: secret} if secret is not None else {}
    async with aiohttp.ClientSession() as http, http.post(
            url, data=data, json=json, headers=headers) as resp:
        await resp.read()
        return resp.status


async def settled(h: Harness) -> None:
    """The sandbox has delivered everything and the bot handled it (the seeding's updates)."""
    last = [-1]

    async def quiet() -> bool:
        # Quiet, and no new row since the last look (half a second ago): a loaded machine
        # may still be queuing the seeding's updates when the first look finds none pending.
        rows = await inbox_rows(h)
        calm = (sb_state(h).pending_count() == 0 and await inbox_unhandled(h) == 0
                and rows == last[0])
        last[0] = rows
        return calm
    await wait_until(quiet, timeout=30, interval=0.5)


async def inbox_rows(h: Harness) -> int:
    async with h.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(InboxUpdate)) or 0)


async def test_the_bot_sets_its_webhook_with_the_secret(harness_webhook: Harness) -> None:
    h = harness_webhook
    hook = sb_state(h).webhook
    assert hook is not None and hook.url == h.settings.webhook_url
    assert hook.secret_token == WEBHOOK_SECRET and hook.max_connections == 40
    assert sb_state(h).allowed == ["message", "callback_query", "my_chat_member"]
    # And the sandbox's posts carry it: a real message is answered.
    assert "督查" in body(await Chat(h.sb, INSPECTOR).say("/start"))  # type: ignore[arg-type]


async def test_missing_wrong_and_forged_secrets_are_refused_and_change_nothing(
    harness_webhook: Harness,
) -> None:
    h = harness_webhook
    url = hook_url(h)
    update = await a_start_update(h, RESIDENT, 7_000_001)
    await settled(h)
    before_rows = await inbox_rows(h)
    before_msgs = len(await h.sb.messages(RESIDENT))  # type: ignore[attr-defined]
    forged = WEBHOOK_SECRET[:-1] + ("x" if WEBHOOK_SECRET[-1] != "x" else "y")
    for secret in (None, "", "wrong", forged, WEBHOOK_SECRET + "x", WEBHOOK_SECRET.lower()):
        assert await post(url, json=update, secret=secret) == 403, secret
    await asyncio.sleep(0.3)
    assert await inbox_rows(h) == before_rows
    assert len(await h.sb.messages(RESIDENT)) == before_msgs  # type: ignore[attr-defined]
    # The same update with the right secret is handled: the refusals were about the secret.
    assert await post(url, json=update) == 200
    await h.sb.wait_for_bot_message(RESIDENT, timeout=10)  # type: ignore[attr-defined]

    async def stored() -> bool:
        return await inbox_rows(h) == before_rows + 1

    await wait_until(stored, timeout=5)


async def test_malformed_bodies_get_400_and_the_bot_still_serves(
    harness_webhook: Harness,
) -> None:
    h = harness_webhook
    url = hook_url(h)
    await settled(h)
    before = await inbox_rows(h)
    for raw in (b"{not json", b"\xff\xfe", b"", b"[1, 2]", b'"update"', b'{"update_id": "7"}',
                b'{"update_id": 7}', b'{"update_id": -1, "message": {}}',
                b'{"update_id": 8, "message": {"text": "no chat, no date"}}',
                b'{"update_id": true, "message": {}}'):
        assert await post(url, data=raw) == 400, raw
    assert await post(url, data=b"x" * (2 * 1024 * 1024)) == 413

    async def chunks() -> Any:  # no Content-Length: refused once past the limit
        for _ in range(40):
            yield b"y" * 65536

    assert await post(url, data=chunks()) == 413
    assert await inbox_rows(h) == before
    assert "督查" in body(await Chat(h.sb, INSPECTOR).say("/start"))  # type: ignore[arg-type]


async def test_a_redelivered_update_is_handled_once(harness_webhook: Harness) -> None:
    h = harness_webhook
    url = hook_url(h)
    update = await a_start_update(h, RESIDENT, 7_000_100)
    before = len(await h.sb.bot_messages(RESIDENT))  # type: ignore[attr-defined]
    # Twice at once (Telegram re-sent while the first was in hand), then once more later.
    assert await asyncio.gather(post(url, json=update), post(url, json=update)) == [200, 200]
    assert await post(url, json=update) == 200
    await asyncio.sleep(0.5)
    assert len(await h.sb.bot_messages(RESIDENT)) == before + 1  # type: ignore[attr-defined]
    async with h.sessions() as s:
        row = await s.scalar(select(InboxUpdate).where(InboxUpdate.update_id == 7_000_100))
    assert row is not None and row.processed_at is not None


async def restart_in(h: Harness, during_downtime: Any, **overrides: object) -> None:
    """Stop the bot, let `during_downtime` happen, start it again with other settings."""
    await h.bot.stop()  # type: ignore[attr-defined]
    await during_downtime()
    h.settings = h.settings.with_(**overrides)
    h.bot = Wenming(build_application(h.settings))
    await h.bot.start(publish_commands=False)  # type: ignore[attr-defined]


async def test_polling_to_webhook_and_back_loses_nothing(harness: Harness) -> None:
    """What is said while the bot is down in one mode is handled, once, after it restarts in
    the other."""
    h = harness
    sb: Any = h.sb
    assert "督查" in body(await Chat(sb, INSPECTOR).say("/start"))
    said: list[int] = []

    async def say_help() -> None:
        said.append((await sb.send_text(INSPECTOR, "/help"))["message_id"])

    async def helps_handled() -> int:
        async with h.sessions() as s:
            rows = (await s.execute(select(InboxUpdate.payload, InboxUpdate.processed_at))).all()
        return sum(1 for payload, at in rows
                   if at is not None and payload.get("message", {}).get("text") == "/help")

    async def answered_once() -> bool:
        msgs = await sb.messages(INSPECTOR)
        replies = [m for m in msgs if m["message_id"] > said[-1] and m["from"]["is_bot"]]
        return bool(replies) and await helps_handled() == len(said)

    # Polling → webhook: the update held while the poller was down is posted by webhook.
    await restart_in(h, say_help, **webhook_settings())
    assert sb_state(h).webhook is not None
    await wait_until(answered_once, timeout=15)

    # Webhook → polling: the webhook stays set while the bot is down (it is never deleted on
    # shutdown), so the sandbox's posts fail; polling deletes it and fetches what was held.
    await restart_in(h, say_help, http_listen=("127.0.0.1", 0), webhook_url=None)
    await wait_until(answered_once, timeout=15)
    assert sb_state(h).webhook is None
    assert await inbox_unhandled(h) == 0
    # Each /help was answered by one reply (not twice, not lost).
    msgs = await sb.messages(INSPECTOR)
    first, second = said
    between = [m for m in msgs if first < m["message_id"] < second and m["from"]["is_bot"]]
    after = [m for m in msgs if m["message_id"] > second and m["from"]["is_bot"]]
    assert len(between) == len(after) >= 1
    assert sb_state(h).pending_count() == 0


def sb_state(h: Harness) -> Any:
    return h.server.state.updates  # type: ignore[attr-defined]


async def inbox_unhandled(h: Harness) -> int:
    async with h.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(InboxUpdate)
                                  .where(InboxUpdate.processed_at.is_(None))) or 0)


async def test_metrics_count_webhook_updates_and_name_the_role(harness_webhook: Harness) -> None:
    from tests.web.test_metrics import scrape, value

    h = harness_webhook
    before = await scrape(h)
    await Chat(h.sb, INSPECTOR).say("/help")  # type: ignore[arg-type]
    after = await scrape(h)
    assert value(after, "wenming_updates_handled_total") > value(
        before, "wenming_updates_handled_total")
    replica = h.settings.replica_name
    assert value(after, "wenming_replica_role", replica=replica, role="webhook") == 1
    assert value(after, "wenming_replica_role", replica=replica, role="poller") == 0
