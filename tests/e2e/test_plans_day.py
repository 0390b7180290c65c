"""Issue 14, each inspector's day, through `wenming sandbox` and its clock: on Monday morning
张督查's list of the weekly door-to-door round (seed line 169) arrives in his private chat; a
site's button starts its inspection; submitting it ticks the site off (/today); the rounds
left undone become missed and are named in Tuesday's digest in the campaign office's group."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.render.i18n import t
from sandbox.client import SandboxClient
from tests.e2e.chat import JSON, Chat, body, buttons, data_where, shown
from tests.e2e.test_sandbox_clock import bot_says, last_id, sandbox

pytestmark = pytest.mark.e2e
__all__ = ["sandbox"]  # the fixture, shared with test_sandbox_clock

INSPECTOR = 10001  # 张督查, named in the commerce plan's crew
OFFICE_GROUP = -1001001  # 区创文办工作群: the daily digest
SHANGHAI = ZoneInfo("Asia/Shanghai")
ZH = "zh-hans"


def next_local(now: float, weekday: int, wall: dt.time) -> dt.datetime:
    """The next local `weekday` at `wall` after `now` (unix seconds)."""
    local = dt.datetime.fromtimestamp(now, SHANGHAI)
    day = local.date() + dt.timedelta(days=(weekday - local.weekday()) % 7 or 7)
    return dt.datetime.combine(day, wall, SHANGHAI)


async def monday_list(sb: SandboxClient, zhang: Chat) -> JSON:
    """To next Monday, just after the lists go out (plans.yaml: 07:30): 张督查's list."""
    clock = await sb.clock()
    monday = next_local(clock["now"], 0, dt.time(7, 31))
    before = await zhang.last_id()
    await sb.advance_clock(seconds=monday.timestamp() - clock["now"])
    title = shown(t(ZH, "plans.list.title", date=f"{monday.month}月{monday.day}日"))
    listed = await bot_says(sb, INSPECTOR, before, title, timeout=30)
    assert "商场超市、宾馆酒店每周逐户排查" in body(listed)
    return listed


async def test_the_morning_list_a_button_a_tick_and_a_missed_round_in_the_digest(
    sandbox: SandboxClient,
) -> None:
    sb = sandbox
    zhang = Chat(sb, INSPECTOR)
    await zhang.say("/start", timeout=30)  # he meets the bot: his inspector role applies

    listed = await monday_list(sb, zhang)
    sites = [(text, data) for text, data in buttons(listed) if data.startswith("pg:")]
    assert sites, body(listed)

    # A site's button starts its inspection in a new message below the list, which stays;
    # every item compliant, then submit.
    site_name = sites[0][0].removeprefix("▶ ")
    msg = await zhang.press(listed, sites[0][1])
    assert msg["message_id"] > listed["message_id"]
    assert "第 1/" in body(msg) and site_name in body(msg), body(msg)
    while "督查汇总" not in body(msg):
        msg = await zhang.press(msg, data_where(
            msg, lambda _t, d: d.startswith("v:") and d.endswith(":c")))
    msg = await zhang.press(msg, data_where(
        msg, lambda _t, d: d.startswith("i:") and d.split(":")[3] == "submit"))
    assert "督查结果已提交" in body(msg)

    # The morning list itself ticks the site off (edited through the outbox).
    ticked = f"✅ {site_name} ·"
    await sb.wait_for(INSPECTOR, lambda ms: any(
        m["message_id"] == listed["message_id"] and ticked in body(m) for m in ms), 30)

    # /today: that site is ticked off, the others still to do, with their buttons.
    today = await zhang.say("/today")
    # (" ·" ends the name: one site's name may begin another's, 后祁街社区 and
    # 后祁街社区综合文化服务中心, and the day's random draw decides which are listed.)
    assert f"✅ {site_name} ·" in body(today)
    assert f"⬜ {site_name} ·" not in body(today)
    undone = body(today).count("⬜")  # the rounds and the day's draw still to do
    assert undone >= len([b for b in buttons(today) if b[1].startswith("pg:")]) > 0

    # Tuesday after the digest: Monday's undone rounds are missed, and the office reads so.
    clock = await sb.clock()
    tuesday = next_local(clock["now"], 1, dt.time(8, 31))
    before = await last_id(sb, OFFICE_GROUP)
    await sb.advance_clock(seconds=tuesday.timestamp() - clock["now"])
    missed = shown(t(ZH, "plans.digest.missed", count=undone))
    digest = await bot_says(sb, OFFICE_GROUP, before, missed, timeout=30)
    assert f"• {site_name}（" not in body(digest)
    assert "张督查" in body(digest)


async def test_a_plan_paused_after_the_lists_went_out_leaves_them(sandbox: SandboxClient) -> None:
    """Tryout: a plan paused at 07:40 kept its rounds on the delivered lists, and the next
    digest called them missed. Through the sandbox: the admin pauses the weekly round from
    /plans after the Monday lists went out; 张督查's list is edited to leave its rounds out."""
    sb = sandbox
    zhang, admin = Chat(sb, INSPECTOR), Chat(sb, 10000)
    await zhang.say("/start", timeout=30)
    await admin.say("/start")
    listed = await monday_list(sb, zhang)

    screen = await admin.say("/plans")
    after = await admin.press(screen, data_where(
        screen, lambda _t, d: d.endswith(":commerce_weekly")))
    assert any(d.endswith(":commerce_weekly") and d.startswith("pl:r") for _t, d in
               buttons(after)), buttons(after)
    await sb.wait_for(INSPECTOR, lambda ms: any(
        m["message_id"] == listed["message_id"]
        and "商场超市、宾馆酒店每周逐户排查" not in body(m) for m in ms), 30)
