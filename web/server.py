"""One HTTP server in the bot's process (aiohttp, the stack the Bot API transport and the sandbox
already use), in polling and in webhook mode alike. Routes are added by the composition root
(bot/app.py) before it starts; the server knows nothing of what they do."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiohttp import web

log = logging.getLogger(__name__)

# Telegram's updates are a few kilobytes; nothing this server accepts is larger than this.
MAX_BODY = 1024 * 1024


class HttpServer:
    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self.app = web.Application(client_max_size=MAX_BODY)
        self._runner: web.AppRunner | None = None

    def add_routes(self, routes: Iterable[web.AbstractRouteDef]) -> None:
        self.app.add_routes(list(routes))

    async def start(self) -> None:
        # access_log off: one line per health probe or webhook post would drown the events;
        # requests are counted in /metrics instead.
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(
                exc.errno, f"cannot listen on {self._host}:{self._port} ({exc.strerror}); "
                "set WENMING_HTTP_LISTEN to a free host:port, or off") from exc
        self._runner = runner
        log.info("HTTP server listening on http://%s:%d", self._host, self.port)

    @property
    def port(self) -> int:
        """The bound port (the one asked for, or the one the system chose for port 0)."""
        if self._runner is None or not self._runner.addresses:
            return self._port
        return int(self._runner.addresses[0][1])

    @property
    def url(self) -> str:
        host = self._host if ":" not in self._host else f"[{self._host}]"
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
