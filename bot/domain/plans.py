"""plans.yaml: supervision plans (督查计划), their recurrences, and each day's fair share-out.

A plan is a recurring round over a target (a site type, named sites, the sites of a unit: a
liaison group's key sites, a community's area, 划片包干) done by a crew (named inspectors, or
the inspectors of a unit). Its recurrence is an RFC 5545 RRULE ("FREQ=WEEKLY;BYDAY=MO")
computed by dateutil's rrule in the bot's time zone, so weeks, months and daylight saving come
from a well-kept library, not from calendar arithmetic of our own.

Pure: the file's rules, the expansion of a plan into the local days it is due on, and the
balanced assignment of a day's occurrences to inspectors. The database (plan_occurrences) is
the record of what is due and what was done; bot/services/plans.py writes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr
from yaml.nodes import Node, ScalarNode

from bot.domain import yamlfile
from bot.domain.yamlfile import (
    Fields,
    FileProblem,
    YamlFileError,
    YamlReader,
    compose,
    line_of,
    read_text,
)

ROUND = "round"  # a plan's round
SPOT = "spot"  # a random spot check (随机抽查), added by the draw
RECHECK = "recheck"  # a re-check (复查) of a closed task, added by the draw
KINDS = (ROUND, SPOT, RECHECK)
# An occurrence's status: due until an inspection at its site is submitted on its day (done)
# or later (late); one still due when its day has passed is missed.
DUE, DONE, LATE, MISSED = "due", "done", "late", "missed"
# Recurrences finer than a day make no sense for a list that goes out once a morning.
_FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
DEFAULT_MORNING = dt.time(7, 30)


class PlansConfigError(YamlFileError):
    """A problem in the plans file; str() is ``file:line: plan 'code': problem``."""

    field_prefix = "plan "


@dataclass(frozen=True)
class Text:
    zh: str
    en: str

    def get(self, lang: str) -> str:
        return (self.en or self.zh) if lang == "en" else self.zh


@dataclass(frozen=True)
class Target:
    """Which sites a round covers: a site matches when it matches every field given."""

    site_types: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()  # site codes
    units: tuple[str, ...] = ()  # unit codes: their sites and those of the units below


@dataclass(frozen=True)
class Crew:
    """Who may do a round: named people (Telegram ids) and the inspectors of units (and of
    the units below them)."""

    people: tuple[int, ...] = ()
    units: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    code: str
    name: Text
    rule: str  # the RRULE, without DTSTART
    start: dt.date
    target: Target
    crew: Crew
    until: dt.date | None = None  # inclusive
    line: int = 0

    def recurrence(self, tz: ZoneInfo) -> rrule:
        """The rule, anchored at local midnight of its first day in `tz`."""
        return rule_of(self.rule, self.start, tz)

    def days(self, first: dt.date, last: dt.date, tz: ZoneInfo) -> list[dt.date]:
        """The local days from `first` to `last` (inclusive) the plan is due on."""
        first = max(first, self.start)
        if self.until is not None:
            last = min(last, self.until)
        if last < first:
            return []
        begin = dt.datetime.combine(first, dt.time(), tz)
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tz)
        return sorted({d.date() for d in self.recurrence(tz).between(begin, end, inc=True)
                       if d < end})

    def due_on(self, day: dt.date, tz: ZoneInfo) -> bool:
        return bool(self.days(day, day, tz))

    def to_json(self) -> dict[str, object]:
        """The plan as stored in the database (plans.body)."""
        return {
            "name": {"zh": self.name.zh, "en": self.name.en}, "rrule": self.rule,
            "start": self.start.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "target": {"site_types": list(self.target.site_types),
                       "sites": list(self.target.sites), "units": list(self.target.units)},
            "crew": {"people": list(self.crew.people), "units": list(self.crew.units)},
        }

    @classmethod
    def from_json(cls, code: str, body: dict[str, object]) -> Plan:
        def strs(d: object, key: str) -> tuple[str, ...]:
            assert isinstance(d, dict)
            return tuple(str(v) for v in d.get(key) or ())

        name, target, crew = body["name"], body["target"], body["crew"]
        assert isinstance(name, dict) and isinstance(crew, dict)
        until = body.get("until")
        return cls(code=code, name=Text(str(name["zh"]), str(name.get("en", ""))),
                   rule=str(body["rrule"]), start=dt.date.fromisoformat(str(body["start"])),
                   until=None if until is None else dt.date.fromisoformat(str(until)),
                   target=Target(strs(target, "site_types"), strs(target, "sites"),
                                 strs(target, "units")),
                   crew=Crew(tuple(int(p) for p in crew.get("people") or ()),
                             strs(crew, "units")))


class RuleError(ValueError):
    """An RRULE a daily list cannot follow, for one of our own reasons (`code`: dtstart,
    frequency, time); dateutil's own ValueErrors say what it could not parse."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def rule_of(text: str, start: dt.date, tz: ZoneInfo) -> rrule:
    """An RRULE's dateutil rule from local midnight of `start`; ValueError when it is not one
    a daily list can follow."""
    body = text.strip().removeprefix("RRULE:")
    parts = {p.split("=", 1)[0].upper() for p in body.split(";") if p}
    if "DTSTART" in parts:
        raise RuleError("dtstart", "write the first day as start:, not DTSTART in the rule")
    freq = next((p.split("=", 1)[1].upper() for p in body.split(";")
                 if p.upper().startswith("FREQ=")), None)
    if freq not in _FREQUENCIES:
        raise RuleError("frequency", f"FREQ must be one of {', '.join(_FREQUENCIES)}")
    if parts & {"BYHOUR", "BYMINUTE", "BYSECOND"}:
        raise RuleError("time", "a plan is due on days: BYHOUR, BYMINUTE and BYSECOND do not "
                                "apply")
    rule = rrulestr(f"RRULE:{body}", dtstart=dt.datetime.combine(start, dt.time(), tz))
    assert isinstance(rule, rrule)
    return rule


def first_day(rule: rrule, start: dt.datetime) -> dt.date | None:
    """The first day within a year of `start` (the rule's own) of a rule (None: no day
    then, or ever). A rule with no day at all (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30) costs
    dateutil seconds, as it searches every year up to 9999: such a rule is refused here, once,
    so no morning ever computes it."""
    found = rule.replace(count=None, until=start + dt.timedelta(days=366)).after(
        start, inc=True)
    return None if found is None else found.date()


@dataclass(frozen=True)
class PlansConfig:
    morning: dt.time = DEFAULT_MORNING  # when each inspector's list for the day goes out
    plans: tuple[Plan, ...] = ()


# ---- loading with line numbers --------------------------------------------------------------

MAX_NAME = 200  # plans.name_zh / name_en
_TOP = ("schema", "morning", "plans")
_PLAN = ("code", "name", "rrule", "start", "until", "target", "crew")
_TARGET = ("site_types", "sites", "units")
_CREW = ("people", "units")


class _Reader(YamlReader[PlansConfigError]):
    def words(self, node: Node, field: str | None, what: str) -> tuple[str, ...]:
        items = self.sequence(node, field, what)
        out: list[str] = []
        for item in items or ():
            value = self.string(item, field, what)
            if value is not None and value.strip():
                out.append(value.strip())
            elif value is not None:
                self.problem(item, field, f"{what}: an empty entry", "plans.problem.empty_entry",
                             what=what)
        return tuple(out)

    def date(self, m: Fields, key: str, field: str | None) -> dt.date | None:
        value = self.string(m[key], field, key)
        if value is None:
            return None
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            self.problem(m[key], field, f"{key} must be a date like 2026-04-13, got {value!r}",
                         "plans.problem.bad_date", key=key, value=repr(value))
            return None


def parse_plans(text: str, file: str = "plans.yaml",
                known_site_types: Set[str] | None = None) -> PlansConfig:
    """Validate plans YAML text; raises the first PlansConfigError (in file order) after
    reading the whole file, so one run shows every problem's line in `errors`."""
    errors = check_plans(text, file, known_site_types)
    if isinstance(errors, PlansConfig):
        return errors
    raise errors[0]


def check_plans(text: str, file: str = "plans.yaml", known_site_types: Set[str] | None = None
                ) -> PlansConfig | list[PlansConfigError]:
    """The plans, or every problem found in file order. Given `known_site_types` (the
    standards' site types, as the org import checks them), a target's site type outside them
    is a problem: a round over a type no site can have covers nothing."""
    r = _Reader(file, PlansConfigError)
    try:
        root = compose(text, file, PlansConfigError)
    except PlansConfigError as exc:
        return [exc]
    if root is None:
        return PlansConfig()
    top = r.fields(root, None, "the file", _TOP)
    if top is None:
        return r.sorted_errors()
    if "schema" in top and r.whole(top["schema"], None, "schema") not in (1, None):
        r.problem(top["schema"], None, "schema must be 1", "plans.problem.schema")
    morning = DEFAULT_MORNING
    if "morning" in top:
        value = r.string(top["morning"], None, "morning") or ""
        try:
            hour, minute = value.split(":")
            morning = dt.time(int(hour), int(minute))
        except ValueError:
            r.problem(top["morning"], None, f"morning must be a time like \"07:30\", "
                                            f"got {value!r}", "plans.problem.bad_morning",
                      value=repr(value))
    plans: list[Plan] = []
    seen: dict[str, int] = {}
    for node in (r.sequence(top["plans"], None, "plans") or []) if "plans" in top else []:
        plan = _plan(r, node, seen, known_site_types)
        if plan is not None:
            plans.append(plan)
    if r.errors:
        return r.sorted_errors()
    return PlansConfig(morning, tuple(plans))


def _plan(r: _Reader, node: Node, seen: dict[str, int],
          known_site_types: Set[str] | None) -> Plan | None:
    at = line_of(node)
    m = r.fields(node, None, "a plan", _PLAN, ("code",))
    if m is None or "code" not in m:
        return None
    code = (r.string(m["code"], None, "code") or "").strip()
    field = repr(code)
    if not code or len(code) > 48 or not code.replace("_", "").replace("-", "").isalnum():
        r.problem(m["code"], field, "code must be a word of letters, digits, _ or - "
                                    "(at most 48)", "plans.problem.bad_code")
        return None
    if code in seen:
        r.problem(m["code"], field, f"code appears twice (first at line {seen[code]})",
                  "plans.problem.code_twice", first=seen[code])
        return None
    seen[code] = at
    before = len(r.errors)
    for key in ("name", "rrule", "start", "target", "crew"):
        if key not in m:
            r.problem(node, field, f"needs {key}", "plans.problem.needs", key=key)
    name = Text(code, code)
    if "name" in m and isinstance(m["name"], ScalarNode) and not yamlfile.is_null(m["name"]):
        # A plain string is the Chinese name, as in the org file (en falls back to it).
        zh = (r.string(m["name"], field, "name") or "").strip()
        name = Text(zh, zh) if zh else name
    elif "name" in m:
        n = r.fields(m["name"], field, "name", ("zh", "en"), ("zh",))
        if n is not None and "zh" in n:
            zh = (r.string(n["zh"], field, "name.zh") or "").strip()
            en = (r.string(n["en"], field, "name.en") or "").strip() if "en" in n else ""
            name = Text(zh, en or zh)
    if max(len(name.zh), len(name.en)) > MAX_NAME:
        r.problem(m["name"], field, f"name is longer than {MAX_NAME} characters",
                  "plans.problem.name_too_long", max=MAX_NAME)
    start = r.date(m, "start", field) if "start" in m else None
    until = r.date(m, "until", field) if "until" in m else None
    if start is not None and until is not None and until < start:
        r.problem(m["until"], field, f"until ({until}) is before start ({start})",
                  "plans.problem.until_before_start", until=until.isoformat(),
                  start=start.isoformat())
    rule = ""
    if "rrule" in m:
        rule = (r.string(m["rrule"], field, "rrule") or "").strip()
        try:
            parsed = rule_of(rule, start or dt.date(2026, 1, 1), ZoneInfo("UTC"))
        except ValueError as exc:
            reason = exc.code if isinstance(exc, RuleError) else None
            r.problem(m["rrule"], field, f"rrule {rule!r} is not a recurrence a daily list "
                                         f"can follow: {exc}",
                      f"plans.problem.rrule_{reason}" if reason else "plans.problem.rrule",
                      rule=repr(rule), detail=str(exc), frequencies=", ".join(_FREQUENCIES))
        else:
            anchor = dt.datetime.combine(start or dt.date(2026, 1, 1), dt.time(), ZoneInfo("UTC"))
            if first_day(parsed, anchor) is None:
                r.problem(m["rrule"], field, f"rrule {rule!r} falls on no day in the year "
                                             "after start", "plans.problem.no_day",
                          rule=repr(rule))
    target = Target()
    if "target" in m:
        t = r.fields(m["target"], field, "target", _TARGET)
        if t is not None:
            target = Target(*(r.words(t[k], field, f"target.{k}") if k in t else ()
                              for k in _TARGET))
            if not any((target.site_types, target.sites, target.units)):
                r.problem(m["target"], field, "target needs site_types, sites or units",
                          "plans.problem.target_empty")
            if known_site_types is not None and "site_types" in t:
                _check_site_types(r, t["site_types"], field, known_site_types)
    crew = Crew()
    if "crew" in m:
        c = r.fields(m["crew"], field, "crew", _CREW)
        if c is not None:
            people: list[int] = []
            for item in (r.sequence(c["people"], field, "crew.people") or []
                         if "people" in c else []):
                value = r.whole(item, field, "crew.people (Telegram ids)")
                if value is not None:
                    people.append(value)
            crew = Crew(tuple(people), r.words(c["units"], field, "crew.units")
                        if "units" in c else ())
            if not crew.people and not crew.units:
                r.problem(m["crew"], field, "crew needs people or units",
                          "plans.problem.crew_empty")
    if len(r.errors) > before or start is None:
        return None
    return Plan(code, name, rule, start, target, crew, until, at)


def _check_site_types(r: _Reader, node: Node, field: str, known: Set[str]) -> None:
    for item in r.sequence(node, field, "target.site_types") or ():
        value = r.string(item, field, "target.site_types")
        if value is not None and value.strip() and value.strip() not in known:
            shown = ", ".join(sorted(known)) or "(no standards loaded)"
            r.problem(item, field, f"target.site_types: {value.strip()!r} is not a site type "
                                   f"with a standard (known: {shown})",
                      "plans.problem.site_type" if known else "plans.problem.site_type_none",
                      value=repr(value.strip()), known=shown)


def load_plans(path: Path, known_site_types: Set[str] | None = None) -> PlansConfig:
    """The plans from `path` (Settings.plans_file)."""
    return parse_plans(read_text(path, PlansConfigError), str(path), known_site_types)


# ---- a day's share-out ----------------------------------------------------------------------


@dataclass
class Job:
    """One occurrence to assign: who may do it, and who is the site's own inspector."""

    key: int
    eligible: Sequence[int]
    preferred: frozenset[int] = field(default_factory=frozenset)


def assign(jobs: Iterable[Job], load: dict[int, int] | None = None) -> dict[int, int]:
    """Occurrence key -> inspector, balancing the load. The most constrained occurrences go
    first; each to its site's own inspector while that one is below the fair share (the day's
    occurrences over the inspectors who may take any), else to the least loaded of those
    eligible (ties: the lowest id). `load` counts what each already has that day. An
    occurrence nobody may do is left out."""
    load = dict(load or {})
    jobs = sorted(jobs, key=lambda j: (len(j.eligible), j.key))
    people = {p for j in jobs for p in j.eligible}
    share = -(-(sum(load.get(p, 0) for p in people) + len(jobs)) // max(1, len(people)))
    out: dict[int, int] = {}
    for job in jobs:
        if not job.eligible:
            continue
        own = [p for p in job.eligible if p in job.preferred and load.get(p, 0) < share]
        who = min(own or job.eligible, key=lambda p: (load.get(p, 0), p))
        out[job.key] = who
        load[who] = load.get(who, 0) + 1
    return out


@dataclass(frozen=True)
class PlansImport:
    """What became of a plans file. `problems`: nothing was imported."""

    # In file order; str() of each is the line "plans.yaml:12: plan 'x': rrule ...".
    problems: tuple[FileProblem, ...] = ()
    warnings: tuple[FileProblem, ...] = ()
    plans: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    morning: dt.time | None = None  # the file's hour for the daily lists
