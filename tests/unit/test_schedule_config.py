"""config/schedule.yaml: validation with line numbers, and calendar arithmetic across DST."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.config import DEFAULTS_DIR
from bot.domain.escalation import Deadline, decide
from bot.domain.periods import (
    Week,
    bulletin_still_timely,
    day_bounds,
    digest_still_timely,
    latest_bulletin,
    latest_digest,
    latest_slot,
    next_bulletin,
    week_monday,
)
from bot.domain.schedule import (
    ScheduleConfigError,
    load_schedule,
    parse_schedule,
)

DEFAULT_SCHEDULE_FILE = DEFAULTS_DIR / "schedule.yaml"
UTC = dt.UTC
SHANGHAI, BERLIN = ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Berlin")


def test_the_shipped_schedule_loads() -> None:
    cfg = load_schedule(DEFAULT_SCHEDULE_FILE)
    assert cfg.reminder_before_hours == 24 and cfg.overdue_reminder_hour == 9
    assert [(s.after_overdue_hours, s.level, s.notify) for s in cfg.escalation] == [
        (48, 1, "parent"), (120, 2, "office")]
    assert cfg.bulletin.weekday == 0 and cfg.bulletin.time == dt.time(9, 0)
    assert [p.name.zh for p in cfg.phases] == ["部署阶段", "攻坚阶段", "巩固阶段"]
    phase = cfg.phase_on(dt.date(2026, 11, 30))
    assert phase is not None and phase.name.en == "Consolidation"
    assert phase.days_left(dt.date(2026, 11, 30)) == 32
    assert cfg.office_level() == 2


@pytest.mark.parametrize(("text", "line", "problem"), [
    ("reminder_before_hours: soon\n", 1, "reminder_before_hours must be a number"),
    ("schema: 1\noverdue_reminder_hour: 25\n", 2, "at most 23"),
    ("bulletin:\n  weekday: funday\n", 2, "weekday must be one of"),
    ("bulletin:\n  time: noon\n", 2, 'time must be a time like "09:00"'),
    ("escalation:\n  - {after_overdue_hours: 48, level: 1, notify: mayor}\n", 2,
     "notify must be parent or office"),
    ("escalation:\n  - {after_overdue_hours: 48, level: 2, notify: parent}\n"
     "  - {after_overdue_hours: 24, level: 3, notify: office}\n", 3, "must rise"),
    ("phases:\n  - name: {zh: 攻坚}\n    start: 2026-04-20\n    end: 2026-06-30\n", 2,
     "non-empty en"),
    ("phases:\n  - name: {zh: 攻坚, en: A}\n    start: 2026-06-20\n    end: 2026-04-30\n", 4,
     "ends (2026-04-30) before it starts"),
    ("digest:\n  time: \"08:30\"\n  when: daily\n", 3, 'unknown key "when"'),
    ("bulletin: [1, 2]\n", 1, "bulletin must be a mapping"),
    ("tick_seconds: 5\n  bad: [\n", 2, "YAML syntax error"),
])
def test_errors_name_the_line_and_the_problem(text: str, line: int, problem: str) -> None:
    with pytest.raises(ScheduleConfigError) as caught:
        parse_schedule(text, "schedule.yaml")
    assert caught.value.line == line, str(caught.value)
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"schedule.yaml:{line}: ")


def test_unquoted_times_are_read_as_times() -> None:
    # YAML 1.1 turns 09:00 into 540; the loader turns it back.
    assert parse_schedule("digest:\n  time: 08:30\n").digest.time == dt.time(8, 30)


def test_weeks_and_the_bulletin_period() -> None:
    assert week_monday("2026-W48") == dt.date(2026, 11, 23)
    with pytest.raises(ValueError, match="2026-W48"):
        week_monday("48")
    # Monday 2026-11-30 09:00 Shanghai is 01:00 UTC: the bulletin for week 48 falls due.
    due = latest_bulletin(dt.datetime(2026, 11, 30, 1, tzinfo=UTC), 0, dt.time(9), SHANGHAI)
    assert (due.period, due.due_at) == ("2026-W48", dt.datetime(2026, 11, 30, 1, tzinfo=UTC))
    before = latest_bulletin(dt.datetime(2026, 11, 30, 0, 59, tzinfo=UTC), 0, dt.time(9),
                             SHANGHAI)
    assert before.period == "2026-W47"
    # Across the new year: ISO week 53 of 2026 is covered on Monday 2027-01-04.
    assert latest_bulletin(dt.datetime(2027, 1, 4, 2, tzinfo=UTC), 0, dt.time(9),
                           SHANGHAI).period == "2026-W53"


def test_the_next_bulletin_is_the_first_still_to_come() -> None:
    """Issue 11 item 10: the sandbox's clock jumps "to the next bulletin time"."""
    monday_9 = dt.datetime(2026, 11, 30, 1, tzinfo=UTC)  # Monday 09:00 in Shanghai
    early = next_bulletin(monday_9 - dt.timedelta(minutes=1), 0, dt.time(9), SHANGHAI)
    assert (early.period, early.due_at) == ("2026-W48", monday_9)
    at = next_bulletin(monday_9, 0, dt.time(9), SHANGHAI)  # due now: not "still to come"
    assert (at.period, at.due_at) == ("2026-W49", monday_9 + dt.timedelta(days=7))
    berlin = ZoneInfo("Europe/Berlin")  # a week shortened by the spring change
    after = dt.datetime(2026, 3, 23, 8, 30, tzinfo=UTC)  # Monday 09:30 CET
    assert next_bulletin(after, 0, dt.time(9), berlin).due_at == dt.datetime(
        2026, 3, 30, 7, tzinfo=UTC)


def test_dst_weeks_and_days_in_berlin() -> None:
    # Summer time ends on Sunday 2026-10-25: that week is 169 hours long, the day 25.
    week = Week.of("2026-W43", BERLIN)
    assert week.end - week.start == dt.timedelta(hours=169)
    start, end = day_bounds(dt.date(2026, 10, 25), BERLIN)
    assert end - start == dt.timedelta(hours=25)
    start, end = day_bounds(dt.date(2026, 3, 29), BERLIN)
    assert end - start == dt.timedelta(hours=23)
    # Monday 09:00 on the wall: 07:00 UTC in summer, 08:00 UTC in winter.
    assert latest_bulletin(dt.datetime(2026, 10, 19, 7, tzinfo=UTC), 0, dt.time(9),
                           BERLIN).period == "2026-W42"
    assert latest_bulletin(dt.datetime(2026, 10, 26, 7, 30, tzinfo=UTC), 0, dt.time(9),
                           BERLIN).period == "2026-W42"
    assert latest_bulletin(dt.datetime(2026, 10, 26, 8, tzinfo=UTC), 0, dt.time(9),
                           BERLIN).period == "2026-W43"
    # The digest at 02:30, which does not exist on 2026-03-29, runs at 03:30 local instead.
    due = latest_digest(dt.datetime(2026, 3, 29, 2, tzinfo=UTC), dt.time(2, 30), BERLIN)
    assert due.period == "2026-03-29"
    assert due.due_at == dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert latest_slot(dt.datetime(2026, 10, 25, 8, tzinfo=UTC), 9, BERLIN) == \
        dt.datetime(2026, 10, 25, 8, tzinfo=UTC)


def test_policy_skips_a_before_reminder_for_a_task_created_inside_the_window() -> None:
    cfg = parse_schedule("")
    now = dt.datetime(2026, 11, 23, 1, tzinfo=UTC)
    fresh = Deadline(now + dt.timedelta(hours=12), now - dt.timedelta(minutes=5), 0,
                     None, None, None)
    decision = decide(fresh, now, cfg, SHANGHAI)
    assert decision.reminder is None and decision.skip_before
    old = Deadline(now + dt.timedelta(hours=12), now - dt.timedelta(days=3), 0, None, None, None)
    assert decide(old, now, cfg, SHANGHAI).reminder == "before"


def test_a_missed_digest_is_timely_only_on_its_day_and_a_bulletin_only_in_its_week() -> None:
    # The digest due 2026-11-28 08:30 Shanghai: still fine at 23:59 that day, not at 05:45
    # the next morning (it would call the 27th "yesterday").
    digest = latest_digest(dt.datetime(2026, 11, 28, 1, tzinfo=UTC), dt.time(8, 30), SHANGHAI)
    assert digest.period == "2026-11-28"
    assert digest_still_timely(digest, dt.datetime(2026, 11, 28, 15, 59, tzinfo=UTC), SHANGHAI)
    assert not digest_still_timely(digest, dt.datetime(2026, 11, 28, 21, 45, tzinfo=UTC),
                                   SHANGHAI)
    # Week 47's bulletin, due Monday 11-23 09:00: fine on Tuesday and on Sunday of that week,
    # not on Monday 11-30 at 08:00 (the next ISO week, before week 48's is due).
    bulletin = latest_bulletin(dt.datetime(2026, 11, 23, 1, tzinfo=UTC), 0, dt.time(9),
                               SHANGHAI)
    assert bulletin.period == "2026-W47"
    for now in (dt.datetime(2026, 11, 24, 2, tzinfo=UTC),
                dt.datetime(2026, 11, 29, 15, 59, tzinfo=UTC)):
        assert bulletin_still_timely(bulletin, now, SHANGHAI)
    late = dt.datetime(2026, 11, 30, 0, tzinfo=UTC)
    assert latest_bulletin(late, 0, dt.time(9), SHANGHAI).period == "2026-W47"
    assert not bulletin_still_timely(bulletin, late, SHANGHAI)


def test_the_digest_says_how_long_overdue_as_a_person_would() -> None:
    """Tryout: a task due at 23:59 seen in the 08:34 digest was "最早已逾期 1 天"; it was
    8 hours late. Under a day it is told in whole hours (at least 1), else in whole days."""
    from bot.domain.escalation import overdue_span
    from bot.render.i18n import t

    due = dt.datetime(2026, 12, 8, 15, 59, tzinfo=dt.UTC)  # 23:59 in Shanghai
    assert overdue_span(due, due + dt.timedelta(hours=8, minutes=35)) == (8, "hours")
    assert overdue_span(due, due + dt.timedelta(minutes=5)) == (1, "hours")
    assert overdue_span(due, due + dt.timedelta(days=1)) == (1, "days")
    assert overdue_span(due, due + dt.timedelta(days=3, hours=23)) == (3, "days")
    assert t("zh-hans", "scheduler.digest.overdue_row_hours", unit="第1网络包抓联络小组",
             count=1, hours=8) == "• 第1网络包抓联络小组：1 件，最早已逾期 8 小时"
