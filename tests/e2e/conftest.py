"""Fixtures of the tests that run the bot as separate processes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sandbox.client import SandboxClient
from sandbox.server import SandboxServer


@pytest.fixture
async def sandbox_only() -> AsyncIterator[tuple[SandboxServer, SandboxClient]]:
    """The sandbox (flood control off) and a user-side client, no bot: a test starts its own
    bot processes (tests/e2e/process.py)."""
    server = SandboxServer(flood_control=False)
    await server.start()
    client = SandboxClient(server.url)
    try:
        yield server, client
    finally:
        await client.close()
        await server.stop()
