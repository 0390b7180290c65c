"""Issue 14: plans are "manageable by admins in the bot". An admin sends a plans file
(plans.yaml) to the bot in private and is told what was imported; a wrong file is refused
with every problem by line, and the plans stay as they were; anyone else's .yaml is not
imported."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import DEFAULTS_DIR
from bot.render.i18n import t
from db.models import SupervisionPlan
from tests.bot.conftest import ZH, Feed, TgUser, UpdateFactory
from tests.bot.fakes import FakeBotAPI

ADMIN = TgUser(10000, "王管理")
INSPECTOR = TgUser(10001, "张督查")
YAML = "application/x-yaml"
Sessions = async_sessionmaker[AsyncSession]
SHIPPED = (DEFAULTS_DIR / "plans.yaml").read_text(encoding="utf-8")


async def send(feed: Feed, updates: UpdateFactory, api: FakeBotAPI, user: TgUser,
               data: bytes, name: str = "plans.yaml") -> str:
    await feed(updates.document(user, data, name, YAML))
    return str(api.last(user.id)["text"])


async def stored(db: Sessions) -> dict[str, bool]:
    async with db() as s:
        return {p.code: p.paused for p in (await s.scalars(select(SupervisionPlan))).all()}


async def test_an_admin_sends_a_plans_file_and_a_wrong_one_changes_nothing(
    feed: Feed, updates: UpdateFactory, api: FakeBotAPI, db: Sessions,
) -> None:
    before = await stored(db)
    answer = await send(feed, updates, api, ADMIN, SHIPPED.encode())
    assert answer.startswith("✅ 已从 plans.yaml 导入督查计划 2 项"), answer
    assert await stored(db) == {"commerce_weekly": False, "community_patrol": False}
    assert before in ({}, await stored(db))

    # One plan dropped, one changed to daily at 08:00: the answer counts them, and says the
    # lists' hour is the server's, not the file's.
    weekly = SHIPPED[:SHIPPED.index("  - code: community_patrol")].replace(
        'morning: "07:30"', 'morning: "08:00"').replace("BYDAY=MO", "BYDAY=MO,TH")
    answer = await send(feed, updates, api, ADMIN, weekly.encode())
    assert "新增 0，更新 1，删除 1" in answer, answer
    assert "08:00" in answer and "07:30" in answer
    assert await stored(db) == {"commerce_weekly": False}

    # A wrong file: every problem with its line and plan, in the admin's language; nothing
    # imported.
    wrong = weekly.replace("FREQ=WEEKLY;BYDAY=MO,TH", "FREQ=HOURLY").replace(
        "liaison_5]", "liaison_9]")
    answer = await send(feed, updates, api, ADMIN, wrong.encode(), "计划.yml")
    assert answer.splitlines() == [
        t(ZH, "plans.file.refused", file="计划.yml", count=1),
        "• 第 19 行，计划 <code>commerce_weekly</code>：重复规则 rrule 'FREQ=HOURLY' 的 FREQ "
        "只能是 DAILY, WEEKLY, MONTHLY, YEARLY 之一（每日清单按天派发）。"]
    assert await stored(db) == {"commerce_weekly": False}
    # A unit the database does not know: refused by line, nothing imported.
    unknown = weekly.replace("liaison_5]", "liaison_9]")
    answer = await send(feed, updates, api, ADMIN, unknown.encode())
    assert answer.splitlines()[1:] == [
        "• 第 17 行，计划 <code>commerce_weekly</code>：<code>crew.units</code>：数据库中没有单位"
        "代码 'liaison_9'（先用 wenming import 导入组织文件）。"]
    # Not text at all: told so, nothing imported.
    answer = await send(feed, updates, api, ADMIN, b"\xff\xfe\x00garbage")
    assert answer.splitlines()[1:] == ["• 不是 UTF-8 文本（第 0 字节）；请另存为 UTF-8。"]
    assert await stored(db) == {"commerce_weekly": False}


async def test_an_inspectors_plans_file_is_not_imported(
    feed: Feed, updates: UpdateFactory, api: FakeBotAPI, db: Sessions,
) -> None:
    before = await stored(db)
    answer = await send(feed, updates, api, INSPECTOR, SHIPPED.encode())
    assert answer == "这个文件不是图片。请发送照片。"  # what any other file gets
    assert await stored(db) == before


async def test_a_plans_file_that_would_remove_every_plan_or_cannot_be_stored_is_refused(
    feed: Feed, updates: UpdateFactory, api: FakeBotAPI, db: Sessions,
) -> None:
    """Review of issue 14: a file of comments only (or `schema: 1`) passed the check and
    removed every plan, forgetting which were paused; a 300-character name passed and then
    failed to store on PostgreSQL; a rule with no day at all cost seconds every morning."""
    await send(feed, updates, api, ADMIN, SHIPPED.encode())
    plans = await stored(db)
    for empty in (b"# nothing yet\n", b"schema: 1\n", b"schema: 1\nplans: []\n"):
        answer = await send(feed, updates, api, ADMIN, empty)
        assert answer.startswith("❌") and "导入它会删除全部计划" in answer, answer
    long_name = SHIPPED.replace("商场超市、宾馆酒店每周逐户排查", "很长" * 150)
    answer = await send(feed, updates, api, ADMIN, long_name.encode())
    assert answer.startswith("❌") and "名称超过 200 个字符" in answer, answer
    never = SHIPPED.replace("FREQ=WEEKLY;BYDAY=MO", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30")
    answer = await send(feed, updates, api, ADMIN, never.encode())
    assert answer.startswith("❌") and "在开始日期后的一年内没有任何一天" in answer
    assert await stored(db) == plans


async def test_a_huge_or_broken_plans_file_is_refused_with_a_reason(
    feed: Feed, updates: UpdateFactory, api: FakeBotAPI, db: Sessions,
) -> None:
    await send(feed, updates, api, ADMIN, SHIPPED.encode())
    plans = await stored(db)
    huge = SHIPPED.encode() + b"#" * (300 * 1024)
    assert await send(feed, updates, api, ADMIN, huge) == t(ZH, "plans.file.too_large")
    answer = await send(feed, updates, api, ADMIN, b"plans: [unclosed\n  - code: x\n")
    assert answer.startswith("❌") and "• 第 2 行：YAML 语法错误：" in answer, answer
    assert await stored(db) == plans
