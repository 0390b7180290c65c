"""Special actions (专项行动) as data: special_actions.yaml.

The seed runs its rectification as dated special actions, each with a lead and responsible
units: 10 in 篇2 (lines 69-78, "重点推进以下10项整改提升专项行动") and 13 in 篇4 (lines 178-190,
"重点推进以下13个专项行动"), worked "倒排时序、挂图作战" (line 193). An action here names its
lead unit, its responsible units, the report categories (reporting.yaml) its problems fall
under, and its dates. Its week in the bulletin: the problems found, closed and overdue among
the tasks of those categories and units within its dates; an action whose overdue share of
its open problems is above the configured threshold is lagging, and its lead is named.

Pure: validated from the YAML node graph like the other configuration files (file, line and
field in every problem).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.domain.yamlfile import YamlFileError, YamlReader, compose, read_text

__all__ = ["ActionWeek", "SpecialAction", "SpecialActionsError", "lagging",
           "load_special_actions", "parse_special_actions"]


class SpecialActionsError(YamlFileError, ValueError):
    """A problem in special_actions.yaml: ``file:line: action 'x': problem``."""

    field_prefix = "action "


def _error(file: str, line: int | None, fld: str | None, problem: str) -> SpecialActionsError:
    return SpecialActionsError(file, line, fld, problem)


@dataclass(frozen=True)
class SpecialAction:
    code: str
    name_zh: str
    name_en: str
    lead: str                    # the lead unit's code
    units: tuple[str, ...]       # responsible units' codes (the lead among them or not)
    categories: tuple[str, ...]  # report categories (reporting.yaml codes)
    start: dt.date
    end: dt.date                 # inclusive
    seed: str = ""

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" and self.name_en else self.name_zh

    def active(self, first: dt.date, last: dt.date) -> bool:
        """Whether the action runs on any day of [first, last]."""
        return self.start <= last and first <= self.end


@dataclass(frozen=True)
class ActionWeek:
    """An action's week: problems found (tasks created), closed, and, at the week's end,
    still open and overdue."""

    action: SpecialAction
    found: int = 0
    closed: int = 0
    open: int = 0
    overdue: int = 0

    @property
    def overdue_share(self) -> float | None:
        return self.overdue / self.open if self.open else None


def lagging(week: ActionWeek, share: float, min_open: int) -> bool:
    """More than `share` of at least `min_open` open problems are overdue."""
    ratio = week.overdue_share
    return ratio is not None and week.open >= max(1, min_open) and ratio > share


_KEYS = ("code", "name", "seed", "lead", "units", "categories", "start", "end")


def parse_special_actions(
    text: str, file: str = "special_actions.yaml", *,
    categories: Iterable[str] | None = None,
) -> tuple[SpecialAction, ...]:
    """Validate the file; every problem is collected and the first raised (in file order).
    `categories`: the report categories known (reporting.yaml), checked when given."""
    r: YamlReader[SpecialActionsError] = YamlReader(file, _error)
    root = compose(text, file, _error)
    if root is None:
        return ()
    known = None if categories is None else set(categories)
    top = r.fields(root, None, "the file", ("schema", "actions"), ("actions",))
    out: list[SpecialAction] = []
    codes: set[str] = set()
    items = r.sequence(top["actions"], None, "actions") if top and "actions" in top else None
    for node in items or []:
        m = r.fields(node, None, "an action", _KEYS,
                     ("code", "name", "lead", "units", "categories", "start", "end"))
        if m is None or any(k not in m for k in ("code", "name", "lead", "units", "categories",
                                                   "start", "end")):
            continue
        code = (r.string(m["code"], None, "code") or "").strip()
        where = repr(code) if code else None
        if not code:
            r.problem(m["code"], None, "code must not be empty")
        elif code in codes:
            r.problem(m["code"], where, "code appears twice")
        codes.add(code)
        name = r.fields(m["name"], where, "name", ("zh", "en"), ("zh",))
        zh = (r.string(name["zh"], where, "name.zh") or "").strip() if name and "zh" in name \
            else ""
        en = (r.string(name["en"], where, "name.en") or "").strip() if name and "en" in name \
            else ""
        lead = (r.string(m["lead"], where, "lead") or "").strip()
        units = [(r.string(n, where, "a unit") or "").strip()
                 for n in r.sequence(m["units"], where, "units") or []]
        cats = [(r.string(n, where, "a category") or "").strip()
                for n in r.sequence(m["categories"], where, "categories") or []]
        for n, cat in zip(r.sequence(m["categories"], where, "categories") or [], cats,
                          strict=True):
            if known is not None and cat not in known:
                r.problem(n, where, f"unknown category {cat!r}; known: {', '.join(sorted(known))}")
        dates: list[dt.date] = []
        for key in ("start", "end"):
            raw = (r.string(m[key], where, key) or "").strip()
            try:
                dates.append(dt.date.fromisoformat(raw))
            except ValueError:
                r.problem(m[key], where, f"{key} must be a date like 2026-04-13, got {raw!r}")
        if len(dates) == 2 and dates[1] < dates[0]:
            r.problem(m["end"], where, f"ends ({dates[1]}) before it starts ({dates[0]})")
        if not lead:
            r.problem(m["lead"], where, "lead must name a unit code")
        seed = (r.string(m["seed"], where, "seed") or "").strip() if "seed" in m else ""
        if len(dates) == 2 and code and zh and lead:
            out.append(SpecialAction(code, zh, en, lead, tuple(u for u in units if u),
                                     tuple(c for c in cats if c), dates[0], dates[1], seed))
    problems = r.sorted_errors()
    if problems:
        raise problems[0]
    return tuple(out)


def load_special_actions(path: Path, categories: Iterable[str] | None = None
                         ) -> tuple[SpecialAction, ...]:
    """The special actions at `path` (Settings.special_actions_file)."""
    return parse_special_actions(read_text(path, _error), str(path), categories=categories)
