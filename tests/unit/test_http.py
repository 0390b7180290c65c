"""The aiohttp transport speaks to a real HTTP server the way PTB's httpx transport does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot, InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import HTTPXRequest, RequestData
from telegram.request._requestparameter import RequestParameter

from bot.telegram.transport import AiohttpRequest, build_request

Seen = list[dict[str, Any]]


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Seen]]:
    """Records what each request carried; /slow never answers in time."""
    seen: Seen = []

    async def record(request: web.Request) -> web.Response:
        form = await request.post()
        fields: dict[str, Any] = {}
        for name, value in form.items():
            if isinstance(value, web.FileField):
                fields[name] = (value.filename, value.content_type, value.file.read())
            else:
                fields[name] = value
        seen.append({"path": request.path, "type": request.content_type, "fields": fields,
                     "agent": request.headers.get("User-Agent", "")})
        if request.path.endswith("/getMe"):
            return web.json_response({"ok": True, "result": {
                "id": 1, "is_bot": True, "first_name": "文明", "username": "wenming_bot"}})
        return web.json_response({"ok": True, "result": True})

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.json_response({"ok": True, "result": True})

    async def trickle(request: web.Request) -> web.StreamResponse:
        """A long body that keeps coming: 2 s in all, never 0.5 s without a byte."""
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(8):
            await response.write(b"x" * 1000)
            await asyncio.sleep(0.25)
        await response.write_eof()
        return response

    async def raw(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "raw": await request.read()})
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post("/slow", slow)
    app.router.add_get("/trickle", trickle)
    app.router.add_post("/raw/{tail:.*}", raw)
    app.router.add_post("/{tail:.*}", record)
    app.router.add_get("/file", _file_response)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def _file_response(_request: web.Request) -> web.Response:
    return web.Response(body=b"\x89PNG-bytes")


@contextlib.asynccontextmanager
async def running(request: AiohttpRequest) -> AsyncIterator[AiohttpRequest]:
    await request.initialize()
    try:
        yield request
    finally:
        await request.shutdown()


def data(**params: Any) -> RequestData:
    return RequestData([RequestParameter.from_input(k, v) for k, v in params.items()])


async def test_fields_go_as_a_form_with_json_encoded_values(server: tuple[str, Seen]) -> None:
    url, seen = server
    async with running(AiohttpRequest()) as request:
        status, body = await request.do_request(
            f"{url}/sendMessage", "POST",
            data(chat_id=42, text="整改通知", reply_markup={"inline_keyboard": [[]]}))
    assert (status, json.loads(body)) == (200, {"ok": True, "result": True})
    assert seen[0]["type"] == "application/x-www-form-urlencoded"
    assert seen[0]["fields"] == {"chat_id": "42", "text": "整改通知",
                                 "reply_markup": '{"inline_keyboard": [[]]}'}
    assert seen[0]["agent"].startswith("python-telegram-bot")


async def test_files_go_as_multipart_beside_the_fields(server: tuple[str, Seen]) -> None:
    url, seen = server
    async with running(AiohttpRequest()) as request:
        await request.do_request(
            f"{url}/sendPhoto", "POST",
            data(chat_id=7, photo=InputFile(b"\xff\xd8jpeg", filename="before.jpg")))
    assert seen[0]["type"] == "multipart/form-data"
    assert seen[0]["fields"]["chat_id"] == "7"
    photo = seen[0]["fields"]["photo"] if "photo" in seen[0]["fields"] else next(
        v for v in seen[0]["fields"].values() if isinstance(v, tuple))
    assert photo[0] == "before.jpg" and photo[2] == b"\xff\xd8jpeg"


async def test_a_slow_answer_is_timed_out_and_a_closed_port_is_a_network_error(
    server: tuple[str, Seen],
) -> None:
    url, _ = server
    request = AiohttpRequest(read_timeout=0.2)
    await request.initialize()
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    try:
        with pytest.raises(TimedOut):
            await request.do_request(f"{url}/slow", "POST", data(chat_id=1))
        with pytest.raises(NetworkError):
            await request.do_request(f"http://127.0.0.1:{closed}/getMe", "POST")
    finally:
        await request.shutdown()


async def test_a_long_download_that_keeps_coming_is_not_cut_off(
    server: tuple[str, Seen],
) -> None:
    """The read timeout is per read, as with httpx, not a cap on the whole transfer."""
    url, _ = server
    async with running(AiohttpRequest(read_timeout=1.0)) as request:
        status, body = await request.do_request(f"{url}/trickle", "GET")
    assert (status, len(body)) == (200, 8000)


async def test_chinese_file_names_go_out_as_utf8_not_percent_encoded(
    server: tuple[str, Seen],
) -> None:
    url, seen = server
    async with running(AiohttpRequest()) as request:
        await request.do_request(
            f"{url}/raw/sendDocument", "POST",
            data(chat_id=7, document=InputFile(b"%PNG", filename="创文考评排名-2026-W48.png")))
    assert 'filename="创文考评排名-2026-W48.png"'.encode() in seen[0]["raw"]


async def test_it_must_be_initialized_and_can_be_again_after_shutdown(
    server: tuple[str, Seen],
) -> None:
    url, _ = server
    request = AiohttpRequest()
    with pytest.raises(RuntimeError):
        await request.do_request(f"{url}/getMe", "POST")
    await request.initialize()
    await request.shutdown()
    await request.initialize()
    try:
        status, _ = await request.do_request(f"{url}/getMe", "POST")
    finally:
        await request.shutdown()
    assert status == 200


async def test_a_real_bot_uses_it_for_calls_and_downloads(server: tuple[str, Seen]) -> None:
    """PTB's own Bot on top: a method call, then a file download (a GET)."""
    url, seen = server
    bot = Bot("1:T", base_url=f"{url}/bot", base_file_url=f"{url}/fileroot",
              request=AiohttpRequest(), get_updates_request=AiohttpRequest())
    async with bot:
        assert await bot.delete_message(chat_id=5, message_id=9) is True
        content = await bot.request.retrieve(f"{url}/file")
    assert seen[-1]["path"].endswith("/deleteMessage")
    assert seen[-1]["fields"] == {"chat_id": "5", "message_id": "9"}
    assert content == b"\x89PNG-bytes"


def test_the_transport_is_chosen_by_name() -> None:
    assert isinstance(build_request("aiohttp", 8), AiohttpRequest)
    assert isinstance(build_request("httpx", 8), HTTPXRequest)
    with pytest.raises(ValueError, match="unknown HTTP transport"):
        build_request("curl", 8)


def test_the_environments_proxy_applies_unless_no_proxy_names_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As for PTB's httpx transport: HTTPS_PROXY for api.telegram.org, none for localhost."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.city.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    request = AiohttpRequest()
    assert request._proxy_for("https://api.telegram.org/bot1:T/getMe") == (
        "http://proxy.city.example:3128")
    assert request._proxy_for("http://127.0.0.1:8081/bot1:T/getMe") is None
    assert AiohttpRequest()._proxy_for("http://api.telegram.org/bot1:T/getMe") is None
