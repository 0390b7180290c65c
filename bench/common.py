"""Helpers shared by the Wenming benchmarks (bench/inspection.py, bench/wenming_target.py).

Nothing here is measured itself: process memory and CPU readings, percentiles (the same
nearest-rank definition as bench/throughput.py), a sandbox client without a connection cap,
event-hook waiters for precise timestamps, and throwaway databases (SQLite or PostgreSQL)
migrated and seeded with the demo city plus any number of extra inspectors.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import resource
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp

from sandbox.client import SandboxClient
from sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parent.parent
# Where a PostgreSQL run creates its throwaway database (trust auth on the local server).
PG_SERVER_URL = os.environ.get("BENCH_PG_URL",
                               "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")

# ------------------------------------------------------------------------------- measuring


def pct(data: Iterable[float], q: float) -> float:
    """Nearest-rank percentile, as bench/throughput.py's Result.pct computes it."""
    values = sorted(data)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def proc_status() -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of this process in kB, from /proc/self/status."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:  # not Linux: fall back to ru_maxrss (kB on Linux, bytes on macOS)
        out["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return out


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def process_stats() -> dict[str, Any]:
    status = proc_status()
    return {"rss_kb": status.get("VmRSS"), "hwm_kb": status.get("VmHWM"),
            "cpu_s": round(cpu_seconds(), 4), "wall": time.perf_counter()}


class BenchClient(SandboxClient):
    """SandboxClient whose HTTP pool has no connection cap (aiohttp's default is 100), so
    hundreds of simulated people never queue for a socket inside the measuring process."""

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=0))
        return self._session


# --------------------------------------------------------------------------- event waiters


@dataclasses.dataclass
class Seen:
    """What the sandbox stored for the bot: when (perf_counter) and the message's look."""

    at: float
    message_id: int
    text: str
    buttons: list[tuple[str, str]]


class BotOutputWaiter:
    """One waiter per chat, resolved by the sandbox's in-process event hook.

    Each simulated person does one thing at a time, so a chat has at most one waiter: either
    for the bot's next new message, or for the next edit of a given message. The timestamp is
    taken inside the hook, at the moment the sandbox stores the bot's message, not when the
    simulated person's coroutine next runs.
    """

    def __init__(self, server: SandboxServer) -> None:
        self._waiting: dict[int, tuple[str, int | None, asyncio.Future[Seen]]] = {}
        self._server = server
        server.state.events.listeners.append(self._on_event)

    def close(self) -> None:
        try:
            self._server.state.events.listeners.remove(self._on_event)
        except ValueError:
            pass

    def expect_message(self, chat_id: int) -> asyncio.Future[Seen]:
        return self._expect(chat_id, "message", None)

    def expect_edit(self, chat_id: int, message_id: int) -> asyncio.Future[Seen]:
        return self._expect(chat_id, "edit", message_id)

    def forget(self, chat_id: int) -> None:
        self._waiting.pop(chat_id, None)

    def _expect(self, chat_id: int, kind: str, message_id: int | None) -> asyncio.Future[Seen]:
        fut: asyncio.Future[Seen] = asyncio.get_running_loop().create_future()
        self._waiting[chat_id] = (kind, message_id, fut)
        return fut

    def _on_event(self, event: dict[str, Any]) -> None:
        entry = self._waiting.get(event["chat_id"])
        if entry is None:
            return
        kind, message_id, fut = entry
        message = event.get("message") or {}
        if event["type"] != kind or not message.get("from", {}).get("is_bot"):
            return
        if message_id is not None and message.get("message_id") != message_id:
            return
        now = time.perf_counter()
        del self._waiting[event["chat_id"]]
        if fut.done():
            return
        markup = message.get("reply_markup") or {}
        buttons = [(b.get("text", ""), b.get("callback_data") or "")
                   for row in markup.get("inline_keyboard", []) for b in row]
        fut.set_result(Seen(now, int(message.get("message_id", 0)),
                            str(message.get("text") or message.get("caption") or ""), buttons))


# ------------------------------------------------------------------------------ databases


def backends_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring as help, and --backends (both by default)."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql")
    return parser


def city_rows(units: int, sites: int, site_types: tuple[str, ...] = ("community",)
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A synthetic district for the data benchmarks (bulletin, draw, plans): the office (id 1)
    over `units` sub-districts (ids 10...), and `sites` sites dealt round them and round the
    site types. (unit rows, site rows), to insert with SQLAlchemy Core."""
    unit_rows = [dict(id=1, code="office", name_zh="区创文办", name_en="Office",
                      kind="office", parent_id=None)]
    unit_rows += [dict(id=10 + u, code=f"sd{u}", name_zh=f"第{u + 1}街道",
                       name_en=f"Sub-district {u + 1}", kind="subdistrict", parent_id=1)
                  for u in range(units)]
    site_rows = [dict(id=s + 1, code=f"site{s}", name=f"点位{s}", name_en="",
                      site_type=site_types[s % len(site_types)], address="",
                      unit_id=10 + s % units) for s in range(sites)]
    return unit_rows, site_rows


def inspector_ids(count: int, first: int = 600_000) -> list[int]:
    """Telegram ids for benchmark inspectors (clear of the demo city's 10000-20002)."""
    return list(range(first, first + count))


async def create_database(kind: str, workdir: Path) -> str:
    """A new, empty database URL: a SQLite file in workdir or a throwaway PostgreSQL one."""
    from bot.config import sqlite_url

    if kind == "sqlite":
        return sqlite_url(workdir / "bench.db")
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    server = make_url(PG_SERVER_URL)
    name = f"wenming_bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    """Drop a database create_database made (SQLite files go with their temp directory)."""
    if not url.startswith("postgresql"):
        return
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    parsed = make_url(url)
    admin = create_async_engine(make_url(PG_SERVER_URL), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def seed_database(url: str, inspectors: Iterable[int] = (),
                        site_code: str = "crowne_plaza") -> Any:
    """Migrate, then import the demo city plus one inspector per id, each assigned site_code.

    The extra inspectors are appended to the parsed org file (no YAML is written): they are
    people who have not met the bot yet, so the import leaves pending assignments that the
    gatekeeper applies on their first message, exactly as for a real imported inspector.
    Returns the demo city's OrgFile (without the extra inspectors), for sandbox.run's
    seed_sandbox.
    """
    from bot.config import DEMO_CITY, STANDARDS_DIR
    from bot.domain.org import PersonSpec, load_org_file
    from bot.domain.standards import load_standards
    from bot.services.org_import import import_org
    from db.migrate import upgrade_async
    from db.session import create_engine, create_sessionmaker
    from db.uow import UnitOfWorkFactory

    await upgrade_async(url)
    org = load_org_file(DEMO_CITY, set(load_standards(STANDARDS_DIR)))
    extra = tuple(PersonSpec(telegram_id=uid, name=f"督查{uid}", role="inspector",
                             unit="district_office", sites=(site_code,), line=0)
                  for uid in inspectors)
    engine = create_engine(url)
    try:
        await import_org(UnitOfWorkFactory(create_sessionmaker(engine)),
                         dataclasses.replace(org, people=org.people + extra))
    finally:
        await engine.dispose()
    return org
