"""Which webhook replica handles a chat now (PostgreSQL): a session advisory lock per chat.

Why advisory locks rather than a lease row per chat: PostgreSQL frees them the moment the
holder's session ends, so a SIGKILLed replica's chats are free at once (a lease would wait
out its expiry), and taking one writes nothing (no WAL, no table to vacuum). They are held
on a few dedicated AUTOCOMMIT connections of this process (no pool: a pooled connection given
back with its locks would hand them to whoever borrows it next), a chat always on the same
one; a lock is taken and given back by one round trip each, and each round trip also reads
what the caller must know at that moment (see `take` and `release_unless_backlog`).

A session lock is re-entrant: taken twice by this process, it must be given back twice. The
caller (bot/telegram/webhook_intake.py) pairs them. Two chats whose ids agree in their low
32 bits share a lock: they are then handled one after the other, which is only slower.
Like db/leader.py: a replica whose lock connection broke has lost its chats; until it learns
it (its next round trip on it fails), another replica may take one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

# The first half of every chat lock's key (the two-int4 form: it never meets db/leader.py's
# one-bigint keys).
_SPACE = zlib.crc32(b"wenming:chat") - 2**31

# asyncpg's own statements ($n parameters, prepared once per connection): these run once or
# twice per update, and SQLAlchemy's layers would cost more than the round trip.
# $1, $2: the lock's key; $3: the chat; $4: this replica; $5: the update.
# A pending row of the chat that no live replica has in hand (unclaimed, or its lease ran out).
_BACKLOG = ("EXISTS (SELECT 1 FROM inbox WHERE chat_key = $3 AND processed_at IS NULL"
            " AND (claimed_until IS NULL OR claimed_until < now()))")
# Another replica's live claim on a row of the chat (it died, or it still has the rows).
_FOREIGN = ("EXISTS (SELECT 1 FROM inbox WHERE chat_key = $3 AND processed_at IS NULL"
            " AND claimed_by <> $4 AND claimed_until >= now())")
_TAKE = (f"SELECT pg_try_advisory_lock($1, $2) AS got,"
         f" EXISTS (SELECT 1 FROM inbox WHERE update_id = $5) AS stored,"
         f" {_BACKLOG} AS backlog, {_FOREIGN} AS foreign")
# The check runs before the unlock, in one statement: rows committed after its snapshot and
# before the unlock are found by the next holder, or by a replica's sweep (see the intake).
_RELEASE = (f"SELECT CASE WHEN {_BACKLOG} THEN false"
            f" ELSE pg_advisory_unlock($1, $2) END AS released")
_UNLOCK = "SELECT pg_advisory_unlock($1, $2)"


@dataclass(frozen=True)
class Taken:
    got: bool  # this process holds the chat now
    stored: bool  # the update is in the inbox already (delivered before)
    backlog: bool  # the chat has pending rows no live replica has in hand
    foreign: bool  # and rows another replica's claim still holds: the chat must wait for them


def _key(chat_key: int) -> int:
    low = chat_key & 0xFFFFFFFF
    return low - 2**32 if low >= 2**31 else low


class ChatLocks:
    """Take and give back chats' advisory locks (PostgreSQL only)."""

    def __init__(self, database_url: str, *, connections: int = 4,
                 timeout: float = 10.0) -> None:
        self._engine: AsyncEngine = create_async_engine(
            database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._size = connections
        self._timeout = timeout
        self._conns: list[AsyncConnection] = []
        self._raw: list[Any] = []  # the asyncpg connections under them
        self._turns: list[asyncio.Lock] = []  # one statement at a time per connection

    async def open(self) -> None:
        for _ in range(self._size):
            conn = await self._engine.connect()
            self._conns.append(conn)
            self._raw.append((await conn.get_raw_connection()).driver_connection)
            self._turns.append(asyncio.Lock())

    async def close(self) -> None:
        """Ends the sessions: every lock this process holds is free."""
        conns, self._conns, self._raw = self._conns, [], []
        for conn in conns:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self._timeout)
        await self._engine.dispose()

    async def take(self, chat_key: int, me: str, update_id: int = -1) -> Taken:
        """Try to hold the chat (`me`: this replica's name, as in its claims)."""
        row = await self._run(chat_key, _TAKE, True, me, update_id)
        return Taken(bool(row["got"]), bool(row["stored"]), bool(row["backlog"]),
                     bool(row["foreign"]))

    async def release_unless_backlog(self, chat_key: int) -> bool:
        """Give the chat back, unless it has a backlog (then it stays held: False)."""
        return bool((await self._run(chat_key, _RELEASE, True))["released"])

    async def release(self, chat_key: int) -> None:
        await self._run(chat_key, _UNLOCK, False)

    async def _run(self, chat_key: int, statement: str, chat: bool, *more: object) -> Any:
        """The statement on the chat's connection, with the lock's key ($1, $2), and then
        (if `chat`) the chat ($3) and `more`."""
        i = hash(chat_key) % self._size
        params = (_SPACE, _key(chat_key), *((chat_key, *more) if chat else ()))
        async with self._turns[i]:
            return await self._raw[i].fetchrow(statement, *params, timeout=self._timeout)
