"""Durable update intake: nothing Telegram delivered is lost, nothing is handled twice.

PTB's Updater confirms a batch (by asking for the next offset) as soon as it has queued the
updates, before any handler ran; a crash then loses them. Here each batch is written to the
`inbox` table first and the offset advanced in the same transaction; only then is the next
`getUpdates` sent, which is what confirms the batch to Telegram. A redelivered update hits the
UNIQUE(update_id) and is ignored. Handling marks the row done inside the handler's own
transaction (see `db.uow`), so after a crash exactly the unfinished updates run again.

Updates of one chat are handled in order; different chats are served concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Update
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

from bot.observability.metrics import Metrics
from bot.observability.scope import ERROR, UpdateScope, current_update
from db.group_commit import GroupCommitter, WriteSet
from db.models import InboxUpdate, IntakeState
from db.types import utcnow
from db.uow import InboxMark, PendingRow, current_inbox

log = logging.getLogger(__name__)

# Edits of old messages are not asked for: an edited remark must not become the next input.
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
# An update whose handling crashed the process this many times is set aside, not retried.
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class InboxItem:
    inbox_id: int | None  # None: a webhook update whose row is written by its handling
    chat_key: int
    update: Update
    pending: PendingRow | None = None


def chat_key(update: Update) -> int:
    """The ordering key: updates with the same key are handled one after another."""
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return update.effective_user.id
    return 0


def update_kind(update: Update) -> str:
    """Which kind of update this is ("message", "callback_query", ...), for the metrics."""
    for kind in ALLOWED_UPDATES:
        if getattr(update, kind, None) is not None:
            return kind
    return next((k for k in Update.ALL_TYPES if getattr(update, k, None) is not None), "other")


class ChatSerialDispatcher:
    """Runs items in order per chat and concurrently across chats, with a global cap."""

    def __init__(
        self, handle: Callable[[InboxItem], Awaitable[None]], max_concurrent: int,
        *, leave: Callable[[int], Awaitable[list[InboxItem]]] | None = None,
        gate: Callable[[int], asyncio.Lock] | None = None,
    ) -> None:
        self._handle = handle
        # Replicas (bot/telegram/webhook_intake.py): when a chat's queue runs dry, `leave`
        # gives the chat back or returns its items stored meanwhile; under the chat's `gate`,
        # so nothing is queued for it between that answer and the queue's end.
        self._leave = leave
        self._gate = gate
        self._queues: dict[int, deque[InboxItem]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max_concurrent)
        self._idle = asyncio.Event()
        self._idle.set()
        self._watchers: dict[int, asyncio.Future[None]] = {}  # id(item) -> done

    def submit(self, item: InboxItem) -> None:
        queue = self._queues.get(item.chat_key)
        if queue is not None:
            queue.append(item)
            return
        self._queues[item.chat_key] = deque([item])
        self._idle.clear()
        task = asyncio.create_task(self._drain(item.chat_key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, key: int) -> None:
        queue = self._queues[key]
        try:
            while True:
                while queue:
                    item = queue[0]
                    async with self._slots:
                        try:
                            await self._handle(item)
                        except Exception:  # the handler reports its own errors; keep serving
                            log.exception("update %s could not be handled",
                                          item.update.update_id)
                    queue.popleft()
                    if (watcher := self._watchers.pop(id(item), None)) is not None:
                        watcher.set_result(None)
                if self._leave is None or self._gate is None:
                    break
                async with self._gate(key):
                    if queue:
                        continue
                    more = await self._leave(key)
                    if not more:
                        del self._queues[key]
                        break
                    queue.extend(more)
        finally:
            for item in queue:  # cancelled: whoever waits on these hears it
                if (watcher := self._watchers.pop(id(item), None)) is not None:
                    watcher.cancel()
            if self._queues.get(key) is queue:
                del self._queues[key]
            if not self._queues:
                self._idle.set()

    def watch(self, item: InboxItem) -> asyncio.Future[None]:
        """Submit `item`; the future is done once it was handled (cancelled if it was cut off)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._watchers[id(item)] = done
        self.submit(item)
        return done

    def holds(self, key: int) -> bool:
        """Whether the chat has a queue here (items in hand or waiting, or being given back)."""
        return key in self._queues

    def queued(self, key: int) -> list[InboxItem]:
        """The items of one chat in hand or waiting, in order (empty when the chat is idle)."""
        return list(self._queues.get(key, ()))

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    async def wait_idle(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class UpdateIntake:
    """Long-polls getUpdates into the inbox and hands stored updates to the Application."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        sessions: async_sessionmaker[AsyncSession],
        *,
        poll_timeout: int = 10,
        max_concurrent_chats: int = 64,
        committer: GroupCommitter | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._app = application
        self._metrics = metrics
        self._sessions = sessions
        self._committer = committer
        self._poll_timeout = poll_timeout
        self._dispatcher = ChatSerialDispatcher(self._process, max_concurrent_chats)
        self._stopping = asyncio.Event()
        self._poll_task: asyncio.Task[None] | None = None

    @property
    def dispatcher(self) -> ChatSerialDispatcher:
        return self._dispatcher

    async def start(self) -> None:
        self._stopping.clear()  # started again after a stop (a replica that regained polling)
        await self.recover()
        self._poll_task = asyncio.create_task(self._poll_forever(), name="wenming-intake")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop polling, let handlers in flight finish (up to `grace` seconds)."""
        self._stopping.set()
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
            log.info("stopped taking updates; finishing the %d in hand",
                     self._dispatcher.pending)
        if not await self._dispatcher.wait_idle(grace):
            log.warning("stopping with %d updates unhandled; they run on the next start",
                        self._dispatcher.pending)
            await self._dispatcher.cancel()

    async def recover(self) -> int:
        """Hand every stored but unhandled update to the dispatcher, oldest first."""
        async with self._sessions() as session, session.begin():
            rows = (
                await session.scalars(
                    select(InboxUpdate)
                    .where(InboxUpdate.processed_at.is_(None))
                    .order_by(InboxUpdate.id)
                )
            ).all()
            items = []
            for row in rows:
                row.attempts += 1
                if row.attempts > MAX_ATTEMPTS:
                    log.error("update %s failed %d times; set aside", row.update_id, MAX_ATTEMPTS)
                    row.processed_at = utcnow()
                    continue
                items.append(
                    InboxItem(row.id, row.chat_key, Update.de_json(row.payload, self._app.bot))
                )
        for item in items:
            self._dispatcher.submit(item)
        if items:
            log.info("recovered %d unhandled updates from the inbox", len(items))
        return len(items)

    async def _leave_webhook(self) -> None:
        """getUpdates refuses to work while a webhook is set: remove it, keeping the updates
        Telegram holds for it (they come by polling now)."""
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                await self._app.bot.delete_webhook(drop_pending_updates=False)
                return
            except RetryAfter as exc:
                await self._sleep(_seconds(exc.retry_after))
            except NetworkError as exc:  # TimedOut included
                log.warning("deleteWebhook failed: %s; retrying in %.0fs", exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def _poll_forever(self) -> None:
        await self._leave_webhook()
        offset = await self._load_offset()
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                updates = await self._app.bot.get_updates(
                    offset=offset,
                    timeout=self._poll_timeout,
                    allowed_updates=ALLOWED_UPDATES,
                )
            except RetryAfter as exc:
                await self._sleep(_seconds(exc.retry_after))
                continue
            except (TimedOut, NetworkError, Conflict) as exc:
                # Conflict: another poller or a webhook; keep trying, an operator must fix it.
                if not isinstance(exc, TimedOut):
                    log.warning("getUpdates failed: %s; retrying in %.0fs", exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except InvalidToken:
                log.critical("the Bot API rejected the token; polling stops")
                raise
            backoff = 1.0
            if not updates:
                continue
            try:
                fresh = await self.store(updates, next_offset=updates[-1].update_id + 1)
            except Exception as exc:
                # The database is away: the batch is not confirmed (the offset stays), so
                # Telegram hands it over again; polling goes on once the database is back.
                log.warning("could not store %d updates (%s); asking again in %.0fs",
                            len(updates), type(exc).__name__, backoff)
                await self._sleep(backoff)
                continue
            offset = updates[-1].update_id + 1
            for item in fresh:
                self._dispatcher.submit(item)

    async def store(self, updates: Sequence[Update], *, next_offset: int) -> list[InboxItem]:
        """Write a batch and the new offset in one transaction; return the updates that are new."""
        ids = [u.update_id for u in updates]
        async with self._sessions() as session, session.begin():
            seen = set(
                (
                    await session.scalars(
                        select(InboxUpdate.update_id).where(InboxUpdate.update_id.in_(ids))
                    )
                ).all()
            )
            fresh = []
            for u in updates:
                if u.update_id in seen:
                    log.info("update %s delivered again; ignored", u.update_id)
                    continue
                seen.add(u.update_id)
                row = InboxUpdate(update_id=u.update_id, chat_key=chat_key(u), payload=u.to_dict())
                session.add(row)
                fresh.append((row, u))
            state = await session.get(IntakeState, 1)
            if state is None:
                session.add(IntakeState(id=1, next_offset=next_offset))
            else:
                state.next_offset = next_offset
            await session.flush()
            return [InboxItem(row.id, row.chat_key, u) for row, u in fresh]

    async def _load_offset(self) -> int:
        async with self._sessions() as session:
            state = await session.get(IntakeState, 1)
            return state.next_offset if state else 0

    async def _process(self, item: InboxItem) -> None:
        mark = InboxMark(item.inbox_id, row=item.pending)
        token = current_inbox.set(mark)
        # Log lines name the update and its chat; the error hook (bot/app.py) notes failures.
        chat = item.update.effective_chat
        scope = UpdateScope(item.update.update_id, chat.id if chat is not None else None)
        scope_token = current_update.set(scope)
        started = time.perf_counter()
        cancelled = False
        try:
            await self._app.process_update(item.update)
        except asyncio.CancelledError:
            # Cut off at shutdown: left unhandled, it runs again on the next start. Whatever
            # it had committed carried the mark with it, so nothing happens twice.
            cancelled = True
            raise
        except Exception:
            scope.outcome = ERROR
            raise
        finally:
            if not cancelled:
                self._handled(item.update, scope.outcome, time.perf_counter() - started)
            current_update.reset(scope_token)
            current_inbox.reset(token)
            if not mark.marked and not cancelled:
                # Nothing the handler committed marked it (a read-only reply, or an error).
                await self._mark_handled(mark)
                mark.done()

    def _handled(self, update: Update, outcome: str, seconds: float) -> None:
        kind = update_kind(update)
        if self._metrics is not None:
            self._metrics.update_handled(kind, outcome, seconds)
        log.debug("%s handled: %s in %.1f ms", kind, outcome, seconds * 1000)

    async def _mark_handled(self, mark: InboxMark) -> None:
        statement, params = mark.handled_write()
        if self._committer is not None:  # shares a transaction with concurrent presses
            writes = WriteSet()
            writes.add(statement, **params)
            await self._committer.commit(writes)
            return
        async with self._sessions() as session, session.begin():
            await session.execute(statement, params)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
