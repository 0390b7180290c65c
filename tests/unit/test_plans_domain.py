"""The planner: plans.yaml's rules, rounds expanded into local days, a balanced share-out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import DEFAULTS_DIR
from bot.domain.plans import (
    Crew,
    Job,
    Plan,
    PlansConfigError,
    Target,
    Text,
    assign,
    check_plans,
    load_plans,
    parse_plans,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def plan(rule: str, start: dt.date = dt.date(2026, 3, 2), until: dt.date | None = None) -> Plan:
    return Plan("p", Text("计划", "Plan"), rule, start, Target(site_types=("mall",)),
                Crew(people=(1,)), until)


def test_weekly_rounds_fall_on_their_weekday_week_after_week() -> None:
    p = plan("FREQ=WEEKLY;BYDAY=MO")
    days = p.days(dt.date(2026, 3, 1), dt.date(2026, 3, 31), SHANGHAI)
    assert days == [dt.date(2026, 3, 2), dt.date(2026, 3, 9), dt.date(2026, 3, 16),
                    dt.date(2026, 3, 23), dt.date(2026, 3, 30)]
    assert all(d.weekday() == 0 for d in days)


def test_which_weekdays_and_every_other_week() -> None:
    p = plan("FREQ=WEEKLY;BYDAY=TU,FR")
    assert p.days(dt.date(2026, 3, 2), dt.date(2026, 3, 8), SHANGHAI) == [
        dt.date(2026, 3, 3), dt.date(2026, 3, 6)]
    fortnightly = plan("FREQ=WEEKLY;INTERVAL=2;BYDAY=WE")
    assert fortnightly.days(dt.date(2026, 3, 1), dt.date(2026, 3, 31), SHANGHAI) == [
        dt.date(2026, 3, 4), dt.date(2026, 3, 18)]


def test_daily_on_working_days_and_monthly_rounds() -> None:
    weekdays = plan("FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR")
    days = weekdays.days(dt.date(2026, 3, 2), dt.date(2026, 3, 15), SHANGHAI)
    assert len(days) == 10 and all(d.weekday() < 5 for d in days)
    first_monday = plan("FREQ=MONTHLY;BYDAY=1MO")
    assert first_monday.days(dt.date(2026, 3, 1), dt.date(2026, 6, 30), SHANGHAI) == [
        dt.date(2026, 3, 2), dt.date(2026, 4, 6), dt.date(2026, 5, 4), dt.date(2026, 6, 1)]
    last_day = plan("FREQ=MONTHLY;BYMONTHDAY=-1", start=dt.date(2026, 1, 1))
    assert last_day.days(dt.date(2026, 1, 1), dt.date(2026, 4, 30), SHANGHAI) == [
        dt.date(2026, 1, 31), dt.date(2026, 2, 28), dt.date(2026, 3, 31), dt.date(2026, 4, 30)]


@pytest.mark.parametrize("tz, change", [
    (BERLIN, dt.date(2026, 3, 29)),  # clocks go forward: the day has 23 hours
    (BERLIN, dt.date(2026, 10, 25)),  # back: 25 hours
    (NEW_YORK, dt.date(2026, 3, 8)),
    (NEW_YORK, dt.date(2026, 11, 1)),
])
def test_daylight_saving_changes_neither_skip_nor_double_a_day(tz: ZoneInfo,
                                                               change: dt.date) -> None:
    daily = plan("FREQ=DAILY", start=change - dt.timedelta(days=10))
    days = daily.days(change - dt.timedelta(days=3), change + dt.timedelta(days=3), tz)
    assert days == [change + dt.timedelta(days=n) for n in range(-3, 4)]
    # A weekly round keeps its weekday across the change (the change is on a Sunday).
    weekly = plan("FREQ=WEEKLY;BYDAY=SU,MO", start=change - dt.timedelta(days=14))
    around = weekly.days(change - dt.timedelta(days=7), change + dt.timedelta(days=8), tz)
    assert around == [change - dt.timedelta(days=7), change - dt.timedelta(days=6), change,
                      change + dt.timedelta(days=1), change + dt.timedelta(days=7),
                      change + dt.timedelta(days=8)]
    # The occurrence itself is local midnight, on the wall clock, before and after.
    times = list(daily.recurrence(tz).between(
        dt.datetime.combine(change - dt.timedelta(days=1), dt.time(), tz),
        dt.datetime.combine(change + dt.timedelta(days=1), dt.time(), tz), inc=True))
    assert [t.time() for t in times] == [dt.time()] * 3
    assert len({t.utcoffset() for t in times}) == 2


def test_start_and_until_bound_the_rounds() -> None:
    p = plan("FREQ=DAILY", start=dt.date(2026, 5, 10), until=dt.date(2026, 5, 12))
    assert p.days(dt.date(2026, 5, 1), dt.date(2026, 5, 31), SHANGHAI) == [
        dt.date(2026, 5, 10), dt.date(2026, 5, 11), dt.date(2026, 5, 12)]
    assert not p.due_on(dt.date(2026, 5, 13), SHANGHAI)
    assert p.due_on(dt.date(2026, 5, 11), SHANGHAI)


def test_a_plan_survives_its_trip_through_the_database() -> None:
    p = plan("FREQ=WEEKLY;BYDAY=MO", until=dt.date(2026, 12, 31))
    assert Plan.from_json(p.code, p.to_json()) == p


def test_the_demo_city_ships_the_seeds_weekly_commerce_round() -> None:
    cfg = load_plans(DEFAULTS_DIR / "plans.yaml")
    commerce = next(p for p in cfg.plans if p.code == "commerce_weekly")
    assert set(commerce.target.site_types) == {"mall", "hotel"}
    assert "liaison_1" in commerce.crew.units
    assert commerce.due_on(dt.date(2026, 12, 7), SHANGHAI)  # a Monday
    assert not commerce.due_on(dt.date(2026, 12, 8), SHANGHAI)
    assert cfg.morning == dt.time(7, 30)
    assert any(p.code == "community_patrol" for p in cfg.plans)


BAD = """\
schema: 1
morning: "7h"
plans:
  - code: a
    name: {zh: 甲}
    rrule: FREQ=HOURLY
    start: 2026-01-01
    target: {site_types: [mall]}
    crew: {people: [1]}
  - code: b
    name: {zh: 乙}
    rrule: FREQ=WEEKLY;BYDAY=XX
    start: 2026-13-01
    target: {}
    crew: {units: [office]}
  - code: a
    name: {zh: 丙}
"""


def test_every_problem_names_file_line_and_plan() -> None:
    errors = check_plans(BAD, "plans.yaml")
    assert isinstance(errors, list)
    text = [str(e) for e in errors]
    assert text[0].startswith("plans.yaml:2: morning must be a time")
    assert any(t.startswith("plans.yaml:6: plan 'a': rrule 'FREQ=HOURLY'") for t in text)
    assert any(t.startswith("plans.yaml:12: plan 'b': rrule") for t in text)
    assert any(t.startswith("plans.yaml:13: plan 'b': start must be a date") for t in text)
    assert any(t.startswith("plans.yaml:14: plan 'b': target needs") for t in text)
    assert any(t.startswith("plans.yaml:16: plan 'a': code appears twice (first at line 4)")
               for t in text)
    with pytest.raises(PlansConfigError) as raised:
        parse_plans(BAD, "plans.yaml")
    assert str(raised.value) == text[0]


def test_unknown_keys_are_named_with_a_hint() -> None:
    errors = check_plans("plans:\n  - code: x\n    rule: FREQ=DAILY\n", "p.yaml")
    assert isinstance(errors, list)
    assert any(str(e).startswith("p.yaml:3: a plan: unknown key \"rule\" (did you mean "
                                 "\"rrule\"?)") for e in errors), errors


def test_assignment_balances_the_load_and_prefers_the_sites_own_inspector() -> None:
    jobs = [Job(k, (1, 2, 3)) for k in range(9)]
    out = assign(jobs)
    counts = {p: list(out.values()).count(p) for p in (1, 2, 3)}
    assert counts == {1: 3, 2: 3, 3: 3}
    # The site's own inspector gets it when loads are equal.
    assert assign([Job(1, (1, 2), frozenset({2}))]) == {1: 2}
    # What someone already has that day counts; the constrained job is placed first.
    out = assign([Job(1, (1, 2)), Job(2, (1,))], load={2: 5})
    assert out == {2: 1, 1: 1}
    assert assign([Job(1, ())]) == {}


def test_wenming_plans_check_lists_every_problem_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    bad = tmp_path / "plans.yaml"
    bad.write_text(BAD, encoding="utf-8")
    assert main(["plans", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2: morning must be a time" in err
    assert f"{bad}:16: plan 'a': code appears twice" in err
    assert err.rstrip().endswith(f"problem(s) in {bad}")
    assert main(["plans", "check", str(DEFAULTS_DIR / "plans.yaml")]) == 0
    assert "2 plan(s) OK" in capsys.readouterr().out


ODD = """\
plans:
  - code: x
    name: 测试
    rrule: FREQ=WEEKLY;BYDAY=MO
    start: 2026-12-07
    target:
      site_types: [mall, casino]
    crew: {people: [1]}
"""


def test_a_site_type_without_a_standard_is_an_error_and_a_plain_name_is_chinese(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tryout 14, defect 14: `site_types: [casino]` passed the check, and a plain-string
    name (as the org file allows) was refused."""
    from bot.cli import main

    errors = check_plans(ODD, "p.yaml", {"mall", "hotel"})
    assert isinstance(errors, list) and len(errors) == 1
    assert str(errors[0]).startswith("p.yaml:7: plan 'x': target.site_types: 'casino' is not "
                                     "a site type with a standard")
    fine = parse_plans(ODD.replace(", casino", ""), "p.yaml", {"mall"})
    assert fine.plans[0].name == Text("测试", "测试")
    bad = tmp_path / "plans.yaml"
    bad.write_text(ODD, encoding="utf-8")
    assert main(["plans", "check", str(bad)]) == 1
    assert f"{bad}:7: plan 'x': target.site_types: 'casino'" in capsys.readouterr().err


@pytest.mark.parametrize(("rule", "zh", "en"), [
    ("FREQ=WEEKLY;BYDAY=TU,FR", "每周二、五", "Tue and Fri weekly"),
    ("FREQ=WEEKLY;BYDAY=MO", "每周一", "Mon weekly"),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR", "每2周的周一、三、五",
     "Mon, Wed and Fri every 2 weeks"),
    ("FREQ=DAILY", "每天", "daily"),
    ("FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR", "每周一、二、三、四、五",
     "Mon, Tue, Wed, Thu and Fri weekly"),
    ("FREQ=MONTHLY;BYDAY=1MO", "每月第1个周一", "the 1st Mon of each month"),
    ("FREQ=MONTHLY;BYDAY=-1FR", "每月最后一个周五", "the last Fri of each month"),
    ("FREQ=MONTHLY;BYMONTHDAY=15", "每月15日", "day 15 of each month"),
    ("FREQ=YEARLY;BYMONTH=3", "FREQ=YEARLY;BYMONTH=3", "FREQ=YEARLY;BYMONTH=3"),
])
def test_a_recurrence_reads_in_words(rule: str, zh: str, en: str) -> None:
    """Tryout 14, defect 17: /plans showed "FREQ=WEEKLY;BYDAY=TU,FR"."""
    from bot.render.plans import rule_words

    assert rule_words("zh-hans", rule, dt.date(2026, 12, 7)) == zh
    assert rule_words("en", rule, dt.date(2026, 12, 7)) == en


def test_dates_in_the_plans_texts_cannot_be_read_the_wrong_way_round() -> None:
    """Tryout 14, defect 21: "Supervision plans (7/12)", "your list for 15/12"."""
    from bot.render.dates import format_date
    from bot.render.plans import ListRow, day_list

    assert format_date("en", dt.date(2026, 12, 7)) == "7 Dec"
    assert format_date("zh-hans", dt.date(2026, 12, 7)) == "12月7日"
    text, _ = day_list("en", dt.date(2026, 12, 15),
                       [ListRow(1, "酒店", "Hotel", "spot", "", "due")], {})
    assert "15 Dec" in text and "15/12" not in text


def test_a_list_press_notice_names_the_recheck_and_the_late_day_in_english_too() -> None:
    """Tryout 14, defects 4 and 9, for English readers: a re-check's task and item, and a
    past day's site counted as late (or not at all, or for today's list)."""
    from bot.render.plans import NOTHING, TODAY, ListRow, day_list, press_notice

    monday = dt.date(2026, 12, 7)
    notice = press_notice("en", day=monday, counts_as="late", kind="recheck", task_id=12,
                          task_title="1.1 门前三包", task_title_en="1.1 Frontage",
                          item="1.1 Frontage duties")
    assert notice is not None
    assert "#12" in notice and "1.1 Frontage" in notice and "门前三包" not in notice
    assert "Frontage duties" in notice and "7 Dec" in notice and "late" in notice
    assert "7 Dec" in (press_notice("en", day=monday, counts_as=TODAY, kind="round") or "")
    assert "more than a week" in (press_notice("en", day=monday, counts_as=NOTHING,
                                               kind="spot") or "")
    assert press_notice("en", day=monday, counts_as="done", kind="round") is None
    rows = [ListRow(1, "酒店", "Hotel", "round", "p", "due", 5),
            ListRow(1, "酒店", "Hotel", "recheck", "", "due", 6, 12, "1.1 门前三包",
                    "1.1 Frontage")]
    text, buttons = day_list("en", monday, rows, {})
    assert "re-check of task #12 1.1 Frontage" in text
    assert [b.data for row in buttons for b in row] == ["pg:6"]  # one per site: the re-check's


def test_the_bulletin_names_every_unit_with_rounds_due_worst_first() -> None:
    """Tryout 14, defect 7: the office's caption listed six units at 0 done and left out
    第1网络包抓联络小组 at 1/3; every unit with rounds due is named, worst first, and a
    caption too long for them all says how many are left out."""
    from bot.domain.ranking import UnitFigures, rank_units
    from bot.render.bulletin import CAPTION_LIMIT, BulletinView, caption

    names = {i: f"第{i}社区" for i in range(1, 9)}
    names[9] = "第1网络包抓联络小组"
    figures = [UnitFigures(i, name, 3, 80.0) for i, name in names.items()]
    plans = {i: (0, 1 + i % 3) for i in range(1, 9)} | {9: (1, 3)}
    view = BulletinView("zh-hans", "2026-W50", dt.date(2026, 12, 7), dt.date(2026, 12, 13),
                        "区创文办", None, rank_units(figures, figures), 2, plans=plans)
    text = caption(view)
    line = next(x for x in text.splitlines() if x.startswith("计划督查按时完成"))
    for name in names.values():
        assert name in line, name
    assert line.index("第1网络包抓联络小组 1/3") > line.index("第5社区 0/3")
    # Chinese punctuation between the units (tryout: "0/4; 第2…" in a Chinese caption).
    assert "第5社区 0/3；" in line and "; " not in line
    # Long names: as many as fit, and the rest counted.
    long = {i: f"很长很长很长的单位名称第{i}号社区居民委员会" for i in range(1, 60)}
    figures = [UnitFigures(i, name, 3, 80.0) for i, name in long.items()]
    view = BulletinView("zh-hans", "2026-W50", dt.date(2026, 12, 7), dt.date(2026, 12, 13),
                        "区创文办", None, rank_units(figures, figures), 2,
                        plans={i: (i % 2, 2) for i in long})
    text = caption(view)
    assert len(text) <= CAPTION_LIMIT and "……另有" in text and "计划督查按时完成" in text


def test_lists_and_the_plans_screen_fit_telegrams_limit_whatever_the_names() -> None:
    """Review of issue 14: a re-check row carries its task's title (an English checklist
    item runs to 1,199 characters), plan names come from files admins upload, and waiting
    inspectors are named: the list, /plans and the digest could pass 4,096 characters, and
    Telegram would refuse the inspector's whole list. Titles are clipped on the row, names
    shortened to fit, and an "&" is escaped once."""
    from bot.domain.plans import ROUND, Text
    from bot.render.fit import TEXT_LIMIT, shown_length
    from bot.render.plans import ListRow, PlanLine, day_list, plans_screen

    day = dt.date(2026, 12, 7)
    rows = [ListRow(i, f"点位{i}", f"Site {i}", "recheck", "", "due", i, 100 + i,
                    "整改" * 600, "Keep the floor & walls clean " * 40) for i in range(1, 21)]
    rows += [ListRow(i, f"点位{i}", f"Site {i}", ROUND, "p", "due", i) for i in range(21, 41)]
    names = {"p": Text("很长的计划名" * 33, "A long plan name & more " * 8)}
    for lang in ("zh-hans", "en"):
        text, buttons = day_list(lang, day, rows, names)
        assert shown_length(text) <= TEXT_LIMIT and "\ufff9" not in text
        assert len(buttons) == 30
    text, _ = day_list("en", day, rows[:1], names)
    assert "Keep the floor &amp; walls clean Keep" in text and "&amp;amp;" not in text
    assert len(text) < 400  # the title clipped on the row
    plans = [PlanLine(f"p{i}", Text("计划" * 100, "Plan " * 40), "FREQ=DAILY", "目标" * 100,
                      False, 3, 1) for i in range(30)]
    text, _ = plans_screen("zh-hans", day, plans, (0, 0), 0, ["督查员" * 66] * 12)
    assert shown_length(text) <= TEXT_LIMIT and "\ufff9" not in text


def test_inspectors_not_started_are_named_never_shown_by_their_telegram_id() -> None:
    """Review of issue 14: a pending inspector without a name in the organisation file (all
    of them, before migration 0012) was shown by Telegram id in the office's digest."""
    from bot.render.fit import unmark
    from bot.render.i18n import t
    from bot.render.plans import waiting_lines

    assert waiting_lines("zh-hans", ["", ""]) == [t("zh-hans", "plans.waiting_unnamed", count=2)]
    assert [unmark(x) for x in waiting_lines("zh-hans", ["赵新人", ""])] == [
        t("zh-hans", "plans.waiting", count=2, names="赵新人等 1 人")]
    assert waiting_lines("en", []) == []
