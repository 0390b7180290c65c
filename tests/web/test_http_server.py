"""The bot process's own HTTP server (issue 13): where it listens and its liveness route."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from bot.config import Settings, SettingsError
from tests.conftest import Harness


def test_listen_address_comes_from_the_environment() -> None:
    assert Settings.from_env({}).http_listen == ("127.0.0.1", 8080)
    assert Settings.from_env({"WENMING_HTTP_LISTEN": "0.0.0.0:9000"}).http_listen == (
        "0.0.0.0", 9000)
    assert Settings.from_env({"WENMING_HTTP_LISTEN": "[::]:8081"}).http_listen == ("::", 8081)
    assert Settings.from_env({"WENMING_HTTP_LISTEN": "off"}).http_listen is None
    for bad in ("8080", "host:", "host:port", "h:70000"):
        with pytest.raises(SettingsError, match="WENMING_HTTP_LISTEN"):
            Settings.from_env({"WENMING_HTTP_LISTEN": bad})


async def test_healthz_answers_while_the_bot_runs(harness: Harness) -> None:
    http = harness.bot.http  # type: ignore[attr-defined]
    assert http is not None and http.port != 0
    async with aiohttp.ClientSession() as session, session.get(f"{http.url}/healthz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok"}


async def test_a_taken_port_stops_the_start_with_what_to_do() -> None:
    from web.server import HttpServer

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = HttpServer("127.0.0.1", taken.getsockname()[1])
        with pytest.raises(OSError, match="WENMING_HTTP_LISTEN"):
            await server.start()
