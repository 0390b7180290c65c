"""The assessment against a real database (SQLite, PostgreSQL): importing external test
scores (all or nothing, a period replaced on re-import), and the weekly bulletin showing the
combined assessment and a lagging special action's lead."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.config import DEFAULTS_DIR, DEMO_SCORES, sqlite_url
from bot.domain.assessment import load_assessment
from bot.domain.special_actions import parse_special_actions
from bot.render.assessment import formula, made_of
from bot.render.i18n import t
from bot.services.assessment import AssessmentSetup, annual_assessment, import_scores
from bot.services.bulletins import build_bulletins
from db.migrate import upgrade
from db.models import ExternalScore, OutboxMessage, Report, Task, Unit
from db.uow import UnitOfWork, UnitOfWorkFactory
from scheduler.runner import Scheduler
from tests.conftest import DEMO_CITY, ROOT, FakeClock
from tests.db.test_scheduler import SCHEDULE, WOLONGSI, Sessions, at, city, seed_week

__all__ = ["city"]  # the fixture, shared with the scheduler's tests

CONFIG = load_assessment(DEFAULTS_DIR / "assessment.yaml")
NOW = at(2026, 12, 1, 2)


async def stored(sessions: Sessions) -> set[tuple[str, str, str, float]]:
    async with sessions() as s:
        rows = (await s.execute(select(Unit.code, ExternalScore.level, ExternalScore.period,
                                       ExternalScore.score)
                                .join(Unit, Unit.id == ExternalScore.unit_id))).all()
    return {(c, lv, p, sc) for c, lv, p, sc in rows}


async def run_import(sessions: Sessions, data: bytes, name: str) -> tuple[int, int]:
    uow = UnitOfWorkFactory(sessions)()
    async with uow:
        outcome = await import_scores(uow, data, name, CONFIG, NOW, by=1)
        if not outcome.problems:
            await uow.commit()
    return outcome.imported, len(outcome.problems)


async def test_reimporting_a_period_replaces_it_and_a_wrong_file_changes_nothing(
    sessions: Sessions, city: dict[str, int]
) -> None:
    example = (ROOT / "examples" / "assessment-scores.xlsx").read_bytes()
    assert await run_import(sessions, example, "assessment-scores.xlsx") == (13, 0)
    first = await stored(sessions)
    assert ("houqijie", "national", "2026", 86.5) in first and len(first) == 13
    # The same file again: the same rows, nothing doubled.
    assert await run_import(sessions, example, "assessment-scores.xlsx") == (13, 0)
    assert await stored(sessions) == first
    # A corrected 2026-Q3 municipal table without 新建路社区: that period is replaced as a
    # whole (新建路's Q3 score is gone), the national and provincial scores stay.
    csv = (b"unit,level,period,score\n"
           b"houqijie,municipal,2026-Q3,93\nlongquanxiang,municipal,2026-Q3,87\n")
    assert await run_import(sessions, csv, "q3.csv") == (2, 0)
    now = await stored(sessions)
    q3 = {(c, sc) for c, lv, p, sc in now if (lv, p) == ("municipal", "2026-Q3")}
    assert q3 == {("houqijie", 93.0), ("longquanxiang", 87.0)}
    assert {r for r in now if r[1] != "municipal"} == {r for r in first if r[1] != "municipal"}
    # A file with one wrong row among good ones imports nothing.
    bad = (b"unit,level,period,score\nhouqijie,national,2026,10\n"
           b"nowhere,national,2026,50\n")
    assert await run_import(sessions, bad, "bad.csv") == (0, 1)
    assert await stored(sessions) == now


async def add_report_task(sessions: Sessions, unit_id: int, category: str, created: dt.datetime,
                          due: dt.datetime, closed: dt.datetime | None = None) -> None:
    async with sessions() as s, s.begin():
        report = Report(reporter_id=10002, status="submitted", unit_id=unit_id,
                        category=category, submitted_at=created, created_at=created,
                        updated_at=created)
        s.add(report)
        await s.flush()
        s.add(Task(source="report", report_id=report.id, unit_id=unit_id, title=category,
                   status="closed" if closed else "open", due_at=due, created_at=created,
                   closed_at=closed))


ACTIONS = """
actions:
  - code: p4_01
    name: {zh: 停车秩序专项整治行动, en: Parking order}
    lead: law_enforcement
    units: [law_enforcement, wolongsi, houqijie]
    categories: [parking]
    start: 2026-10-08
    end: 2027-01-07
  - code: p4_04
    name: {zh: 交通秩序专项整治行动, en: Traffic order}
    lead: wolongsi_politics_law
    units: [wolongsi_politics_law, houqijie]
    categories: [traffic]
    start: 2026-10-08
    end: 2027-01-07
"""


async def test_the_weekly_bulletin_shows_the_combined_assessment_and_a_lagging_action(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    await seed_week(sessions, city)  # week 48: 龙泉巷 95, 后祁街 89, 卧龙寺 65 (inspections)
    scores = ("单位,测评级别,期间,成绩\n卧龙寺街道,国测,2026,80\n"
              "longquanxiang,市测,2026-Q3,90\nlongquanxiang,市测,2027-Q1,10\n").encode()
    assert await run_import(sessions, scores, "scores.csv") == (3, 0)
    # 停车秩序: 卧龙寺 has three parking problems open at the week's end, all overdue (one
    # more was closed in the week); 交通秩序: one traffic problem, not yet due.
    w = city["unit:wolongsi"]
    for _ in range(3):
        await add_report_task(sessions, w, "parking", at(2026, 11, 20), at(2026, 11, 22))
    await add_report_task(sessions, w, "parking", at(2026, 11, 24), at(2026, 11, 26),
                          closed=at(2026, 11, 25))
    await add_report_task(sessions, city["unit:houqijie"], "traffic", at(2026, 11, 26),
                          at(2026, 12, 10))
    # Parking before the action began does not count (created 2026-10-01).
    await add_report_task(sessions, w, "parking", at(2026, 10, 1), at(2026, 10, 2))

    setup = AssessmentSetup(CONFIG, parse_special_actions(ACTIONS))
    clock = FakeClock(at(2026, 11, 30, 1, 0))  # Monday 09:00 Shanghai
    from bot.domain.schedule import parse_schedule

    sched = Scheduler(UnitOfWorkFactory(sessions), parse_schedule(SCHEDULE),
                      timezone="Asia/Shanghai", language="zh-hans",
                      media_dir=tmp_path / "media", clock=clock, assessment=setup)
    assert "bulletin:2026-W48" in (await sched.tick()).ran
    async with sessions() as s:
        caption = str((await s.scalars(select(OutboxMessage).where(
            OutboxMessage.dedup_key == f"bulletin:2026-W48:{WOLONGSI}"))).one()
            .params["caption"])
        view = (await build_bulletins(UnitOfWork.within(s), sched.config, sched.tz, "zh-hans",
                                      "2026-W48", chat_ids=[WOLONGSI],
                                      assessment=setup))[0].view
    assert view.assessment is not None
    by_name = {u.name: u.combined for u in view.assessment.units}
    # By hand, weights 50/20/15/15, a missing component renormalised away:
    #   龙泉巷: supervision (96 + 94) / 2 = 95, municipal 2026-Q3 90 (2027-Q1 has not begun)
    #           (0.5 × 95 + 0.15 × 90) / 0.65 = (47.5 + 13.5) / 0.65 = 93.846… → 93.8
    #   后祁街: supervision (88 + 90) / 2 = 89 only → 89.0
    #   卧龙寺: supervision (60 + 70 + 65) / 3 = 65, national 80
    #           (0.5 × 65 + 0.2 × 80) / 0.7 = 48.5 / 0.7 = 69.285… → 69.3
    #   新建路: one inspection (fewer than min_inspections 2): no supervision, no tests: none
    assert {n: c.total for n, c in by_name.items()} == {
        "龙泉巷社区": 93.8, "后祁街社区": 89.0, "卧龙寺街道": 69.3}
    assert [u.name for u in view.assessment.units] == ["龙泉巷社区", "后祁街社区", "卧龙寺街道"]
    # The caption: how the total is made, then each leader's combined beside its supervision.
    assert formula("zh-hans", CONFIG.weights) == \
        "考评 = 督查 50% + 国测 20% + 省测 15% + 市测 15%"
    # ... and which tests' periods the week folds in: each test's newest period begun by the
    # week's Sunday (the tryout could not tell which quarter a weekly total was made with).
    assert "考评 = 督查 50% + 国测 20%（2026） + 省测 15% + 市测 15%（2026-Q3）" in caption
    made = made_of("zh-hans", by_name["龙泉巷社区"])
    assert made == "督查 95.0×77% + 市测 90.0×23%"  # the weights as renormalised for it
    assert "• " + t("zh-hans", "assessment.bulletin.unit", unit="龙泉巷社区",
                    total="93.8", made_of=made) in caption
    # The special actions' week (23-29 November): found 2 (the parking problem of the 24th,
    # the traffic one; the three of the 20th were found the week before), closed 1, overdue 3.
    # 停车秩序 lags (3 of 3 open overdue) and its lead is named; 交通秩序 does not.
    lines = {a.week.action.code: a for a in view.actions}
    parking = lines["p4_01"].week
    assert (parking.found, parking.closed, parking.open, parking.overdue) == (1, 1, 3, 3)
    assert lines["p4_01"].lagging and not lines["p4_04"].lagging
    assert t("zh-hans", "assessment.actions.summary", count=2, found=2, closed=1,
             overdue=3) in caption
    assert "• " + t("zh-hans", "assessment.actions.lagging", action="停车秩序专项整治行动",
                    lead="综合行政执法局", overdue=3, open=3) in caption
    assert "交通秩序专项整治行动" not in caption


async def test_the_office_groups_bulletin_points_to_the_battle_map(
    sessions: Sessions, city: dict[str, int]
) -> None:
    """The campaign office's bulletin says where the special actions' battle map is
    (/actions answers there); a unit's group, where /actions is refused, is not told."""
    from bot.domain.schedule import parse_schedule
    from bot.render.bulletin import caption
    from tests.db.test_scheduler import OFFICE

    setup = AssessmentSetup(CONFIG, parse_special_actions(ACTIONS))
    async with sessions() as s:
        views = {b.chat_id: b.view for b in await build_bulletins(
            UnitOfWork.within(s), parse_schedule(SCHEDULE), ZoneInfo("Asia/Shanghai"),
            "zh-hans", "2026-W48", chat_ids=[OFFICE, WOLONGSI], assessment=setup)}
    hint = t("zh-hans", "assessment.map.bulletin_hint")
    assert views[OFFICE].actions and hint in caption(views[OFFICE])
    assert views[WOLONGSI].actions and hint not in caption(views[WOLONGSI])


async def test_the_annual_assessment_folds_the_years_tests(
    sessions: Sessions, city: dict[str, int]
) -> None:
    await seed_week(sessions, city)
    scores = (b"unit,level,period,score\nhouqijie,municipal,2026-Q2,80\n"
              b"houqijie,municipal,2026-Q3,90\nhouqijie,national,2025,50\n")
    assert await run_import(sessions, scores, "scores.csv") == (3, 0)
    from zoneinfo import ZoneInfo

    async with UnitOfWorkFactory(sessions).read() as uow:
        block = await annual_assessment(uow, CONFIG, 2026, ZoneInfo("Asia/Shanghai"),
                                        "zh-hans")
    houqijie = block.of(city["unit:houqijie"])
    # 后祁街 in 2026: supervision (95 + 93 + 88 + 90) / 4 = 91.5; municipal (80 + 90) / 2 = 85;
    # the 2025 national test is another year's. (0.5 × 91.5 + 0.15 × 85) / 0.65
    # = (45.75 + 12.75) / 0.65 = 58.5 / 0.65 = 90.0
    assert houqijie is not None and houqijie.total == 90.0
    assert houqijie.part("national") is None


def test_the_command_line_imports_refuses_and_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "wenming.db"
    upgrade(sqlite_url(db))
    monkeypatch.setenv("DATABASE_URL", sqlite_url(db))
    assert main(["import", str(DEMO_CITY)]) == 0
    capsys.readouterr()
    example = DEMO_SCORES
    assert main(["assessment", "import", str(example), "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("✅ Imported 13 external test score(s) (National 2026, "
                          "Provincial 2026, Municipal 2026-Q3)")
    bad = tmp_path / "bad.csv"
    bad.write_text("unit,level,period,score\nhouqijie,national,2026,-3\n", encoding="utf-8")
    assert main(["assessment", "import", str(bad), "--lang", "en"]) == 1
    err = capsys.readouterr().err
    assert "• Row 2, score: score -3 is not between 0 and 100." in err
    assert main(["assessment", "import", str(tmp_path / "missing.xlsx")]) == 1
    assert "missing.xlsx" in capsys.readouterr().err
    assert main(["assessment", "show", "--year", "2026", "--lang", "en"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("📋 2026 annual assessment\nAssessment = Supervision 50% + "
                            "National 20% + Provincial 15% + Municipal 15%")
    assert "1. Houqijie Community: 88.0 points" in table
