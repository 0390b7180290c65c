"""One replica among several on a PostgreSQL database holds a role (polling getUpdates):
a session advisory lock, held on one dedicated connection for as long as the role lasts.

The connection is its own (no pool): a pooled connection given back with the lock would hand
the role to whoever borrows it next. PostgreSQL frees the lock when the session ends, also
when the holder dies (its socket closes), so a standby's next attempt takes over. A holder
that lost its connection (a network partition, a restarted server) learns it at its next
`check` and must give up the role; until then two replicas may both act, so what the role
does must stay safe to do twice (getUpdates: Telegram answers the older poll 409; the inbox
ignores an update stored twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)


def lock_key(role: str) -> int:
    """The advisory lock's key for a role name (stable across processes and versions)."""
    return zlib.crc32(f"wenming:{role}".encode())


class AdvisoryLeader:
    """Try to take, check and give back one role's lock (PostgreSQL only)."""

    def __init__(self, database_url: str, role: str, *, timeout: float = 5.0) -> None:
        self.role = role
        self._key = lock_key(role)
        self._timeout = timeout
        # AUTOCOMMIT: the session holds the lock, not a transaction, so nothing stays open.
        self._engine: AsyncEngine = create_async_engine(
            database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._conn: AsyncConnection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    async def try_acquire(self) -> bool:
        """Take the role if no live session holds it; False if another does (or the database
        cannot be reached: the caller tries again)."""
        if self._conn is not None:
            return True
        conn = await asyncio.wait_for(self._engine.connect(), self._timeout)
        try:
            got = await asyncio.wait_for(
                conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}),
                self._timeout)
        except BaseException:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def check(self) -> bool:
        """Whether the role is still ours: the lock's session answers, and holds the lock."""
        if self._conn is None:
            return False
        try:
            holds = await asyncio.wait_for(self._conn.scalar(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND objid = :objid"),
                {"objid": self._key & 0xFFFFFFFF}), self._timeout)
        except Exception as exc:  # the connection is gone (or hangs): so is the role
            log.warning("the %s lock's connection failed: %s", self.role, exc)
            await self._drop()
            return False
        if not holds:
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        if self._conn is not None:
            try:
                await asyncio.wait_for(self._conn.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": self._key}), self._timeout)
            except Exception:  # closing the session frees it anyway
                log.debug("unlock failed; closing the session frees the lock", exc_info=True)
            await self._drop()

    async def close(self) -> None:
        await self.release()
        await self._engine.dispose()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a dead connection: nothing to close
                await asyncio.wait_for(conn.close(), self._timeout)


async def keep_role(
    leader: AdvisoryLeader,
    on_gain: Callable[[], Awaitable[None]],
    on_loss: Callable[[], Awaitable[None]],
    *,
    retry: float = 1.0,
    check: float = 2.0,
) -> None:
    """Until cancelled: a standby tries the lock every `retry` seconds; once it holds it,
    `on_gain` runs and the lock is checked every `check` seconds; when it is lost, `on_loss`
    runs and the replica is a standby again. Cancelled (the replica stops): the lock is
    given back; stopping the role's work is the caller's."""
    try:
        while True:
            try:
                gained = await leader.try_acquire()
            except Exception as exc:  # the database is away: a standby waits for it
                log.warning("cannot reach the database for the %s lock: %s", leader.role, exc)
                gained = False
            if not gained:
                await asyncio.sleep(retry)
                continue
            log.info("this replica now holds the %s role", leader.role)
            try:
                await on_gain()
            except Exception as exc:
                # Taking up the role failed (the database went away again in between, a
                # pooled connection it had cut): give the role back and try again, or no
                # replica would ever take it up again.
                log.warning("could not take up the %s role: %s; trying again",
                            leader.role, exc)
                with contextlib.suppress(Exception):
                    await on_loss()
                await leader.release()
                await asyncio.sleep(retry)
                continue
            held = True
            while held:
                await asyncio.sleep(check)
                held = await leader.check()
            log.warning("this replica lost the %s role", leader.role)
            await on_loss()
    finally:
        await leader.release()
