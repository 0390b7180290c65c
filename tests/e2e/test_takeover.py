"""Polling mode, active-standby (issue 13): two `wenming run` processes on one PostgreSQL
database; only one polls. SIGKILL it, and the other takes over within seconds: a message sent
at the moment of the kill is answered, by the standby."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.takeover import Replica, takeover_once
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer

pytestmark = pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"),
                                reason="replicas share a PostgreSQL database")


async def test_the_standby_takes_over_polling_when_the_active_replica_is_killed(
    sandbox_only: tuple[SandboxServer, SandboxClient], database_url: str, tmp_path: Path,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one process")
    server, sb = sandbox_only
    user = await sb.create_user("接管测试", user_id=880001)
    replicas = [Replica(name, tmp_path / name / "bot.log") for name in ("a", "b")]
    try:
        for replica in replicas:
            replica.start(server, database_url, tmp_path)
        for replica in replicas:
            await replica.running()
        killed, seconds = await takeover_once(server, sb, replicas, database_url, tmp_path,
                                              user["id"])
        other = next(r for r in replicas if r.name != killed)
        assert other.polls()  # the standby polls now
        assert seconds < 10, f"takeover took {seconds:.1f} s"
        # And back: the first replica, restarted, stands by and takes over in its turn.
        again, _ = await takeover_once(server, sb, replicas, database_url, tmp_path, user["id"])
        assert again == other.name
        assert (await sb.stats())["pending_updates"] == 0
    finally:
        for replica in replicas:
            replica.stop()
