"""Engine and session factory; SQLite gets WAL, foreign keys, busy timeout, BEGIN IMMEDIATE."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Build the async engine for a database URL (sqlite+aiosqlite or postgresql+asyncpg).
    hide_parameters: a failing statement's values (names, phone numbers) stay out of the
    exception's text, and so out of the logs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            hide_parameters=True,
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20,
                               hide_parameters=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN can be IMMEDIATE below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        # A deferred BEGIN upgrades to a write lock mid-transaction and then fails with
        # "database is locked" under concurrency; IMMEDIATE waits for the lock up front.
        # Read-only work (see create_read_sessionmaker) needs no lock at all in WAL mode.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


READ_ONLY = "wenming_read_only"


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return _sessionmaker(engine)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reading only: on SQLite they do not queue for the write lock."""
    return _sessionmaker(engine.execution_options(**{READ_ONLY: True}))


def _sessionmaker(bind: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Each factory gets its own sync sessionmaker, so session events can be listened to on this
    # factory alone (see follow_commits) rather than on every Session in the process.
    own: sessionmaker[Session] = sessionmaker()
    return async_sessionmaker(bind, expire_on_commit=False,
                              sync_session_class=own)


def follow_commits(
    sessions: async_sessionmaker[AsyncSession],
    *,
    after_flush: Callable[[Session, Any], None],
    after_commit: Callable[[Session], None],
    after_rollback: Callable[[Session], None],
) -> None:
    """Listen to the flushes, commits and rollbacks of this factory's sessions only (an
    in-memory cache following what commits). Through the factory's own sync sessionmaker:
    SQLAlchemy's documented way to add session events to an async factory."""
    own = sessions.kw.get("sync_session_class")
    if not isinstance(own, sessionmaker):
        raise TypeError("not a factory from db.session (no sessionmaker of its own)")
    event.listen(own, "after_flush", after_flush)
    event.listen(own, "after_commit", after_commit)
    event.listen(own, "after_rollback", after_rollback)
