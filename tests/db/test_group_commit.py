"""GroupCommitter against real databases: batches, isolation of a bad set, guards, the lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from db.group_commit import GroupCommitter, WriteConflict, WriteSet
from db.models import Counter
from db.session import create_engine
from db.uow import UnitOfWorkFactory

counters: Table = Counter.__table__  # type: ignore[assignment]
ADD = insert(counters).values(name=bindparam("b_name"), value=bindparam("b_value"))
SET = (update(counters).where(counters.c.name == bindparam("b_name"))
       .values(value=bindparam("b_value")))
# Only if the value is still what the writer read: the shape of the press path's version guard.
BUMP_FROM = (update(counters)
             .where(counters.c.name == bindparam("b_name"),
                    counters.c.value == bindparam("b_seen"))
             .values(value=counters.c.value + 1))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def committer_for(engine: AsyncEngine, factory: UnitOfWorkFactory | None = None
                  ) -> GroupCommitter:
    return GroupCommitter(engine, write_lock=factory.write_lock if factory else None)


async def values(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(counters.c.name, counters.c.value))
        return {name: value for name, value in rows.all()}


def one(statement: object, guarded: bool = False, **params: object) -> WriteSet:
    writes = WriteSet()
    writes.add(statement, guarded=guarded, **params)  # type: ignore[arg-type]
    return writes


async def test_concurrent_sets_share_transactions_and_are_committed_when_awaited(
    engine: AsyncEngine,
) -> None:
    committer = committer_for(engine)
    await asyncio.gather(*(committer.commit(one(ADD, b_name=f"c{i}", b_value=i))
                           for i in range(40)))
    # Committed, as another connection sees it, once the awaits returned.
    assert await values(engine) == {f"c{i}": i for i in range(40)}
    assert committer.sets == 40
    # All forty were waiting before the first transaction began: they share it.
    assert committer.batches == 1


async def test_sets_arriving_during_a_commit_go_into_the_next_transaction(
    engine: AsyncEngine,
) -> None:
    committer = committer_for(engine)
    first = asyncio.create_task(committer.commit(one(ADD, b_name="first", b_value=0)))
    await asyncio.sleep(0)  # the first transaction is under way
    await asyncio.gather(first, *(committer.commit(one(ADD, b_name=f"c{i}", b_value=i))
                                  for i in range(10)))
    assert (committer.batches, committer.sets) == (2, 11)


async def test_a_failing_set_fails_alone_and_the_others_are_committed(
    engine: AsyncEngine,
) -> None:
    committer = committer_for(engine)
    await committer.commit(one(ADD, b_name="taken", b_value=1))
    bad = WriteSet()
    bad.add(ADD, b_name="fresh-from-bad", b_value=7)
    bad.add(ADD, b_name="taken", b_value=2)  # primary key violation
    results = await asyncio.gather(
        committer.commit(one(ADD, b_name="a", b_value=1)),
        committer.commit(bad),
        committer.commit(one(ADD, b_name="b", b_value=2)),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], IntegrityError)
    # Nothing of the failing set remains, not even its first statement.
    assert await values(engine) == {"taken": 1, "a": 1, "b": 2}


async def test_a_guard_that_does_not_hold_refuses_its_set_only(engine: AsyncEngine) -> None:
    committer = committer_for(engine)
    await asyncio.gather(*(committer.commit(one(ADD, b_name=n, b_value=0))
                           for n in ("x", "y", "z")))
    stale = WriteSet()
    stale.add(BUMP_FROM, guarded=True, b_name="y", b_seen=5)  # it is 0, not 5
    stale.add(ADD, b_name="side-effect", b_value=1)
    results = await asyncio.gather(
        committer.commit(one(BUMP_FROM, guarded=True, b_name="x", b_seen=0)),
        committer.commit(stale),
        committer.commit(one(BUMP_FROM, guarded=True, b_name="z", b_seen=0)),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], WriteConflict)
    assert await values(engine) == {"x": 1, "y": 0, "z": 1}


async def test_a_guard_on_a_missing_row_is_a_conflict(engine: AsyncEngine) -> None:
    committer = committer_for(engine)
    with pytest.raises(WriteConflict):
        await committer.commit(one(BUMP_FROM, guarded=True, b_name="nobody", b_seen=0))


async def test_it_waits_for_a_writer_holding_the_sqlite_write_lock(
    engine: AsyncEngine, database_url: str,
) -> None:
    """On SQLite it queues on the same lock as the units of work, instead of failing."""
    from db.session import create_sessionmaker

    factory = UnitOfWorkFactory(create_sessionmaker(engine),
                                serialize_writes=engine.dialect.name == "sqlite")
    committer = committer_for(engine, factory)
    await committer.commit(one(ADD, b_name="n", b_value=0))
    async with factory() as uow:
        await uow.session.execute(SET, {"b_name": "n", "b_value": 10})
        pending = asyncio.create_task(committer.commit(one(SET, b_name="n", b_value=20)))
        await asyncio.sleep(0.05)
        if factory.write_lock is not None:
            assert not pending.done()  # queued behind the open write transaction
        await uow.commit(mark_update_handled=False)
    await pending
    assert (await values(engine))["n"] == 20


async def test_an_empty_set_is_not_a_transaction(engine: AsyncEngine) -> None:
    committer = committer_for(engine)
    await committer.commit(WriteSet())
    assert committer.batches == 0


async def test_cancelling_the_committer_leaves_no_caller_waiting(engine: AsyncEngine) -> None:
    """At shutdown the leader task is cancelled: every waiter is released, none hangs."""
    committer = committer_for(engine)
    await committer.commit(one(ADD, b_name="taken", b_value=0))
    bad = one(ADD, b_name="taken", b_value=1)  # fails the batch: the sets retry one by one
    callers = [asyncio.create_task(committer.commit(ws)) for ws in (
        one(ADD, b_name="a", b_value=1), bad, one(ADD, b_name="b", b_value=2))]
    await asyncio.sleep(0)  # all three queued, the leader started
    leader = committer._leader
    assert leader is not None
    late = asyncio.create_task(committer.commit(one(ADD, b_name="late", b_value=3)))
    await asyncio.sleep(0)
    leader.cancel()
    _done, pending = await asyncio.wait([*callers, late], timeout=5)
    assert not pending  # nobody left waiting
