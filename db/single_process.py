"""SQLite serves one bot process: a second `wenming run` on the same database file is refused
at start, rather than both polling, both draining the outbox and both running the scheduler.

The first process holds an exclusive `flock` on `<database>.lock` beside the file for its
whole life; the kernel drops it when the process ends, however it ends (SIGKILL included), so
a crash never leaves a stale lock behind. Several replicas need PostgreSQL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url


class DatabaseInUse(RuntimeError):
    """Another process runs the bot on this SQLite database."""


class SQLiteOwner:
    """This process's claim on a SQLite database file (nothing to do for other databases)."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self.path: Path | None = None
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self.path = Path(f"{url.database}.lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        if self.path is None or self._file is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="ascii")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            database = str(self.path)[: -len(".lock")]
            raise DatabaseInUse(
                f"the SQLite database {database} is in use by {holder}: SQLite serves one bot "
                "process. Stop the other one, or run several replicas on PostgreSQL "
                "(DATABASE_URL=postgresql+asyncpg://...).") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
