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

Rows are claimed in memory (one process drains the outbox); two bot processes on one database
would need a claim column.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
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

from bot.render.i18n import normalize_language, t
from bot.telegram.flood import ChatDeadlines, ChatLimiter, retry_seconds
from db.models import GroupBinding, OutboxMessage, Person, Unit
from db.outbox_keys import dedup_key
from db.repositories import OutboxRepository

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 20
MAX_BACKOFF = 300.0

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
    ) -> None:
        self._bot = bot
        self._sent_hooks = dict(sent_hooks or {})
        self._sessions = sessions
        self._clock = clock
        self._idle_interval = idle_interval
        self._media_dir = Path(media_dir) if media_dir is not None else None
        self._chat_interval = chat_interval
        self._group_per_minute = group_per_minute
        self._group_sends: dict[int, deque[float]] = {}  # group -> loop times of recent sends
        # A stored file Telegram already has (the same bulletin to several groups): its file_id,
        # so it is uploaded once. Telegram's file_ids are persistent for this bot.
        self._file_ids: dict[str, str] = {}
        self._max_in_flight = max_in_flight
        self._admin_chat_id = admin_chat_id
        self._language = language
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: dict[int, asyncio.Task[bool]] = {}  # chat id -> its send
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
        self._task = asyncio.create_task(self._run(), name="wenming-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
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

    async def _run(self) -> None:
        while True:
            try:
                await self._launch(self._max_in_flight - len(self._in_flight))
            except Exception:
                log.exception("outbox pass failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._next_wait())

    def _next_wait(self) -> float:
        loop_now = asyncio.get_running_loop().time()
        soonest = min((at for at in self._ready_at.values() if at > loop_now), default=None)
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
        rows = await self._heads(capacity, busy)
        launched = []
        for row in rows:
            task = asyncio.create_task(self._deliver(row), name=f"outbox-{row.id}")
            self._in_flight[row.chat_id] = task
            launched.append(task)
        return launched

    async def _heads(self, limit: int, busy: set[int]) -> list[_Row]:
        """The oldest pending row of each chat not in `busy`, when it is due."""
        heads = (select(func.min(OutboxMessage.id))
                 .where(OutboxMessage.status == "pending")
                 .group_by(OutboxMessage.chat_id))
        stmt = (
            select(OutboxMessage.id, OutboxMessage.chat_id, OutboxMessage.method,
                   OutboxMessage.params)
            .where(OutboxMessage.id.in_(heads),
                   or_(OutboxMessage.not_before.is_(None),
                       OutboxMessage.not_before <= self._clock()))
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        if busy:
            stmt = stmt.where(OutboxMessage.chat_id.not_in(busy))
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        return [_Row(r.id, r.chat_id, r.method, dict(r.params)) for r in rows]

    # ---- sending one row -----------------------------------------------------------------

    async def _deliver(self, row: _Row) -> bool:
        loop = asyncio.get_running_loop()
        try:
            outcome = await self._send(row)
            if outcome.delivered:  # out: later replies to the chat may go directly
                self._handed.pop(row.id, None)
            pause = max(self._chat_interval, outcome.retry_after or 0.0)
            self._ready_at[row.chat_id] = max(loop.time() + pause, self._group_ready(row.chat_id))
            await self._record(row, outcome)
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
            self._wake.set()

    async def _pending(self, row_id: int) -> bool:
        async with self._sessions() as session:
            status = await session.scalar(
                select(OutboxMessage.status).where(OutboxMessage.id == row_id))
        return status == "pending"

    def _group_ready(self, chat_id: int) -> float:
        """Count a send to a group; when its 20-per-minute window lets the next one go.

        The rate limiter would hold a 21st message inside the call for up to 3 s, occupying
        a sending slot; pacing here keeps every slot for chats that can be sent to now."""
        if chat_id >= 0 or self._group_per_minute <= 0:
            return 0.0
        now = asyncio.get_running_loop().time()
        sends = self._group_sends.setdefault(chat_id, deque())
        sends.append(now)
        while sends and sends[0] <= now - 60:
            sends.popleft()
        if not sends:
            del self._group_sends[chat_id]
            return 0.0
        if len(sends) >= self._group_per_minute:
            return sends[-self._group_per_minute] + 60
        return 0.0

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
                    self._file_ids[str(row.params["file"])] = sent.file_id
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
        known = self._file_ids.get(str(rel))
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
        kwargs[param] = InputFile(data, filename=filename)
        if param == "document":
            kwargs["filename"] = filename
        return kwargs

    # ---- recording the outcome -----------------------------------------------------------

    async def _record(self, row: _Row, outcome: _Outcome) -> None:
        async with self._sessions() as session, session.begin():
            stored = await session.get(OutboxMessage, row.id)
            if stored is None or stored.status != "pending":
                return
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
