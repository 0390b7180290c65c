"""schedule.yaml: reminders, the escalation ladder, bulletin and digest times, phases.

Validated on load into frozen dataclasses; every problem names the file, the line and what is
wrong, so a city editing its schedule finds its mistake without reading code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
Notify = Literal["parent", "office"]


class ScheduleConfigError(ValueError):
    """A problem in the schedule file; str() is one readable line."""

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        self.file, self.line, self.problem = file, line, problem
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class PhaseName:
    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


@dataclass(frozen=True)
class Phase:
    name: PhaseName
    start: dt.date
    end: dt.date  # inclusive

    def days_left(self, today: dt.date) -> int:
        """Days still to go, today included (the last day says 1)."""
        return (self.end - today).days + 1


@dataclass(frozen=True)
class EscalationStep:
    after_overdue_hours: float
    level: int
    notify: Notify


@dataclass(frozen=True)
class BulletinConfig:
    weekday: int  # 0 = Monday
    time: dt.time
    min_inspections: int
    laggards: int


@dataclass(frozen=True)
class DigestConfig:
    time: dt.time


@dataclass(frozen=True)
class ScheduleConfig:
    tick_seconds: float = 20.0
    reminder_before_hours: float = 24.0
    overdue_reminder_hour: int = 9
    escalation: tuple[EscalationStep, ...] = (
        EscalationStep(48, 1, "parent"), EscalationStep(120, 2, "office"))
    office_unit: str | None = None
    bulletin: BulletinConfig = BulletinConfig(0, dt.time(9, 0), 2, 3)
    digest: DigestConfig = DigestConfig(dt.time(8, 30))
    phases: tuple[Phase, ...] = ()

    def phase_on(self, day: dt.date) -> Phase | None:
        return next((p for p in self.phases if p.start <= day <= p.end), None)

    def office_level(self) -> int:
        """The level at which a task has reached the campaign office (named in bulletins)."""
        levels = [s.level for s in self.escalation if s.notify == "office"]
        return min(levels) if levels else max((s.level for s in self.escalation), default=1)


# ---- loading with line numbers --------------------------------------------------------------


class _Map(dict[str, Any]):
    line: int = 0
    lines: dict[str, int]


class _Seq(list[Any]):
    line: int = 0
    lines: list[int]


class _LineLoader(yaml.SafeLoader):
    pass


def _map(loader: _LineLoader, node: yaml.MappingNode) -> _Map:
    out = _Map()
    out.line = node.start_mark.line + 1
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[str(key)] = loader.construct_object(value_node, deep=True)
        out.lines[str(key)] = key_node.start_mark.line + 1
    return out


def _seq(loader: _LineLoader, node: yaml.SequenceNode) -> _Seq:
    out = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.lines = [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _map)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _seq)

_TOP_KEYS = {"schema", "tick_seconds", "reminder_before_hours", "overdue_reminder_hour",
             "escalation", "office_unit", "bulletin", "digest", "phases"}


class _Reader:
    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, line: int | None, problem: str) -> ScheduleConfigError:
        return ScheduleConfigError(self.file, line, problem)

    def mapping(self, node: object, line: int | None, what: str) -> _Map:
        if not isinstance(node, _Map):
            raise self.fail(line, f"{what} must be a mapping (key: value)")
        return node

    def known(self, m: _Map, keys: set[str], what: str) -> None:
        for key in m:
            if key not in keys:
                raise self.fail(m.lines[key], f"unknown key {key!r} in {what} "
                                              f"(expected one of: {', '.join(sorted(keys))})")

    def number(self, m: _Map, key: str, default: float, *, minimum: float = 0,
               maximum: float | None = None, integer: bool = False) -> float:
        if key not in m:
            return default
        value = m[key]
        line = m.lines[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                integer and not isinstance(value, int)):
            kind = "a whole number" if integer else "a number"
            raise self.fail(line, f"{key} must be {kind}, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise self.fail(line, f"{key} must be at least {minimum}{upper}, got {value}")
        return float(value)

    def clock_time(self, m: _Map, key: str, default: dt.time) -> dt.time:
        if key not in m:
            return default
        value, line = m[key], m.lines[key]
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 09:00 as the sexagesimal number 540.
            value = f"{value // 60:02d}:{value % 60:02d}"
        try:
            hour, minute = str(value).split(":")
            return dt.time(int(hour), int(minute))
        except ValueError:
            raise self.fail(line, f"{key} must be a time like \"09:00\", got {value!r}") from None

    def date(self, m: _Map, key: str, what: str) -> dt.date:
        if key not in m:
            raise self.fail(m.line, f"{what} needs {key} (a date like 2026-04-13)")
        value = m[key]
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise self.fail(m.lines[key], f"{key} must be a date like 2026-04-13, "
                                          f"got {value!r}") from None


def parse_schedule(text: str, file: str = "schedule.yaml") -> ScheduleConfig:
    """Validate schedule YAML text; raises ScheduleConfigError naming the line."""
    r = _Reader(file)
    try:
        data = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise r.fail(mark.line + 1 if mark else None, f"not valid YAML: {exc}") from None
    if data is None:
        return ScheduleConfig()
    top = r.mapping(data, 1, "the schedule file")
    r.known(top, _TOP_KEYS, "the schedule file")
    if top.get("schema", 1) != 1:
        raise r.fail(top.lines["schema"], f"schema must be 1, got {top['schema']!r}")
    defaults = ScheduleConfig()
    tick = r.number(top, "tick_seconds", defaults.tick_seconds, minimum=0.01)
    before = r.number(top, "reminder_before_hours", defaults.reminder_before_hours)
    overdue_hour = int(r.number(top, "overdue_reminder_hour", defaults.overdue_reminder_hour,
                                maximum=23, integer=True))
    escalation = defaults.escalation
    if "escalation" in top:
        escalation = _escalation(r, top["escalation"], top.lines["escalation"])
    office = top.get("office_unit")
    if office is not None and not isinstance(office, str):
        raise r.fail(top.lines["office_unit"], "office_unit must be a unit code")
    bulletin = defaults.bulletin
    if "bulletin" in top:
        b = r.mapping(top["bulletin"], top.lines["bulletin"], "bulletin")
        r.known(b, {"weekday", "time", "min_inspections", "laggards"}, "bulletin")
        weekday = bulletin.weekday
        if "weekday" in b:
            name = str(b["weekday"]).strip().lower()
            if name not in WEEKDAYS:
                raise r.fail(b.lines["weekday"], f"weekday must be one of {', '.join(WEEKDAYS)}, "
                                                 f"got {b['weekday']!r}")
            weekday = WEEKDAYS.index(name)
        bulletin = BulletinConfig(
            weekday=weekday,
            time=r.clock_time(b, "time", bulletin.time),
            min_inspections=int(r.number(b, "min_inspections", bulletin.min_inspections,
                                         integer=True)),
            laggards=int(r.number(b, "laggards", bulletin.laggards, integer=True)),
        )
    digest = defaults.digest
    if "digest" in top:
        d = r.mapping(top["digest"], top.lines["digest"], "digest")
        r.known(d, {"time"}, "digest")
        digest = DigestConfig(time=r.clock_time(d, "time", digest.time))
    phases: tuple[Phase, ...] = ()
    if "phases" in top:
        phases = _phases(r, top["phases"], top.lines["phases"])
    return ScheduleConfig(tick_seconds=tick, reminder_before_hours=before,
                          overdue_reminder_hour=overdue_hour, escalation=escalation,
                          office_unit=office, bulletin=bulletin, digest=digest, phases=phases)


def _escalation(r: _Reader, node: object, line: int) -> tuple[EscalationStep, ...]:
    if not isinstance(node, _Seq):
        raise r.fail(line, "escalation must be a list of steps")
    steps: list[EscalationStep] = []
    for item, item_line in zip(node, node.lines, strict=True):
        m = r.mapping(item, item_line, "an escalation step")
        r.known(m, {"after_overdue_hours", "level", "notify"}, "an escalation step")
        for key in ("after_overdue_hours", "level", "notify"):
            if key not in m:
                raise r.fail(m.line, f"escalation step needs {key}")
        hours = r.number(m, "after_overdue_hours", 0)
        level = int(r.number(m, "level", 0, minimum=1, integer=True))
        notify = m["notify"]
        if notify not in ("parent", "office"):
            raise r.fail(m.lines["notify"], f"notify must be parent or office, got {notify!r}")
        if steps and (level <= steps[-1].level or hours <= steps[-1].after_overdue_hours):
            raise r.fail(m.line, "escalation steps must rise: each step needs a higher level "
                                 "and more overdue hours than the one before")
        steps.append(EscalationStep(hours, level, notify))
    return tuple(steps)


def _phases(r: _Reader, node: object, line: int) -> tuple[Phase, ...]:
    if not isinstance(node, _Seq):
        raise r.fail(line, "phases must be a list")
    phases: list[Phase] = []
    for item, item_line in zip(node, node.lines, strict=True):
        m = r.mapping(item, item_line, "a phase")
        r.known(m, {"name", "start", "end"}, "a phase")
        if "name" not in m:
            raise r.fail(m.line, "a phase needs name: {zh: …, en: …}")
        name = r.mapping(m["name"], m.lines["name"], "a phase's name")
        for lang in ("zh", "en"):
            if not isinstance(name.get(lang), str) or not name[lang].strip():
                raise r.fail(m.lines["name"], f"a phase's name needs a non-empty {lang}")
        start, end = r.date(m, "start", "a phase"), r.date(m, "end", "a phase")
        if end < start:
            raise r.fail(m.lines["end"], f"phase ends ({end}) before it starts ({start})")
        if phases and start <= phases[-1].end:
            raise r.fail(m.lines["start"], f"phase starts ({start}) before the previous one "
                                           f"ends ({phases[-1].end}); list phases in order")
        phases.append(Phase(PhaseName(name["zh"].strip(), name["en"].strip()), start, end))
    return tuple(phases)


def load_schedule(path: Path) -> ScheduleConfig:
    """The schedule from `path` (Settings.schedule_file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScheduleConfigError(str(path), None, f"cannot read: {exc.strerror}") from None
    return parse_schedule(text, str(path))
