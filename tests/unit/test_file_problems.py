"""A plans file's problems as the admin who sent it reads them (bot/render/file_problems.py):
each problem the checker finds has a message code, told in the admin's language by line and
plan; the command line keeps its English lines."""

from __future__ import annotations

import functools
import re

import pytest

from bot.domain.yamlfile import FileProblem
from bot.render.file_problems import problem_line
from bot.render.i18n import catalogue
from bot.services.plan_files import check_text, decode

# One file with a problem of every kind the plans checker and the YAML reader report.
BAD = """\
schema: 2
morning: 7h
plan:
  - x
plans:
  - code: mall_weekly
    name: 商场
    rrule: FREQ=HOURLY
    start: 2026-13-01
    target: {site_types: [mal], sitez: [a]}
    crew: {people: [abc]}
  - code: mall_weekly
  - code: f
    rrule: FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30
    start: 2026-12-07
    until: 2026-12-01
    target: {}
    crew: {}
  - code: b
    name: [1]
    rrule: FREQ=WEEKLY;DTSTART=20260101
    start: 2026-12-07
    target: {sites: ["", x]}
    crew: {units: [u]}
  - code: c!
  - code: d
    name: {zh: "LONG"}
    rrule: FREQ=WEEKLY;BYHOUR=9
    start: 2026-12-07
    target: {sites: [x], <<: {}}
    crew: {units: [u], units: [v]}
  - code: e
    rrule: FREQ=WEEKLY;BYDAY=XX
    start: 2026-12-07
    target: {sites: [x]}
    crew: {units: [u]}
""".replace("LONG", "长" * 201)


@functools.cache  # the rule with no day costs dateutil seconds (bot/domain/plans.first_day)
def _checked() -> tuple[FileProblem, ...]:
    checked = check_text(BAD, "plans.yaml", {"mall", "hotel"})
    assert not hasattr(checked, "plans") or not checked.plans  # refused
    return tuple(checked.problems)  # type: ignore[union-attr]


def problems() -> list[FileProblem]:
    return list(_checked())


def test_every_problem_has_a_code_in_both_languages() -> None:
    found = problems()
    codes = {p.code for p in found}
    assert None not in codes, [p.text for p in found if p.code is None]
    assert {"plans.problem.schema", "plans.problem.bad_morning", "yaml.unknown_key",
            "plans.problem.rrule_frequency", "plans.problem.bad_date", "plans.problem.site_type",
            "yaml.not", "plans.problem.crew_empty", "plans.problem.code_twice",
            "plans.problem.until_before_start", "plans.problem.target_empty",
            "plans.problem.rrule_dtstart", "plans.problem.empty_entry", "plans.problem.bad_code",
            "plans.problem.name_too_long", "plans.problem.rrule_time", "yaml.merge_key",
            "yaml.key_twice", "plans.problem.rrule", "plans.problem.needs"} <= codes
    for lang in ("zh-hans", "en"):
        for code in codes:
            assert code in catalogue(lang), (lang, code)


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_each_line_says_where_and_what_in_the_senders_language(lang: str) -> None:
    lines = [problem_line(lang, p) for p in problems()]
    if lang == "zh-hans":
        assert lines[0] == "• 第 1 行：<code>schema</code> 只能是 1。"
        assert "• 第 10 行，计划 <code>mall_weekly</code>：<code>target</code>：不认识键 " \
            "\"sitez\"（是不是 \"sites\"？）；可用的键：site_types, sites, units。" in lines
        assert "• 第 11 行，计划 <code>mall_weekly</code>：<code>crew.people</code>" \
            "（Telegram 数字 ID）应为整数，而不是\"abc\"。" in lines
        # No English prose is left: what is Latin is a key, a value or a rule quoted.
        for line in lines:
            prose = re.sub(r"<code>.*?</code>|'[^']*'|\"[^\"]*\"|[A-Z_]+|[a-z_.]+(, )?", "",
                           line)
            assert not re.search(r"[A-Za-z]{3,}", prose), line
    else:
        assert lines[0] == "• Line 1: <code>schema</code> must be 1."
        assert "• Line 21, plan <code>b</code>: The rrule 'FREQ=WEEKLY;DTSTART=20260101' " \
            "must not contain DTSTART; write the first day as start:." in lines


def test_the_command_line_keeps_its_english_lines() -> None:
    found = problems()
    assert str(found[0]) == "plans.yaml:1: schema must be 1"
    assert "plans.yaml:8: plan 'mall_weekly': rrule 'FREQ=HOURLY' is not a recurrence a " \
        "daily list can follow: FREQ must be one of DAILY, WEEKLY, MONTHLY, YEARLY" \
        in map(str, found)


def test_a_file_that_is_not_utf8_or_yaml_is_told_so_in_the_senders_language() -> None:
    not_text = decode(b"\xff\xfe\x00", "plans.yaml")
    assert not isinstance(not_text, str)
    assert problem_line("zh-hans", not_text.problems[0]) == \
        "• 不是 UTF-8 文本（第 0 字节）；请另存为 UTF-8。"
    broken = check_text("plans: [unclosed\n  - code: x\n", "plans.yaml", {"mall"})
    line = problem_line("en", broken.problems[0])  # type: ignore[union-attr]
    assert line.startswith("• Line 2: YAML syntax error: "), line


def test_a_site_type_with_no_standards_loaded_is_told_so() -> None:
    text = BAD.split("  - code: mall_weekly\n  - code: f")[0]
    checked = check_text(text, "plans.yaml", set())
    coded = [p for p in checked.problems  # type: ignore[union-attr]
             if p.code == "plans.problem.site_type_none"]
    assert [problem_line("zh-hans", p) for p in coded] == [
        "• 第 10 行，计划 <code>mall_weekly</code>：点位类型 'mal' 没有对应的检查标准"
        "（尚未加载任何检查标准）。"]
