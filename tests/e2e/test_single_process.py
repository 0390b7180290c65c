"""SQLite serves one bot process (issue 13): a second `wenming run` on the same database file is
refused at start with a clear message, and the first goes on answering; the lock goes with
the process, so a killed bot's successor starts."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from bot.config import sqlite_url
from db.single_process import DatabaseInUse, SQLiteOwner
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer
from tests.e2e.chat import Chat
from tests.e2e.process import start_bot_process, stop_bot_process


def test_a_second_owner_of_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "w.db")
    first, second = SQLiteOwner(url), SQLiteOwner(url)
    first.acquire()
    with pytest.raises(DatabaseInUse, match="in use by process"):
        second.acquire()
    first.release()
    second.acquire()  # free again once the first let go
    second.release()
    SQLiteOwner("postgresql+asyncpg://x@h/db").acquire()  # nothing to hold elsewhere


async def wait_log(path: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"{text!r} not in {path}"
        await asyncio.sleep(0.1)


async def test_a_second_bot_process_on_one_sqlite_database_is_refused(
    sandbox_only: tuple[SandboxServer, SandboxClient], tmp_path: Path
) -> None:
    server, sb = sandbox_only
    url = sqlite_url(tmp_path / "wenming.db")
    for name in ("first", "second", "third"):
        (tmp_path / name).mkdir()
    first = start_bot_process(server, url, tmp_path / "first")
    try:
        await wait_log(tmp_path / "first" / "bot.log", "Wenming is running")
        second = start_bot_process(server, url, tmp_path / "second")
        code = await asyncio.to_thread(second.wait, 60)
        said = (tmp_path / "second" / "bot.log").read_text(errors="replace")
        assert code == 2
        assert "refusing to start" in said and "in use by process" in said
        assert "Traceback" not in said
        user = await sb.create_user("单进程", user_id=880101)
        reply = await Chat(sb, user["id"]).say("/help", timeout=30)  # the first still serves
        assert reply["text"]
        first.send_signal(signal.SIGKILL)  # the lock dies with the process
        first.wait(timeout=10)
        first = start_bot_process(server, url, tmp_path / "third")
        await wait_log(tmp_path / "third" / "bot.log", "Wenming is running")
    finally:
        stop_bot_process(first)
