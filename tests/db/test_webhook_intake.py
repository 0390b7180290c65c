"""Webhook intake on a real database: one write for an idle chat's update, the pending row first
when the chat is busy or the handler overruns, and at every crash point nothing lost or doubled.

The application is a stub whose handler commits through a real UnitOfWork (as every handler
does), waiting on a gate when the test wants it held in hand.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Update

from bot.telegram.inbox import ALLOWED_UPDATES
from bot.telegram.webhook_intake import KnownUpdates, Verdict, WebhookIntake
from db.chat_locks import ChatLocks
from db.group_commit import GroupCommitter
from db.models import InboxUpdate
from db.uow import UnitOfWork

Sessions = async_sessionmaker[AsyncSession]
CHAT = 501


class StubBot:
    def __init__(self) -> None:
        self.webhook: dict[str, Any] | None = None

    async def set_webhook(self, **kwargs: Any) -> bool:
        self.webhook = kwargs
        return True


class StubApplication:
    """process_update: wait on the update's gate if it has one, then commit (or not)."""

    def __init__(self, sessions: Sessions, *, commits: bool = True) -> None:
        self.bot: Any = StubBot()
        self.sessions = sessions
        self.commits = commits
        self.gates: dict[int, asyncio.Event] = {}
        self.seen: list[int] = []

    async def process_update(self, update: Update) -> None:
        self.seen.append(update.update_id)
        if (gate := self.gates.get(update.update_id)) is not None:
            await gate.wait()
        if self.commits:
            async with UnitOfWork(self.sessions) as uow:
                await uow.commit()


def message(update_id: int, chat: int = CHAT) -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_700_000_000, "text": f"m{update_id}",
        "chat": {"id": chat, "type": "private"},
        "from": {"id": chat, "is_bot": False, "first_name": "A"}}}


def press(update_id: int, user: int = CHAT) -> dict[str, Any]:
    return {"update_id": update_id, "callback_query": {
        "id": f"cb{update_id}", "chat_instance": "1", "data": "x",
        "from": {"id": user, "is_bot": False, "first_name": "A"},
        "message": {"message_id": 1, "date": 1_700_000_000,
                    "chat": {"id": user, "type": "private"}}}}


async def rows(sessions: Sessions) -> list[tuple[int, bool]]:
    """(update_id, handled) in stored order."""
    async with sessions() as s:
        found = (await s.execute(select(InboxUpdate.update_id, InboxUpdate.processed_at)
                                 .order_by(InboxUpdate.id))).all()
    return [(uid, at is not None) for uid, at in found]


def chat_locks(sessions: Sessions) -> ChatLocks | None:
    """On PostgreSQL the intake runs as one of several replicas would (bot/app.py)."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        return None
    return ChatLocks(engine.url.render_as_string(hide_password=False))


async def started(app: StubApplication, sessions: Sessions, **kw: Any) -> WebhookIntake:
    engine = sessions.kw["bind"]
    kw.setdefault("chat_locks", chat_locks(sessions))
    intake = WebhookIntake(
        app, sessions, url="https://bot.example.org/telegram/x",  # type: ignore[arg-type]
        secret_token="s3cret", max_connections=40, dialect=engine.dialect.name,
        committer=GroupCommitter(engine), **kw)
    await intake.start()
    return intake


async def crash(intake: WebhookIntake) -> None:
    """As if the process died: nothing more runs, and its database sessions are gone."""
    await intake.dispatcher.cancel()
    for chore in intake._chores:  # a replica's sweeps and lease renewals
        chore.cancel()
    if intake._locks is not None:
        await intake._locks.close()


@pytest.fixture
def commits(sessions: Sessions) -> list[int]:
    """Every COMMIT the database sees."""
    seen: list[int] = []
    event.listen(sessions.kw["bind"].sync_engine, "commit", lambda _conn: seen.append(1))
    return seen


async def test_start_sets_the_webhook_without_dropping_anything(sessions: Sessions) -> None:
    app = StubApplication(sessions)
    engine = sessions.kw["bind"]
    intake = WebhookIntake(
        app, sessions, url="https://bot.example.org/telegram/x",  # type: ignore[arg-type]
        secret_token="s3cret", max_connections=7, dialect=engine.dialect.name)
    assert await intake.receive(message(1)) is Verdict.RETRY  # not started: Telegram retries
    await intake.start()
    assert app.bot.webhook == {
        "url": "https://bot.example.org/telegram/x", "secret_token": "s3cret",
        "allowed_updates": ALLOWED_UPDATES, "max_connections": 7,
        "drop_pending_updates": False}
    await intake.stop()
    assert await intake.receive(message(2)) is Verdict.RETRY
    assert app.seen == [] and await rows(sessions) == []


async def test_an_idle_chats_update_costs_one_commit(
    sessions: Sessions, commits: list[int]
) -> None:
    app = StubApplication(sessions)
    intake = await started(app, sessions)
    commits.clear()  # the start's recovery
    assert await intake.receive(message(10)) is Verdict.ACCEPTED
    # Handled before the answer, and its row written by the handler's own commit.
    assert app.seen == [10] and await rows(sessions) == [(10, True)]
    assert len(commits) == 1
    # A read-only handler (no commit): answered once it ran; the row follows, in one commit.
    app.commits = False
    assert await intake.receive(message(11)) is Verdict.ACCEPTED
    assert app.seen == [10, 11]
    # A copy re-sent meanwhile is not run again, whether the row is written yet or not.
    assert await intake.receive(message(11)) is Verdict.ACCEPTED
    await intake.stop()  # waits for the row
    assert await rows(sessions) == [(10, True), (11, True)] and len(commits) == 2
    assert app.seen == [10, 11]


async def test_a_redelivered_update_is_handled_once(sessions: Sessions) -> None:
    app = StubApplication(sessions)
    intake = await started(app, sessions)
    app.gates[20] = gate = asyncio.Event()
    first = asyncio.create_task(intake.receive(message(20)))
    await asyncio.sleep(0.05)
    again = asyncio.create_task(intake.receive(message(20)))  # re-sent while in hand
    await asyncio.sleep(0.05)
    gate.set()
    assert await first is Verdict.ACCEPTED and await again is Verdict.ACCEPTED
    assert await intake.receive(message(20)) is Verdict.ACCEPTED  # and later
    assert app.seen == [20] and await rows(sessions) == [(20, True)]
    await intake.stop()


async def test_a_busy_chat_stores_in_order_and_answers_at_once(sessions: Sessions) -> None:
    """A press (Telegram queues it per user) arrives while the chat's message is in hand:
    both rows are written, the message's first, and the press waits its turn."""
    app = StubApplication(sessions)
    intake = await started(app, sessions)
    app.gates[30] = gate = asyncio.Event()
    first = asyncio.create_task(intake.receive(message(30)))
    await asyncio.sleep(0.05)
    assert await asyncio.wait_for(intake.receive(press(31)), 2) is Verdict.ACCEPTED
    assert await rows(sessions) == [(30, False), (31, False)]
    assert app.seen == [30]  # the press waits
    gate.set()
    assert await first is Verdict.ACCEPTED
    assert await intake.dispatcher.wait_idle(5)
    assert app.seen == [30, 31] and await rows(sessions) == [(30, True), (31, True)]
    await intake.stop()


async def test_an_overrunning_handler_is_stored_and_answered(sessions: Sessions) -> None:
    app = StubApplication(sessions)
    intake = await started(app, sessions, inline_budget=0.1)
    app.gates[40] = gate = asyncio.Event()
    assert await asyncio.wait_for(intake.receive(message(40)), 2) is Verdict.ACCEPTED
    assert await rows(sessions) == [(40, False)]  # durable before the 200
    gate.set()
    assert await intake.dispatcher.wait_idle(5)
    assert await rows(sessions) == [(40, True)] and app.seen == [40]
    await intake.stop()


async def test_crashes_lose_nothing_and_repeat_nothing(sessions: Sessions) -> None:
    # A process takes 50 (committed, then "dies" before its 200), and 51 + 52 of one chat
    # (51 in hand, 52 stored behind it) and dies with both unhandled.
    app = StubApplication(sessions)
    intake = await started(app, sessions)
    assert await intake.receive(message(50)) is Verdict.ACCEPTED
    app.gates[51] = asyncio.Event()  # never set: the process dies in the handler
    in_hand = asyncio.create_task(intake.receive(message(51, chat=600)))
    await asyncio.sleep(0.05)
    assert await intake.receive(press(52, user=600)) is Verdict.ACCEPTED
    await crash(intake)  # nothing more runs in this process
    in_hand.cancel()
    assert await rows(sessions) == [(50, True), (51, False), (52, False)]

    # The next process: the stored ones run again in order; Telegram's re-sent copies of
    # 50 (never answered) and 51 are answered without running.
    app2 = StubApplication(sessions)
    intake2 = await started(app2, sessions)
    for update in (message(50), message(51, chat=600)):
        assert await intake2.receive(update) is Verdict.ACCEPTED
    assert await intake2.dispatcher.wait_idle(5)
    assert app2.seen == [51, 52]
    assert await rows(sessions) == [(50, True), (51, True), (52, True)]
    await intake2.stop()


async def test_malformed_posts_are_refused(sessions: Sessions) -> None:
    app = StubApplication(sessions)
    intake = await started(app, sessions)
    for data in (None, [], "x", {"update_id": "1"}, {"update_id": 1}, {"update_id": True,
                 "message": {}}, {"update_id": 3, "message": {"text": "no chat"}}):
        assert await intake.receive(data) is Verdict.MALFORMED, data
    assert app.seen == [] and await rows(sessions) == []
    await intake.stop()


async def test_stopping_refuses_new_posts_and_finishes_those_in_hand(sessions: Sessions) -> None:
    app = StubApplication(sessions)
    intake = await started(app, sessions)
    app.gates[60] = gate = asyncio.Event()
    in_hand = asyncio.create_task(intake.receive(message(60)))
    await asyncio.sleep(0.05)
    stopping = asyncio.create_task(intake.stop(grace=5))
    await asyncio.sleep(0.05)
    assert await intake.receive(message(61, chat=700)) is Verdict.RETRY  # 503: sent again later
    assert not stopping.done()
    gate.set()
    assert await in_hand is Verdict.ACCEPTED
    await stopping
    assert app.seen == [60] and await rows(sessions) == [(60, True)]
    assert app.bot.webhook is not None  # set at start, never deleted


async def test_an_update_cut_off_at_shutdown_is_refused_for_telegram_to_resend(
    sessions: Sessions,
) -> None:
    app = StubApplication(sessions)
    intake = await started(app, sessions)
    app.gates[70] = asyncio.Event()  # never set
    in_hand = asyncio.create_task(intake.receive(message(70)))
    await asyncio.sleep(0.05)
    await intake.stop(grace=0.1)
    assert await in_hand is Verdict.RETRY and await rows(sessions) == []


def test_known_updates_forget_the_oldest_and_then_ask_the_database() -> None:
    known = KnownUpdates(limit=3)
    for uid in (5, 6, 7, 8):
        known.add(uid)
    assert [known.knows(u) for u in (6, 7, 8, 9)] == [True, True, True, False]
    assert known.knows(5) is None and known.knows(2) is None  # forgotten: ask
    loaded = KnownUpdates(limit=3)
    loaded.load([30, 20, 10])  # the inbox's newest three: older ones may be there too
    assert [loaded.knows(u) for u in (30, 10, 25, 31, 9)] == [True, True, False, False, None]
    small = KnownUpdates(limit=3)
    small.load([20, 10])  # the whole inbox
    assert small.knows(5) is False


async def test_a_redelivery_older_than_memory_is_found_in_the_database(
    sessions: Sessions,
) -> None:
    app = StubApplication(sessions)
    intake = await started(app, sessions)
    for uid in (80, 81, 82):
        assert await intake.receive(message(uid)) is Verdict.ACCEPTED
    intake._known = KnownUpdates(limit=1)  # as if 80 had been forgotten long ago
    intake._known.add(80)
    intake._known.add(82)
    assert await intake.receive(message(80)) is Verdict.ACCEPTED
    assert app.seen == [80, 81, 82]
    await intake.stop()


async def test_a_failed_store_is_answered_503_and_the_resent_copy_not_run_twice(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = StubApplication(sessions)
    intake = await started(app, sessions)
    app.gates[90] = gate = asyncio.Event()
    first = asyncio.create_task(intake.receive(message(90)))
    await asyncio.sleep(0.05)
    real_store = intake._store_ahead_of

    real_write = intake._store

    async def failing(*args: Any, **kwargs: Any) -> None:
        raise OSError("database unreachable")

    monkeypatch.setattr(intake, "_store_ahead_of", failing)
    monkeypatch.setattr(intake, "_store", failing)  # the same write, as a replica does it
    # The chat is busy: the press must be stored before the 200, and that fails: 503.
    assert await intake.receive(press(91)) is Verdict.RETRY
    monkeypatch.setattr(intake, "_store_ahead_of", real_store)
    monkeypatch.setattr(intake, "_store", real_write)
    # Telegram re-sends it while it still waits behind 90 here: stored now, not queued twice.
    assert await intake.receive(press(91)) is Verdict.ACCEPTED
    assert await rows(sessions) == [(90, False), (91, False)]
    gate.set()
    assert await first is Verdict.ACCEPTED
    assert await intake.dispatcher.wait_idle(5)
    assert app.seen == [90, 91] and await rows(sessions) == [(90, True), (91, True)]
    await intake.stop()
