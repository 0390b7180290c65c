"""Webhook intake: Telegram posts each update; it is durable before Telegram hears 200.

The same inbox, dispatcher and "handled" mark as polling (bot/telegram/inbox.py), with one
saving: polling writes every update twice (stored, then marked handled), while a webhook update
whose chat has nothing in hand is handled *before* the answer, inside the handler's own
transaction: that commit inserts the inbox row already marked handled (an upsert on
UNIQUE(update_id), `db.uow.PendingRow`), or, if the handler committed nothing, the row is
inserted handled right after. One message, one durable write. That last write does not hold
up the answer: the update is finished and nothing of it can be lost any more; the row only
tells a re-sent copy it was handled, and until it is committed a copy arriving here waits
for it (`_marking`). Only a crash in that millisecond *and* a lost 200 would run a handler
that changed nothing twice (a reply repeated). Telegram sends a chat's next update only after
the 200, so this write would otherwise sit between every two messages of a conversation.

Otherwise the row is first written as pending and Telegram is answered at once; the dispatcher
handles it in order, as a polled update:
- the chat is busy (an earlier update of it is in hand or waiting): the new row is written, and
  with it, before it, the rows of those earlier updates not written yet, so the stored order is
  the chat's order;
- the handler takes longer than INLINE_BUDGET (Telegram gives up after 60 s and re-sends).

Crashes, point by point:
- before the handler's commit: nothing stored, no 200; Telegram re-sends, it runs again;
- after the commit, before the 200: the row is there, handled; the re-sent update finds it
  and is answered 200 without running (on PostgreSQL asked in the round trip that takes the
  chat's lock, below; SQLite has one process only, so it keeps the stored update_ids in memory,
  `KnownUpdates`, loaded at start);
- a pending row written, then the crash: recovered on the next start (`UpdateIntake.recover`),
  and its re-sent copy is answered 200 without running;
- a handler commit that raced a pending write: both are keyed on update_id, so whichever
  comes second only marks (or leaves) the one row.
While the first copy of an update is in hand here, a re-sent copy waits for its answer; one
re-sent after a 503 (its pending row failed to be written) while it still waits here is
written now, not queued a second time.

Updates of one chat stay in order: Telegram sends a chat's next update only after the previous
one was answered; a callback query (queued by Telegram per user, not per chat) that arrives
while its chat is busy waits in the dispatcher behind the earlier ones.

Several replicas on PostgreSQL (`chat_locks`): a chat is handled only by the replica holding
its advisory lock (db/chat_locks.py), taken when its queue starts here and given back when it
runs dry; an update whose chat another replica holds is stored unclaimed for that holder, who
claims and handles such rows before letting the chat go. Stored rows in a replica's hands are
claimed with a lease (db/inbox_claims.py), renewed while it lives; a sweep every few seconds
takes chats whose rows nobody has (a dead replica's, once the lease ran out). Decisions about
one chat in this process are taken under its gate (`_gate`), so none slips between them.

At shutdown new posts get 503 (Telegram retries, later or at another replica) and updates in
hand finish; the webhook is never deleted, other replicas may still serve it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import weakref
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Update
from telegram.ext import Application

from bot.observability.metrics import Metrics
from bot.telegram.inbox import (
    ALLOWED_UPDATES,
    ChatSerialDispatcher,
    InboxItem,
    UpdateIntake,
    chat_key,
)
from db import inbox_claims
from db.chat_locks import ChatLocks, Taken
from db.group_commit import GroupCommitter, WriteSet
from db.models import InboxUpdate
from db.types import utcnow
from db.uow import INSERT_PENDING, INSERT_PENDING_CLAIMED, InboxMark, PendingRow

log = logging.getLogger(__name__)

# Well under Telegram's 60 s: past this the update is stored as pending and answered.
INLINE_BUDGET = 20.0
# Replicas: how long a claim on stored rows holds unless renewed (a dead replica's rows wait
# at most this long), and how often a replica looks for rows nobody has in hand.
CLAIM_LEASE = 15.0
SWEEP_EVERY = 2.0


class Verdict(enum.Enum):
    ACCEPTED = 200  # durable: handled, or stored to be handled
    RETRY = 503  # not taken (starting, stopping, database trouble): Telegram sends it again
    MALFORMED = 400  # not an Update


class KnownUpdates:
    """The update_ids stored in the inbox, for a process that is its database's only writer
    (SQLite): a redelivery is recognised without a query. Bounded: past `limit` the oldest are
    forgotten, and an id not above the highest forgotten one is asked of the database."""

    def __init__(self, limit: int = 200_000) -> None:
        self._ids: dict[int, None] = {}  # insertion order: oldest first
        self.limit = limit
        self._floor = -1

    def load(self, newest_first: Sequence[int]) -> None:
        """The inbox's newest `limit` update_ids: older ones, if any, are asked of it."""
        for uid in reversed(newest_first):
            self._ids[uid] = None
        if len(newest_first) >= self.limit:
            self._floor = max(self._floor, min(newest_first) - 1)

    def add(self, update_id: int) -> None:
        self._ids[update_id] = None
        if len(self._ids) > self.limit:
            oldest = next(iter(self._ids))
            del self._ids[oldest]
            self._floor = max(self._floor, oldest)

    def knows(self, update_id: int) -> bool | None:
        """True: stored; False: not stored; None: forgotten, ask the database."""
        if update_id in self._ids:
            return True
        return None if update_id <= self._floor else False


class WebhookIntake(UpdateIntake):
    """Takes posted updates into the inbox; sets the webhook at start, never deletes it."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        sessions: async_sessionmaker[AsyncSession],
        *,
        url: str,
        secret_token: str,
        max_connections: int = 40,
        dialect: str,
        max_concurrent_chats: int = 64,
        committer: GroupCommitter | None = None,
        read_sessions: async_sessionmaker[AsyncSession] | None = None,
        inline_budget: float = INLINE_BUDGET,
        metrics: Metrics | None = None,
        chat_locks: ChatLocks | None = None,
        replica: str = "",
        lease: float = CLAIM_LEASE,
        sweep_every: float = SWEEP_EVERY,
    ) -> None:
        super().__init__(application, sessions, max_concurrent_chats=max_concurrent_chats,
                         committer=committer, metrics=metrics)
        # Replicas on PostgreSQL: a chat is handled where its lock is held (module docstring).
        self._locks = chat_locks
        self._replica, self._lease, self._sweep_every = replica, lease, sweep_every
        # Weak: a chat's turn lives while someone holds or awaits it, then goes (a process
        # that has met a million chats keeps no lock for each).
        self._gates: weakref.WeakValueDictionary[int, asyncio.Lock] = (
            weakref.WeakValueDictionary())
        self._chores: list[asyncio.Task[None]] = []  # sweeping, renewing claims
        self._retakes: set[asyncio.Task[None]] = set()
        self._claimed = False  # whether this replica ever claimed a row (to give back)
        if chat_locks is not None:
            self._dispatcher = ChatSerialDispatcher(
                self._process, max_concurrent_chats, leave=self._leave, gate=self._gate)
        self._url, self._secret, self._max_connections = url, secret_token, max_connections
        self._dialect = dialect
        # The redelivery check only reads: on SQLite it must not queue for the write lock.
        self._read_sessions = read_sessions or sessions
        self._known = KnownUpdates() if dialect == "sqlite" else None
        self._inline_budget = inline_budget
        self._accepting = False
        self._answers: dict[int, asyncio.Future[bool]] = {}  # update_id in hand -> its answer
        self._marking: dict[int, asyncio.Task[None]] = {}  # answered, "handled" row on its way
        self._submitted: dict[int, InboxItem] = {}  # update_id -> its item, until handled

    async def start(self) -> None:
        if self._locks is not None:
            await self._locks.open()
        await self.recover()  # stored rows first: new updates of their chats queue behind
        if self._known is not None:
            async with self._read_sessions() as session:
                newest = (await session.scalars(
                    select(InboxUpdate.update_id).order_by(InboxUpdate.update_id.desc())
                    .limit(self._known.limit))).all()
            self._known.load(newest)
        self._accepting = True
        if self._locks is not None:
            self._chores = [asyncio.create_task(self._sweep_forever(), name="inbox-sweep"),
                            asyncio.create_task(self._renew_forever(), name="inbox-renew")]
        await self._app.bot.set_webhook(
            url=self._url, secret_token=self._secret, allowed_updates=ALLOWED_UPDATES,
            max_connections=self._max_connections, drop_pending_updates=False)
        log.info("webhook mode: Telegram posts updates (max %d connections)",
                 self._max_connections)

    async def stop(self, grace: float = 10.0) -> None:
        self._accepting = False
        for task in self._chores:
            task.cancel()
        await asyncio.gather(*self._chores, *self._retakes, return_exceptions=True)
        await super().stop(grace)
        await asyncio.gather(*self._marking.values(), return_exceptions=True)
        if self._locks is not None:
            if self._claimed:  # what is left unhandled is taken by another replica at once
                try:
                    async with self._sessions() as session, session.begin():
                        await inbox_claims.give_back(session, owner=self._replica)
                except Exception:
                    log.warning("could not give back this replica's claims; their lease ends")
            await self._locks.close()

    async def recover(self) -> int:
        """Stored, unhandled updates to the dispatcher, oldest first. With replicas only
        those no live replica has in hand (and this one's from before a restart)."""
        if self._locks is None:
            return await super().recover()
        return await self._sweep(mine=True)

    async def receive(self, data: object) -> Verdict:
        """Take one posted update; the verdict is the HTTP answer Telegram gets."""
        if not self._accepting:
            return Verdict.RETRY
        update = self._parse(data)
        if update is None:
            return Verdict.MALFORMED
        assert isinstance(data, dict)
        first = self._answers.get(update.update_id)
        if first is not None:  # re-sent while the first copy is in hand: the same answer
            return Verdict.ACCEPTED if await asyncio.shield(first) else Verdict.RETRY
        if (marking := self._marking.get(update.update_id)) is not None:
            await asyncio.wait([marking])  # handled; its row is being written
            return Verdict.ACCEPTED
        answer = asyncio.get_running_loop().create_future()
        self._answers[update.update_id] = answer
        taken = False
        try:
            taken = await self._take(update, data)
        except Exception:
            log.exception("update %s could not be taken in; Telegram will send it again",
                          update.update_id)
        finally:
            answer.set_result(taken)
            del self._answers[update.update_id]
        if taken and self._known is not None:
            self._known.add(update.update_id)
        return Verdict.ACCEPTED if taken else Verdict.RETRY

    def _parse(self, data: object) -> Update | None:
        if not isinstance(data, dict):
            return None
        uid = data.get("update_id")
        if not isinstance(uid, int) or isinstance(uid, bool) or uid < 0:
            return None
        if not any(isinstance(v, dict) for k, v in data.items() if k != "update_id"):
            return None
        try:
            return Update.de_json(data, self._app.bot)
        except Exception:  # PTB raises whatever a field's constructor raises
            return None

    async def _take(self, update: Update, payload: dict[str, Any]) -> bool:
        """True once the update is durable (handled, or stored to be)."""
        earlier = self._submitted.get(update.update_id)
        if earlier is not None:  # still queued here after a failed answer (the store failed)
            await self._store_ahead_of(earlier)
            return True
        known = self._known.knows(update.update_id) if self._known is not None else None
        if self._locks is not None:
            known = False  # asked in the same round trip as the chat's lock
        if known or (known is None and await self._already_stored(update.update_id)):
            log.info("update %s delivered again; ignored", update.update_id)
            return True
        if not self._accepting:  # stop() began while we read: it waits only for submitted ones
            return False
        if self._locks is not None:
            return await self._take_shared(update, payload)
        key = chat_key(update)
        row = PendingRow(update.update_id, key, payload, self._dialect)
        item = InboxItem(None, key, update, pending=row)
        busy = bool(self._dispatcher.queued(key))
        done = self._dispatcher.watch(item)
        self._submitted[update.update_id] = item
        done.add_done_callback(lambda _f: self._submitted.pop(update.update_id, None))
        if busy:
            await self._store_ahead_of(item)
            return True
        try:
            await asyncio.wait_for(asyncio.shield(done), self._inline_budget)
        except TimeoutError:
            log.info("update %s takes over %.0fs; stored, answered, still in hand",
                     update.update_id, self._inline_budget)
            await self._store_ahead_of(item)
            return True
        except asyncio.CancelledError:
            if done.cancelled():  # cut off at shutdown: Telegram sends it again
                return row.durable
            raise
        return row.durable  # false only if neither the handler nor the mark committed

    async def _mark_handled(self, mark: InboxMark) -> None:
        """Handled and nothing committed: answer now, write the "handled" row just after."""
        row = mark.row
        if row is None or row.stored:
            await super()._mark_handled(mark)
            return
        task = asyncio.create_task(self._write_handled(mark))
        self._marking[row.update_id] = task
        task.add_done_callback(lambda _t: self._marking.pop(row.update_id, None))

    async def _write_handled(self, mark: InboxMark) -> None:
        try:
            await super()._mark_handled(mark)
        except Exception:  # handled already; a re-sent copy would just run again
            log.exception("the handled mark of update %s was not written",
                          mark.row.update_id if mark.row else None)

    async def _store_ahead_of(self, item: InboxItem) -> None:
        """Write the pending rows of `item` and of its chat's items before it, in order."""
        queued = self._dispatcher.queued(item.chat_key)
        ahead = next((queued[:i] for i, q in enumerate(queued) if q is item), [])
        rows = [q.pending for q in [*ahead, item]
                if q.pending is not None and not q.pending.durable]
        if not rows:
            return
        if self._locks is not None:  # this replica holds the chat: the rows are in its hands
            await self._store([r.params() for r in rows], claimed=True)
            for r in rows:
                r.stored = True
            return
        statement = INSERT_PENDING[self._dialect]
        if self._committer is not None:
            writes = WriteSet()
            for r in rows:
                writes.add(statement, **r.params())
            await self._committer.commit(writes)
        else:
            async with self._sessions() as session, session.begin():
                await session.execute(statement, [r.params() for r in rows])
        for r in rows:
            r.stored = True

    async def _already_stored(self, update_id: int) -> bool:
        async with self._read_sessions() as session:
            found = await session.scalar(
                select(InboxUpdate.id).where(InboxUpdate.update_id == update_id))
        return found is not None

    # Replicas on PostgreSQL ----------------------------------------------------------------

    def _gate(self, key: int) -> asyncio.Lock:
        """This process's turn at deciding about one chat (take it, queue to it, give it back)."""
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = asyncio.Lock()
        return gate

    async def _take_shared(self, update: Update, payload: dict[str, Any]) -> bool:
        assert self._locks is not None
        key = chat_key(update)
        row = PendingRow(update.update_id, key, payload, self._dialect)
        item = InboxItem(None, key, update, pending=row)
        async with self._gate(key):
            if self._dispatcher.holds(key):  # held here: stored behind the chat's queue
                ahead = [q.pending.params() for q in self._dispatcher.queued(key)
                         if q.pending is not None and not q.pending.durable]
                if not await self._store([*ahead, row.params()], claimed=True):
                    log.info("update %s delivered again; ignored", update.update_id)
                    return True
                for q in self._dispatcher.queued(key):
                    if q.pending is not None:
                        q.pending.stored = True
                row.stored = True
                # Updates of the chat another replica stored for us meanwhile come first.
                for earlier in await self._claim(key):
                    self._dispatcher.submit(earlier)
                self._submit(item)
                return True
            taken = await self._take_chat(key, update.update_id)
            if taken.stored:
                log.info("update %s delivered again; ignored", update.update_id)
                if taken.got:
                    await self._hold(key)
                return True
            if not taken.got:  # another replica handles the chat: stored for its holder
                if not await self._store([row.params()], claimed=False):
                    log.info("update %s delivered again; ignored", update.update_id)
                    return True
                row.stored = True
                retake = asyncio.create_task(self._retake(key))
                self._retakes.add(retake)
                retake.add_done_callback(self._retakes.discard)
                return True
            if taken.backlog:  # earlier updates of the chat wait in the inbox: they go first
                await self._store([row.params()], claimed=True)
                row.stored = True
                await self._hold(key)
                if self._dispatcher.holds(key):
                    self._submit(item)
                    return True
                taken = await self._take_chat(key, update.update_id)  # given back: again
                if not taken.got:
                    return True  # stored; its chat's holder handles it
            done = self._submit(item)
        try:
            await asyncio.wait_for(asyncio.shield(done), self._inline_budget)
        except TimeoutError:
            log.info("update %s takes over %.0fs; stored, answered, still in hand",
                     update.update_id, self._inline_budget)
            async with self._gate(key):
                await self._store_ahead_of(item)
            return True
        except asyncio.CancelledError:
            if done.cancelled():
                return row.durable
            raise
        return row.durable

    async def _take_chat(self, key: int, update_id: int = -1) -> Taken:
        """Hold the chat if nobody does, and no other replica's claim is on a row of it (a
        dead one's: the chat waits for its lease to end, then the sweep takes it in order)."""
        assert self._locks is not None
        taken = await self._locks.take(key, self._replica, update_id)
        if taken.got and taken.foreign:
            await self._locks.release(key)
            return replace(taken, got=False)
        return taken

    def _submit(self, item: InboxItem) -> asyncio.Future[None]:
        done = self._dispatcher.watch(item)
        uid = item.update.update_id
        self._submitted[uid] = item
        done.add_done_callback(lambda _f: self._submitted.pop(uid, None))
        return done

    async def _store(self, params: list[dict[str, Any]], *, claimed: bool) -> bool:
        """Write pending rows (claimed by this replica, or free for the chat's holder); True
        if the last one is new (False: it was stored before, a redelivery)."""
        self._claimed |= claimed
        claim = {"b_owner": self._replica if claimed else None,
                 "b_until": utcnow() + self._lease_span if claimed else None}
        async with self._sessions() as session, session.begin():
            new = set((await session.scalars(
                INSERT_PENDING_CLAIMED, [{**p, **claim} for p in params])).all())
        return params[-1]["b_update_id"] in new

    @property
    def _lease_span(self) -> timedelta:
        return timedelta(seconds=self._lease)

    async def _hold(self, key: int) -> None:
        """This process holds the chat (under its gate): its backlog to the dispatcher, or,
        if it has none, the chat given back."""
        items = await self._leave(key)
        for item in items:
            self._dispatcher.submit(item)

    async def _leave(self, key: int) -> list[InboxItem]:
        """The chat's queue ran dry (or it was just taken): give it back, unless rows of it
        were stored meanwhile (then they are claimed and returned, oldest first)."""
        assert self._locks is not None
        for attempt in range(1_000_000):
            try:
                for _ in range(3):
                    if await self._locks.release_unless_backlog(key):
                        return []
                    items = await self._claim(key)
                    if items:
                        return items
                await self._locks.release(key)  # the backlog is another claim's: theirs
                return []
            except Exception as exc:  # the database is away: the chat stays held here
                log.warning("chat could not be given back (%s); retrying", type(exc).__name__)
                await asyncio.sleep(min(1.0 + attempt, 10.0))
        return []

    async def _claim(self, key: int, *, mine: bool = False) -> list[InboxItem]:
        now = utcnow()
        self._claimed = True
        async with self._sessions() as session, session.begin():
            rows = await inbox_claims.claim_chat(
                session, key, owner=self._replica, now=now, until=now + self._lease_span,
                mine=mine)
            return [InboxItem(r.id, r.chat_key, Update.de_json(r.payload, self._app.bot))
                    for r in rows]

    async def _retake(self, key: int) -> None:
        """A row stored for another replica's chat: if that replica let the chat go meanwhile,
        nobody would look for the row until the next sweep; try to take the chat now."""
        assert self._locks is not None
        try:
            async with self._gate(key):
                if self._dispatcher.holds(key):
                    return
                if (await self._take_chat(key)).got:
                    await self._hold(key)
        except Exception:
            log.warning("could not take a chat over; the sweep will", exc_info=True)

    async def _sweep(self, *, mine: bool = False) -> int:
        """Take the chats whose stored rows nobody has in hand (a dead replica's, expired;
        or stored while their holder let them go) and hand their rows over, in order."""
        assert self._locks is not None
        async with self._read_sessions() as session:
            keys = await inbox_claims.free_chats(
                session, now=utcnow(), owner=self._replica if mine else None)
        taken = 0
        for key in keys:
            async with self._gate(key):
                if self._dispatcher.holds(key) or not (await self._take_chat(key)).got:
                    continue
                if mine:
                    items = await self._claim(key, mine=True)
                    for item in items:
                        self._dispatcher.submit(item)
                    if not items:
                        await self._hold(key)
                else:
                    await self._hold(key)
                taken += len(self._dispatcher.queued(key))
        if taken:
            log.info("took %d stored updates from the inbox", taken)
        return taken

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_every)
            try:
                await self._sweep()
            except Exception as exc:
                log.warning("inbox sweep failed: %s", type(exc).__name__)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                async with self._sessions() as session, session.begin():
                    await inbox_claims.renew(session, owner=self._replica,
                                             until=utcnow() + self._lease_span)
            except Exception as exc:
                log.warning("could not renew this replica's claims: %s", type(exc).__name__)
