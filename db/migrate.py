"""Alembic, driven from code: the bot, the CLI and the tests all upgrade the same way."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The advisory lock replicas take in turn to upgrade the schema (any fixed number; the
# polling role's is db/leader.py's lock_key).
MIGRATION_LOCK = 0x77656E6D  # "wenm"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would eat a '%' in a password.
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """Upgrade; on PostgreSQL one replica at a time (replicas starting together would run
    the same migration twice, and the second fails half-way): the others wait on an advisory
    lock, then find the schema at the head already."""
    if make_url(database_url).get_backend_name() != "postgresql":
        await asyncio.to_thread(upgrade, database_url, revision)
        return
    engine = create_async_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            try:
                # env.py runs its own event loop, so it must run outside ours.
                await asyncio.to_thread(upgrade, database_url, revision)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"),
                                   {"key": MIGRATION_LOCK})
    finally:
        await engine.dispose()
