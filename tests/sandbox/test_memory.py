"""The sandbox remembers its update numbering and clock per data directory (tryout 14, defect
15): a restart continues them, --fresh forgets them, and a data directory from before this
numbers new updates above every id the bot's inbox holds."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from bot.config import sqlite_url
from db.migrate import upgrade_async
from db.models import InboxUpdate
from sandbox.memory import SandboxMemory
from sandbox.run import continue_above_handled_updates
from sandbox.state import SandboxState


async def test_a_restart_continues_the_update_ids_and_the_clock(tmp_path: Path) -> None:
    first = SandboxState()
    memory = SandboxMemory(tmp_path, first)
    memory.restore()
    memory.attach()
    user = first.create_user("张督查", user_id=10001)
    for text in ("/start", "/help", "/today"):
        first.user_message(user, first.chat(user.id), {"text": text})
    first.clock.advance(3 * 86400)
    assert [u["update_id"] for u in first.updates.pending()] == [1, 2, 3]

    # The same directory again (the file was written as things happened: no orderly stop).
    again = SandboxState()
    SandboxMemory(tmp_path, again).restore()
    user = again.create_user("张督查", user_id=10001)
    pushed = again.updates.push("message", {"text": "/start"})
    assert pushed["update_id"] == 4
    assert again.clock.offset == 3 * 86400

    # --fresh: from the start.
    fresh = SandboxState()
    forgetting = SandboxMemory(tmp_path, fresh)
    forgetting.forget()
    forgetting.restore()
    assert fresh.updates.push("message", {})["update_id"] == 1 and fresh.clock.offset == 0


async def test_an_older_data_directory_continues_above_the_bots_inbox(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "sandbox.db")
    await upgrade_async(url)
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(insert(InboxUpdate), [
            {"update_id": n, "chat_key": 1, "payload": {}} for n in (7, 231, 12)])
    await engine.dispose()
    state = SandboxState()
    await continue_above_handled_updates(state.updates, url)
    assert state.updates.push("message", {})["update_id"] == 232
