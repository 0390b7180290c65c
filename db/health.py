"""What readiness asks of the database: does it answer, and at which migration is it."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool


async def answers(engine: AsyncEngine) -> None:
    """`SELECT 1`; raises when the database cannot be reached (the caller bounds the wait)."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def revision(engine: AsyncEngine) -> str | None:
    """The database's Alembic revision; None before any migration ran."""
    async with engine.connect() as conn:
        try:
            found = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        except (ProgrammingError, OperationalError) as exc:
            if "alembic_version" not in str(exc):
                raise
            return None  # no alembic_version table: never migrated
    return None if found is None else str(found)


def pool_usage(engine: AsyncEngine) -> tuple[float, float, float]:
    """(size, checked out, overflow) of the engine's pool. Only a queue pool (PostgreSQL's,
    and SQLite's file databases) counts them; any other pool says NaN."""
    pool = engine.pool
    if isinstance(pool, QueuePool):
        return float(pool.size()), float(pool.checkedout()), float(max(pool.overflow(), 0))
    nan = float("nan")
    return nan, nan, nan
