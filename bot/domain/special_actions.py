"""Special actions (专项行动) as data: special_actions.yaml.

The seed runs its rectification as dated special actions, each with a lead and responsible
units: 10 in 篇2 (lines 69-78, "重点推进以下10项整改提升专项行动") and 13 in 篇4 (lines 178-190,
"重点推进以下13个专项行动"), worked "倒排时序、挂图作战" (line 193). An action here names its
lead unit, its responsible units, the report categories (reporting.yaml) its problems fall
under, and its dates. Its week in the bulletin: the problems found, closed and overdue among
the tasks of those categories and units within its dates; an action whose overdue share of
its open problems is above the configured threshold is lagging, and its lead is named.

The battle map (挂图作战, `/actions`): each action against time on a day (`action_state`):
the share of its days gone by and the days left to its end (倒排时序), its problems found,
closed, open and overdue over its whole span so far, and its status (`ActionStatus`).

Pure: validated from the YAML node graph like the other configuration files (file, line and
field in every problem).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from bot.domain.yamlfile import YamlFileError, YamlReader, compose, read_text

__all__ = ["ActionFigures", "ActionState", "ActionStatus", "ActionWeek", "LagRule",
           "SpecialAction", "SpecialActionsError", "action_state", "battle_map", "lagging",
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
    return _overdue_lags(week.open, week.overdue, share, min_open)


def _overdue_lags(still_open: int, overdue: int, share: float, min_open: int) -> bool:
    return still_open >= max(1, min_open) and overdue / still_open > share


# ---- the battle map (挂图作战) ------------------------------------------------------------------


class ActionStatus(StrEnum):
    NOT_STARTED = "not_started"
    ON_TRACK = "on_track"
    LAGGING = "lagging"
    ENDED = "ended"


@dataclass(frozen=True)
class ActionFigures:
    """An action's problems over its whole span up to a moment: found (tasks created since
    it began), closed, and still open and overdue at that moment."""

    found: int = 0
    closed: int = 0
    open: int = 0
    overdue: int = 0


@dataclass(frozen=True)
class LagRule:
    """When a running action lags (assessment.yaml's special_actions block).

    - overdue: more than `overdue_share` of its open problems are overdue, with at least
      `min_open` open (the weekly bulletin's rule, so the map and the bulletin agree);
    - behind time: it has found at least `min_open` problems and the share of them closed
      is more than `behind_time` below the share of its days gone by (倒排时序: every problem
      found must be closed by its end; halfway through, at least a quarter closed).
    """

    overdue_share: float = 0.3
    min_open: int = 3
    behind_time: float = 0.25


@dataclass(frozen=True)
class ActionState:
    """One action on the battle map, on `day`."""

    action: SpecialAction
    day: dt.date
    figures: ActionFigures
    status: ActionStatus
    elapsed: float        # share of its days gone by, `day` included: 0 before, 1 after
    days_left: int        # days after `day` up to its end (0 on its last day and after)
    overdue_lag: bool = False  # lagging by the overdue rule
    behind_time: bool = False  # lagging by the behind-time rule

    @property
    def days(self) -> int:
        return (self.action.end - self.action.start).days + 1

    @property
    def closed_share(self) -> float | None:
        """Problems closed of those found (the final closure rate once it ended)."""
        f = self.figures
        return f.closed / f.found if f.found else None


def action_state(action: SpecialAction, day: dt.date, figures: ActionFigures,
                 rule: LagRule = LagRule()) -> ActionState:
    """Where `action` stands on `day` with `figures` (its whole span so far).

    Not started before its first day; ended after its last (judged no more: its closure rate
    is final); in between lagging by either of `rule`'s tests, else on track."""
    gone = (day - action.start).days + 1
    total = (action.end - action.start).days + 1
    elapsed = min(1.0, max(0.0, gone / total))
    days_left = max(0, (action.end - day).days)
    if day < action.start:
        return ActionState(action, day, figures, ActionStatus.NOT_STARTED, 0.0, days_left)
    if day > action.end:
        return ActionState(action, day, figures, ActionStatus.ENDED, 1.0, 0)
    overdue = _overdue_lags(figures.open, figures.overdue, rule.overdue_share, rule.min_open)
    share = figures.closed / figures.found if figures.found else 1.0
    behind = figures.found >= max(1, rule.min_open) and share < elapsed - rule.behind_time
    status = ActionStatus.LAGGING if overdue or behind else ActionStatus.ON_TRACK
    return ActionState(action, day, figures, status, elapsed, days_left, overdue, behind)


def battle_map(actions: Sequence[SpecialAction], day: dt.date,
               figures: Mapping[str, ActionFigures], rule: LagRule = LagRule()
               ) -> list[ActionState]:
    """Every action's state on `day`, in the file's order (an action without figures has
    found nothing)."""
    return [action_state(a, day, figures.get(a.code, ActionFigures()), rule) for a in actions]


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
