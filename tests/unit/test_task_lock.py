"""SQLite writers queue on the event loop; a unit of work inside another does not deadlock."""

from __future__ import annotations

import asyncio

from db.uow import TaskLock


async def test_one_writer_at_a_time_in_arrival_order() -> None:
    lock = TaskLock()
    inside: list[int] = []
    order: list[int] = []

    async def writer(n: int) -> None:
        await lock.acquire()
        try:
            inside.append(n)
            assert len(inside) == 1, "two writers inside at once"
            await asyncio.sleep(0.01)
            order.append(n)
            inside.remove(n)
        finally:
            lock.release()

    await asyncio.gather(*(writer(n) for n in range(5)))
    assert order == [0, 1, 2, 3, 4]


async def test_the_holder_may_take_it_again() -> None:
    lock = TaskLock()
    await lock.acquire()
    async with asyncio.timeout(0.5):
        await lock.acquire()  # nested, in the same task: no deadlock
    lock.release()
    other = asyncio.create_task(lock.acquire())
    await asyncio.sleep(0.01)
    assert not other.done(), "still held by the outer level"
    lock.release()
    await asyncio.wait_for(other, 0.5)
