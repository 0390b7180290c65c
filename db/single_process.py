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


class ProcessLock:
    """An exclusive `flock` on one file for as long as this process wants it (or lives); the
    file names its holder ("process N", then "process N (stopping)" while it shuts down)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def try_acquire(self) -> str | None:
        """None once held; otherwise who holds it ("process N" or "process N (stopping)")."""
        if self._file is not None:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="ascii")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            return holder
        self._file = handle
        self._write(f"process {os.getpid()}")
        return None

    def mark_stopping(self) -> None:
        """Say that the holder is on its way out, so a successor may wait for it."""
        if self._file is not None:
            self._write(f"process {os.getpid()} (stopping)")

    def _write(self, text: str) -> None:
        assert self._file is not None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(text + "\n")
        self._file.flush()

    def release(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


class SQLiteOwner:
    """This process's claim on a SQLite database file (nothing to do for other databases)."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self.path: Path | None = None
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self.path = Path(f"{url.database}.lock")
        self._lock = ProcessLock(self.path) if self.path is not None else None

    def acquire(self) -> None:
        if self._lock is None or self.path is None:
            return
        holder = self._lock.try_acquire()
        if holder is not None:
            database = str(self.path)[: -len(".lock")]
            raise DatabaseInUse(
                f"the SQLite database {database} is in use by {holder}: SQLite serves one bot "
                "process. Stop the other one, or run several replicas on PostgreSQL "
                "(DATABASE_URL=postgresql+asyncpg://...).")

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
