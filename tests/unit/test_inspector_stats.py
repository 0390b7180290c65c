"""Inspectors' own figures, checked against a hand-computed example."""

from __future__ import annotations

import datetime as dt

from bot.domain.inspector_stats import AnswerRow, figures

T0 = dt.datetime(2026, 12, 1, 1, 0, tzinfo=dt.UTC)


def rows(insp: int, who: int, site: int, start: dt.datetime, answers: list[tuple[str, str, int]]
         ) -> list[AnswerRow]:
    """answers: (item, verdict, seconds after start)."""
    end = start + dt.timedelta(seconds=max(s for _, _, s in answers) + 10)
    return [AnswerRow(insp, who, site, start, end, item, verdict,
                      start + dt.timedelta(seconds=s)) for item, verdict, s in answers]


def test_figures_by_hand() -> None:
    # Inspector 1: two inspections. Gaps 30, 30, 60 and 20, 40 -> median 30 s. Items with a
    # verdict: 3 + 2 - 1 na = 4, failed 1 -> 25 %.
    a = rows(1, 1, 100, T0, [("1", "compliant", 30), ("2", "noncompliant", 60),
                             ("3", "basic", 120)])
    b = rows(2, 1, 200, T0 + dt.timedelta(hours=2), [("1", "na", 20), ("2", "compliant", 60)])
    # Inspector 2 re-inspects site 100 three days later: fails item 1 (inspector 1 passed it),
    # passes item 3 (agrees). Site 200 is re-inspected 20 days later: outside 14 days.
    c = rows(3, 2, 100, T0 + dt.timedelta(days=3), [("1", "noncompliant", 50),
                                                     ("3", "compliant", 100)])
    d = rows(4, 2, 200, T0 + dt.timedelta(days=20), [("2", "noncompliant", 10)])
    # Inspector 1 re-inspecting their own site does not count as a re-check of themselves.
    e = rows(5, 1, 100, T0 + dt.timedelta(days=1), [("3", "noncompliant", 10)])
    period = a + b + c
    later = period + d + e
    found = {f.inspector_id: f for f in figures(period, later, 14, planned={1: (2, 3), 9: (0, 4)})}
    one = found[1]
    assert (one.inspections, one.median_item_seconds, one.items, one.failed) == (2, 30, 4, 1)
    assert one.failed_share == 0.25
    assert (one.rechecked, one.disagreed) == (2, 1)  # items 1 and 3 at site 100
    assert one.planned == (2, 3)
    # Rounds assigned and nothing done: listed all the same, at 0.
    assert found[9].inspections == 0 and found[9].planned == (0, 4)
    two = found[2]
    assert (two.inspections, two.median_item_seconds, two.items, two.failed) == (1, 50, 2, 1)
    assert (two.rechecked, two.disagreed, two.disagreed_share) == (0, 0, None)
    assert two.planned == (0, 0)
    assert [f.inspector_id for f in figures(period, later, 14)] == [1, 2]
    assert figures(period, later, 14)[0].planned is None


def test_an_inspector_with_nothing_timed_reads_without_a_dangling_unit() -> None:
    """The tryout read "每项 — 秒" for an inspector with rounds and no inspection."""
    from bot.domain.inspector_stats import InspectorFigures
    from bot.services.inspector_stats import figure_lines

    idle = InspectorFigures(7, 0, None, 0, 0, 0, 0, planned=(0, 4))
    [line] = figure_lines("zh-hans", [idle], {7: "张督查"})
    assert "每项 — ·" in line and "— 秒" not in line and "计划完成 0/4" in line
    [line] = figure_lines("en", [idle], {7: "Zhang"})
    assert "— per item" in line and "— s" not in line
