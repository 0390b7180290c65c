"""Adding a row that a concurrent twin may have added a moment before."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


async def add_or_find(session: AsyncSession, row: T,
                      find: Callable[[], Awaitable[T | None]]) -> tuple[T, bool]:
    """Add `row` in a savepoint; when a unique constraint says its twin exists (the same button
    pressed twice at once, two first messages from two chats), the twin `find` returns instead.
    (row, True) when this call added it; a failure `find` cannot explain is raised."""
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        found = await find()
        if found is None:
            raise
        return found, False
    return row, True
