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

from urllib.parse import urlsplit
from urllib.request import (  # type: ignore[attr-defined]  # not in typeshed
    getproxies_environment,
    proxy_bypass_environment,
)

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
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
                # The environment's proxy settings are read once per host (_proxy_for), not on
                # every request as trust_env would (a third of a millisecond each).
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
        # write_timeout is accepted for PTB's interface; aiohttp has no per-write timeout, and
        # an upload the server stops reading ends at sock_read, when no answer comes.
        read = _given(read_timeout, self._read_timeout)
        connect = _given(connect_timeout, self._connect_timeout)
        pool = _given(pool_timeout, self._pool_timeout)
        timeout = aiohttp.ClientTimeout(
            # aiohttp's `connect` covers waiting for a pooled connection and opening one.
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            # Like httpx: each read must make progress in time, however long the body; no
            # bound on the whole exchange (a 20 MB download on a slow line is fine).
            sock_read=read,
            total=None,
        )
        body = _body(request_data)
        try:
            async with self._session.request(method, url, data=body, timeout=timeout,
                                             proxy=self._proxy_for(url)) as resp:
                return resp.status, await resp.read()
        except TimeoutError as err:  # aiohttp's ServerTimeoutError is one too
            raise TimedOut from err
        except (aiohttp.ClientError, OSError) as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err


    def _proxy_for(self, url: str) -> str | None:
        """HTTP(S)_PROXY / ALL_PROXY unless NO_PROXY names the host, as httpx honours them."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key not in self._proxies:
            proxies = getproxies_environment()
            bypass = bool(proxy_bypass_environment(key[1], proxies))
            self._proxies[key] = None if bypass else (
                proxies.get(parts.scheme) or proxies.get("all"))
        return self._proxies[key]


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
    # Raw UTF-8 in names and file names (创文考评排名.png), as httpx sends them; aiohttp would
    # percent-encode them otherwise.
    form = aiohttp.FormData(quote_fields=False)
    for name, value in fields.items():
        form.add_field(name, value)
    for name, (filename, content, mime) in files.items():  # bytes or a file object
        form.add_field(name, content, filename=filename, content_type=mime)
    return form
