"""Shared fixtures: a migrated database (SQLite, and PostgreSQL when TEST_DATABASE_URL is set),
the local Bot API sandbox, and the real Wenming bot running against both.

Every database test runs once per backend. PostgreSQL tests each get a throwaway database
created on the server TEST_DATABASE_URL points at, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from bot.config import DEMO_CITY as DEMO_CITY  # the shipped demo city, for the tests
from bot.config import Secret, Settings, sqlite_url
from db.migrate import upgrade_async
from db.session import create_engine, create_sessionmaker

if TYPE_CHECKING:
    from bot.app import Core
    from db.uow import UnitOfWorkFactory

ROOT = Path(__file__).resolve().parent.parent
TEST_TOKEN = "123456789:TESTtokenForWenmingSandbox"

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A freshly migrated, empty database; its schema comes from `alembic upgrade head`."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "wenming-test.db")
        await upgrade_async(url)
        yield url
        return
    server = make_url(os.environ["TEST_DATABASE_URL"])
    name = f"wenming_t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade_async(url)
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class ErrorLog(logging.Handler):
    """Collects ERROR records so a test fails when any handler raised."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.allowed: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def unexpected(self) -> list[str]:
        out = []
        for r in self.records:
            msg = r.getMessage()
            if any(a in msg for a in self.allowed):
                continue
            if r.exc_info and r.exc_info[1] is not None:
                msg += f": {r.exc_info[1]!r}"
            out.append(f"{r.name}: {msg}")
        return out


@pytest.fixture
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    problems = handler.unexpected()
    assert not problems, "errors were logged during the test:\n" + "\n".join(problems)


def make_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    base = Settings(
        bot_token=Secret(TEST_TOKEN),
        database_url=Secret(database_url),
        media_dir=tmp_path / "media",
        admin_ids=frozenset({10000}),
        poll_timeout=1,
    )
    return base.with_(**overrides) if overrides else base


@pytest.fixture
async def core(database_url: str, tmp_path: Path) -> AsyncIterator[Core]:
    """The application's core (units of work on its event bus, its caches) as bot/app.py wires
    it, on the test database: for service tests that need what the app subscribes."""
    from bot.app import build_core

    built = build_core(make_settings(database_url, tmp_path))
    yield built
    await built.close()


def pytest_configure(config: pytest.Config) -> None:
    # Bot processes the tests start listen on a free port, not the default 8080 that another
    # run on this machine (or the developer's own bot) may hold.
    os.environ.setdefault("WENMING_HTTP_LISTEN", "127.0.0.1:0")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Keep end-to-end tests quiet about their long-poll timeouts.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for item in items:
        if "e2e" in item.nodeid.split("/"):
            item.add_marker(pytest.mark.e2e)


async def wait_until(predicate: object, timeout: float = 10.0, interval: float = 0.05) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(interval)


# ---- the local Bot API sandbox and the real bot ---------------------------------------------

@dataclass
class Harness:
    """A running sandbox, the user-side client, and the real Wenming bot against it."""

    server: object
    sb: object
    bot: object
    settings: Settings

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The running bot's own sessions: what a test writes through them is seen by the bot's
        caches exactly as the bot's own writes are."""
        return self.uow.sessions

    @property
    def uow(self) -> UnitOfWorkFactory:
        """The running bot's units of work (publishing on its event bus)."""
        return self.bot.deps.uow  # type: ignore[attr-defined, no-any-return]

    async def restart(self, **overrides: object) -> None:
        """Stop the bot cleanly and start a new process-equivalent against the same database."""
        from bot.app import Wenming, build_application

        await self.bot.stop()  # type: ignore[attr-defined]
        if overrides:
            self.settings = self.settings.with_(**overrides)
        self.bot = Wenming(build_application(self.settings))
        await self.bot.start(publish_commands=False)  # type: ignore[attr-defined]


WEBHOOK_SECRET = "wenming-test_SECRET-0123"
WEBHOOK_PATH = "/telegram/hook-7f3a"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def webhook_settings(port: int | None = None) -> dict[str, object]:
    """Webhook mode on a free local port (the URL must be known before the server listens)."""
    port = port or free_port()
    return {"http_listen": ("127.0.0.1", port),
            "webhook_url": f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
            "webhook_secret": Secret(WEBHOOK_SECRET)}


@pytest.fixture
async def harness(
    database_url: str, tmp_path: Path, error_log: ErrorLog
) -> AsyncIterator[Harness]:
    async with running_harness(database_url, tmp_path) as h:
        yield h


@pytest.fixture
async def harness_webhook(
    database_url: str, tmp_path: Path, error_log: ErrorLog
) -> AsyncIterator[Harness]:
    """The harness with the bot in webhook mode: the sandbox posts updates to its HTTP server."""
    async with running_harness(database_url, tmp_path, **webhook_settings()) as h:
        yield h


@contextlib.asynccontextmanager
async def running_harness(
    database_url: str, tmp_path: Path, **overrides: object
) -> AsyncIterator[Harness]:
    from bot.app import Wenming, build_application
    from bot.domain.org import load_org_file
    from bot.domain.standards import load_standards
    from bot.services.org_import import import_org
    from sandbox.client import SandboxClient
    from sandbox.run import seed_sandbox
    from sandbox.server import SandboxServer

    server = SandboxServer(flood_control=False)
    await server.start()
    settings = make_settings(database_url, tmp_path, api_base_url=server.api_base_url,
                             file_base_url=server.file_base_url, **overrides)
    org = load_org_file(DEMO_CITY, set(load_standards(settings.standards_dir)))
    bot = Wenming(build_application(settings))
    await import_org(bot.deps.uow, org)
    sb = SandboxClient(server.url)
    await sb.__aenter__()
    await seed_sandbox(sb, org)
    await bot.start(migrate=False, publish_commands=False)
    h = Harness(server, sb, bot, settings)
    try:
        yield h
    finally:
        await h.bot.stop()  # type: ignore[attr-defined]
        await sb.close()
        await server.stop()
