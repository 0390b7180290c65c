"""An admin sends the external test scores (xlsx) to the bot and is told what was imported,
or, for a wrong file, every problem by row and column with nothing imported; /assessment
shows the annual table. Anyone else's spreadsheet is not imported."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.render.assessment import formula
from bot.render.i18n import t
from db.models import ExternalScore
from tests.bot.conftest import ZH, Chat, Feed, TgUser, UpdateFactory
from tests.bot.fakes import FakeBotAPI
from tests.conftest import ROOT
from tests.unit.test_assessment import xlsx

ADMIN = TgUser(10000, "王管理")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Sessions = async_sessionmaker[AsyncSession]


async def send(feed: Feed, updates: UpdateFactory, api: FakeBotAPI, user: TgUser,
               data: bytes, name: str) -> str:
    await feed(updates.document(user, data, name, XLSX))
    return str(api.last(user.id)["text"])


async def count(db: Sessions) -> int:
    async with db() as s:
        return int(await s.scalar(select(func.count()).select_from(ExternalScore)) or 0)


async def test_an_admin_sends_the_scores_and_is_told_what_was_imported(
    feed: Feed, updates: UpdateFactory, api: FakeBotAPI, db: Sessions,
) -> None:
    example = (ROOT / "examples" / "assessment-scores.xlsx").read_bytes()
    answer = await send(feed, updates, api, ADMIN, example, "assessment-scores.xlsx")
    assert answer == t(ZH, "assessment.import.done", count=13,
                       periods="国测 2026、省测 2026、市测 2026-Q3")
    assert await count(db) == 13
    # Sent again: replaced, not doubled, and the answer says what each period held before.
    answer = await send(feed, updates, api, ADMIN, example, "assessment-scores.xlsx")
    assert answer.splitlines()[1:] == [
        t(ZH, "assessment.import.replaced", period="国测 2026", count=3),
        t(ZH, "assessment.import.replaced", period="省测 2026", count=3),
        t(ZH, "assessment.import.replaced", period="市测 2026-Q3", count=7)]
    assert await count(db) == 13

    # Tryout 14, defect 11: one row of 省测 2026 replaces the whole period; the answer says
    # that its 3 earlier scores went, 2 of them of units no longer in the file.
    one = "单位,测评级别,期间,成绩\n新建路社区,省测,2026,81\n".encode()
    answer = await send(feed, updates, api, ADMIN, one, "成绩.csv")
    assert answer.splitlines() == [
        t(ZH, "assessment.import.done", count=1, periods="省测 2026"),
        t(ZH, "assessment.import.replaced_dropped", period="省测 2026", count=3, dropped=2)]
    assert await count(db) == 11
    await send(feed, updates, api, ADMIN, example, "assessment-scores.xlsx")
    assert await count(db) == 13

    # A wrong file: every problem by row and column, nothing imported.
    bad = xlsx([["单位", "测评级别", "期间", "成绩"],
                    ["后祁街社区", "国测", "2026", 120],
                    ["不存在社区", "县测", "2026-Q3", 80]])
    answer = await send(feed, updates, api, ADMIN, bad, "成绩.xlsx")
    assert answer.startswith(t(ZH, "assessment.import.refused", count=3))
    assert "第 2 行「成绩」：成绩 120 不在 0–100 之间。" in answer
    assert "第 3 行「单位」：没有单位「不存在社区」" in answer
    assert "第 3 行「测评级别」：「县测」不是测评级别" in answer
    assert await count(db) == 13

    # A damaged workbook: a clear answer, nothing crashes.
    answer = await send(feed, updates, api, ADMIN, example[:3000], "broken.xlsx")
    assert t(ZH, "assessment.problem.unreadable") in answer

    # /assessment: the year's table and how the totals were made.
    await feed(updates.text(ADMIN, "/assessment 2026"))
    table = str(api.last(ADMIN.id)["text"])
    assert table.startswith(t(ZH, "assessment.annual.title", year=2026))
    assert formula(ZH, {"supervision": 0.5, "national": 0.2, "provincial": 0.15,
                        "municipal": 0.15}) in table
    # No inspections in 2026 here, so the tests' weights 20/15/15 are renormalised over 0.5:
    #   后祁街: (0.2 × 86.5 + 0.15 × 88 + 0.15 × 90) / 0.5 = (17.3 + 13.2 + 13.5) / 0.5 = 88.0
    #   龙泉巷: (0.2 × 91 + 0.15 × 84 + 0.15 × 87) / 0.5 = (18.2 + 12.6 + 13.05) / 0.5 = 87.7
    assert t(ZH, "assessment.annual.row", rank=1, unit="后祁街社区", total="88.0") in table
    assert "国测 86.5×40% + 省测 88.0×30% + 市测 90.0×30%" in table
    assert t(ZH, "assessment.annual.row", rank=2, unit="龙泉巷社区", total="87.7") in table


async def test_someone_elses_spreadsheet_is_not_imported(
    feed: Feed, updates: UpdateFactory, api: FakeBotAPI, db: Sessions, zhang: Chat,
) -> None:
    example = (ROOT / "examples" / "assessment-scores.xlsx").read_bytes()
    await feed(updates.document(zhang.user, example, "assessment-scores.xlsx", XLSX))
    assert await count(db) == 0
    # An inspector's file goes where any file goes: it is not a photo.
    assert api.last(zhang.id)["text"] == t(ZH, "image.not_an_image")
    await feed(updates.text(zhang.user, "/assessment"))
    assert api.last(zhang.id)["text"] == t(ZH, "error.role_required", role=t(ZH, "role.admin"))


async def test_an_admins_text_file_of_scores_is_answered_with_the_formats_imported(
    feed: Feed, updates: UpdateFactory, api: FakeBotAPI, db: Sessions, zhang: Chat,
) -> None:
    """Tryout 14, defect 13: a .txt of csv text from an admin was answered "not an image"."""
    text = "单位,测评级别,期间,成绩\n新建路社区,省测,2026,81\n".encode()
    await feed(updates.document(ADMIN, text, "成绩.txt", "text/plain"))
    answer = str(api.last(ADMIN.id)["text"])
    assert answer.startswith(t(ZH, "assessment.import.not_a_table")), answer
    assert t(ZH, "assessment.import.layout") in answer
    assert t(ZH, "image.not_an_image") not in answer
    assert await count(db) == 0
    # Anyone else's text file is still not a photo, as before.
    await feed(updates.document(zhang.user, text, "成绩.txt", "text/plain"))
    assert api.last(zhang.id)["text"] == t(ZH, "image.not_an_image")
