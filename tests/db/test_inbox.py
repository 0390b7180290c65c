"""The durable intake: a handled update is marked, one cut off at shutdown runs again."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Update

from bot.telegram.inbox import UpdateIntake
from db.group_commit import GroupCommitter
from db.models import InboxUpdate

Sessions = async_sessionmaker[AsyncSession]


class StubApplication:
    """Just what the intake calls: process_update (here: wait until told) and bot."""

    bot: Any = None

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.seen: list[int] = []

    async def process_update(self, update: Update) -> None:
        self.seen.append(update.update_id)
        await self.release.wait()


async def processed(sessions: Sessions) -> dict[int, bool]:
    async with sessions() as s:
        rows = (await s.execute(select(InboxUpdate.update_id, InboxUpdate.processed_at))).all()
    return {update_id: at is not None for update_id, at in rows}


async def test_an_update_cut_off_at_shutdown_is_left_for_the_next_start(
    sessions: Sessions,
) -> None:
    app = StubApplication()
    engine = sessions.kw["bind"]
    intake = UpdateIntake(app, sessions, committer=GroupCommitter(engine))  # type: ignore[arg-type]
    for item in await intake.store([Update(update_id=7), Update(update_id=8)], next_offset=9):
        intake.dispatcher.submit(item)
    await asyncio.sleep(0.05)
    await intake.stop(grace=0.1)  # both still running: cancelled
    assert await processed(sessions) == {7: False, 8: False}

    # The next start hands them to the application again; finished, they are marked.
    app2 = StubApplication()
    app2.release.set()
    again = UpdateIntake(app2, sessions, committer=GroupCommitter(engine))  # type: ignore[arg-type]
    assert await again.recover() == 2
    assert await again.dispatcher.wait_idle(5)
    assert sorted(app2.seen) == [7, 8]
    assert await processed(sessions) == {7: True, 8: True}
