"""Group commit: the small writes of many concurrent updates share one transaction.

A verdict press writes two or three rows. On its own it would cost a whole transaction (a
session, BEGIN IMMEDIATE, COMMIT) and a statement per row, most of it fixed cost. Here each
caller hands in a `WriteSet` and waits; whatever arrives while a transaction is being committed
goes into the next one, where every statement runs once with the parameters of all the sets
(executemany). One press alone commits at once; under load the batches grow by themselves, with
no timer. A caller's `await` returns only once its rows are committed, so "answered in the
database before the reply goes out" still holds.

Rules for a write set: its statements must commute (the batch runs each distinct statement once
for all sets, so the order of different statements within a set is not kept), and two sets in
flight at the same time must not touch the same rows (callers serialise per row, e.g. per
inspection). A statement marked `guarded` must change exactly one row per set: that is how a
set says "only if nobody changed this row since I read it". When a batch fails, or a guard does
not hold, the batch is rolled back and each set is retried alone, so one bad set fails only its
own caller (`WriteConflict` for a guard, the database error otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from db.uow import TaskLock

log = logging.getLogger(__name__)

MAX_BATCH = 256
_Rows = list[tuple[dict[str, Any], bool]]  # (parameters, guarded) of one statement, per set


class WriteConflict(Exception):
    """A guarded statement found its row changed (or gone): the set was not applied."""


@dataclass(frozen=True)
class Write:
    statement: Executable
    params: dict[str, Any]
    guarded: bool = False


@dataclass
class WriteSet:
    writes: list[Write] = field(default_factory=list)

    def add(self, statement: Executable, guarded: bool = False, **params: Any) -> None:
        self.writes.append(Write(statement, params, guarded))


@dataclass
class _Waiting:
    writes: WriteSet
    done: asyncio.Future[None]


class GroupCommitter:
    """One per engine. `await commit(write_set)` returns once the set is durably committed."""

    def __init__(
        self, engine: AsyncEngine, *, write_lock: TaskLock | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._engine = engine
        self._lock = write_lock
        self._max_batch = max_batch
        self._queue: list[_Waiting] = []
        self._leader: asyncio.Task[None] | None = None
        # Whether the driver reports the summed rowcount of an executemany (SQLite does,
        # asyncpg does not): without it, guarded statements run one by one.
        self._multi_rowcount = engine.dialect.supports_sane_multi_rowcount
        self.batches = 0  # committed transactions, for tests and benchmarks
        self.sets = 0

    async def commit(self, writes: WriteSet) -> None:
        if not writes.writes:
            return
        waiting = _Waiting(writes, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        if self._leader is None or self._leader.done():
            self._leader = asyncio.create_task(self._drain(), name="wenming-group-commit")
        await asyncio.shield(waiting.done)

    async def _drain(self) -> None:
        batch: list[_Waiting] = []
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._commit_or_isolate(batch)
                batch = []
        finally:
            # Cancelled (the loop is shutting down): nobody may wait forever, neither the
            # batch under way nor whoever queued behind it. Their updates stay unhandled in
            # the inbox and run again on the next start.
            for one in (*batch, *self._queue):
                if not one.done.done():
                    one.done.cancel()
            self._queue.clear()

    async def _commit_or_isolate(self, batch: list[_Waiting]) -> None:
        try:
            await self._commit_batch(batch)
        except Exception as exc:  # handed to the callers below
            if len(batch) == 1:
                _settle(batch[0], exc)
                return
            if not isinstance(exc, WriteConflict):
                log.info("a batch of %d write sets failed (%s); retrying one by one",
                         len(batch), type(exc).__name__)
            for one in batch:
                try:
                    await self._commit_batch([one])
                except Exception as single:
                    _settle(one, single)

    async def _commit_batch(self, batch: Sequence[_Waiting]) -> None:
        async with self._locked(), self._engine.begin() as conn:
            for statement, rows in _grouped(batch):
                await self._execute(conn, statement, rows)
        self.batches += 1
        self.sets += len(batch)
        for one in batch:
            _settle(one, None)

    async def _execute(self, conn: AsyncConnection, statement: Executable, rows: _Rows) -> None:
        params = [p for p, _ in rows]
        guarded = rows[0][1]
        if not guarded:
            await conn.execute(statement, params if len(params) > 1 else params[0])
            return
        if len(params) == 1 or not self._multi_rowcount:
            for p in params:
                result = await conn.execute(statement, p)
                if _rowcount(result) != 1:
                    raise WriteConflict(str(statement))
            return
        result = await conn.execute(statement, params)
        if _rowcount(result) != len(params):
            raise WriteConflict(str(statement))

    @contextlib.asynccontextmanager
    async def _locked(self) -> Any:
        if self._lock is None:
            yield
            return
        await self._lock.acquire()
        try:
            yield
        finally:
            self._lock.release()


def _grouped(batch: Sequence[_Waiting]) -> list[tuple[Executable, _Rows]]:
    """Each distinct statement once, in the order first met, with every set's parameters."""
    groups: dict[int, tuple[Executable, _Rows]] = {}
    for one in batch:
        for w in one.writes.writes:
            entry = groups.setdefault(id(w.statement), (w.statement, []))
            entry[1].append((w.params, w.guarded))
    return list(groups.values())


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def _settle(waiting: _Waiting, error: BaseException | None) -> None:
    if waiting.done.done():
        return
    if error is None:
        waiting.done.set_result(None)
    else:
        waiting.done.set_exception(error)
