"""Every Bot API call, seen once: PTB's request interface wrapped around the transport.

Each of the app's bots (the handlers' bot with its getUpdates request, the outbox's bot) sends
through a `WatchedRequest`, so one place counts sends by result (metrics) and remembers when
the Bot API last answered (readiness). The wrapped transport is whichever is configured
(bot/telegram/transport.py, or PTB's httpx one)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from telegram._utils.types import ODVInput
from telegram.request import BaseRequest, RequestData

from bot.observability.metrics import Metrics

# 401 and 404 are Telegram refusing the token: the API is not usable, whatever it answered.
_TOKEN_REFUSED = (401, 404)


class BotApiWatch:
    """When the Bot API last answered this process (monotonic time), and the sends metric."""

    def __init__(self, metrics: Metrics | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._clock = clock
        self.last_answer: float | None = None

    def record(self, via: str, method: str, status: int | None) -> None:
        if status is not None and status < 500 and status not in _TOKEN_REFUSED:
            self.last_answer = self._clock()
        if self._metrics is not None:
            self._metrics.bot_api_answered(via, method, status)

    def silent_for(self) -> float | None:
        """Seconds since the last answer; None if there was none."""
        return None if self.last_answer is None else self._clock() - self.last_answer

    def wrap(self, request: BaseRequest, via: str) -> BaseRequest:
        return WatchedRequest(request, self, via)

    async def check(self, max_silence: float, probe: Callable[[], Awaitable[object]],
                    timeout: float = 3.0) -> str | None:
        """Readiness: None when the Bot API answered within `max_silence` seconds, else after
        asking it (`probe`, getMe: a webhook replica or a standby has no polls to go by);
        otherwise why not."""
        silent = self.silent_for()
        if silent is not None and silent <= max_silence:
            return None
        try:
            await asyncio.wait_for(probe(), timeout)
        except Exception as exc:  # any failure is the answer
            since = "never answered" if silent is None else f"no answer for {silent:.0f} s"
            return f"{since}; getMe failed: {type(exc).__name__}: {exc}"
        return None


class WatchedRequest(BaseRequest):
    """A BaseRequest that passes each call to `inner` and records its result."""

    def __init__(self, inner: BaseRequest, watch: BotApiWatch, via: str) -> None:
        self._inner = inner
        self._watch = watch
        self._via = via

    @property
    def read_timeout(self) -> float | None:
        return self._inner.read_timeout

    async def initialize(self) -> None:
        await self._inner.initialize()

    async def shutdown(self) -> None:
        await self._inner.shutdown()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        # The Bot API's methods are POSTed to .../bot<token>/<method>; a GET is a file download
        # (its path names the file: never a label).
        name = url.rsplit("/", 1)[-1] if method == "POST" else "file"
        try:
            status, body = await self._inner.do_request(
                url, method, request_data, read_timeout=read_timeout,
                write_timeout=write_timeout, connect_timeout=connect_timeout,
                pool_timeout=pool_timeout)
        except Exception:  # NetworkError, TimedOut; PTB makes anything else a NetworkError
            self._watch.record(self._via, name, None)
            raise
        self._watch.record(self._via, name, status)
        return status, body
