"""Broadcasts through the local Bot API sandbox with its flood control ON.

* The bot runs as a process (`wenming run`), starts with a weekly bulletin it missed while it
  was down, is SIGKILLed in the middle of sending it to 120 groups, and is started again:
  every group ends up with exactly one bulletin, and the office with exactly one digest.
* The sender in-process: messages to one private chat are paced (Telegram allows ~1/s per
  chat; PTB's limiter does not pace private chats) without holding up other chats; a group
  that removed the bot is deactivated and the admins are told.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from telegram.ext import ExtBot

from bot.config import DEFAULTS_DIR
from bot.domain.org import load_org_file
from bot.domain.standards import load_standards
from bot.render.i18n import t
from bot.services.org_import import import_org
from bot.telegram.outbox import OutboxSender, broadcast_rate_limiter
from db.models import GroupBinding, JobRun, OutboxMessage, Person, Unit
from db.repositories import OutboxRepository
from db.session import create_engine, create_sessionmaker
from db.uow import UnitOfWorkFactory
from sandbox.client import SandboxClient
from sandbox.run import seed_sandbox
from sandbox.server import SandboxServer
from tests.conftest import DEMO_CITY, ROOT, TEST_TOKEN, wait_until
from tests.e2e.process import start_bot_process

EXTRA_GROUPS = 113  # + the demo city's 7 = 120 groups
FIRST_GROUP = -1002000000
ADMIN = 10000


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[tuple[SandboxServer, SandboxClient]]:
    async with broadcast_world(database_url, EXTRA_GROUPS) as running:
        yield running


@contextlib.asynccontextmanager
async def broadcast_world(
    database_url: str, extra_groups: int
) -> AsyncIterator[tuple[SandboxServer, SandboxClient]]:
    """The demo city plus `extra_groups` bound groups, an admin, a bot that ran before; the
    sandbox with flood control on and the set-up's updates confirmed."""
    server = SandboxServer(flood_control=True)
    await server.start()
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    org = load_org_file(DEMO_CITY, set(load_standards(ROOT / "standards")))
    await import_org(UnitOfWorkFactory(sessions), org)
    async with sessions() as s, s.begin():
        unit = await s.scalar(select(Unit.id).where(Unit.code == "houqijie"))
        assert unit is not None
        for i in range(extra_groups):
            s.add(GroupBinding(chat_id=FIRST_GROUP - i, unit_id=unit, title=f"网格{i}群"))
        s.add(Person(id=ADMIN, first_name="王管理", role="admin"))
        # A bot that ran before and was down (a fresh install would backfill nothing).
        s.add(JobRun(name="digest", period="2000-01-01", detail={"groups": 1}))
    await engine.dispose()
    client = SandboxClient(server.url)
    await client.__aenter__()
    await seed_sandbox(client, org)
    await client.set_flood_control(False)  # setting up is not what is measured
    for i in range(extra_groups):
        await client.create_group(f"网格{i}群", chat_id=FIRST_GROUP - i)
        await client.add_bot(FIRST_GROUP - i, ADMIN)
    await client.send_text(ADMIN, "/start")  # the admin can now be written to privately
    # Confirm the set-up's updates (bot added to 116 groups): the greetings are not under test.
    bot = ExtBot(TEST_TOKEN, base_url=server.api_base_url, base_file_url=server.file_base_url)
    async with bot:  # (a hundred at a time: getUpdates' limit)
        updates = await bot.get_updates(timeout=0)
        while updates:
            updates = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    await client.set_flood_control(True)
    try:
        yield server, client
    finally:
        await client.close()
        await server.stop()


def start_bot(server: SandboxServer, database_url: str, tmp_path: Path,
              **env_extra: str) -> subprocess.Popen[bytes]:
    schedule = tmp_path / "schedule.yaml"
    if not schedule.exists():
        text = (DEFAULTS_DIR / "schedule.yaml").read_text(encoding="utf-8")
        # Bulletin and digest fall due at 00:00 today (this week's Monday for the bulletin), so
        # whenever the test runs, both are "missed today" and still timely to send.
        text = text.replace("tick_seconds: 20", "tick_seconds: 0.5")
        text = text.replace('  time: "09:00"', '  time: "00:00"')
        text = text.replace('  time: "08:30"', '  time: "00:00"')
        schedule.write_text(text, encoding="utf-8")
    return start_bot_process(server, database_url, tmp_path,
                             WENMING_SCHEDULE_FILE=str(schedule), **env_extra)


def groups(extra_groups: int = EXTRA_GROUPS) -> list[int]:
    demo = [-1001001, -1001002, -1001003, -1001004, -1001005, -1001006, -1001007]
    return demo + [FIRST_GROUP - i for i in range(extra_groups)]


async def bulletins_per_group(sb: SandboxClient,
                              extra_groups: int = EXTRA_GROUPS) -> dict[int, int]:
    counts = {}
    for chat in groups(extra_groups):
        messages = await sb.bot_messages(chat)
        counts[chat] = sum(1 for m in messages if m.get("photo") or m.get("document"))
    return counts


async def accepted_sends_recorded(database_url: str, delivered: list[object]) -> None:
    """Wait until every bulletin Telegram accepted is recorded as sent in the outbox: a kill
    after that cannot fall inside the one window no bot can close (Telegram accepted the
    message and the bot died before recording it, bot/telegram/outbox.py). A fixed pause was
    not enough on a loaded machine (CI: a group got its bulletin twice)."""
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)

    async def recorded() -> bool:
        async with sessions() as s:
            sent = await s.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.purpose == "bulletin", OutboxMessage.status == "sent"))
        return (sent or 0) >= len(delivered)

    try:
        await wait_until(recorded, timeout=60, interval=0.05)
    finally:
        await engine.dispose()


async def _nonempty(found: Awaitable[list[dict[str, object]]]) -> bool:
    return bool(await found)


async def assert_digest_and_bulletin_done_once(sb: SandboxClient, database_url: str) -> set[str]:
    """The office got one digest; both jobs ran once and every bulletin row is sent. Returns
    the replicas that sent the bulletin rows."""
    title = re.sub(r"<[^>]+>", "", t("zh-hans", "scheduler.digest.title", day="")).strip()

    async def digests() -> list[dict[str, object]]:
        office = await sb.bot_messages(-1001001)
        return [m for m in office if str(m.get("text", "")).startswith(title)]

    # The office's group is paced as any group (20 a minute), and its bulletin, the digest
    # and the evening's seed hash may all be queued there: the digest may come a little after
    # the last group's bulletin.
    await wait_until(lambda: _nonempty(digests()), timeout=60, interval=0.2)
    assert len(await digests()) == 1
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    async with sessions() as s:
        runs = (await s.scalars(select(JobRun.name)
                                .where(JobRun.period != "2000-01-01",
                                       # (the daily retention pass runs too, and the
                                       # spot checks' seed job and the inspectors' morning
                                       # lists, or their skips, are recorded)
                                       JobRun.name.not_in(("retention", "draw_seeds",
                                                           "plans"))))).all()

    # Telegram (the sandbox) shows a message as soon as it accepts it; the bot records the
    # row as sent when the answer comes back, which on a loaded machine may take a moment
    # (CI once checked inside it). A row still not sent after that is a real failure, named.
    async def unsent() -> list[tuple[object, ...]]:
        async with sessions() as s:
            return [tuple(r) for r in (await s.execute(
                select(OutboxMessage.chat_id, OutboxMessage.status, OutboxMessage.claimed_by,
                       OutboxMessage.attempts, OutboxMessage.last_error)
                .where(OutboxMessage.status != "sent",
                       OutboxMessage.purpose == "bulletin"))).all()]

    async def all_sent() -> bool:
        return not await unsent()

    try:
        await wait_until(all_sent, timeout=30, interval=0.2)
    except TimeoutError:
        pass
    pending = await unsent()
    async with sessions() as s:
        senders = set((await s.scalars(select(OutboxMessage.claimed_by).where(
            OutboxMessage.purpose == "bulletin"))).all())
    await engine.dispose()
    assert sorted(runs) == ["bulletin", "digest"]
    assert pending == [], pending
    return {sender for sender in senders if sender is not None}


async def test_kill_mid_broadcast_every_group_gets_its_bulletin_once(
    world: tuple[SandboxServer, SandboxClient], database_url: str, tmp_path: Path
) -> None:
    server, sb = world
    delivered: list[int] = []

    def on_event(event: dict[str, object]) -> None:
        message = event.get("message")
        if event.get("type") == "message" and isinstance(message, dict) and (
                message.get("photo") or message.get("document")):
            delivered.append(int(str(event["chat_id"])))

    server.state.events.listeners.append(on_event)
    proc = start_bot(server, database_url, tmp_path)
    try:
        # The latest bulletin was missed while the bot was down, so it runs on start.
        await wait_until(lambda: len(delivered) >= 15, timeout=120, interval=0.005)
        # From now on the "network" drops every send before Telegram sees it, so that the kill
        # cannot land inside the one window no bot can close (Telegram accepted a message and
        # the bot died before recording it, see bot/telegram/outbox.py). Sends already accepted are
        # recorded first; then the process dies with the broadcast half done.
        await sb.inject_fault("sendPhoto", count=100_000, drop=True)
        await sb.inject_fault("sendDocument", count=100_000, drop=True)
        await asyncio.sleep(0.2)  # a send on its way when the faults went in is answered
        await accepted_sends_recorded(database_url, delivered)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        await sb.clear_faults()
        at_kill = len(delivered)
        assert at_kill < len(groups()), "the broadcast finished before the kill; vacuous"

        proc = start_bot(server, database_url, tmp_path)
        try:
            await wait_until(lambda: len(set(delivered)) == len(groups()), timeout=120,
                             interval=0.1)
        except TimeoutError:
            log = (tmp_path / "bot.log").read_text(errors="replace")[-4000:]
            raise AssertionError(
                f"only {len(set(delivered))} groups got it; log:\n{log}") from None
        await asyncio.sleep(2)  # time for a duplicate to show up, if there were one
        counts = await bulletins_per_group(sb)
        assert set(counts.values()) == {1}, {c: n for c, n in counts.items() if n != 1}
        await assert_digest_and_bulletin_done_once(sb, database_url)
    finally:
        server.state.events.listeners.remove(on_event)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


async def test_private_chats_are_paced_and_a_removed_group_is_deactivated(
    world: tuple[SandboxServer, SandboxClient], database_url: str, tmp_path: Path
) -> None:
    server, sb = world
    resident = await sb.create_user("居民", user_id=40001, started=True)
    others = [await sb.create_user(f"居民{i}", user_id=40100 + i, started=True)
              for i in range(20)]
    await sb.remove_bot(FIRST_GROUP, ADMIN)
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    async with sessions() as s, s.begin():
        outbox = OutboxRepository(s)
        for k in range(8):
            await outbox.enqueue(f"t:r:{k}", resident["id"], "sendMessage", {"text": f"r{k}"})
        for i, other in enumerate(others):
            await outbox.enqueue(f"t:o:{i}", other["id"], "sendMessage", {"text": f"o{i}"})
        await outbox.enqueue("t:gone", FIRST_GROUP, "sendMessage", {"text": "gone"})
        await outbox.enqueue("t:gone2", FIRST_GROUP, "sendMessage", {"text": "gone again"})

    arrivals: dict[int, list[float]] = {}

    def on_event(event: dict[str, object]) -> None:
        if event.get("type") == "message":
            arrivals.setdefault(int(str(event["chat_id"])), []).append(time.monotonic())

    server.state.events.listeners.append(on_event)
    bot = ExtBot(TEST_TOKEN, base_url=server.api_base_url, base_file_url=server.file_base_url,
                 rate_limiter=broadcast_rate_limiter())
    await bot.initialize()
    from db.types import utcnow

    sender = OutboxSender(bot, sessions, utcnow, idle_interval=0.1)
    errors_before = (await sb.stats())["errors"].get("429", 0)
    started = time.monotonic()
    sender.start()
    try:
        async def all_private_sent() -> bool:
            async with sessions() as s:
                left = await s.scalar(select(func.count()).select_from(OutboxMessage)
                                      .where(OutboxMessage.status == "pending"))
            return left == 0

        await wait_until(all_private_sent, timeout=30, interval=0.1)
    finally:
        await sender.stop()
        await bot.shutdown()
        server.state.events.listeners.remove(on_event)
    # One private chat: 8 messages, about a second apart, in order, no 429.
    mine = arrivals[resident["id"]]
    assert len(mine) == 8
    gaps = [b - a for a, b in itertools.pairwise(mine)]
    assert min(gaps) >= 0.95
    texts = [m["text"] for m in await sb.bot_messages(resident["id"])]
    assert texts == [f"r{k}" for k in range(8)]
    # The others did not queue behind it: all 20 were out within the first second.
    assert max(arrivals[o["id"]][0] for o in others) - started < 1.5
    assert (await sb.stats())["errors"].get("429", 0) == errors_before
    # The group that removed the bot: deactivated, its messages failed, the admin told.
    async with sessions() as s:
        group = await s.get(GroupBinding, FIRST_GROUP)
        failed = (await s.scalars(select(OutboxMessage.status)
                                  .where(OutboxMessage.chat_id == FIRST_GROUP))).all()
        notice = await s.scalar(select(OutboxMessage).where(
            OutboxMessage.chat_id == ADMIN, OutboxMessage.purpose == "admin_notice"))
    await engine.dispose()
    assert group is not None and group.active is False
    assert failed == ["failed", "failed"]
    assert notice is not None and notice.status == "sent"
    admin_texts = [m.get("text", "") for m in await sb.bot_messages(ADMIN)]
    assert any(f"{FIRST_GROUP}" in text and "网格0群" in text for text in admin_texts)
