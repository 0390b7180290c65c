"""The Bot API transport: python-telegram-bot's request interface over aiohttp.

PTB's default transport (`HTTPXRequest`: httpx, httpcore, anyio) costs about 0.45 ms of CPU per
request on an idle pool here, and more as the pool grows: before each request httpcore checks
every idle keep-alive connection's socket. A verdict press makes two requests
(answerCallbackQuery, editMessageText), so the transport was a third of the bot's CPU under
load (bench/inspection.py, docs/ARCHITECTURE.md §11). aiohttp's pool hands out a connection
without scanning, and its HTTP parser is compiled: the same requests cost a tenth.

The wire format is HTTPXRequest's: form fields (each value JSON-encoded by PTB) as
application/x-www-form-urlencoded, or multipart/form-data when files go up. Errors map the
same way: a timeout is `TimedOut`, any other transport failure `NetworkError`.
`WENMING_HTTP_TRANSPORT=httpx` switches back to PTB's own.
"""

from __future__ import annotations

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData

TRANSPORTS = ("aiohttp", "httpx")


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` on one aiohttp `ClientSession` (created in `initialize`)."""

    def __init__(
        self,
        connection_pool_size: int = 64,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
                # Nothing of the environment leaks in (proxies, .netrc): only what is configured.
                trust_env=False,
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

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
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        read = _given(read_timeout, self._read_timeout)
        write = _given(write_timeout,
                       self._media_write_timeout if files else self._write_timeout)
        connect = _given(connect_timeout, self._connect_timeout)
        pool = _given(pool_timeout, self._pool_timeout)
        timeout = aiohttp.ClientTimeout(
            # aiohttp's `connect` covers waiting for a pooled connection and opening one.
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=read,
            # No per-write timeout in aiohttp: bound the whole exchange instead.
            total=None if read is None or write is None or connect is None or pool is None
            else read + write + connect + pool,
        )
        body = _body(request_data)
        try:
            async with self._session.request(method, url, data=body, timeout=timeout) as resp:
                return resp.status, await resp.read()
        except TimeoutError as err:  # aiohttp's ServerTimeoutError is one too
            raise TimedOut from err
        except (aiohttp.ClientError, OSError) as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err


def build_request(transport: str, connection_pool_size: int,
                  read_timeout: float | None = 5.0) -> BaseRequest:
    """The configured transport, with PTB's default timeouts."""
    if transport == "httpx":
        return HTTPXRequest(connection_pool_size=connection_pool_size, read_timeout=read_timeout)
    if transport == "aiohttp":
        return AiohttpRequest(connection_pool_size=connection_pool_size, read_timeout=read_timeout)
    raise ValueError(f"unknown HTTP transport {transport!r}; expected one of {TRANSPORTS}")


def _given(value: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value


def _body(request_data: RequestData | None) -> aiohttp.FormData | None:
    if request_data is None:
        return None
    fields = request_data.json_parameters
    files = request_data.multipart_data
    if not fields and not files:
        return None
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    for name, (filename, content, mime) in files.items():  # bytes or a file object
        form.add_field(name, content, filename=filename, content_type=mime)
    return form
