"""The Wenming bot as a bench/throughput.py target.

    .venv/bin/python -m bench.throughput --bot wenming [--concurrent]

`start(server)` runs the real bot (bot.app.Wenming: durable intake, gatekeeper, handlers,
outbox; `start_webhook(server)`: the same in webhook mode) against the given sandbox, in the
same event loop as throughput.py's sandbox and simulated users, with a fresh SQLite database
in a temporary directory, migrated and seeded with the demo city. Users send "/help", which
every person gets an answer to; `prepare` makes each user meet the bot once (so the
first-contact insert of their Person row is not inside the measured messages).

Set BENCH_WENMING_DB=postgresql to run it on a throwaway PostgreSQL database instead
(created on BENCH_PG_URL, default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres, and
dropped on stop).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.common import create_database, drop_database, seed_database
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer

TOKEN = "123:BenchToken"  # the same token as throughput.py's echo bot
REPLIES_PER_MESSAGE = 1
PREPARE_TIMEOUT = 30.0


def make_text(user_index: int, k: int) -> str:
    """What a benchmark user sends: /help gets one reply from the bot, whoever sends it."""
    return "/help"


async def start(server: SandboxServer) -> Callable[[], Awaitable[None]]:
    """The bot in polling mode (the default)."""
    return await _start(server, webhook=False)


async def start_webhook(server: SandboxServer) -> Callable[[], Awaitable[None]]:
    """The bot in webhook mode: the sandbox posts each update to the bot's HTTP server."""
    return await _start(server, webhook=True)


def _webhook_settings() -> dict[str, object]:
    from bot.config import Secret

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return {"http_listen": ("127.0.0.1", port),
            "webhook_url": f"http://127.0.0.1:{port}/telegram/bench",
            "webhook_secret": Secret("bench-secret")}


async def _start(server: SandboxServer, *, webhook: bool) -> Callable[[], Awaitable[None]]:
    from bot.app import Wenming, build_application
    from bot.config import Secret, Settings

    workdir = Path(tempfile.mkdtemp(prefix="wenming-bench-"))
    url = await create_database(os.environ.get("BENCH_WENMING_DB", "sqlite"), workdir)
    try:
        await seed_database(url)
        settings = Settings(
            bot_token=Secret(TOKEN),
            api_base_url=server.api_base_url,
            file_base_url=server.file_base_url,
            database_url=Secret(url),
            media_dir=workdir / "media",
        )
        if webhook:
            settings = settings.with_(**_webhook_settings())
        bot = Wenming(build_application(settings))
        await bot.start(migrate=False, publish_commands=False)
    except BaseException:
        await drop_database(url)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def stop() -> None:
        try:
            await bot.stop()
        finally:
            await drop_database(url)
            shutil.rmtree(workdir, ignore_errors=True)

    return stop


async def prepare(client: SandboxClient, user_ids: list[int]) -> None:
    """Each user says /help once and waits for the answer: their Person row now exists."""

    async def meet(uid: int) -> None:
        sent = await client.send_text(uid, "/help")
        await client.wait_for_bot_message(uid, after_message_id=sent["message_id"],
                                          timeout=PREPARE_TIMEOUT)

    await asyncio.gather(*(meet(uid) for uid in user_ids))
