"""Fixtures: a fresh sandbox per test, a user-side client, and a real PTB bot runner."""

from __future__ import annotations

import datetime as dtm
import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from PIL import Image
from telegram import Bot
from telegram.ext import Application, ApplicationBuilder

from sandbox.client import SandboxClient
from sandbox.server import SandboxServer

TOKEN = "123:ABCdef"


@pytest.fixture
async def server() -> AsyncIterator[SandboxServer]:
    async with SandboxServer() as srv:
        yield srv


@pytest.fixture
async def client(server: SandboxServer) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(server.url) as sb:
        yield sb


@pytest.fixture
async def bot(server: SandboxServer) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=server.api_base_url,
                   base_file_url=server.file_base_url) as b:
        yield b


def build_app(server: SandboxServer, **builder_opts: object) -> Application:  # type: ignore[type-arg]
    builder = ApplicationBuilder().token(TOKEN).base_url(server.api_base_url)
    builder = builder.base_file_url(server.file_base_url)
    if builder_opts.get("concurrent_updates"):
        builder = builder.concurrent_updates(True)
    return builder.build()


@asynccontextmanager
async def running(app: Application) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    """Run a PTB application with real long polling, the way run_polling would."""
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=dtm.timedelta(seconds=2))
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


def image_bytes(width: int = 1000, height: int = 600, fmt: str = "PNG",
                color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, fmt)
    return buf.getvalue()


AppFactory = Callable[[SandboxServer], Application]  # type: ignore[type-arg]
