"""Issue 14, a draw no one can rig or doubt, through `wenming sandbox` and its clock: the
evening before a day, the campaign office's group is told the SHA-256 of the seed that will
draw the day's spot checks; the next morning the drawn sites are in the inspectors' own lists
only; the evening after the day the seed is revealed in the office's group, it hashes to what
was announced, the sites it names are the ones the inspectors were sent, and anyone holding
the seed re-runs the draw with `wenming draw --date D --seed S` and gets the same sites."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import sqlite_url
from bot.render.i18n import t
from sandbox.client import SandboxClient
from tests.conftest import ROOT
from tests.e2e.chat import Chat, body, shown
from tests.e2e.test_plans_day import next_local
from tests.e2e.test_sandbox_clock import bot_says, last_id, sandbox

pytestmark = pytest.mark.e2e
__all__ = ["sandbox"]

INSPECTOR = 10001  # 张督查
OFFICE_GROUP = -1001001  # 区创文办工作群: the draw's hash and seed
UNIT_GROUPS = (-1001002, -1001003)  # units being checked: they must not learn the sites early
SHANGHAI = ZoneInfo("Asia/Shanghai")
ZH = "zh-hans"
HEX = re.compile(r"\b[0-9a-f]{64}\b")


def spot_sites(listed: str) -> list[str]:
    """The sites a morning list marks as drawn for a spot check ("⬜ 名称 · 随机抽查")."""
    kind = t(ZH, "plans.kind.spot")
    return [line.split(" ", 1)[1].rsplit(" · ", 1)[0] for line in listed.splitlines()
            if line.endswith(" · " + kind)]


async def test_the_hash_before_the_day_the_seed_after_and_anyone_can_rerun_it(
    sandbox: SandboxClient, tmp_path: Path,
) -> None:
    sb = sandbox
    await Chat(sb, INSPECTOR).say("/start", timeout=30)

    # Sunday 20:01: the office's group is told the hash of Monday's seed.
    clock = await sb.clock()
    monday = next_local(clock["now"], 0, dt.time(7, 31))
    sunday_evening = dt.datetime.combine(monday.date() - dt.timedelta(days=1),
                                         dt.time(20, 1), SHANGHAI)
    if sunday_evening.timestamp() <= clock["now"]:  # it is Sunday evening already
        monday += dt.timedelta(days=7)
        sunday_evening += dt.timedelta(days=7)
    day = monday.date().isoformat()
    before = await last_id(sb, OFFICE_GROUP)
    await sb.advance_clock(seconds=sunday_evening.timestamp() - clock["now"])
    commit = await bot_says(sb, OFFICE_GROUP, before, f"{day} 随机抽查：抽签已封存",
                            timeout=30)
    announced = HEX.findall(body(commit))
    assert len(announced) == 1, body(commit)
    seed_hash = announced[0]

    # Monday morning: the drawn sites are in 张督查's list, and in no unit's group.
    clock = await sb.clock()
    before = await last_id(sb, INSPECTOR)
    await sb.advance_clock(seconds=monday.timestamp() - clock["now"])
    listed = await bot_says(sb, INSPECTOR, before, shown(t(ZH, "plans.list.title",
                                                      date=f"{monday.month}月{monday.day}日")),
                            timeout=30)
    mine = spot_sites(body(listed))
    assert mine, body(listed)  # the demo city's draw gives every inspector some
    for group in UNIT_GROUPS:
        assert not any(name in body(m) for m in await sb.messages(group) for name in mine)

    # Tuesday 20:01: Monday's seed is revealed, with the sites, and hashes to the announcement.
    clock = await sb.clock()
    tuesday_evening = sunday_evening + dt.timedelta(days=2)
    before = await last_id(sb, OFFICE_GROUP)
    await sb.advance_clock(seconds=tuesday_evening.timestamp() - clock["now"])
    reveal = await bot_says(sb, OFFICE_GROUP, before, f"{day} 随机抽查：种子公开", timeout=30)
    text = body(reveal)
    seed = re.search(r"种子：(\S+)", text)
    assert seed is not None, text
    assert hashlib.sha256(bytes.fromhex(seed[1])).hexdigest() == seed_hash
    assert "即抽查日之前在本群公布" in text  # told before the day, and said so
    assert all(f"• {name}（抽查）" in text for name in mine), (mine, text)

    # Anyone with the seed re-runs the draw against the stored candidates: the same sites.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WENMING_", "TELEGRAM_")) and k != "DATABASE_URL"}
    env["DATABASE_URL"] = sqlite_url(tmp_path / "sandbox" / "sandbox.db")
    rerun = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "bot.cli", "draw", "--date", day, "--seed", seed[1]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "seed matches the hash stored for the day" in rerun.stdout
    assert "announced before the day" in rerun.stdout
    assert "the stored draw is the same" in rerun.stdout
