"""Several replicas drain one outbox (issue 13): every row is sent once, a chat's rows in
order and never two at once, a dead replica's claim runs out, and a chat's pace and the
30 messages/s budget hold across replicas. Two OutboxSenders on one database stand for two
processes (they share nothing but the database); on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.telegram.outbox import BUDGET_BURST, BUDGET_RATE, OutboxSender
from db.models import OutboxMessage
from db.repositories import OutboxRepository
from db.types import utcnow
from tests.conftest import wait_until


class RecordingBot:
    """Telegram as far as the outbox is concerned: notes each send (chat, text, time) and
    which chats have a request open, so two sends to one chat at once are seen."""

    def __init__(self, latency: float = 0.02) -> None:
        self.sent: list[tuple[int, str, float, str]] = []
        self.open: set[int] = set()
        self.overlaps: list[int] = []
        self.latency = latency

    def as_replica(self, name: str) -> ReplicaBot:
        return ReplicaBot(self, name)


class ReplicaBot:
    def __init__(self, world: RecordingBot, name: str) -> None:
        self.world, self.name = world, name

    async def send_message(self, *, chat_id: int, text: str, **_: Any) -> None:
        world = self.world
        if chat_id in world.open:
            world.overlaps.append(chat_id)
        world.open.add(chat_id)
        try:
            await asyncio.sleep(world.latency)
            world.sent.append((chat_id, text, asyncio.get_running_loop().time(), self.name))
        finally:
            world.open.discard(chat_id)


async def queue(sessions: async_sessionmaker[AsyncSession], chats: list[int],
                per_chat: int) -> None:
    async with sessions() as session, session.begin():
        outbox = OutboxRepository(session)
        for k in range(per_chat):
            for chat in chats:
                await outbox.enqueue(f"t:{chat}:{k}", chat, "sendMessage", {"text": f"{chat}:{k}"})


def sender(bot: ReplicaBot, sessions: async_sessionmaker[AsyncSession], **kw: Any
           ) -> OutboxSender:
    kw.setdefault("chat_interval", 0)
    return OutboxSender(bot, sessions, utcnow, replica=bot.name,  # type: ignore[arg-type]
                        idle_interval=0.05, **kw)


async def pending(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(
            select(func.count()).select_from(OutboxMessage)
            .where(OutboxMessage.status == "pending")) or 0)


async def test_two_replicas_send_each_row_once_in_order_per_chat(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    chats = list(range(7001, 7021))
    await queue(sessions, chats, per_chat=4)
    world = RecordingBot()
    a = sender(world.as_replica("a"), sessions)
    b = sender(world.as_replica("b"), sessions)
    a.start()
    b.start()
    try:
        await wait_until(lambda: len(world.sent) >= 80, timeout=60)
        await asyncio.sleep(0.3)  # a second send of anything would land now
    finally:
        await a.stop()
        await b.stop()
    texts = [text for _chat, text, _at, _r in world.sent]
    assert sorted(texts) == sorted(f"{c}:{k}" for c in chats for k in range(4))  # once each
    for chat in chats:
        assert [t for c, t, _a, _r in world.sent if c == chat] == [f"{chat}:{k}"
                                                                     for k in range(4)]
    assert world.overlaps == []  # never two requests to one chat at once
    assert {r for *_x, r in world.sent} == {"a", "b"}  # both did share the work
    assert await pending(sessions) == 0
    async with sessions() as session:
        claimed = await session.scalar(select(func.count()).select_from(OutboxMessage)
                                       .where(OutboxMessage.claimed_until.is_not(None)))
        senders = set((await session.scalars(select(OutboxMessage.claimed_by))).all())
    assert claimed == 0  # recording released every claim
    assert senders == {"a", "b"}  # and says who sent each row


async def test_a_dead_replicas_claim_runs_out_and_another_takes_the_row(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await queue(sessions, [7101], per_chat=2)
    world = RecordingBot()
    dead = sender(world.as_replica("dead"), sessions, lease=1.0)
    claimed = await dead._claim(8, set())  # claimed, then the process is killed: no record
    assert [r.chat_id for r in claimed] == [7101]
    alive = sender(world.as_replica("alive"), sessions)
    assert await alive.drain_once() == 0  # the claim holds: neither the row nor the next one
    await asyncio.sleep(1.1)
    assert await alive.drain_once() == 1
    assert await alive.drain_once() == 1
    assert [(t, r) for _c, t, _a, r in world.sent] == [("7101:0", "alive"), ("7101:1", "alive")]


async def test_a_stopped_replica_gives_its_claims_back(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():  # full, whatever ran before
        await session.execute(text_update_budget(tokens=1000.0))
    await queue(sessions, [7201, 7202], per_chat=1)
    world = RecordingBot()
    leaving = sender(world.as_replica("leaving"), sessions)
    await leaving._claim(8, set())
    await leaving.release_claims()  # what stop() does for rows it did not send
    other = sender(world.as_replica("other"), sessions)
    assert await other.drain_once() == 2


async def test_a_chats_pace_holds_for_every_replica(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """One replica wrote to a private chat: another may not write to it within the chat's
    second, nor inside a retry_after that the first replica was given."""
    await queue(sessions, [7301], per_chat=2)
    world = RecordingBot()
    a = sender(world.as_replica("a"), sessions, chat_interval=1.0)
    b = sender(world.as_replica("b"), sessions, chat_interval=1.0)
    assert await a.drain_once() == 1
    assert await b.drain_once() == 0  # inside the chat's second
    await asyncio.sleep(1.05)
    assert await b.drain_once() == 1
    at = [at for *_x, at, _r in world.sent]
    assert at[1] - at[0] >= 1.0


async def test_a_groups_twenty_per_minute_is_counted_across_replicas(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    group = -1007401
    await queue(sessions, [group], per_chat=25)
    world = RecordingBot(latency=0)
    a = sender(world.as_replica("a"), sessions)
    b = sender(world.as_replica("b"), sessions)
    loop = asyncio.get_running_loop()
    until = loop.time() + 3  # 20 go at once (within the shared budget); the 21st in a minute
    while loop.time() < until:
        await a.drain_once()
        await b.drain_once()
        await asyncio.sleep(0.05)
    assert len(world.sent) == 20
    assert {r for *_x, r in world.sent} == {"a", "b"}


async def test_the_send_budget_is_one_for_all_replicas(
    database_url: str, sessions: async_sessionmaker[AsyncSession],
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("one process on SQLite: its rate limiter is the budget")
    async with sessions() as session, session.begin():  # start from an empty bucket
        await session.execute(text_update_budget())
    chats = list(range(7501, 7591))
    await queue(sessions, chats, per_chat=1)
    world = RecordingBot(latency=0)
    a = sender(world.as_replica("a"), sessions)
    b = sender(world.as_replica("b"), sessions)
    started = asyncio.get_running_loop().time()
    a.start()
    b.start()
    try:
        await wait_until(lambda: len(world.sent) >= 90, timeout=30)
    finally:
        await a.stop()
        await b.stop()
    took = world.sent[-1][2] - started
    # 90 messages from an empty bucket at 29/s take 90/29 s (3.1 s) whatever the replicas;
    # at 29/s each they would take half of that.
    assert took >= (90 - BUDGET_BURST) / BUDGET_RATE * 0.95
    times = sorted(at for *_x, at, _r in world.sent)
    # The bucket lets BURST + RATE * T claims through in any T seconds; a send leaves a
    # moment after its claim, and both senders share this test's one event loop, so a stalled
    # loop bunches sends a little (CI saw 31 in one second under load, from 29 claims at
    # most). Over two seconds that jitter is small beside the bound, and Telegram's 30/s
    # would allow 60: no two seconds hold more than the budget's 55, one to spare.
    for i in range(len(times)):
        inside = sum(1 for t in times[i:] if t - times[i] < 2.0)
        assert inside <= 2 * BUDGET_RATE + BUDGET_BURST + 1, f"{inside} sends in two seconds"
    assert {r for *_x, r in world.sent} == {"a", "b"}


async def test_two_replicas_stay_within_30_a_second_from_a_full_bucket(
    database_url: str, sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A broadcast that starts after a quiet spell finds the bucket full: its burst and the
    refill together stay within Telegram's 30 messages/s (a burst of 8 on top of 29/s let 37
    through in the first second, and a 300-group bulletin showed 32)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("one process on SQLite: its rate limiter is the budget")
    async with sessions() as session, session.begin():  # full, as after a quiet hour
        await session.execute(text_update_budget(tokens=1000.0))
    await queue(sessions, list(range(7601, 7681)), per_chat=1)
    world = RecordingBot(latency=0)
    a = sender(world.as_replica("a"), sessions)
    b = sender(world.as_replica("b"), sessions)
    a.start()
    b.start()
    try:
        await wait_until(lambda: len(world.sent) >= 80, timeout=30)
    finally:
        await a.stop()
        await b.stop()
    times = sorted(at for *_x, at, _r in world.sent)
    # Over two seconds (the jitter allowance of the test above): 8 + 2 x 29 = 66 before,
    # 3 + 2 x 26 = 55 claims now, one to spare.
    peak = max(sum(1 for t in times[i:] if t - at < 2.0) for i, at in enumerate(times))
    assert peak <= 56, f"{peak} messages in two seconds"


async def test_a_claim_that_read_its_clock_earlier_never_refills_the_bucket_twice(
    database_url: str, sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Replica A reads the time, then waits for the bucket's lock while replica B (which read
    a later time) refills it; A must not set the refill time back, or the next claim is
    granted the same stretch of time again."""
    if not database_url.startswith("postgresql"):
        pytest.skip("one process on SQLite: its rate limiter is the budget")
    from db.models import SendBudget

    t0 = utcnow()
    async with sessions() as session, session.begin():
        await session.execute(update(SendBudget).values(tokens=0.0, refilled_at=t0))
    later, earlier = t0 + timedelta(seconds=0.1), t0 + timedelta(seconds=0.05)
    async with sessions() as session, session.begin():  # B, with the later reading
        b = await OutboxSender._budget(session, later)
        b.tokens -= int(b.tokens)
    async with sessions() as session, session.begin():  # A, with the earlier one
        a = await OutboxSender._budget(session, earlier)
        a.tokens -= int(a.tokens)
    async with sessions() as session, session.begin():  # the next claim, at `later` again
        c = await OutboxSender._budget(session, later)
        # 0.1 s at the rate is all there ever was to hand out: 2.6 tokens, 2 taken by B.
        assert c.tokens < 1.0, c.tokens
        assert c.refilled_at >= later


def text_update_budget(tokens: float = 0.0) -> Any:
    from db.models import SendBudget

    return update(SendBudget).values(tokens=tokens, refilled_at=utcnow() + timedelta(0))


async def test_concurrent_claims_never_take_one_row_twice(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Four replicas claiming at once, without the budget's lock to take turns: a row that
    another claim committed meanwhile is skipped, never claimed again (the claim is checked
    on the locked row itself, not only in the statement's snapshot)."""
    chats = list(range(7601, 7701))
    await queue(sessions, chats, per_chat=3)
    world = RecordingBot(latency=0)
    senders = [sender(world.as_replica(name), sessions, shared_budget=False)
               for name in "abcd"]
    for s in senders:
        s.start()
    try:
        await wait_until(lambda: len(world.sent) >= 300, timeout=60)
        await asyncio.sleep(0.3)
    finally:
        for s in senders:
            await s.stop()
    texts = [text for _chat, text, _at, _r in world.sent]
    assert len(texts) == len(set(texts)) == 300
