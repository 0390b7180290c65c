"""Webhook replicas on one PostgreSQL database: a chat is handled by one replica at a time,
in order; rows stored for a chat are handled by whoever holds it; a dead replica's rows are
taken over when their lease runs out, and a starting replica takes only rows nobody has.

Two intakes in one process, each with its own lock sessions, stand for two replicas.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from bot.telegram.webhook_intake import Verdict, WebhookIntake
from db.models import InboxUpdate
from db.types import utcnow
from tests.conftest import wait_until
from tests.db.test_webhook_intake import (
    Sessions,
    StubApplication,
    crash,
    message,
    press,
    rows,
    started,
)


@pytest.fixture
def pg(sessions: Sessions) -> Sessions:
    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("replicas share a PostgreSQL database")
    return sessions


async def replica(sessions: Sessions, name: str, **kw: Any) -> tuple[StubApplication,
                                                                      WebhookIntake]:
    app = StubApplication(sessions)
    return app, await started(app, sessions, replica=name, **kw)


async def test_a_chat_in_hand_at_one_replica_is_not_handled_at_another(pg: Sessions) -> None:
    app_a, a = await replica(pg, "a")
    app_b, b = await replica(pg, "b")
    app_a.gates[1] = gate = asyncio.Event()
    first = asyncio.create_task(a.receive(message(1)))
    await asyncio.sleep(0.05)
    # The chat's next update (a press: Telegram queues those per user) comes to replica b:
    # durable, answered at once, and not run there while a has the chat.
    assert await asyncio.wait_for(b.receive(press(2)), 2) is Verdict.ACCEPTED
    assert app_b.seen == [] and await rows(pg) == [(2, False)]
    await asyncio.sleep(0.2)
    assert app_a.seen == [1] and app_b.seen == []
    gate.set()
    assert await first is Verdict.ACCEPTED
    # a handles the stored one before it lets the chat go.
    await wait_until(lambda: len(app_a.seen) + len(app_b.seen) == 2, 5)
    assert app_a.seen + app_b.seen == [1, 2] and app_a.seen == [1, 2]
    assert sorted(await rows(pg)) == [(1, True), (2, True)]
    # Later updates of the chat run once each: where they land, or (if the other replica
    # still holds the chat for a moment) stored and run by it.
    assert await b.receive(message(3)) is Verdict.ACCEPTED
    assert app_b.seen == [3]
    assert await a.receive(message(4)) is Verdict.ACCEPTED
    await wait_until(lambda: len(app_a.seen) + len(app_b.seen) == 4, 5)
    assert app_a.seen[:2] == [1, 2] and sorted(app_a.seen[2:] + app_b.seen[1:]) == [4]
    assert sorted(await rows(pg)) == [(1, True), (2, True), (3, True), (4, True)]
    await a.stop()
    await b.stop()


async def test_a_copy_sent_to_another_replica_is_not_run_again(pg: Sessions) -> None:
    app_a, a = await replica(pg, "a")
    app_b, b = await replica(pg, "b")
    assert await a.receive(message(10)) is Verdict.ACCEPTED
    assert await b.receive(message(10)) is Verdict.ACCEPTED
    app_a.gates[11] = gate = asyncio.Event()  # and one stored behind a busy chat
    first = asyncio.create_task(a.receive(message(11)))
    await asyncio.sleep(0.05)
    assert await a.receive(press(12)) is Verdict.ACCEPTED
    assert await b.receive(press(12)) is Verdict.ACCEPTED
    gate.set()
    await first
    assert await a.dispatcher.wait_idle(5)
    assert app_a.seen == [10, 11, 12] and app_b.seen == []
    await a.stop()
    await b.stop()


async def store(sessions: Sessions, update_id: int, chat: int, owner: str | None,
                until: float | None) -> None:
    now = utcnow()
    async with sessions() as session, session.begin():
        await session.execute(insert(InboxUpdate).values(
            update_id=update_id, chat_key=chat, payload=message(update_id, chat=chat),
            received_at=now, attempts=0, claimed_by=owner,
            claimed_until=None if until is None else now + timedelta(seconds=until)))


async def test_a_starting_replica_takes_only_rows_nobody_has(pg: Sessions) -> None:
    await store(pg, 20, 700, "b", 60)  # in a live replica's hands
    await store(pg, 21, 701, None, None)  # stored for a chat's holder that let it go
    await store(pg, 22, 702, "gone", -1)  # a dead replica's, its lease over
    app_a, a = await replica(pg, "a", sweep_every=0.1)
    assert await a.dispatcher.wait_idle(5)
    assert sorted(app_a.seen) == [21, 22]
    await asyncio.sleep(0.3)  # its sweeps leave b's row alone while b's lease holds
    assert sorted(app_a.seen) == [21, 22]
    await a.stop()


async def test_a_dead_replicas_chat_is_taken_over_in_order(pg: Sessions) -> None:
    app_b, b = await replica(pg, "b", lease=0.6)
    app_b.gates[30] = asyncio.Event()  # never set: b dies with 30 in hand
    in_hand = asyncio.create_task(b.receive(message(30, chat=800)))
    await asyncio.sleep(0.05)
    for uid in (31, 32):
        assert await b.receive(press(uid, user=800)) is Verdict.ACCEPTED
    await crash(b)
    in_hand.cancel()
    app_a, a = await replica(pg, "a", sweep_every=0.1)
    # The chat's next update comes to a before b's lease ran out: stored, to run after
    # b's rows, not before them.
    assert await a.receive(message(33, chat=800)) is Verdict.ACCEPTED
    await asyncio.sleep(0.2)
    assert app_a.seen == []  # b's claims hold until their lease runs out
    await wait_until(lambda: app_a.seen == [30, 31, 32, 33], 5)
    assert await rows(pg) == [(30, True), (31, True), (32, True), (33, True)]
    await a.stop()


async def test_a_replica_keeps_no_turn_for_chats_it_is_done_with(pg: Sessions) -> None:
    """A replica's per-chat turn (deciding to take, queue to or give back a chat) goes once
    nobody waits for it: a bot that has met a million chats does not keep a lock for each."""
    app, a = await replica(pg, "a")
    chats = range(700_001, 700_201)
    await asyncio.gather(*(a.receive(message(i, chat=chat)) for i, chat in enumerate(chats, 1)))
    await wait_until(lambda: len(app.seen) == len(chats), 10)
    await wait_until(lambda: not a._gates, 5)  # the chats are given back after their updates
    await a.stop()
