"""An online backup of a SQLite database, taken while the bot runs.

SQLite's backup API (the stdlib's `sqlite3.Connection.backup`) copies the pages under its own
locking, so the copy is consistent even while the bot writes; copying the file with `cp`
is not. PostgreSQL has pg_dump for this (README, Operations).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(ValueError):
    pass


def backup_sqlite(database_url: str, target: Path) -> int:
    """Copy the database at `database_url` to `target` (a new file); returns its size."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(f"{url.get_backend_name()} is backed up with its own tools "
                          "(PostgreSQL: pg_dump -Fc); `wenming db backup` copies SQLite")
    source = Path(url.database or "")
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    if target.exists():
        raise BackupError(f"{target} exists; choose a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, \
            sqlite3.connect(target) as dst:
        src.backup(dst)
    return target.stat().st_size
