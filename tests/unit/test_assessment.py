"""The assessment's arithmetic (hand-computed), its configuration, the import's row checks and
the table reader with real .xlsx and .csv files, and the special actions file."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from bot.config import DEFAULTS_DIR, DEMO_SCORES
from bot.domain.assessment import (
    AssessmentConfigError,
    Level,
    Period,
    RowProblem,
    check_rows,
    combine,
    latest_scores,
    load_assessment,
    parse_assessment,
    year_scores,
)
from bot.domain.reports import load_reporting
from bot.domain.special_actions import (
    ActionWeek,
    SpecialActionsError,
    lagging,
    load_special_actions,
    parse_special_actions,
)
from bot.render.assessment import formula, import_answer
from bot.services.assessment import TableError, read_table

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = {"supervision": 0.5, "national": 0.2, "provincial": 0.15, "municipal": 0.15}
UNITS = {"houqijie": 1, "后祁街社区": 1, "xinjianlu": 2, "新建路社区": 2}


def test_combined_assessment_matches_the_hand_computed_example() -> None:
    # Supervision 92.4, national 85, provincial 78, municipal 88 with weights 50/20/15/15:
    #   0.5 × 92.4 = 46.20
    #   0.2 × 85   = 17.00
    #   0.15 × 78  = 11.70
    #   0.15 × 88  = 13.20
    #   total      = 88.10 → 88.1 (the weights sum to 1, nothing to renormalise)
    c = combine({"supervision": 92.4, "national": 85, "provincial": 78, "municipal": 88},
                WEIGHTS)
    assert c.total == 88.1
    assert [(name, w) for name, _, w in c.parts] == [
        ("supervision", 0.5), ("national", 0.2), ("provincial", 0.15), ("municipal", 0.15)]


def test_a_missing_component_is_left_out_and_the_others_renormalised() -> None:
    # No national test: the weights present are 0.5 + 0.15 + 0.15 = 0.8, so supervision
    # carries 0.5/0.8 = 62.5 %, provincial and municipal 18.75 % each:
    #   (0.5 × 92.4 + 0.15 × 78 + 0.15 × 88) / 0.8 = (46.2 + 11.7 + 13.2) / 0.8
    #   = 71.1 / 0.8 = 88.875 → 88.9 (rounded to 0.1, the precision shown)
    c = combine({"supervision": 92.4, "national": None, "provincial": 78, "municipal": 88},
                WEIGHTS)
    assert c.total == 88.9
    assert dict((n, w) for n, _, w in c.parts) == {
        "supervision": 0.625, "provincial": 0.1875, "municipal": 0.1875}
    # Nothing at all: no assessment, not 0.
    assert combine({"supervision": None}, WEIGHTS).total is None
    # Only external tests (a unit not inspected this week): judged on those.
    # (0.2 × 80 + 0.15 × 90) / 0.35 = 29.5 / 0.35 = 84.285… → 84.3
    assert combine({"national": 80, "municipal": 90}, WEIGHTS).total == 84.3


def test_the_formula_line_shows_the_configured_weights() -> None:
    assert formula("zh-hans", WEIGHTS) == "考评 = 督查 50% + 国测 20% + 省测 15% + 市测 15%"
    assert formula("en", {"supervision": 3, "municipal": 1}) == \
        "Assessment = Supervision 75% + Municipal 25%"


def test_weekly_uses_the_latest_periods_begun_and_annual_the_year_mean() -> None:
    stored = [(1, "municipal", "2026-Q2", 70.0), (1, "municipal", "2026-Q3", 80.0),
              (1, "municipal", "2026-Q4", 90.0), (1, "national", "2025", 60.0),
              (1, "municipal", "2025-Q4", 50.0)]
    import datetime as dt
    assert latest_scores(stored, dt.date(2026, 9, 30)) == {1: {"municipal": 80.0,
                                                               "national": 60.0}}
    assert latest_scores(stored, dt.date(2026, 10, 4))[1]["municipal"] == 90.0
    # 2026: municipal (70 + 80 + 90) / 3 = 80; no national test in 2026.
    assert year_scores(stored, 2026) == {1: {"municipal": 80.0}}


def test_periods() -> None:
    assert Period.parse("2026-Q3") == Period(2026, 3)
    assert Period.parse(" 2026q1 ").key == "2026-Q1"
    assert Period.parse("2026").key == "2026"
    for bad in ("2026-Q5", "26", "Q3", "2026-07", ""):
        with pytest.raises(ValueError):
            Period.parse(bad)


# ---- configuration ---------------------------------------------------------------------------


def test_the_shipped_configuration_and_special_actions_load() -> None:
    cfg = load_assessment(DEFAULTS_DIR / "assessment.yaml")
    assert cfg.weights == WEIGHTS
    categories = [c.code for c in load_reporting(DEFAULTS_DIR / "reporting.yaml").categories]
    actions = load_special_actions(DEFAULTS_DIR / "special_actions.yaml", categories)
    # 10 in 篇2 (lines 69-78) and 13 in 篇4 (lines 178-190).
    assert len([a for a in actions if a.code.startswith("p2_")]) == 10
    assert len([a for a in actions if a.code.startswith("p4_")]) == 13
    parking = next(a for a in actions if a.code == "p4_01")
    assert parking.lead == "law_enforcement" and "parking" in parking.categories


@pytest.mark.parametrize(("text", "where"), [
    ("schema: 1\nweights:\n  supervision: 0.5\n  nationl: 0.2\n", "assessment.yaml:4"),
    ("weights:\n  supervision: -1\n", "assessment.yaml:2: weights.supervision"),
    ("weights:\n  supervision: lots\n", "assessment.yaml:2: weights.supervision"),
    ("weights:\n  supervision: 0\n", "assessment.yaml:1: weights"),
    ("special_actions:\n  lagging_overdue_share: 1.5\n",
     "assessment.yaml:2: special_actions.lagging_overdue_share"),
])
def test_configuration_errors_name_line_and_field(text: str, where: str) -> None:
    with pytest.raises(AssessmentConfigError) as caught:
        parse_assessment(text)
    assert str(caught.value).startswith(where), str(caught.value)


def test_special_action_errors_name_line_and_action() -> None:
    text = ("actions:\n"
            "  - code: a1\n    name: {zh: 停车}\n    lead: law_enforcement\n"
            "    units: [law_enforcement]\n    categories: [parkin]\n"
            "    start: 2026-04-13\n    end: 2026-04-01\n")
    with pytest.raises(SpecialActionsError) as caught:
        parse_special_actions(text, categories=["parking"])
    assert str(caught.value).startswith("special_actions.yaml:6: action 'a1': unknown category")


def test_lagging_needs_the_overdue_share_above_the_threshold() -> None:
    actions = parse_special_actions(
        "actions:\n  - code: a\n    name: {zh: 甲}\n    lead: x\n    units: [x]\n"
        "    categories: []\n    start: 2026-01-01\n    end: 2026-12-31\n")
    a = actions[0]
    assert lagging(ActionWeek(a, open=10, overdue=4), 0.3, 3)
    assert not lagging(ActionWeek(a, open=10, overdue=3), 0.3, 3)  # 30 % is not above 30 %
    assert not lagging(ActionWeek(a, open=2, overdue=2), 0.3, 3)   # too few open


# ---- the import's rows -----------------------------------------------------------------------


def test_rows_by_code_or_name_in_english_or_chinese_headers() -> None:
    rows = [["成绩", "单位", "测评级别", "期间"],
            [86.5, "houqijie", "国测", "2026"],
            ["72", "新建路社区", "municipal", "2026-Q3"],
            [None, None, None, None]]
    records, problems = check_rows(rows, UNITS)
    assert problems == []
    assert [(r.unit_id, r.level, r.period.key, r.score, r.row) for r in records] == [
        (1, Level.NATIONAL, "2026", 86.5, 2), (2, Level.MUNICIPAL, "2026-Q3", 72.0, 3)]


def test_every_wrong_row_is_named_by_row_and_column() -> None:
    rows = [["unit", "level", "period", "score"],
            ["houqijie", "national", "2026", 90],
            ["nowhere", "national", "2026", 90],        # unknown unit
            ["xinjianlu", "county", "2026", 90],        # wrong level
            ["xinjianlu", "national", "2026-Q9", 90],   # wrong period
            ["xinjianlu", "provincial", "2026", 101],   # out of range
            ["xinjianlu", "provincial", "2026", "n/a"],  # not a number
            ["后祁街社区", "national", "2026", 80]]     # the same as row 2
    _, problems = check_rows(rows, UNITS)
    assert [(p.row, p.column, p.code) for p in problems] == [
        (3, "unit", "unknown_unit"), (4, "level", "bad_level"), (5, "period", "bad_period"),
        (6, "score", "score_range"), (7, "score", "bad_score"), (8, "unit", "duplicate")]
    text = import_answer("zh-hans", 0, (), problems)
    assert "第 3 行「单位」：没有单位「nowhere」" in text
    assert "第 6 行「成绩」：成绩 101 不在 0–100 之间" in text
    english = import_answer("en", 0, (), problems)
    assert "Row 4, level: “county” is not a level" in english


def test_a_header_without_a_needed_column_is_refused() -> None:
    _, problems = check_rows([["unit", "score"], ["houqijie", 80]], UNITS)
    assert {(p.row, p.column, p.code) for p in problems} == {
        (1, "level", "missing_column"), (1, "period", "missing_column")}


# ---- reading real files ----------------------------------------------------------------------


def xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_real_xlsx_and_csv_files_read_alike() -> None:
    rows = [["unit", "level", "period", "score"], ["houqijie", "国测", "2026", 86.5]]
    assert read_table(xlsx(rows), "scores.xlsx", 100) == rows
    csv_text = "unit,level,period,score\nhouqijie,国测,2026,86.5\n"
    assert read_table(csv_text.encode(), "scores.csv", 100) == [
        ["unit", "level", "period", "score"], ["houqijie", "国测", "2026", "86.5"]]
    # Chinese Excel saves CSV as GB18030, with semicolons in some locales.
    gbk = "单位;测评级别;期间;成绩\n后祁街社区;省测;2026;88\n".encode("gb18030")
    assert read_table(gbk, "成绩.csv", 100)[1] == ["后祁街社区", "省测", "2026", "88"]


def test_the_shipped_examples_import_cleanly() -> None:
    demo = {"houqijie": 1, "xinjianlu": 2, "longquanxiang": 3, "后祁街社区": 1, "新建路社区": 2,
            "龙泉巷社区": 3, "law_enforcement": 4, "market_supervision": 5, "wolongsi": 6,
            "liaison_1": 7}
    for path in (ROOT / "examples" / "assessment-scores.xlsx", DEMO_SCORES):
        data, name = path.read_bytes(), path.name
        records, problems = check_rows(read_table(data, name, 100), demo)
        assert problems == [] and len(records) == 13, name


def test_corrupt_huge_and_wrong_files_are_refused_with_a_reason() -> None:
    good = xlsx([["unit", "level", "period", "score"]])
    cases = {
        "corrupt": (good[: len(good) // 2], "scores.xlsx", "unreadable"),
        "not a zip": (b"this is not a workbook", "scores.xlsx", "unreadable"),
        "a zip without a workbook": (_zip_with("hello.txt", b"hi"), "scores.xlsx", "unreadable"),
        "a picture": (b"\x89PNG\r\n\x1a\n", "photo.png", "wrong_type"),
        "too big": (b"0" * (5 * 1024 * 1024 + 1), "scores.csv", "too_large"),
    }
    for what, (data, name, code) in cases.items():
        with pytest.raises(TableError) as caught:
            read_table(data, name, 100)
        assert caught.value.code == code, what
    many = xlsx([["unit", "level", "period", "score"]] + [["houqijie", "国测", "2026", 1]] * 20)
    with pytest.raises(TableError) as caught:
        read_table(many, "many.xlsx", 10)
    assert (caught.value.code, caught.value.value) == ("too_many_rows", "10")


def _zip_with(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(name, data)
    return out.getvalue()


def test_file_problems_read_as_one_line() -> None:
    assert import_answer("en", 0, (), [RowProblem(0, "", "unreadable")]).splitlines()[1] == \
        "• The file cannot be read (not a valid xlsx or csv file)."
    assert import_answer("zh-hans", 3, [("national", "2026"), ("municipal", "2026-Q3")], ()) \
        .startswith("✅ 已导入 3 条外部测评成绩（国测 2026、市测 2026-Q3）")


def test_a_caption_with_every_action_lagging_stays_within_telegrams_limit() -> None:
    import datetime as dt

    from bot.domain.ranking import UnitFigures, rank_units
    from bot.render.assessment import ActionLine, AssessmentBlock, UnitAssessment
    from bot.render.bulletin import CAPTION_LIMIT, BulletinView, caption

    actions = load_special_actions(DEFAULTS_DIR / "special_actions.yaml")
    lines = tuple(ActionLine(ActionWeek(a, found=5, closed=1, open=9, overdue=8),
                             "综合行政执法局综合行政执法局", True) for a in actions)
    figures = [UnitFigures(i, f"很长很长的单位名称第{i}号社区居民委员会", 3, 50.0 + i,
                           escalated=1) for i in range(1, 40)]
    block = AssessmentBlock(WEIGHTS, tuple(
        UnitAssessment(f.unit_id, f.name, combine({"supervision": f.score}, WEIGHTS))
        for f in figures))
    view = BulletinView("zh-hans", "2026-W48", dt.date(2026, 11, 23), dt.date(2026, 11, 29),
                        "区创文办", None, rank_units(figures), 2, block, lines)
    text = caption(view)
    assert len(text) <= CAPTION_LIMIT
    assert "考评 = 督查 50%" in text and "专项行动 23 项" in text


def test_a_bulletin_line_says_how_the_total_was_made_and_why_supervision_is_missing() -> None:
    """The tryout read "后祁街社区：考评 88.3（督查 —）" beside a week with one inspection: the
    line now shows the parts and weights that made the total, and says when supervision was
    left out (fewer inspections than the ranking needs)."""
    from bot.domain.assessment import Combined
    from bot.render.assessment import AssessmentBlock, UnitAssessment, bulletin_lines

    weights = {"supervision": 0.5, "national": 0.2, "provincial": 0.15, "municipal": 0.15}
    tests_only = Combined(88.3, (("national", 90.0, 0.4), ("provincial", 85.0, 0.3),
                                 ("municipal", 90.0, 0.3)))
    both = Combined(92.0, (("supervision", 95.0, 0.5), ("national", 89.0, 0.5)))
    block = AssessmentBlock(weights, (UnitAssessment(1, "后祁街社区", tests_only),
                                      UnitAssessment(2, "龙泉巷社区", both)))
    lines = bulletin_lines("zh-hans", block, ())
    assert "• 后祁街社区：考评 88.3 = 国测 90.0×40% + 省测 85.0×30% + 市测 90.0×30%" \
        "（本周督查次数不足，未计入督查）" in lines
    assert "• 龙泉巷社区：考评 92.0 = 督查 95.0×50% + 国测 89.0×50%" in lines
    assert not any("—" in line for line in lines)


def test_the_answer_to_an_import_names_what_each_replaced_period_lost() -> None:
    from bot.domain.assessment import ReplacedPeriod

    text = import_answer("en", 1, [("provincial", "2026")], (),
                         [ReplacedPeriod("provincial", "2026", 3, 2)])
    assert text.splitlines()[1] == ("↺ Replaced Provincial 2026: 3 earlier score(s) removed "
                                    "(2 unit(s) no longer in the file now have no score for it).")
