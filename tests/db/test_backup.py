"""`wenming db backup` (issue 13, operations): a consistent copy of the SQLite database taken
while it is being written to, and a clear refusal for PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import sqlite_url
from db.migrate import upgrade


def test_a_backup_taken_during_writes_is_a_consistent_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "wenming.db"
    upgrade(sqlite_url(db))
    stop = threading.Event()

    def write() -> None:  # the bot, busy
        with sqlite3.connect(db) as conn:
            i = 0
            while not stop.is_set():
                i += 1
                conn.execute("INSERT INTO inbox (update_id, chat_key, payload, received_at, "
                             "attempts) VALUES (?, 1, '{}', '2026-12-05 00:00:00', 0)", (i,))
                conn.commit()

    writer = threading.Thread(target=write)
    writer.start()
    monkeypatch.setenv("DATABASE_URL", sqlite_url(db))
    try:
        assert main(["db", "backup", str(tmp_path / "copy.db")]) == 0
    finally:
        stop.set()
        writer.join()
    assert "copy.db" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("SELECT version_num FROM alembic_version").fetchone() is not None
    # Never over an existing file.
    assert main(["db", "backup", str(tmp_path / "copy.db")]) == 2


def test_postgresql_is_pointed_to_pg_dump(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://wenming@db/wenming")
    assert main(["db", "backup", str(tmp_path / "x.db")]) == 2
    assert "pg_dump" in capsys.readouterr().err
