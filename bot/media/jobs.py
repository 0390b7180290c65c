"""CPU-bound image work off the event loop, a bounded number of jobs at a time."""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable
from typing import Final, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def _cpu_count() -> int:
    try:
        # Honours taskset / container cpusets, unlike os.cpu_count().
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


IMAGE_JOB_SLOTS: Final = _cpu_count()

# One semaphore per event loop: an asyncio.Semaphore binds to the first loop that waits on
# it, and tests (or a restarted Application) may run several loops in one process.
_slots_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _job_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _slots_by_loop.get(loop)
    if slots is None:
        slots = _slots_by_loop[loop] = asyncio.Semaphore(IMAGE_JOB_SLOTS)
    return slots


async def run_image_job(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run CPU-bound image work in a thread, at most ``IMAGE_JOB_SLOTS`` at a time.

    Pillow releases the GIL while decoding, resampling and encoding, so threads give real
    parallelism. Waiting happens on the loop (not in the executor), so a burst of uploads
    neither blocks executor threads needed elsewhere nor decodes dozens of 50 MP images
    at once.
    """
    async with _job_slots():
        return await asyncio.to_thread(func, *args, **kwargs)
