"""Issue 11 item 10: time-based work can be seen in the sandbox by moving its clock.

`wenming sandbox` runs the bot on the sandbox's clock (real time + an offset that its clock
control moves forward). A newcomer never saw a reminder, an escalation or a bulletin: they need
days to pass. Here the real `wenming sandbox` process is started, an admin gives a unit a task
due tomorrow, and the sandbox's user API moves the clock: two days on, the unit's group gets
the deadline reminder; three more, the escalation reaches the campaign office's group; a jump to
the next bulletin time brings the weekly bulletin. Each arrives within seconds (the scheduler's
tick is 20 s: a clock change wakes it), and the messages are dated on the moved clock.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sandbox.client import SandboxClient
from tests.conftest import ROOT
from tests.e2e.chat import Chat, body

pytestmark = pytest.mark.e2e

ADMIN = 10000  # 王管理
LIAISON_GROUP = -1001003  # 第1网络包抓联络小组工作群 (the hotel's unit)
OFFICE_GROUP = -1001001  # 区创文办工作群 (its parent has no group: escalation goes here)
DAY = 86400
PROMPTLY = 15.0  # below the schedule's 20 s tick: only a woken scheduler makes it
JSON = dict[str, Any]


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[SandboxClient]:
    """`wenming sandbox` as a newcomer starts it (a fresh sandbox database under tmp_path)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WENMING_", "TELEGRAM_")) and k != "DATABASE_URL"}
    env["WENMING_HTTP_LISTEN"] = "127.0.0.1:0"  # another run here may hold the default 8080
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "sandbox", "--port", "0", "--fresh",
        "--data-dir", str(tmp_path / "sandbox"), cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    seen: list[str] = []
    url = None
    try:
        while url is None:
            line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode()
            if not line:
                pytest.fail("wenming sandbox stopped:\n" + "".join(seen))
            seen.append(line)
            if "Open the web chat:" in line:
                url = line.split("Open the web chat:")[1].strip().rstrip("/")
        drain = asyncio.create_task(_drain(proc.stdout))
        async with SandboxClient(url) as client:
            yield client
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    drain.cancel()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def last_id(sb: SandboxClient, chat_id: int) -> int:
    messages = await sb.messages(chat_id)
    return int(messages[-1]["message_id"]) if messages else 0


async def bot_says(sb: SandboxClient, chat_id: int, after: int, *needles: str,
                   timeout: float = PROMPTLY) -> JSON:
    """The bot's first message in the chat after `after` whose text holds every needle."""
    def match(m: JSON) -> bool:
        return all(n in body(m) for n in needles)

    return await sb.wait_for_bot_message(chat_id, after_message_id=after, predicate=match,
                                         timeout=timeout)


async def test_moving_the_sandbox_clock_brings_reminder_escalation_and_bulletin(
    sandbox: SandboxClient,
) -> None:
    sb = sandbox
    clock = await sb.clock()
    assert clock["offset_seconds"] == 0
    assert [j["name"] for j in clock["jumps"]] == ["bulletin"]

    admin = Chat(sb, ADMIN)
    created = await admin.say("/task 东岭皇冠假日酒店 1 大堂垃圾桶满溢", timeout=30)
    assert "已派发整改任务" in body(created), body(created)
    task = body(created).split("#", 1)[1].split()[0]
    await bot_says(sb, LIAISON_GROUP, 0, f"整改任务 #{task}", timeout=30)  # the card

    # Two days on: past tomorrow's deadline. The unit's group is reminded.
    before = await last_id(sb, LIAISON_GROUP)
    moved = await sb.advance_clock(days=2)
    assert moved["offset_seconds"] == 2 * DAY
    reminder = await sb.wait_for_bot_message(
        LIAISON_GROUP, after_message_id=before, timeout=PROMPTLY,
        predicate=lambda m: f"#{task}" in body(m) and ("整改到期" in body(m)
                                                       or "逾期提醒" in body(m)))
    # Dated on the sandbox's clock, as every message is.
    assert reminder["date"] >= time.time() + 2 * DAY - 120

    # Three more days: overdue past 48 hours, escalated above the unit.
    before = await last_id(sb, OFFICE_GROUP)
    await sb.advance_clock(days=3)
    await bot_says(sb, OFFICE_GROUP, before, "逾期上报", f"#{task}")

    # To the next bulletin time: the weekly bulletin reaches the groups.
    before = await last_id(sb, LIAISON_GROUP)
    jumped = await sb.jump_clock("bulletin")
    assert jumped["offset_seconds"] > 5 * DAY
    # It covers the week before the one jumped into (not one passed on the way).
    issued = datetime.fromtimestamp(jumped["now"], ZoneInfo("Asia/Shanghai")).date()
    year, week, _ = (issued - timedelta(days=7)).isocalendar()
    bulletin = await bot_says(sb, LIAISON_GROUP, before, f"{year}年第{week}周 创文考评通报",
                              timeout=30)
    assert bulletin.get("photo") or bulletin.get("document")
    # The combined assessment (考评): how it is made, and the liaison group's, folding in the
    # demo city's municipal test (bot/defaults/demo-scores.csv: liaison_1, 2026-Q3, 82).
    # Each test names the period its figures come from (bot/defaults/demo-scores.csv).
    assert "考评 = 督查 50% + 国测 20%（2026） + 省测 15%（2026） + 市测 15%（2026-Q3）" in \
        body(bulletin), body(bulletin)
    assert "第1网络包抓联络小组：考评 82.0" in body(bulletin), body(bulletin)

