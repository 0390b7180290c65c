"""schedule.yaml: reminders, the escalation ladder, bulletin and digest times, phases.

Validated on load into frozen dataclasses; every problem names the file, the line and what is
wrong, so a city editing its schedule finds its mistake without reading code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from yaml.nodes import Node, ScalarNode, SequenceNode

from bot.domain.yamlfile import Fields, YamlFileError, YamlReader, compose, line_of, read_text

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
Notify = Literal["parent", "office"]


class ScheduleConfigError(YamlFileError, ValueError):
    """A problem in the schedule file; str() is one readable line: ``file:line: problem``."""


def _error(file: str, line: int | None, _field: str | None, problem: str) -> ScheduleConfigError:
    return ScheduleConfigError(file, line, None, problem)


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

_TOP_KEYS = ("schema", "tick_seconds", "reminder_before_hours", "overdue_reminder_hour",
             "escalation", "office_unit", "bulletin", "digest", "phases")
_BULLETIN_KEYS = ("weekday", "time", "min_inspections", "laggards")
_STEP_KEYS = ("after_overdue_hours", "level", "notify")
_PHASE_KEYS = ("name", "start", "end")

class _Reader(YamlReader[ScheduleConfigError]):
    """Stops at the first problem: a schedule is short, and one fix at a time reads best."""

    def __init__(self, file: str) -> None:
        super().__init__(file, _error, first_only=True)

    def fail(self, at: Node | int | None, problem: str) -> ScheduleConfigError:
        return _error(self.file, at if isinstance(at, int) or at is None else line_of(at),
                      None, problem)

    def section(self, node: Node, what: str, keys: tuple[str, ...]) -> Fields:
        fields = self.fields(node, None, what, keys)
        assert fields is not None  # (first_only: a problem was raised)
        return fields

    def amount(self, m: Fields, key: str, default: float, *, minimum: float = 0,
               maximum: float | None = None, integer: bool = False) -> float:
        if key not in m:
            return default
        key_node, node = m.key(key), m[key]
        value = self.whole(node, None, key) if integer else self.number(node, None, key)
        assert value is not None
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise self.fail(key_node, f"{key} must be at least {minimum}{upper}, got {value}")
        return float(value)

    def word(self, m: Fields, key: str) -> str:
        """A text field, as written, stripped."""
        text = self.string(m[key], None, key)
        assert text is not None
        return text.strip()

    def clock_time(self, m: Fields, key: str, default: dt.time) -> dt.time:
        if key not in m:
            return default
        # The text as written: YAML 1.1 would read an unquoted 09:00 as the number 540.
        value = self.word(m, key)
        try:
            hour, minute = value.split(":")
            return dt.time(int(hour), int(minute))
        except ValueError:
            raise self.fail(m.key(key), f"{key} must be a time like \"09:00\", "
                                       f"got {value!r}") from None

    def date(self, m: Fields, key: str, what: str, line: int) -> dt.date:
        if key not in m:
            raise self.fail(line, f"{what} needs {key} (a date like 2026-04-13)")
        value = self.word(m, key)
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise self.fail(m.key(key), f"{key} must be a date like 2026-04-13, "
                                       f"got {value!r}") from None


def parse_schedule(text: str, file: str = "schedule.yaml") -> ScheduleConfig:
    """Validate schedule YAML text; raises ScheduleConfigError naming the line."""
    r = _Reader(file)
    root = compose(text, file, _error)
    if root is None:
        return ScheduleConfig()
    top = r.section(root, "the schedule file", _TOP_KEYS)
    schema = r.whole(top["schema"], None, "schema") if "schema" in top else 1
    if schema != 1:
        raise r.fail(top.key("schema"), f"schema must be 1, got {schema}")
    defaults = ScheduleConfig()
    tick = r.amount(top, "tick_seconds", defaults.tick_seconds, minimum=0.01)
    before = r.amount(top, "reminder_before_hours", defaults.reminder_before_hours)
    overdue_hour = int(r.amount(top, "overdue_reminder_hour", defaults.overdue_reminder_hour,
                                maximum=23, integer=True))
    escalation = defaults.escalation
    if "escalation" in top:
        escalation = _escalation(r, top)
    office = None
    if "office_unit" in top:
        key_node, node = top.key("office_unit"), top["office_unit"]
        if not (isinstance(node, ScalarNode) and node.tag.endswith(":str")):
            raise r.fail(key_node, "office_unit must be a unit code")
        office = r.word(top, "office_unit")
    bulletin = defaults.bulletin
    if "bulletin" in top:
        b = r.section(top["bulletin"], "bulletin", _BULLETIN_KEYS)
        weekday = bulletin.weekday
        if "weekday" in b:
            name = r.word(b, "weekday")
            if name.lower() not in WEEKDAYS:
                raise r.fail(b.key("weekday"), f"weekday must be one of {', '.join(WEEKDAYS)}, "
                                              f"got {name!r}")
            weekday = WEEKDAYS.index(name.lower())
        bulletin = BulletinConfig(
            weekday=weekday,
            time=r.clock_time(b, "time", bulletin.time),
            min_inspections=int(r.amount(b, "min_inspections", bulletin.min_inspections,
                                         integer=True)),
            laggards=int(r.amount(b, "laggards", bulletin.laggards, integer=True)),
        )
    digest = defaults.digest
    if "digest" in top:
        d = r.section(top["digest"], "digest", ("time",))
        digest = DigestConfig(time=r.clock_time(d, "time", digest.time))
    phases: tuple[Phase, ...] = ()
    if "phases" in top:
        phases = _phases(r, top)
    return ScheduleConfig(tick_seconds=tick, reminder_before_hours=before,
                          overdue_reminder_hour=overdue_hour, escalation=escalation,
                          office_unit=office, bulletin=bulletin, digest=digest, phases=phases)


def _items(r: _Reader, top: Fields, key: str, problem: str) -> list[Node]:
    node = top[key]
    if not isinstance(node, SequenceNode):
        raise r.fail(top.key(key), problem)
    return list(node.value)


def _escalation(r: _Reader, top: Fields) -> tuple[EscalationStep, ...]:
    steps: list[EscalationStep] = []
    for item in _items(r, top, "escalation", "escalation must be a list of steps"):
        m = r.section(item, "an escalation step", _STEP_KEYS)
        for key in _STEP_KEYS:
            if key not in m:
                raise r.fail(item, f"escalation step needs {key}")
        hours = r.amount(m, "after_overdue_hours", 0)
        level = int(r.amount(m, "level", 0, minimum=1, integer=True))
        notify = r.word(m, "notify")
        if notify not in ("parent", "office"):
            raise r.fail(m.key("notify"), f"notify must be parent or office, got {notify!r}")
        if steps and (level <= steps[-1].level or hours <= steps[-1].after_overdue_hours):
            raise r.fail(item, "escalation steps must rise: each step needs a higher level "
                               "and more overdue hours than the one before")
        steps.append(EscalationStep(hours, level, cast(Notify, notify)))
    return tuple(steps)


def _phases(r: _Reader, top: Fields) -> tuple[Phase, ...]:
    phases: list[Phase] = []
    for item in _items(r, top, "phases", "phases must be a list"):
        m = r.section(item, "a phase", _PHASE_KEYS)
        if "name" not in m:
            raise r.fail(item, "a phase needs name: {zh: …, en: …}")
        name = r.section(m["name"], "a phase's name", ("zh", "en"))
        texts = {lang: r.word(name, lang) if lang in name else "" for lang in ("zh", "en")}
        for lang, value in texts.items():
            if not value:
                raise r.fail(m.key("name"), f"a phase's name needs a non-empty {lang}")
        start = r.date(m, "start", "a phase", line_of(item))
        end = r.date(m, "end", "a phase", line_of(item))
        if end < start:
            raise r.fail(m.key("end"), f"phase ends ({end}) before it starts ({start})")
        if phases and start <= phases[-1].end:
            raise r.fail(m.key("start"), f"phase starts ({start}) before the previous one "
                                        f"ends ({phases[-1].end}); list phases in order")
        phases.append(Phase(PhaseName(texts["zh"], texts["en"]), start, end))
    return tuple(phases)


def load_schedule(path: Path) -> ScheduleConfig:
    """The schedule from `path` (Settings.schedule_file)."""
    return parse_schedule(read_text(path, _error), str(path))
