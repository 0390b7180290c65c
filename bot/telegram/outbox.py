"""Drains the outbox: messages decided inside transactions, delivered after them.

Delivery rules:

* **Order per chat, concurrency across chats.** Only the oldest pending row of each chat is a
  candidate, so a chat's messages arrive in the order they were decided; different chats are
  sent concurrently (up to `max_in_flight`, 8: enough for 30/s at a 250 ms round trip, and
  few, because every request in flight is a message a crash could repeat), so one slow chat
  never holds up the others.
* **Telegram's limits.** The bot given here carries `broadcast_rate_limiter()` (29 messages/s
  overall, 20 per minute per group, bot/telegram/flood.py).
  That limiter does not pace a private chat,
  so the sender keeps its own per-chat pace (`chat_interval`, 1 s) and a group's 20 per minute:
  a chat that is not ready is skipped, never slept on, and the next row of a ready chat is
  taken instead.
* **429 RetryAfter**: that chat waits `retry_after` (the row's not_before and the in-memory pace
  both move); every other chat carries on. The wait is shared with the handlers' bot
  (`ChatDeadlines`): a row for a chat that a reply was told to leave alone fails at once with
  RetryAfter, without a request. A reply whose chat must wait longer than a handler may is
  handed over here (`hand_over`, purpose "reply").
  **Network errors**: the row backs off exponentially (2 s doubling, at most 5 min) and fails
  after MAX_ATTEMPTS. **Forbidden** in a group (the bot was removed): the binding is
  deactivated, the chat's pending rows fail, and the admins are told (role admin in their
  private chats, and WENMING_ADMIN_CHAT_ID). **ChatMigrated** (a group became a supergroup):
  the binding and the chat's pending rows move to the new id and the row is sent again there,
  unless the new id is bound already (then the row fails with the reason).
* **Exactly once, except one window.** A row is marked sent in its own short transaction right
  after Telegram accepted it. Telegram has no idempotency key for sends, so a crash in the
  milliseconds between Telegram's answer and that commit repeats that one message after a
  restart; the same holds for a request that reached Telegram but whose answer was lost
  (TimedOut is a NetworkError and is retried). Everything else (429s, restarts, kills between
  rows) delivers each row exactly once.

**Several replicas on one database.** A row is claimed in the database before it is sent
(`claimed_by`, `claimed_until`): a claim takes a chat's oldest pending row only while no row
of that chat is under a live claim (procrastinate's per-lock rule), so a chat's messages still
go one at a time and in order whichever replica sends them; on PostgreSQL the candidates are
selected `FOR UPDATE SKIP LOCKED` and claimed by the same `UPDATE ... RETURNING`. Recording the
outcome releases the claim; a claim is a lease (`lease`, 60 s, renewed while the row is in
flight), so a killed replica's row is taken by another once it runs out: the at-least-once
window above is the only duplicate, as on a restart. The pace of a chat (1 s, a group's 20 per
minute, a 429's retry_after) is kept in `outbox_chats`, so no replica writes to a chat inside
another replica's pace; on PostgreSQL the claims also draw on one token bucket
(`send_budget`, 26 messages/s and a burst of 3: 29 claims in a second at most, one to spare
for a send a moment late after its claim) shared by all replicas. Times for these are the wall
clock (replicas' clocks are assumed synchronised, as by NTP); `not_before` stays on the app's
clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased
from telegram import (
    Bot,
    ForceReply,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
)
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter

from bot.config import default_replica_name
from bot.media.jobs import run_image_job
from bot.media.sanitize import ImageRejected
from bot.media.stamp import stamp
from bot.render.i18n import normalize_language, t
from bot.telegram.flood import ChatDeadlines, ChatLimiter, retry_seconds
from db.models import GroupBinding, OutboxChat, OutboxMessage, Person, SendBudget, Unit
from db.outbox_keys import dedup_key
from db.repositories import OutboxRepository
from db.types import utcnow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 20
STOP_GRACE = 5.0  # seconds the sender's loop has to finish its pass at shutdown
MAX_BACKOFF = 300.0
# How long a claim holds without renewal: a dead replica's rows wait this long at most.
CLAIM_LEASE = 60.0
# The shared budget (PostgreSQL): a token bucket lets through at most BURST + RATE messages in
# any one second: 29, one under Telegram's 30/s for a send that leaves a moment after its claim,
# even when a broadcast starts on a full bucket (a burst of 8 on top of 29/s let 32 of a
# bulletin's messages land within one second); a small burst all the same, since a claim is
# taken a moment before its send.
BUDGET_RATE = 26.0
BUDGET_BURST = 3.0

# What to record once a message queued with some purpose is delivered (in the same transaction
# that marks the row sent), given the chat and message id it landed as; e.g. "task_card":
# remember where the card is. OutboxSender takes them by purpose (bot/app.py wires them).
SentHook = Callable[[AsyncSession, OutboxMessage, int, int], Awaitable[None]]


def broadcast_rate_limiter(deadlines: ChatDeadlines | None = None) -> ChatLimiter:
    """The outbox bot's limiter: a hair under Telegram's 30 messages/s (a leaky bucket and the
    server's token bucket drift apart by a few milliseconds over a long broadcast, and at exactly
    30/s that drift surfaced as an occasional 429, 1 in 300 messages in bench/bulletin.py), 20
    per minute per group, and each chat's flood wait (`deadlines`, shared with the handlers'
    bot). It never waits for a chat (max_wait 0): RetryAfter comes back at once, and the sender
    reschedules the row and serves other chats meanwhile."""
    return ChatLimiter(deadlines or ChatDeadlines(), max_wait=0, overall_per_second=29,
                       group_per_minute=20)


@dataclass(frozen=True)
class _Row:
    id: int
    chat_id: int
    method: str
    params: dict[str, Any]


# What editMessageText takes of a sendMessage's parameters.
EDITABLE_TEXT = ("text", "parse_mode", "entities", "link_preview_options", "reply_markup")


async def _follow_rewrite(session: AsyncSession, stored: OutboxMessage,
                          sent_params: dict[str, Any]) -> None:
    """A text row rewritten while its send was in flight (a morning list ticked in the
    seconds it was being sent: bot/services/plans.refresh_lists rewrites a list still in the
    outbox) went out as it was claimed; the rewrite follows it as an edit, so the chat ends up
    showing what the row says."""
    if stored.method != "sendMessage" or stored.sent_message_id is None:
        return
    edit = {k: stored.params[k] for k in EDITABLE_TEXT if k in stored.params}
    if edit == {k: sent_params[k] for k in EDITABLE_TEXT if k in sent_params}:
        return  # not rewritten, or not in anything an edit can show
    markup = edit.get("reply_markup")
    if not (isinstance(markup, dict) and "inline_keyboard" in markup):
        edit.pop("reply_markup", None)  # an edit takes only an inline keyboard
    await OutboxRepository(session).enqueue(
        dedup_key("rewritten", stored.id), stored.chat_id, "editMessageText",
        {"message_id": stored.sent_message_id, **edit}, purpose=stored.purpose)


class OutboxSender:
    def __init__(
        self,
        bot: Bot,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        *,
        idle_interval: float = 2.0,
        media_dir: Path | None = None,
        chat_interval: float = 1.0,
        group_per_minute: int = 20,
        max_in_flight: int = 8,
        admin_chat_id: int | None = None,
        language: str = "zh-hans",
        sent_hooks: Mapping[str, SentHook] | None = None,
        replica: str | None = None,
        lease: float = CLAIM_LEASE,
        shared_budget: bool | None = None,
        cjk_font: Path | None = None,
    ) -> None:
        self._bot = bot
        self.replica = replica or default_replica_name()
        self._lease = lease
        # One budget for all replicas; None: where replicas can share a database (PostgreSQL).
        self._shared_budget = shared_budget
        self._budget_wait = 0.0  # seconds until the shared budget has a token again
        self._renewed_at = 0.0
        self._sent_hooks = dict(sent_hooks or {})
        self._sessions = sessions
        self._clock = clock
        self._idle_interval = idle_interval
        self._media_dir = Path(media_dir) if media_dir is not None else None
        self._cjk_font = cjk_font
        self._chat_interval = chat_interval
        self._group_per_minute = group_per_minute
        # A stored file Telegram already has (the same bulletin to several groups): its file_id,
        # so it is uploaded once. Telegram's file_ids are persistent for this bot.
        self._file_ids: dict[str, str] = {}
        self._max_in_flight = max_in_flight
        self._admin_chat_id = admin_chat_id
        self._language = language
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._in_flight: dict[int, asyncio.Task[bool]] = {}  # chat id -> its send
        self._in_flight_rows: dict[int, int] = {}  # chat id -> the row it sends (claimed)
        self._ready_at: dict[int, float] = {}  # chat id -> loop time it may be sent to again
        self._handed: dict[int, int] = {}  # row id -> chat id of replies handed over, pending

    def wake(self) -> None:
        """Something was queued: look now rather than at the next tick."""
        self._wake.set()

    async def hand_over(self, chat_id: int, method: str, params: dict[str, Any]) -> None:
        """Queue a reply its handler could not send (the chat's flood wait was too long):
        it goes out in the chat's order once the chat may be written to (bot/telegram/flood.py)."""
        async with self._sessions() as session, session.begin():
            row = OutboxMessage(dedup_key=dedup_key("reply", uuid.uuid4().hex),
                                chat_id=chat_id, method=method, params=params, purpose="reply")
            session.add(row)
            await session.flush()
            self._handed[row.id] = chat_id
        self.wake()

    def holding(self, chat_id: int) -> bool:
        """A reply handed over for this chat is still on its way: later replies to the chat
        follow it through here, so they cannot overtake it."""
        return chat_id in self._handed.values()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="wenming-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            # The loop finishes its pass and leaves: cancelling it inside a database call
            # would cut the connection's reset on the way back to the pool (SQLAlchemy logs
            # that as an error). Cancelled only if the pass does not end in time.
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, STOP_GRACE)
            self._task = None
        # Let sends already accepted by Telegram be recorded; cancel the rest (they stay
        # pending and go out after the restart).
        pending = list(self._in_flight.values())
        if pending:
            _done, still = await asyncio.wait(pending, timeout=5)
            for task in still:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*still, return_exceptions=True)
        await self.release_claims()

    async def release_claims(self) -> None:
        """Give back this replica's claims on rows not sent (another replica or the next start
        takes them at once rather than when the lease runs out), and the shared budget's
        tokens they took: they were never spent on a send."""
        # Rows are locked in id order, as every writer that locks several takes them
        # (refresh_lists' list rows): two such transactions cannot deadlock.
        mine = (select(OutboxMessage.id)
                .where(OutboxMessage.claimed_by == self.replica,
                       OutboxMessage.status == "pending")
                .order_by(OutboxMessage.id).with_for_update())
        async with self._sessions() as session, session.begin():
            released = (await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(mine))
                .values(claimed_by=None, claimed_until=None)
                .returning(OutboxMessage.id)
                .execution_options(synchronize_session=False))).all()
            if released and self._shares_budget(session):
                budget = await self._budget(session, utcnow())
                budget.tokens = min(BUDGET_BURST, budget.tokens + len(released))

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._keep_claims()
                await self._launch(self._max_in_flight - len(self._in_flight))
            except Exception:
                log.exception("outbox pass failed")
            if self._stopping:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._next_wait())

    def _next_wait(self) -> float:
        loop_now = asyncio.get_running_loop().time()
        soonest = min((at for at in self._ready_at.values() if at > loop_now), default=None)
        if self._budget_wait > 0:
            soonest = min(soonest or math.inf, loop_now + self._budget_wait)
        if soonest is None:
            return self._idle_interval
        return max(0.01, min(self._idle_interval, soonest - loop_now))

    async def drain_once(self, limit: int = 50) -> int:
        """Send the oldest due row of each ready chat (up to `limit`) and wait for them;
        returns how many were delivered."""
        launched = await self._launch(limit)
        results = await asyncio.gather(*launched)
        return sum(1 for ok in results if ok)

    # ---- choosing what to send -----------------------------------------------------------

    async def _launch(self, capacity: int) -> list[asyncio.Task[bool]]:
        if capacity <= 0:
            return []
        loop_now = asyncio.get_running_loop().time()
        for chat in [c for c, at in self._ready_at.items() if at <= loop_now]:
            del self._ready_at[chat]
        busy = set(self._in_flight) | set(self._ready_at)
        rows = await self._claim(capacity, busy)
        launched = []
        for row in rows:
            task = asyncio.create_task(self._deliver(row), name=f"outbox-{row.id}")
            self._in_flight[row.chat_id] = task
            self._in_flight_rows[row.chat_id] = row.id
            launched.append(task)
        return launched

    async def _claim(self, limit: int, busy: set[int]) -> list[_Row]:
        """Claim the oldest pending row of each chat not in `busy` (up to `limit`), when it is
        due, its chat's pace allows, and no row of its chat is under a live claim."""
        now = utcnow()
        earlier, claimed = aliased(OutboxMessage), aliased(OutboxMessage)
        heads = (
            select(OutboxMessage.id)
            .where(OutboxMessage.status == "pending",
                   or_(OutboxMessage.not_before.is_(None),
                       OutboxMessage.not_before <= self._clock()),
                   # On the row itself, not only in the subquery below: a row locked after
                   # another replica's claim committed is re-checked on its new version, but
                   # a subquery still reads this statement's snapshot (READ COMMITTED).
                   or_(OutboxMessage.claimed_until.is_(None),
                       OutboxMessage.claimed_until <= now),
                   ~exists().where(earlier.chat_id == OutboxMessage.chat_id,
                                   earlier.status == "pending", earlier.id < OutboxMessage.id),
                   ~exists().where(claimed.chat_id == OutboxMessage.chat_id,
                                   claimed.status == "pending", claimed.claimed_until > now),
                   ~exists().where(OutboxChat.chat_id == OutboxMessage.chat_id,
                                   OutboxChat.ready_at > now))
            .order_by(OutboxMessage.id)
            .with_for_update(skip_locked=True, of=OutboxMessage)
        )
        if busy:
            heads = heads.where(OutboxMessage.chat_id.not_in(busy))
        async with self._sessions() as session, session.begin():
            shared = self._shares_budget(session)
            if shared:
                budget = await self._budget(session, now)
                limit = min(limit, int(budget.tokens))
                if limit <= 0:
                    self._budget_wait = (1.0 - budget.tokens) / BUDGET_RATE
                    return []
            candidates = heads.limit(limit).cte("heads")
            rows = (await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(select(candidates.c.id)))
                .values(claimed_by=self.replica,
                        claimed_until=now + timedelta(seconds=self._lease))
                .returning(OutboxMessage.id, OutboxMessage.chat_id, OutboxMessage.method,
                           OutboxMessage.params)
                .execution_options(synchronize_session=False))).all()
            if shared:
                budget.tokens -= len(rows)
                self._budget_wait = 0.0
        return sorted((_Row(r.id, r.chat_id, r.method, dict(r.params)) for r in rows),
                      key=lambda r: r.id)

    def _shares_budget(self, session: AsyncSession) -> bool:
        if self._shared_budget is not None:
            return self._shared_budget
        return session.get_bind().dialect.name == "postgresql"

    @staticmethod
    async def _budget(session: AsyncSession, now: datetime) -> SendBudget:
        """The shared token bucket, locked for this claim's transaction and refilled."""
        budget = await session.scalar(
            select(SendBudget).where(SendBudget.id == 1).with_for_update())
        if budget is None:  # the migration adds it; a table emptied by hand gets it back
            budget = SendBudget(id=1, tokens=0.0, refilled_at=now)
            session.add(budget)
        # A replica that read its clock before waiting for this row's lock may come after one
        # that read a later time: refilled_at never goes back, or the time between the two
        # readings would be refilled twice (57 sends in two seconds where 55 were allowed).
        elapsed = max((now - budget.refilled_at).total_seconds(), 0.0)
        budget.tokens = min(BUDGET_BURST, budget.tokens + elapsed * BUDGET_RATE)
        budget.refilled_at = max(budget.refilled_at, now)
        return budget

    async def _keep_claims(self) -> None:
        """Renew the claims of rows in flight (a slow upload, a wait in the rate limiter)
        before they run out, and forget handed-over replies another replica delivered."""
        loop_now = asyncio.get_running_loop().time()
        if self._in_flight_rows and loop_now - self._renewed_at >= self._lease / 3:
            self._renewed_at = loop_now
            # A row another transaction holds (a list being ticked) is skipped, not waited
            # for: the next renewal, a third of a lease later, takes it. In id order, and
            # never waiting, the renewal can deadlock with no one.
            renewed = (select(OutboxMessage.id)
                       .where(OutboxMessage.id.in_(list(self._in_flight_rows.values())),
                              OutboxMessage.claimed_by == self.replica,
                              OutboxMessage.claimed_until.is_not(None),  # not recorded yet
                              OutboxMessage.status == "pending")
                       .order_by(OutboxMessage.id).with_for_update(skip_locked=True))
            async with self._sessions() as session, session.begin():
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(renewed))
                    .values(claimed_until=utcnow() + timedelta(seconds=self._lease))
                    .execution_options(synchronize_session=False))
        if self._handed:
            async with self._sessions() as session:
                pending = set((await session.scalars(
                    select(OutboxMessage.id).where(OutboxMessage.id.in_(list(self._handed)),
                                                   OutboxMessage.status == "pending"))).all())
            for row_id in [r for r in self._handed if r not in pending]:
                self._handed.pop(row_id, None)

    # ---- sending one row -----------------------------------------------------------------

    async def _deliver(self, row: _Row) -> bool:
        loop = asyncio.get_running_loop()
        try:
            outcome = await self._send(row)
            if outcome.delivered:  # out: later replies to the chat may go directly
                self._handed.pop(row.id, None)
            pause = max(self._chat_interval, outcome.retry_after or 0.0)
            self._ready_at[row.chat_id] = loop.time() + pause
            ready_in = await self._record(row, outcome)
            self._ready_at[row.chat_id] = loop.time() + ready_in
            if row.id in self._handed and (outcome.final or not await self._pending(row.id)):
                # Sent or failed (delivered, refused, out of attempts, its chat gone): it no
                # longer holds its chat's later replies.
                self._handed.pop(row.id, None)
            return outcome.delivered
        except Exception:
            log.exception("outbox row %s could not be handled", row.id)
            self._ready_at[row.chat_id] = loop.time() + self._idle_interval
            return False
        finally:
            self._in_flight.pop(row.chat_id, None)
            self._in_flight_rows.pop(row.chat_id, None)
            self._wake.set()

    async def _pending(self, row_id: int) -> bool:
        async with self._sessions() as session:
            status = await session.scalar(
                select(OutboxMessage.status).where(OutboxMessage.id == row_id))
        return status == "pending"

    async def _send(self, row: _Row) -> _Outcome:
        try:
            kwargs = await self._materialize(row.params)
        except (OSError, ValueError) as exc:
            log.error("outbox row %s cannot be sent: %s", row.id, exc)
            return _Outcome(error=str(exc), final=True)
        try:
            result = await _call(self._bot, row.method, row.chat_id, kwargs)
            if isinstance(result, Message) and "file" in row.params:
                sent = result.photo[-1] if result.photo else result.document
                if sent is not None:
                    self._file_ids[_file_key(row.params)] = sent.file_id
        except RetryAfter as exc:
            return _Outcome(retry_after=retry_seconds(exc), error=str(exc))
        except ChatMigrated as exc:
            return _Outcome(migrated_to=exc.new_chat_id, error=str(exc))
        except Forbidden as exc:
            log.warning("chat %s refused the bot: %s", row.chat_id, exc)
            return _Outcome(forbidden=True, error=str(exc), final=True)
        except BadRequest as exc:
            if "message is not modified" in str(exc).lower():
                # An edit to what the message already says (a card edited directly meanwhile,
                # a keyboard already taken away): nothing to change, so it is done.
                log.debug("outbox row %s changed nothing: %s", row.id, exc)
                return _Outcome(delivered=True)
            gone = "chat not found" in str(exc).lower()
            log.log(logging.WARNING if gone else logging.ERROR,
                    "outbox message to %s rejected: %s", row.chat_id, exc)
            return _Outcome(error=str(exc), final=True, forbidden=gone)
        except NetworkError as exc:
            return _Outcome(error=str(exc))
        except (TypeError, ValueError) as exc:  # a row no Bot method can take
            log.error("outbox row %s is malformed: %s", row.id, exc)
            return _Outcome(error=str(exc), final=True)
        return _Outcome(delivered=True, message=result if isinstance(result, Message) else None)

    async def _materialize(self, params: dict[str, Any]) -> dict[str, Any]:
        """Stored params to Bot keyword arguments; a stored file (a bulletin) is opened now."""
        kwargs = dict(params)
        rel = kwargs.pop("file", None)
        if rel is None:
            return kwargs
        param = str(kwargs.pop("file_param", "photo"))
        filename = str(kwargs.pop("filename", Path(str(rel)).name))
        lines = kwargs.pop("stamp", None)
        known = self._file_ids.get(_file_key(params))
        if known is not None:
            kwargs[param] = known
            return kwargs
        if self._media_dir is None:
            raise ValueError("the sender has no media directory for stored files")
        root = self._media_dir.resolve()
        path = (root / str(rel)).resolve()
        if root not in path.parents:
            raise ValueError(f"stored file {rel!r} is outside the media directory")
        data = await asyncio.to_thread(path.read_bytes)
        if isinstance(lines, list) and lines:
            # A stamped copy (bot/media/stamp.py) of the stored file, which stays bare.
            try:
                data = await run_image_job(stamp, data, [str(x) for x in lines],
                                           font=self._cjk_font)
            except ImageRejected as exc:
                raise ValueError(f"stored file {rel!r} cannot be stamped: {exc}") from exc
        kwargs[param] = InputFile(data, filename=filename)
        if param == "document":
            kwargs["filename"] = filename
        return kwargs

    # ---- recording the outcome -----------------------------------------------------------

    async def _record(self, row: _Row, outcome: _Outcome) -> float:
        """Record the outcome, release the claim, and move the chat's shared pace; returns
        the seconds until the chat may be written to again."""
        async with self._sessions() as session, session.begin():
            ready_in = await self._pace(session, row.chat_id, outcome)
            # Locked, so a rewrite of the row (refresh_lists locks it too) is either seen
            # here, and followed by an edit, or comes after and sees the row sent.
            stored = await session.get(OutboxMessage, row.id, with_for_update=True)
            if stored is None or stored.status != "pending":
                return ready_in
            if not outcome.delivered and stored.claimed_by != self.replica:
                return ready_in  # our lease ran out and another replica has the row now
            stored.claimed_until = None  # released; claimed_by stays: who sent it
            await self._apply(session, stored, outcome, sent_params=row.params)
            return ready_in

    async def _pace(self, session: AsyncSession, chat_id: int, outcome: _Outcome) -> float:
        """Move the chat's pace shared by all replicas (`outbox_chats`): 1 s per chat, a 429's
        retry_after, and a group's 20 per minute counted over every replica's sends."""
        now = utcnow()
        pace = await session.get(OutboxChat, chat_id)
        if pace is None:
            pace = OutboxChat(chat_id=chat_id, ready_at=now, recent=[])
            session.add(pace)
        ready = now + timedelta(seconds=max(self._chat_interval, outcome.retry_after or 0.0))
        if chat_id < 0 and self._group_per_minute > 0:
            window = now - timedelta(seconds=60)
            recent = [at for at in (datetime.fromisoformat(a) for a in pace.recent or [])
                      if at > window]
            if outcome.delivered or outcome.retry_after is None:
                recent.append(now)  # a request Telegram counted
            recent = recent[-self._group_per_minute:]
            if len(recent) >= self._group_per_minute:
                ready = max(ready, recent[0] + timedelta(seconds=60))
            pace.recent = [at.isoformat() for at in recent]
        pace.ready_at = max(ready, pace.ready_at)
        return max((pace.ready_at - now).total_seconds(), 0.0)

    async def _apply(self, session: AsyncSession, stored: OutboxMessage,
                     outcome: _Outcome, *, sent_params: dict[str, Any]) -> None:
        now = self._clock()
        stored.attempts += 1
        if outcome.delivered:
            stored.status, stored.sent_at, stored.last_error = "sent", now, None
            if outcome.message is not None:
                stored.sent_message_id = outcome.message.message_id
                hook = self._sent_hooks.get(stored.purpose or "")
                if hook is not None and stored.ref_id is not None:
                    await hook(session, stored, outcome.message.chat_id,
                               outcome.message.message_id)
                await _follow_rewrite(session, stored, sent_params)
            return
        stored.last_error = outcome.error
        if outcome.migrated_to is not None:
            await self._migrate(session, stored, outcome.migrated_to, now)
            return
        if outcome.forbidden:
            await self._chat_gone(session, stored, now)
            return
        if outcome.retry_after is not None:
            # Flood control is not the message's fault: it never fails for it.
            stored.attempts -= 1
            stored.not_before = now + timedelta(seconds=outcome.retry_after)
            return
        if outcome.final or stored.attempts >= MAX_ATTEMPTS:
            stored.status = "failed"
            return
        delay = min(2.0 ** stored.attempts, MAX_BACKOFF)
        stored.not_before = now + timedelta(seconds=delay)

    async def _chat_gone(self, session: AsyncSession, row: OutboxMessage, now: datetime) -> None:
        """The bot cannot write to this chat any more: fail what waits for it; if it was a
        bound group, deactivate it and tell the admins."""
        row.status = "failed"
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.chat_id == row.chat_id, OutboxMessage.status == "pending",
                   OutboxMessage.id != row.id)
            .values(status="failed", last_error=row.last_error)
            .execution_options(synchronize_session=False))
        for handed in [r for r, chat in self._handed.items() if chat == row.chat_id]:
            del self._handed[handed]  # failed with it: they hold the chat no more
        group = await session.get(GroupBinding, row.chat_id)
        if group is None or not group.active:
            return
        group.active = False
        unit = await session.get(Unit, group.unit_id)
        await self._tell_admins(session, ("group_lost", row.chat_id, row.id),
                                "scheduler.admin.group_lost", title=group.title,
                                chat=row.chat_id, unit=unit.name_zh if unit else "")
        log.warning("group %s deactivated: %s", row.chat_id, row.last_error)

    async def _migrate(
        self, session: AsyncSession, row: OutboxMessage, new_chat: int, now: datetime
    ) -> None:
        old = await session.get(GroupBinding, row.chat_id)
        if old is not None and await session.get(GroupBinding, new_chat) is not None:
            row.status = "failed"
            row.last_error = f"group migrated to {new_chat}, which is bound already"
            return
        old_chat = row.chat_id
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.chat_id == old_chat, OutboxMessage.status == "pending")
            .values(chat_id=new_chat).execution_options(synchronize_session=False))
        row.chat_id = new_chat
        row.not_before = None
        if old is None:
            return
        session.add(GroupBinding(chat_id=new_chat, unit_id=old.unit_id, title=old.title,
                                 active=old.active, bound_by=old.bound_by,
                                 bound_at=old.bound_at))
        await session.delete(old)
        await self._tell_admins(session, ("group_moved", old_chat, new_chat),
                                "scheduler.admin.group_moved", title=old.title, chat=new_chat)

    async def _tell_admins(self, session: AsyncSession, about: tuple[str, int, int],
                           message: str, **values: object) -> None:
        """Tell the admins (`about`: the kind of dedup key and its parts but the admin's chat)."""
        outbox = OutboxRepository(session)
        admins = (await session.scalars(
            select(Person).where(Person.role == "admin", Person.blocked.is_(False))
            .order_by(Person.id))).all()
        targets = [(a.id, normalize_language(a.language or a.telegram_language,
                                             self._language)) for a in admins]
        if self._admin_chat_id is not None:
            targets.append((self._admin_chat_id, self._language))
        for chat, lang in dict(targets).items():
            await outbox.enqueue(dedup_key(*about, chat), chat, "sendMessage",
                                 {"text": t(lang, message, **values), "parse_mode": "HTML"},
                                 purpose="admin_notice")
        self.wake()


def _call(bot: Bot, method: str, chat_id: int, params: dict[str, Any]) -> Awaitable[Any]:
    """Call the Bot method named in camelCase (as the Bot API names it) with stored params."""
    kwargs = dict(params)
    markup = kwargs.get("reply_markup")
    if isinstance(markup, dict):
        kwargs["reply_markup"] = _markup(markup, bot)
    reply_to = kwargs.get("reply_parameters")
    if isinstance(reply_to, dict):
        kwargs["reply_parameters"] = ReplyParameters.de_json(reply_to, bot)
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", method).lower()
    function = getattr(bot, name, None)
    if function is None:
        raise ValueError(f"outbox method {method!r} is not a Bot method")
    return function(chat_id=chat_id, **kwargs)  # type: ignore[no-any-return]


def _markup(
    markup: dict[str, Any], bot: Bot
) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply:
    """A stored reply_markup as the kind of keyboard it is (a handed-over reply may carry a
    reply keyboard, e.g. the location button)."""
    if "keyboard" in markup:
        return ReplyKeyboardMarkup.de_json(markup, bot)
    if markup.get("remove_keyboard"):
        return ReplyKeyboardRemove.de_json(markup, bot)
    if markup.get("force_reply"):
        return ForceReply.de_json(markup, bot)
    return InlineKeyboardMarkup.de_json(markup, bot)


@dataclass(frozen=True)
class _Outcome:
    delivered: bool = False
    message: Message | None = None
    retry_after: float | None = None
    error: str | None = None
    forbidden: bool = False
    final: bool = False
    migrated_to: int | None = None


def _file_key(params: Mapping[str, Any]) -> str:
    """What a stored file's Telegram file_id is remembered by: its path, and its stamp (a
    stamped copy is another file)."""
    lines = params.get("stamp")
    rel = str(params["file"])
    return rel if not lines else rel + "\n" + "\n".join(str(x) for x in lines)
