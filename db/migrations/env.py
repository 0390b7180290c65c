"""Alembic environment: async engine, the same URL the bot uses, batch mode for SQLite.

The URL is given by whoever runs Alembic: db/migrate.py (`wenming db upgrade`, the bot at
start-up, the tests) passes Settings' database URL. db imports nothing from bot, so this file
does not read the environment itself; there is no alembic.ini, and the bare `alembic` command
is not a way in.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from db.models import Base
from db.session import create_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: run migrations through db/migrate.py "
                           "(`wenming db upgrade`), which passes Settings' URL")
    return str(url)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, render_as_batch=True,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


# Replicas starting together each upgrade the schema at start: on PostgreSQL they take turns
# on this transaction-scoped advisory lock, so one migrates and the others then find the
# schema at head and do nothing (a number of our own; any constant unlikely to collide).
MIGRATION_LOCK = 0x57454E4D494E47  # "WENMING"


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
