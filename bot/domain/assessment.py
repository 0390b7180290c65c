"""The assessment (考评): supervision results folded together with the external tests.

Seed, 篇4 工作举措 5 (line 196): "将督查结果与国测、省测、市季度测评成绩一起,综合计入年度各部门、
各社区的考核成绩". A unit's assessment is a weighted mean of its components:

    supervision  its inspection score (the weekly ranking's figure: the mean inspection score
                 of its own sites' submitted inspections, bot/domain/ranking.py)
    national     国测   the national test's score (0-100)
    provincial   省测   the provincial test's score
    municipal    市测   the municipal quarterly test's score (市季度测评)

with weights from assessment.yaml. A component a unit has no figure for is left out and the
weights of the others are scaled up to sum to 1 (renormalised): a unit the national test did
not visit is judged on what it was measured on, not given 0 for a test it never sat. With no
component at all there is no assessment (None, never 0).

This module is pure: the configuration's reader, the arithmetic, and the checks of an imported
table's rows (cells in, records or row-and-column problems out; reading the file is the
service's).
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from yaml.nodes import Node

from bot.domain.special_actions import LagRule
from bot.domain.yamlfile import Fields, YamlFileError, YamlReader, compose, read_text

__all__ = [
    "COMPONENTS",
    "AssessmentConfig",
    "AssessmentConfigError",
    "Combined",
    "Level",
    "Period",
    "RowProblem",
    "ScoreRecord",
    "check_rows",
    "combine",
    "load_assessment",
    "parse_assessment",
]


class Level(enum.StrEnum):
    """The external tests, by who runs them."""

    NATIONAL = "national"      # 国测
    PROVINCIAL = "provincial"  # 省测
    MUNICIPAL = "municipal"    # 市季度测评


SUPERVISION = "supervision"
# Components in the order a formula shows them.
COMPONENTS = (SUPERVISION, Level.NATIONAL.value, Level.PROVINCIAL.value, Level.MUNICIPAL.value)

# What a table's "level" column may say (case and spaces ignored).
LEVEL_WORDS: dict[str, Level] = {
    "national": Level.NATIONAL, "国测": Level.NATIONAL, "国家测评": Level.NATIONAL,
    "provincial": Level.PROVINCIAL, "省测": Level.PROVINCIAL, "省级测评": Level.PROVINCIAL,
    "municipal": Level.MUNICIPAL, "市测": Level.MUNICIPAL, "市季度测评": Level.MUNICIPAL,
    "市级测评": Level.MUNICIPAL,
}

_PERIOD = re.compile(r"^\s*(\d{4})(?:\s*-?\s*[Qq]([1-4]))?\s*$")


@dataclass(frozen=True, order=True)
class Period:
    """A test's period: a year (2026) or one of its quarters (2026-Q3)."""

    year: int
    quarter: int | None = None  # None: the whole year

    @classmethod
    def parse(cls, text: str) -> Period:
        m = _PERIOD.match(text)
        if m is None or not 2000 <= int(m.group(1)) <= 2100:
            raise ValueError(text)
        return cls(int(m.group(1)), int(m.group(2)) if m.group(2) else None)

    @property
    def key(self) -> str:
        return f"{self.year}" if self.quarter is None else f"{self.year}-Q{self.quarter}"

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, 1 if self.quarter is None else self.quarter * 3 - 2, 1)

    @property
    def end(self) -> dt.date:
        """The period's last day (a later period is "more recent")."""
        if self.quarter is None or self.quarter == 4:
            return dt.date(self.year, 12, 31)
        return dt.date(self.year, self.quarter * 3 + 1, 1) - dt.timedelta(days=1)

    def sort_key(self) -> tuple[dt.date, int]:
        # A year and its Q4 end on the same day: the quarter is the later, finer figure.
        return self.end, 0 if self.quarter is None else 1


# ---- configuration ----------------------------------------------------------------------------


class AssessmentConfigError(YamlFileError, ValueError):
    """A problem in assessment.yaml: ``file:line: field: problem``."""


@dataclass(frozen=True)
class AssessmentConfig:
    """Weights by component (supervision, national, provincial, municipal); they need not sum
    to 1 (they are normalised), and a weight of 0 leaves that component out."""

    weights: Mapping[str, float] = field(default_factory=lambda: {
        SUPERVISION: 0.5, "national": 0.2, "provincial": 0.15, "municipal": 0.15})
    # A special action is lagging when more than this share of its open work is overdue.
    lagging_overdue_share: float = 0.3
    # ... and has at least this many problems open (one overdue of one is noise).
    lagging_min_open: int = 3
    # An imported table may have at most this many data rows (a bigger file is refused).
    max_import_rows: int = 5000
    # On the battle map (/actions), a running action also lags when its share closed is
    # more than this below the share of its days gone by.
    lagging_behind_time: float = 0.25

    @property
    def lag_rule(self) -> LagRule:
        """When an action lags on the battle map (bot/domain/special_actions.LagRule)."""
        return LagRule(self.lagging_overdue_share, self.lagging_min_open,
                       self.lagging_behind_time)


def _error(file: str, line: int | None, fld: str | None, problem: str) -> AssessmentConfigError:
    return AssessmentConfigError(file, line, fld, problem)


_TOP = ("schema", "weights", "special_actions", "import")
_ACTIONS = ("lagging_overdue_share", "lagging_min_open", "lagging_behind_time")
_IMPORT = ("max_rows",)


def parse_assessment(text: str, file: str = "assessment.yaml") -> AssessmentConfig:
    """Validate assessment YAML; raises AssessmentConfigError naming line and field."""
    r: YamlReader[AssessmentConfigError] = YamlReader(file, _error, first_only=True)
    root = compose(text, file, _error)
    defaults = AssessmentConfig()
    if root is None:
        return defaults
    top = r.fields(root, None, "the file", _TOP)
    assert top is not None
    if "schema" in top and r.whole(top["schema"], "schema", "schema") != 1:
        r.problem(top["schema"], "schema", "schema must be 1")
    weights = dict(defaults.weights)
    if "weights" in top:
        w = r.fields(top["weights"], "weights", "weights", COMPONENTS)
        assert w is not None
        weights = {c: 0.0 for c in COMPONENTS}
        for key in COMPONENTS:
            if key in w:
                weights[key] = _amount(r, w, key, f"weights.{key}", 0.0, None)
        if sum(weights.values()) <= 0:
            r.problem(top.key("weights"), "weights", "at least one weight must be above 0")
    share, min_open = defaults.lagging_overdue_share, defaults.lagging_min_open
    behind = defaults.lagging_behind_time
    if "special_actions" in top:
        a = r.fields(top["special_actions"], "special_actions", "special_actions", _ACTIONS)
        assert a is not None
        if "lagging_overdue_share" in a:
            share = _amount(r, a, "lagging_overdue_share",
                            "special_actions.lagging_overdue_share", 0.0, 1.0)
        if "lagging_min_open" in a:
            min_open = int(_whole(r, a, "lagging_min_open", "special_actions.lagging_min_open"))
        if "lagging_behind_time" in a:
            behind = _amount(r, a, "lagging_behind_time",
                             "special_actions.lagging_behind_time", 0.0, 1.0)
    max_rows = defaults.max_import_rows
    if "import" in top:
        i = r.fields(top["import"], "import", "import", _IMPORT)
        assert i is not None
        if "max_rows" in i:
            max_rows = max(1, _whole(r, i, "max_rows", "import.max_rows"))
    return AssessmentConfig(weights, share, min_open, max_rows, behind)


def _amount(r: YamlReader[AssessmentConfigError], m: Fields, key: str, name: str,
            low: float, high: float | None) -> float:
    value = r.number(m[key], name, "the value")
    assert value is not None
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f" and at most {high:g}"
        r.problem(m[key], name, f"must be at least {low:g}{upper}, got {value:g}")
    return value


def _whole(r: YamlReader[AssessmentConfigError], m: Fields, key: str, name: str) -> int:
    node: Node = m[key]
    value = r.whole(node, name, "the value")
    assert value is not None
    if value < 0:
        r.problem(node, name, f"must be at least 0, got {value}")
    return value


def load_assessment(path: Path) -> AssessmentConfig:
    """The assessment configuration at `path` (Settings.assessment_file)."""
    return parse_assessment(read_text(path, _error), str(path))


# ---- the arithmetic ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Combined:
    """A unit's assessment: the total (None when no component has a figure), and the
    components that made it with the weights they carried after renormalising."""

    total: float | None
    parts: tuple[tuple[str, float, float], ...]  # (component, score, effective weight 0..1)

    def part(self, component: str) -> float | None:
        return next((score for c, score, _ in self.parts if c == component), None)


def combine(scores: Mapping[str, float | None], weights: Mapping[str, float]) -> Combined:
    """Σ wᵢ·sᵢ / Σ wᵢ over the components i that have a score and a weight above 0.

    Exact (fractions of the decimal figures) and rounded once at the end to 0.1, the
    precision the bulletin shows (exact halves to even), so the same inputs give the same
    total whatever their order and the figure shown is the figure ranked."""
    present = [(c, Fraction(str(scores[c])), Fraction(str(weights.get(c, 0))))
               for c in COMPONENTS
               if scores.get(c) is not None and weights.get(c, 0) > 0
               and math.isfinite(float(scores[c]))]  # type: ignore[arg-type]
    total_weight = sum((w for _, _, w in present), Fraction(0))
    if not present or total_weight == 0:
        return Combined(None, ())
    total = sum((w * s for _, s, w in present), Fraction(0)) / total_weight
    parts = tuple((c, float(s), float(w / total_weight)) for c, s, w in present)
    return Combined(float(round(total, 1)), parts)


def mean(values: Sequence[float]) -> float | None:
    """The plain mean of a year's figures of one level (four quarters weigh alike)."""
    return None if not values else float(sum(Fraction(str(v)) for v in values) / len(values))


def _latest(stored: Iterable[tuple[int, str, str, float]], as_of: dt.date
            ) -> dict[tuple[int, str], tuple[Period, float]]:
    best: dict[tuple[int, str], tuple[Period, float]] = {}
    for unit_id, level, key, value in stored:
        period = Period.parse(key)
        if period.start > as_of:
            continue
        seen = best.get((unit_id, level))
        if seen is None or period.sort_key() > seen[0].sort_key():
            best[(unit_id, level)] = (period, value)
    return best


def latest_scores(stored: Iterable[tuple[int, str, str, float]], as_of: dt.date
                  ) -> dict[int, dict[str, float]]:
    """Each unit's latest score of each level among the periods begun by `as_of` (the weekly
    assessment: a week is judged with the newest external figures there are)."""
    out: dict[int, dict[str, float]] = {}
    for (unit_id, level), (_, value) in _latest(stored, as_of).items():
        out.setdefault(unit_id, {})[level] = value
    return out


def latest_periods(stored: Iterable[tuple[int, str, str, float]], as_of: dt.date
                   ) -> dict[str, tuple[str, ...]]:
    """Which periods of each level `latest_scores` took (newest first): what a reader of the
    weekly assessment is told it was made of ("国测 2026、市测 2026-Q3")."""
    used: dict[str, set[Period]] = {}
    for (_, level), (period, _) in _latest(stored, as_of).items():
        used.setdefault(level, set()).add(period)
    return {level: tuple(p.key for p in sorted(ps, key=Period.sort_key, reverse=True))
            for level, ps in used.items()}


def year_scores(stored: Iterable[tuple[int, str, str, float]], year: int
                ) -> dict[int, dict[str, float]]:
    """Each unit's score of each level for `year` (the annual assessment): the mean of that
    year's periods of the level (four quarters, or the one annual figure; a year given both
    ways counts each figure once)."""
    values: dict[tuple[int, str], list[float]] = {}
    for unit_id, level, key, value in stored:
        if Period.parse(key).year == year:
            values.setdefault((unit_id, level), []).append(value)
    out: dict[int, dict[str, float]] = {}
    for (unit_id, level), figures in values.items():
        m = mean(figures)
        if m is not None:
            out.setdefault(unit_id, {})[level] = m
    return out


# ---- an imported table's rows -----------------------------------------------------------------

# The columns, by their header (English or Chinese); "unit" is a unit's code or its name.
COLUMNS: dict[str, tuple[str, ...]] = {
    "unit": ("unit", "unit code", "unit name", "单位", "单位代码", "单位名称", "code"),
    "level": ("level", "test", "测评", "测评级别", "级别"),
    "period": ("period", "期间", "周期", "时间"),
    "score": ("score", "成绩", "得分", "分数"),
}


@dataclass(frozen=True)
class ScoreRecord:
    unit_id: int
    level: Level
    period: Period
    score: float
    row: int


@dataclass(frozen=True)
class ReplacedPeriod:
    """A (level, period) an import replaced as a whole: how many scores it held before, and
    how many of their units the new file left out (their scores are gone, not kept)."""

    level: str
    period: str
    removed: int
    dropped_units: int


def replaced_periods(old: Iterable[tuple[int, str, str]], new: Sequence[ScoreRecord]
                     ) -> tuple[ReplacedPeriod, ...]:
    """What replacing the periods of `new` did to the `old` (unit, level, period) scores:
    one entry per period that had any, in the order of `new`'s periods."""
    kept: dict[tuple[str, str], set[int]] = {}
    for r in new:
        kept.setdefault((r.level.value, r.period.key), set()).add(r.unit_id)
    before: dict[tuple[str, str], list[int]] = {}
    for unit_id, level, period in old:
        if (level, period) in kept:
            before.setdefault((level, period), []).append(unit_id)
    return tuple(
        ReplacedPeriod(level, period, len(units), len(set(units) - kept[(level, period)]))
        for (level, period) in kept if (units := before.get((level, period))))


@dataclass(frozen=True)
class RowProblem:
    """One problem in an imported table: the row (1-based as a spreadsheet shows it; 0 for
    the file itself), the column's header, a problem code (a catalogue key's last part) and
    the value found."""

    row: int
    column: str
    code: str
    value: str = ""


def header_map(header: Sequence[object]) -> tuple[dict[str, int], list[RowProblem]]:
    """Which cell of a row holds which column; the problems of a header that lacks one."""
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        word = str(cell or "").strip().lower()
        for name, words in COLUMNS.items():
            if word in words and name not in found:
                found[name] = index
    missing = [RowProblem(1, name, "missing_column") for name in COLUMNS if name not in found]
    return found, missing


def _text(cell: object) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def check_rows(
    rows: Sequence[Sequence[object]], units: Mapping[str, int],
) -> tuple[list[ScoreRecord], list[RowProblem]]:
    """The records of a table (its first row the header) and every problem, by row and
    column. `units` maps each unit's code and names (lower-cased) to its id. Blank rows are
    skipped; a unit given twice for the same level and period is a problem (which to keep?)."""
    if not rows:
        return [], [RowProblem(0, "", "empty")]
    columns, problems = header_map(rows[0])
    if problems:
        return [], problems
    records: list[ScoreRecord] = []
    seen: dict[tuple[int, Level, Period], int] = {}
    for number, row in enumerate(rows[1:], start=2):
        cells = {name: _text(row[i]) if i < len(row) else "" for name, i in columns.items()}
        if not any(cells.values()):
            continue
        bad = len(problems)
        unit_id = units.get(cells["unit"].lower())
        if not cells["unit"]:
            problems.append(RowProblem(number, "unit", "blank"))
        elif unit_id is None:
            problems.append(RowProblem(number, "unit", "unknown_unit", cells["unit"]))
        level = LEVEL_WORDS.get(cells["level"].lower().replace(" ", ""))
        if level is None:
            problems.append(RowProblem(number, "level", "bad_level", cells["level"]))
        period: Period | None = None
        try:
            period = Period.parse(cells["period"])
        except ValueError:
            problems.append(RowProblem(number, "period", "bad_period", cells["period"]))
        raw = row[columns["score"]] if columns["score"] < len(row) else None
        score: float | None = None
        if isinstance(raw, bool):
            score = None
        elif isinstance(raw, int | float):
            score = float(raw)
        else:
            try:
                score = float(cells["score"])
            except ValueError:
                score = None
        if score is None or not math.isfinite(score):
            problems.append(RowProblem(number, "score", "bad_score", cells["score"]))
        elif not 0 <= score <= 100:
            problems.append(RowProblem(number, "score", "score_range", cells["score"]))
        if len(problems) > bad:
            continue
        assert unit_id is not None and level is not None and period is not None
        assert score is not None
        key = (unit_id, level, period)
        if key in seen:
            problems.append(RowProblem(number, "unit", "duplicate", str(seen[key])))
            continue
        seen[key] = number
        records.append(ScoreRecord(unit_id, level, period, score, number))
    if not records and not problems:
        problems.append(RowProblem(0, "", "empty"))
    return records, problems
