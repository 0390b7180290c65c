"""Only one replica holds the polling role on a PostgreSQL database (db/leader.py): the lock
is held by one session; a standby takes over once the holder's session is gone, and a holder
whose connection was cut learns it at its next check."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from sqlalchemy import text

from db.leader import AdvisoryLeader, keep_role
from db.session import create_engine
from tests.conftest import wait_until


@pytest.fixture
def pg_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("the polling lock is PostgreSQL's (SQLite runs one process)")
    return database_url


async def test_one_holder_then_the_standby_when_it_goes(pg_url: str) -> None:
    first, second = AdvisoryLeader(pg_url, "polling"), AdvisoryLeader(pg_url, "polling")
    try:
        assert await first.try_acquire()
        assert not await second.try_acquire()
        assert await first.check()
        other = AdvisoryLeader(pg_url, "other-role")
        assert await other.try_acquire()  # roles are separate
        await other.close()
        await first.close()
        assert await second.try_acquire()
    finally:
        await first.close()
        await second.close()


async def test_a_holder_whose_session_was_killed_learns_it_and_the_standby_takes_over(
    pg_url: str,
) -> None:
    holder, standby = AdvisoryLeader(pg_url, "polling"), AdvisoryLeader(pg_url, "polling")
    admin = create_engine(pg_url)
    try:
        assert await holder.try_acquire()
        async with admin.begin() as conn:  # the holder's server session dies
            await conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks"
                " WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"))
        assert not await holder.check()
        assert not holder.held
        assert await standby.try_acquire()
    finally:
        await holder.close()
        await standby.close()
        await admin.dispose()


async def test_keep_role_runs_the_role_on_one_replica_at_a_time(pg_url: str) -> None:
    active: list[str] = []
    log: list[str] = []

    def role(name: str) -> tuple[object, object]:
        async def gain() -> None:
            active.append(name)
            log.append(f"+{name}")

        async def lose() -> None:
            active.remove(name)
            log.append(f"-{name}")
        return gain, lose

    a_gain, a_lose = role("a")
    b_gain, b_lose = role("b")
    a = asyncio.create_task(keep_role(AdvisoryLeader(pg_url, "polling"), a_gain, a_lose,  # type: ignore[arg-type]
                                      retry=0.05, check=0.05))
    await wait_until(lambda: active == ["a"])
    b = asyncio.create_task(keep_role(AdvisoryLeader(pg_url, "polling"), b_gain, b_lose,  # type: ignore[arg-type]
                                      retry=0.05, check=0.05))
    await asyncio.sleep(0.3)
    assert active == ["a"]  # b stands by
    a.cancel()  # a's replica stops: the lock is given back
    await asyncio.gather(a, return_exceptions=True)
    active.remove("a")
    await wait_until(lambda: active == ["b"], timeout=5)
    b.cancel()
    await asyncio.gather(b, return_exceptions=True)
    assert log == ["+a", "+b"]


async def test_a_role_whose_start_fails_is_given_back_and_taken_up_again(pg_url: str) -> None:
    """The polling role regained right after a database outage: starting the intake can fail
    on a connection the outage cut. The role must be taken up again, not left dead (the
    readiness test's message written during the outage was then never answered)."""
    leader = AdvisoryLeader(pg_url, "polling")
    attempts: list[str] = []

    async def gain() -> None:
        attempts.append("gain")
        if len(attempts) == 1:
            raise ConnectionError("connection was closed in the middle of operation")

    async def lose() -> None:
        attempts.append("lose")

    task = asyncio.create_task(keep_role(leader, gain, lose, retry=0.05, check=0.05))
    try:
        await wait_until(lambda: attempts.count("gain") == 2, timeout=10)
        await asyncio.sleep(0.2)
        assert leader.held and not task.done()
        assert attempts == ["gain", "lose", "gain"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await leader.close()
