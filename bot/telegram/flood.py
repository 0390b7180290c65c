"""Telegram's flood control, chat by chat, at python-telegram-bot's rate-limiter seam.

A 429 (`RetryAfter`) names a chat's wait; nothing may be sent to that chat before it has passed,
whichever part of the bot sends (a handler's reply, the error handler's apology, the outbox).
`ChatDeadlines` holds those "not before" times for the whole process, and every bot of the
process carries a `ChatLimiter` over the same deadlines:

* **A handler's bot** (`max_wait` a few seconds): a send or edit to a chat whose deadline lies
  ahead waits for it, and one that meets a 429 waits `retry_after` and is sent again. Only that
  chat's own update waits; other chats go on (PTB's AIORateLimiter would pause every chat).
  When the wait would exceed `max_wait`, the request is handed to the durable outbox
  (`handover`), which delivers it once the chat is free, and the send raises `ReplyQueued`: a
  normal outcome that handlers carry on after (handlers/common.py `queued`), so the rest of the
  handler still runs. While it waits there, later requests to the chat follow it (order is
  kept). A request the outbox cannot carry (an upload, an album, editMessageMedia) is never
  dropped and never overtakes: it waits for the chat's deadline and for the queued replies
  ahead of it, up to `upload_max_wait`.
* **The outbox's bot** (`max_wait` 0, plus Telegram's 30/s overall and 20/min per group): a row
  for a chat that is not free yet fails at once with `RetryAfter`, without a request, so the
  sender reschedules it and serves other chats meanwhile.

Which requests count: every send*, copy and forward (sendChatAction excepted) and every
editMessage*, both being what Telegram (and the sandbox) answer with 429 per chat. One deadline
covers both: a chat told to wait is not written to in any way until the wait is over.
answerCallbackQuery, deletes and reads name no chat limit and pass straight through.
"""

from __future__ import annotations

import asyncio
import logging
import math
import warnings
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any, Protocol

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

log = logging.getLogger(__name__)

# A handler waits at most this long for its chat (then the reply goes to the outbox). Only that
# chat's own update waits (a chat's updates are handled in order anyway) and other chats go on,
# so ordinary waits (a few seconds in a private chat, up to ~30 s in a busy group) are waited
# out in the handler: its messages keep their ids and order. Longer ones go to the outbox.
REPLY_MAX_WAIT = 30.0
# An upload cannot go to the outbox: it waits longer rather than being lost.
UPLOAD_MAX_WAIT = 120.0
# How often a request the outbox cannot carry looks whether the replies queued ahead are out.
HOLDING_POLL = 0.2

# What the outbox can carry for a handler (bot/outbox._call rebuilds its keyboards); an
# InputMedia (editMessageMedia, sendMediaGroup) or an upload is not stored.
HANDOVER = frozenset({"sendMessage", "sendPhoto", "sendDocument", "editMessageText",
                      "editMessageCaption", "editMessageReplyMarkup"})



class Handover(Protocol):
    """Where a handler's request goes when its chat must wait too long: the outbox."""

    async def hand_over(self, chat_id: int, method: str, params: dict[str, Any]) -> None:
        """Queue the request (JSON parameters without chat_id) for the chat."""

    def holding(self, chat_id: int) -> bool:
        """Whether a request handed over for the chat is still waiting to go out."""


def retry_seconds(exc: RetryAfter) -> float:
    """RetryAfter's wait in seconds (PTB 22 gives an int or a timedelta)."""
    with warnings.catch_warnings():  # PTB 22.2+ warns that the int becomes a timedelta
        warnings.simplefilter("ignore")
        wait = exc.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


class ReplyQueued(RetryAfter):
    """The chat's flood wait is longer than a handler may wait: the request went to the outbox,
    which sends it once the chat may be written to."""


class ChatDeadlines:
    """When each chat may be written to again (event-loop time); one per process."""

    def __init__(self) -> None:
        self._until: dict[int, float] = {}

    def remaining(self, chat_id: int) -> float:
        until = self._until.get(chat_id)
        if until is None:
            return 0.0
        left = until - asyncio.get_running_loop().time()
        if left <= 0:
            del self._until[chat_id]
            return 0.0
        return left

    def hold(self, chat_id: int, seconds: float) -> None:
        """The chat answered 429: nothing goes to it for `seconds` from now."""
        until = asyncio.get_running_loop().time() + seconds
        self._until[chat_id] = max(until, self._until.get(chat_id, 0.0))


def limited_chat(endpoint: str, data: dict[str, Any]) -> int | None:
    """The chat a request is charged to by flood control, or None if it is not limited."""
    if endpoint == "sendChatAction" or not endpoint.startswith(
            ("send", "copyMessage", "forwardMessage", "editMessage")):
        return None
    chat = data.get("chat_id")
    if isinstance(chat, int):
        return chat
    if isinstance(chat, str) and chat.lstrip("-").isdigit():
        return int(chat)
    return None


def storable(endpoint: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The request's parameters as JSON for an outbox row, or None when the outbox cannot
    carry it (an upload, a kind of request it does not rebuild)."""
    if endpoint not in HANDOVER:
        return None
    request = RequestData([RequestParameter.from_input(k, v) for k, v in data.items()
                           if k != "chat_id"])
    if request.contains_files:
        return None
    return dict(request.parameters)


class ChatLimiter(BaseRateLimiter[None]):
    """Honours each chat's `retry_after` (see the module's docstring)."""

    def __init__(
        self,
        deadlines: ChatDeadlines,
        *,
        max_wait: float,
        handover: Handover | None = None,
        upload_max_wait: float | None = None,
        overall_per_second: float | None = None,
        group_per_minute: int | None = None,
    ) -> None:
        self.deadlines = deadlines
        self.max_wait = max_wait
        self.handover = handover
        # How long a request the outbox cannot carry waits for its chat (default: max_wait).
        self.upload_max_wait = max_wait if upload_max_wait is None else upload_max_wait
        self._overall = (AsyncLimiter(overall_per_second, 1)
                         if overall_per_second else None)
        self._group_per_minute = group_per_minute
        self._groups: dict[int, AsyncLimiter] = {}

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat = limited_chat(endpoint, data)
        if chat is None:
            return await callback(*args, **kwargs)
        waited = 0.0
        if self.handover is not None and self.handover.holding(chat):
            # An earlier reply to this chat waits in the outbox: this one goes behind it.
            params, bound = self._stored(endpoint, data)
            if params is not None:
                await self._hand_over(chat, endpoint, params)
            waited = await self._follow_outbox(chat, bound)
        while True:
            wait = self.deadlines.remaining(chat)
            if wait > 0:
                # Only a request that must wait is serialised for the outbox (a press's edit
                # that goes straight out is not encoded twice).
                params, bound = self._stored(endpoint, data)
                if waited + wait > bound:
                    if params is not None:
                        await self._hand_over(chat, endpoint, params)
                    raise RetryAfter(timedelta(seconds=math.ceil(wait)))
                await asyncio.sleep(wait)
                waited += wait
                continue
            try:
                async with AsyncExitStack() as stack:
                    if chat < 0 and self._group_per_minute:
                        await stack.enter_async_context(self._group(chat))
                    if self._overall is not None:
                        await stack.enter_async_context(self._overall)
                    return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = max(retry_seconds(exc), 0.1)  # never a busy loop on a "0"
                self.deadlines.hold(chat, seconds)
                log.info("flood control: chat %s waits %.0f s (%s)", chat, seconds, endpoint)

    def _stored(self, endpoint: str, data: dict[str, Any]) -> tuple[dict[str, Any] | None, float]:
        """The request as an outbox row (None when the outbox cannot carry it), and how long
        it may wait for its chat: replies the outbox can carry wait `max_wait`, others (uploads)
        `upload_max_wait`."""
        params = storable(endpoint, data) if self.handover is not None else None
        return params, self.max_wait if params is not None else self.upload_max_wait

    async def _follow_outbox(self, chat: int, bound: float) -> float:
        """A request the outbox cannot carry waits until the replies queued for its chat are
        out (so it does not overtake them), at most `bound` seconds; returns the time waited."""
        assert self.handover is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        while self.handover.holding(chat):
            waited = loop.time() - started
            if waited >= bound:
                raise RetryAfter(timedelta(seconds=math.ceil(
                    max(self.deadlines.remaining(chat), 1.0))))
            await asyncio.sleep(HOLDING_POLL)
        return loop.time() - started

    def _group(self, chat: int) -> AsyncLimiter:
        limiter = self._groups.get(chat)
        if limiter is None:
            assert self._group_per_minute
            limiter = self._groups[chat] = AsyncLimiter(self._group_per_minute, 60)
        return limiter

    async def _hand_over(self, chat: int, endpoint: str, params: dict[str, Any]) -> None:
        """Queue the request (its stored parameters) in the outbox and end with ReplyQueued."""
        assert self.handover is not None
        await self.handover.hand_over(chat, endpoint, params)
        wait = self.deadlines.remaining(chat)
        log.info("flood control: %s to chat %s goes through the outbox (%.0f s)", endpoint,
                 chat, wait)
        raise ReplyQueued(timedelta(seconds=math.ceil(wait)))
