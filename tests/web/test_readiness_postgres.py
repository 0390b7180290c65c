"""/readyz while PostgreSQL cannot be reached, and after it returns (issue 13's "done when").

The bot reaches the per-test PostgreSQL database through a TCP proxy (tests/tcp_proxy.py);
cutting the proxy is PostgreSQL gone for this bot, restoring it is PostgreSQL back."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from bot.app import Wenming
from tests.conftest import ErrorLog, Harness, wait_until
from tests.tcp_proxy import TcpProxy
from tests.web.test_readiness import readyz

PERSON = 29201
pytestmark = pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"),
                                reason="needs PostgreSQL (TEST_DATABASE_URL)")


@pytest.fixture
def proxies() -> list[TcpProxy]:
    return []


@pytest.fixture
async def database_url(database_url: str, proxies: list[TcpProxy]) -> AsyncIterator[str]:
    """The harness's database, reached through a proxy (PostgreSQL only)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL only: the proxy stands for a database server going away")
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxies.append(proxy)
    yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    await proxy.stop()


async def test_unready_naming_the_database_while_postgresql_is_gone_ready_when_back(
    harness: Harness, proxies: list[TcpProxy], error_log: ErrorLog,
) -> None:
    [proxy] = proxies
    assert isinstance(harness.bot, Wenming)
    # The demo city's start-up updates are handled before the database goes.
    assert await harness.bot.intake.dispatcher.wait_idle(10)
    # The sender's and the scheduler's passes fail while it is gone, and say so.
    error_log.allowed += ["outbox pass failed", "scheduler tick failed"]
    status, body = await readyz(harness)
    assert status == 200, body
    proxy.disconnect()
    status, body = await readyz(harness)
    assert status == 503
    database: dict[str, Any] = body["checks"]["database"]
    assert database["status"] == "failing"
    assert database["reason"], body
    assert body["checks"]["bot_api"] == {"status": "ok"}  # only what is wrong is named
    # Someone writes meanwhile: the update cannot be stored, so it is not confirmed either.
    sb: Any = harness.sb
    await sb.create_user("孙测试", user_id=PERSON, started=True)
    await sb.send_text(PERSON, "/help")
    await asyncio.sleep(1.5)
    assert await sb.bot_messages(PERSON) == []
    proxy.restore()

    async def ready() -> bool:
        status, _body = await readyz(harness)
        return status == 200

    await wait_until(ready, timeout=15, interval=0.5)
    # Polling carried on: the message written while the database was gone is answered.
    await sb.wait_for_bot_message(PERSON, timeout=15)
