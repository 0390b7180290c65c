"""`wenming sandbox`: the local Bot API sandbox, a demo city, and the real bot pointed at it.

This is how a newcomer first meets the bot without a Telegram token: it prints the address of
the sandbox's web chat page, where one can be an inspector, a resident or a unit's group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import DEMO_CITY, DEMO_SCORES, Secret, Settings, sqlite_url
from bot.domain.org import OrgFile, load_org_file
from bot.domain.standards import load_standards
from db.single_process import ProcessLock
from sandbox.client import SandboxClient
from sandbox.clock import SandboxClock
from sandbox.memory import SandboxMemory
from sandbox.server import SandboxServer
from sandbox.updates import UpdateQueue

if TYPE_CHECKING:
    from bot.app import Wenming

log = logging.getLogger(__name__)
SANDBOX_TOKEN = "7000000001:WenmingSandboxLocalToken"
# A few residents who are in no import file, so the demo has people to report problems.
DEMO_RESIDENTS = ((20001, "赵居民"), (20002, "Alice"))
# A sandbox stopping on the same data directory (Ctrl-C, then `bin/run` again at once) is
# waited for; one still running is not, beyond a short grace for a stop just begun.
WAIT_FOR_STOPPING_S = 60.0
GRACE_S = 3.0


class SandboxInUse(RuntimeError):
    """Another `wenming sandbox` runs on this data directory."""


async def claim_data_dir(data_dir: Path) -> ProcessLock:
    """This process's hold on data_dir for its whole run: one sandbox per directory, and a new
    one starts only after the previous one has finished writing there."""
    lock = ProcessLock(data_dir / "sandbox.lock")
    started = time.monotonic()
    told = False
    while (holder := lock.try_acquire()) is not None:
        waited = time.monotonic() - started
        stopping = holder.endswith("(stopping)")
        if waited >= (WAIT_FOR_STOPPING_S if stopping else GRACE_S):
            state = "is still stopping" if stopping else "is running"
            raise SandboxInUse(
                f"another wenming sandbox ({holder.removesuffix(' (stopping)')}) {state} on "
                f"{data_dir}. Stop it first (Ctrl-C in its terminal), or give this one another "
                "directory with --data-dir.")
        if not told:
            print(f"waiting for the sandbox already on {data_dir} ({holder}) to stop…",
                  flush=True)
            told = True
        await asyncio.sleep(0.2)
    return lock


def free_port(host: str, preferred: int) -> int:
    """The preferred port if it is free, else one the OS picks."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free port")


async def seed_sandbox(client: SandboxClient, org: OrgFile) -> None:
    """Create the org file's people and group chats in the sandbox, with the bot in each group."""
    existing_users = {u["id"] for u in await client.users()}
    for person in org.people:
        if person.telegram_id not in existing_users:
            lang = "en" if person.name.isascii() else "zh-hans"
            await client.create_user(person.name, user_id=person.telegram_id,
                                     language_code=lang)
    for user_id, name in DEMO_RESIDENTS:
        if user_id not in existing_users:
            await client.create_user(name, user_id=user_id,
                                     language_code="en" if name.isascii() else "zh-hans")
    chats = {c["id"]: c for c in await client.chats()}
    admin = next((p.telegram_id for p in org.people if p.role == "admin"), None)
    for group in org.groups:
        if group.chat_id not in chats:
            await client.create_group(group.title, chat_id=group.chat_id)
        members = [p.telegram_id for p in org.people
                   if p.unit == group.unit or p.role == "admin"]
        for user_id in members:
            with contextlib.suppress(Exception):
                await client.add_member(group.chat_id, user_id)
        if not chats.get(group.chat_id, {}).get("bot_member") and admin is not None:
            await client.add_bot(group.chat_id, admin)


def follow_sandbox_clock(clock: SandboxClock, bot: Wenming) -> None:
    """Offer "the next bulletin" as a clock jump, and look for due work at every change."""

    def next_bulletin(now: float) -> float:
        due = bot.scheduler.next_bulletin_at(datetime.fromtimestamp(now, UTC))
        return due.timestamp() + 1

    clock.add_jump("bulletin", "下次周报 next bulletin", next_bulletin)
    clock.on_change(bot.scheduler.wake)
    clock.on_change(bot.outbox.wake)


async def start_demo_bot(
    server: SandboxServer, settings: Settings, data_dir: Path, *, fresh: bool = False
) -> Wenming:
    """The demo city in its own database under data_dir, its people and groups in the sandbox,
    and the bot started against the sandbox, on the sandbox's clock."""
    from sqlalchemy import delete

    from bot.app import Wenming, build_application
    from bot.domain.plans import load_plans
    from bot.services.org_import import import_org
    from bot.services.plans import import_plans
    from db.migrate import upgrade_async
    from db.models import IntakeState

    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = data_dir / "sandbox.db"
    memory = SandboxMemory(data_dir, server.state)
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        memory.forget()
    # Update ids and the clock continue where the last run on this directory left them.
    memory.restore()
    # The sandbox never touches the real database: it has its own, seeded with the demo city.
    db_url = sqlite_url(db_path)
    await upgrade_async(db_url)
    await continue_above_handled_updates(server.state.updates, db_url)
    org = load_org_file(DEMO_CITY, set(load_standards(settings.standards_dir)))
    sandbox_settings = settings.with_(
        bot_token=Secret(SANDBOX_TOKEN), api_base_url=server.api_base_url,
        file_base_url=server.file_base_url, database_url=Secret(db_url),
        media_dir=data_dir / "media",
        admin_ids=settings.admin_ids | {p.telegram_id for p in org.people if p.role == "admin"},
    )
    # The bot runs on the sandbox's clock (real time + the offset its clock control adds);
    # production never reads it: only here is it passed as the bot's clock.
    bot = Wenming(build_application(sandbox_settings, clock=server.state.clock.now))
    sessions = bot.deps.uow.sessions
    await import_org(bot.deps.uow, org)
    await import_demo_scores(bot)
    # The demo city's supervision plans (plans.yaml): each inspector's list every morning.
    async with bot.deps.uow() as uow:
        await import_plans(uow, load_plans(sandbox_settings.plans_file),
                           server.state.clock.now())
        await uow.commit(mark_update_handled=False)
    # The sandbox forgets its chats and pending updates on restart (it keeps only its update
    # numbering and clock, sandbox/memory.py); the bot's stored offset goes, so that polling
    # takes whatever comes next and never skips ids below an offset only the bot remembers.
    async with sessions() as s, s.begin():
        await s.execute(delete(IntakeState))
    async with SandboxClient(server.url) as client:
        await seed_sandbox(client, org)
    follow_sandbox_clock(server.state.clock, bot)
    memory.attach()
    await bot.start()
    return bot


async def continue_above_handled_updates(updates: UpdateQueue, db_url: str) -> None:
    """A data directory from before the sandbox kept its update numbering (or whose state
    file was lost) still holds the bot's inbox: number new updates above every id in it,
    or the bot ignores them as delivered again."""
    from sqlalchemy import func, select
    from sqlalchemy.ext.asyncio import create_async_engine

    from db.models import InboxUpdate

    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            highest = await conn.scalar(select(func.max(InboxUpdate.update_id)))
    finally:
        await engine.dispose()
    if highest is not None:
        updates.continue_from(int(highest) + 1)


async def import_demo_scores(bot: Wenming) -> None:
    """The demo city's external test scores, so its bulletin shows the combined assessment
    (importing them again replaces them: each start leaves the same rows)."""
    from bot.services.assessment import import_scores

    if bot.deps.assessment is None:
        return
    async with bot.deps.uow() as uow:
        outcome = await import_scores(uow, DEMO_SCORES.read_bytes(), DEMO_SCORES.name,
                                      bot.deps.assessment.config, bot.deps.clock())
        if not outcome.problems:
            await uow.commit()


async def run_sandbox(
    settings: Settings, *, host: str, port: int, web_port: int | None, data_dir: Path,
    fresh: bool = False,
) -> None:
    lock = await claim_data_dir(data_dir)
    server = SandboxServer(host, free_port(host, port))
    await server.start()
    try:
        bot = await start_demo_bot(server, settings, data_dir, fresh=fresh)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(
            "\n  Wenming sandbox is running.\n"
            f"  Open the web chat:   {server.url}/\n"
            f"  Bot API endpoint:    {server.api_base_url}<token>/<method>\n"
            f"  Sandbox database:    {data_dir / 'sandbox.db'}\n"
            "  Demo people: 王管理 admin (10000), 张督查 / 李测评 inspectors (10001, 10002),\n"
            "  unit members 10011-10013, residents 20001-20002.\n"
            "  The bot runs on the sandbox's clock: the page's 时钟 Clock panel moves it forward\n"
            "  (+1 hour, +1 day, to the next bulletin) to see reminders and bulletins.\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            print("stopping…", flush=True)
            lock.mark_stopping()
            await bot.stop()
    finally:
        await server.stop()
        lock.release()
