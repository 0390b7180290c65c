"""A round-robin load balancer for webhook replicas, as an operator would put in front of them
(the tests and bench/inspection.py's `--replicas`): each post goes to the next replica; one
that cannot be reached is skipped (its health check would have failed); one that dies in the
middle of a request answers 502, and Telegram sends the update again."""

from __future__ import annotations

import itertools
import socket
from collections import Counter

import aiohttp
from aiohttp import web


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RoundRobin:
    def __init__(self, path: str, ports: list[int]) -> None:
        self.path, self.ports = path, ports
        self.port = free_port()
        self.answered: Counter[int] = Counter()  # replica port -> 2xx answers
        self._turn = itertools.cycle(range(len(ports)))
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=70))
        app = web.Application()
        app.router.add_post(self.path, self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items()
                   if k.lower().startswith(("x-telegram", "content-type"))}
        first = next(self._turn)
        for i in range(len(self.ports)):
            port = self.ports[(first + i) % len(self.ports)]
            try:
                async with self._session.post(f"http://127.0.0.1:{port}{self.path}",
                                              data=body, headers=headers) as resp:
                    text = await resp.read()
                    if resp.status < 300:
                        self.answered[port] += 1
                    return web.Response(status=resp.status, body=text)
            except aiohttp.ClientConnectorError:
                continue  # that replica is down: the next one
            except aiohttp.ClientError:
                return web.Response(status=502)  # it died mid-request
        return web.Response(status=502)
