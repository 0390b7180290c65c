"""Drains the outbox: messages decided inside transactions, delivered after them.

A row is marked sent in its own short transaction right after Telegram accepted it. Telegram
has no idempotency key for sends, so a crash in the milliseconds between the two can repeat one
message; everything else (network errors, 429s, restarts) delivers each row exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from db.models import GroupBinding, OutboxMessage
from db.repositories import OutboxRepository

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8

# purpose -> what to record once a message with that purpose is delivered (in the same
# transaction that marks the row sent), e.g. "task_card": remember the card's message id.
SentHook = Callable[[AsyncSession, int, Message], Awaitable[None]]
SENT_HOOKS: dict[str, SentHook] = {}


def on_sent(purpose: str) -> Callable[[SentHook], SentHook]:
    """Register what happens when a message queued with `purpose` has been delivered."""

    def register(hook: SentHook) -> SentHook:
        SENT_HOOKS[purpose] = hook
        return hook

    return register


class OutboxSender:
    def __init__(
        self,
        bot: Bot,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        *,
        idle_interval: float = 2.0,
    ) -> None:
        self._bot = bot
        self._sessions = sessions
        self._clock = clock
        self._idle_interval = idle_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Something was queued: look now rather than at the next tick."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="wenming-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.drain_once()
            except Exception:
                log.exception("outbox pass failed")
                sent = 0
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_interval)
                self._wake.clear()

    async def drain_once(self, limit: int = 50) -> int:
        """Send what is due; returns how many were delivered."""
        async with self._sessions() as session:
            due = await OutboxRepository(session).due(self._clock(), limit)
            rows = [(r.id, r.chat_id, r.method, dict(r.params)) for r in due]
        delivered = 0
        for row_id, chat_id, method, params in rows:
            outcome = await self._send(chat_id, method, params)
            async with self._sessions() as session, session.begin():
                row = await session.get(OutboxMessage, row_id)
                if row is None or row.status != "pending":
                    continue
                self._record(row, outcome)
                hook = SENT_HOOKS.get(row.purpose or "")
                if outcome.message is not None and hook is not None and row.ref_id is not None:
                    await hook(session, row.ref_id, outcome.message)
                if outcome.forbidden:
                    group = await session.get(GroupBinding, chat_id)
                    if group is not None:
                        group.active = False
            if outcome.message is not None:
                delivered += 1
            if outcome.retry_after is not None:
                break  # flood control: everyone waits
        return delivered

    async def _send(self, chat_id: int, method: str, params: dict[str, Any]) -> _Outcome:
        try:
            result = await _call(self._bot, method, chat_id, params)
        except RetryAfter as exc:
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            return _Outcome(retry_after=seconds, error=str(exc))
        except Forbidden as exc:
            log.warning("chat %s refused the bot: %s", chat_id, exc)
            return _Outcome(forbidden=True, error=str(exc), final=True)
        except BadRequest as exc:
            log.error("outbox message to %s rejected: %s", chat_id, exc)
            return _Outcome(error=str(exc), final=True)
        except NetworkError as exc:
            return _Outcome(error=str(exc))
        return _Outcome(message=result if isinstance(result, Message) else None)

    def _record(self, row: OutboxMessage, outcome: _Outcome) -> None:
        now = self._clock()
        row.attempts += 1
        if outcome.message is not None:
            row.status, row.sent_at = "sent", now
            row.sent_message_id = outcome.message.message_id
            row.last_error = None
            return
        row.last_error = outcome.error
        if outcome.final or row.attempts >= MAX_ATTEMPTS:
            row.status = "failed"
            return
        delay = outcome.retry_after if outcome.retry_after is not None else min(
            2.0 ** row.attempts, 300.0)
        row.not_before = now + timedelta(seconds=delay)


def _call(bot: Bot, method: str, chat_id: int, params: dict[str, Any]) -> Awaitable[Any]:
    """Call the Bot method named in camelCase (as the Bot API names it) with stored params."""
    kwargs = dict(params)
    markup = kwargs.get("reply_markup")
    if isinstance(markup, dict):
        kwargs["reply_markup"] = InlineKeyboardMarkup.de_json(markup, bot)
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", method).lower()
    function = getattr(bot, name, None)
    if function is None:
        raise ValueError(f"outbox method {method!r} is not a Bot method")
    return function(chat_id=chat_id, **kwargs)  # type: ignore[no-any-return]


class _Outcome:
    __slots__ = ("error", "final", "forbidden", "message", "retry_after")

    def __init__(
        self,
        message: Message | None = None,
        retry_after: float | None = None,
        error: str | None = None,
        forbidden: bool = False,
        final: bool = False,
    ) -> None:
        self.message = message
        self.retry_after = retry_after
        self.error = error
        self.forbidden = forbidden
        self.final = final
