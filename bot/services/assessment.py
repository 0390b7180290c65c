"""The assessment (考评): importing the external tests' scores, and combining them with the
supervision figures into the weekly and the annual assessment (bot/domain/assessment.py holds
the rules; this module reads files and the database).

An import is all or nothing: a table with any wrong row imports nothing and the answer lists
every problem by row and column, so the office fixes the file and sends it again, rather than
guessing which half of it is in. Importing a level's period again replaces it as a whole.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.domain.assessment import (
    SUPERVISION,
    AssessmentConfig,
    Combined,
    Level,
    ReplacedPeriod,
    RowProblem,
    check_rows,
    combine,
    latest_periods,
    latest_scores,
    load_assessment,
    replaced_periods,
    year_scores,
)
from bot.domain.periods import Week, day_bounds
from bot.domain.ranking import UnitFigures
from bot.domain.special_actions import (
    ActionFigures,
    ActionWeek,
    SpecialAction,
    battle_map,
    lagging,
    load_special_actions,
)
from bot.render.assessment import ActionLine, AssessmentBlock, UnitAssessment
from bot.render.battlemap import BattleMapView, MapRow
from db.repositories.stats import UnitTree
from db.uow import UnitOfWork

log = logging.getLogger(__name__)

# A table of 5,000 rows is well under 1 MB; anything much bigger is not a score table.
MAX_BYTES = 5 * 1024 * 1024
MAX_COLUMNS = 30  # cells read per row (the four columns and some notes beside them)


@dataclass(frozen=True)
class AssessmentSetup:
    """The city's assessment configuration and special actions, loaded once at start."""

    config: AssessmentConfig
    actions: tuple[SpecialAction, ...] = ()


def load_setup(assessment_file: Path, actions_file: Path,
               categories: Iterable[str] | None = None) -> AssessmentSetup:
    """Both files, validated (their errors name file, line and field)."""
    return AssessmentSetup(load_assessment(assessment_file),
                           load_special_actions(actions_file, categories))


class TableError(Exception):
    """A file that is not a readable table; `code` is a catalogue key's last part."""

    def __init__(self, code: str, value: str = "") -> None:
        super().__init__(code, value)
        self.code = code
        self.value = value


def read_table(data: bytes, filename: str, max_rows: int) -> list[list[object]]:
    """The first sheet of an .xlsx, or a .csv (UTF-8, or GB18030 as Chinese Excel saves it),
    as rows of cells, the header first. Raises TableError for what cannot be read."""
    if len(data) > MAX_BYTES:
        raise TableError("too_large")
    name = filename.lower()
    if name.endswith(".xlsx") or (not name.endswith(".csv") and data[:4] == b"PK\x03\x04"):
        return _xlsx(data, max_rows)
    if name.endswith(".csv"):
        return _csv(data, max_rows)
    raise TableError("wrong_type")


def _xlsx(data: bytes, max_rows: int) -> list[list[object]]:
    from openpyxl import load_workbook  # a second's import, paid by an import only

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # BadZipFile, KeyError, openpyxl's InvalidFileException, XML errors …:
        # whatever a damaged or foreign file raises, the answer is the same
        raise TableError("unreadable") from None
    try:
        if not book.worksheets:
            raise TableError("empty")
        rows: list[list[object]] = []
        for row in book.worksheets[0].iter_rows(max_col=MAX_COLUMNS, values_only=True):
            cells: list[object] = list(row)
            while cells and cells[-1] is None:  # read-only mode pads rows to max_col
                cells.pop()
            rows.append(cells)
            if len(rows) > max_rows + 1:
                raise TableError("too_many_rows", str(max_rows))
        return rows
    except TableError:
        raise
    except Exception:  # a damaged sheet inside a sound zip
        raise TableError("unreadable") from None
    finally:
        book.close()


def _csv(data: bytes, max_rows: int) -> list[list[object]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise TableError("encoding")
    if "\x00" in text:
        raise TableError("unreadable")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], ",;\t")
    except csv.Error:
        dialect = csv.excel
    rows: list[list[object]] = []
    try:
        for row in csv.reader(io.StringIO(text), dialect):
            rows.append(list(row[:MAX_COLUMNS]))
            if len(rows) > max_rows + 1:
                raise TableError("too_many_rows", str(max_rows))
    except csv.Error:
        raise TableError("unreadable") from None
    return rows


@dataclass(frozen=True)
class ImportOutcome:
    imported: int
    periods: tuple[tuple[str, str], ...]  # (level, period) replaced
    problems: tuple[RowProblem, ...]
    replaced: tuple[ReplacedPeriod, ...] = ()  # the periods that held scores before


def unit_lookup(tree: UnitTree) -> dict[str, int]:
    """A unit's code and names, lower-cased, to its id (a code wins over another's name)."""
    out: dict[str, int] = {}
    for node in tree.nodes.values():
        for name in (node.name_en, node.name_zh):
            if name:
                out.setdefault(name.strip().lower(), node.id)
    for node in tree.nodes.values():
        out[node.code.lower()] = node.id
    return out


async def import_scores(
    uow: UnitOfWork, data: bytes, filename: str, config: AssessmentConfig,
    now: dt.datetime, by: int | None = None,
) -> ImportOutcome:
    """Check the table and, when every row is right, store it (the caller commits)."""
    try:
        rows = read_table(data, filename, config.max_import_rows)
    except TableError as exc:
        return ImportOutcome(0, (), (RowProblem(0, "", exc.code, exc.value),))
    records, problems = check_rows(rows, unit_lookup(await uow.stats.unit_tree()))
    if problems:
        return ImportOutcome(0, (), tuple(problems))
    removed = await uow.assessment.replace(records, now, by)
    periods = sorted({(r.level.value, r.period.key) for r in records},
                     key=lambda p: (p[1], list(Level).index(Level(p[0]))))
    replaced = sorted(replaced_periods(removed, records),
                      key=lambda r: periods.index((r.level, r.period)))
    return ImportOutcome(len(records), tuple(periods), (), tuple(replaced))


def _block(config: AssessmentConfig, names: dict[int, str], unit_ids: Iterable[int],
           supervision: dict[int, float | None], external: dict[int, dict[str, float]]
           ) -> AssessmentBlock:
    units: list[UnitAssessment] = []
    for uid in unit_ids:
        combined: Combined = combine({SUPERVISION: supervision.get(uid), **external.get(uid, {})},
                                     config.weights)
        if combined.total is not None:
            units.append(UnitAssessment(uid, names.get(uid, str(uid)), combined))
    units.sort(key=lambda u: (-(u.combined.total or 0), u.name, u.unit_id))
    return AssessmentBlock(config.weights, tuple(units))


async def weekly_assessment(
    uow: UnitOfWork, config: AssessmentConfig, week: Week, names: dict[int, str],
    figures: dict[int, UnitFigures], min_inspections: int = 1,
) -> AssessmentBlock:
    """Every unit's week: its supervision score (the ranking's) with the latest external
    scores of periods begun by the week's Sunday. A unit the ranking leaves unranked (fewer
    than `min_inspections` inspections) has no supervision component this week: one lucky
    inspection must not carry half its assessment."""
    stored = await uow.assessment.scores(up_to_year=week.last.year)
    rows = [(s.unit_id, s.level, s.period, s.score) for s in stored]
    external = latest_scores(rows, week.last)
    supervision = {uid: f.score for uid, f in figures.items()
                   if f.inspections >= max(1, min_inspections)}
    block = _block(config, names, sorted(set(figures) | set(external)), supervision, external)
    return replace(block, periods=latest_periods(rows, week.last))


async def annual_assessment(
    uow: UnitOfWork, config: AssessmentConfig, year: int, tz: ZoneInfo, lang: str,
) -> AssessmentBlock:
    """Every unit's year: the year's supervision score (the mean of its sites' inspections
    submitted in the year, as the ranking computes a week's) with the year's external
    scores."""
    tree = await uow.stats.unit_tree()
    names = {uid: n.name(lang) for uid, n in tree.nodes.items()}
    start, _ = day_bounds(dt.date(year, 1, 1), tz)
    end, _ = day_bounds(dt.date(year + 1, 1, 1), tz)
    figures = await uow.stats.week_figures(start, end, 1, names)
    stored = await uow.assessment.scores(year=year)
    external = year_scores(((s.unit_id, s.level, s.period, s.score) for s in stored), year)
    supervision = {uid: f.score for uid, f in figures.items()}
    return _block(config, names, sorted(names), supervision, external)


async def action_weeks(
    uow: UnitOfWork, setup: AssessmentSetup, tree: UnitTree, week: Week, tz: ZoneInfo,
    lang: str, unit_ids: Sequence[int] | None = None,
) -> list[ActionLine]:
    """The special actions running in the week (those touching `unit_ids` when given): their
    problems found, closed and overdue, and whether each lags (its lead then named)."""
    by_code = {n.code: n for n in tree.nodes.values()}
    wanted = None if unit_ids is None else set(unit_ids)
    out: list[ActionLine] = []
    for action in setup.actions:
        if not action.active(week.first, week.last):
            continue
        ids = [by_code[c].id for c in action.units if c in by_code]
        lead = by_code.get(action.lead)
        unknown = [c for c in (action.lead, *action.units) if c not in by_code]
        if unknown:  # the file is read before any import: say so, count what is known
            log.warning("special action %s names units this database does not have: %s",
                        action.code, ", ".join(unknown))
        involved = set(ids) | ({lead.id} if lead else set())
        if wanted is not None and not involved & wanted:
            continue
        since, _ = day_bounds(action.start, tz)
        _, until = day_bounds(action.end, tz)
        found, closed, still_open, overdue = await uow.assessment.action_figures(
            ids, action.categories, since, until, week.start, week.end)
        figures = ActionWeek(action, found, closed, still_open, overdue)
        out.append(ActionLine(figures, lead.name(lang) if lead else action.lead,
                              lagging(figures, setup.config.lagging_overdue_share,
                                      setup.config.lagging_min_open), frozenset(involved)))
    return out


async def battle_map_view(uow: UnitOfWork, setup: AssessmentSetup, now: dt.datetime,
                          tz: ZoneInfo, lang: str) -> BattleMapView:
    """The battle map (挂图作战) on `now`'s local day: every action, its problems over its
    whole span up to `now` (found since it began, closed, still open and overdue now; the
    same tasks as its weeks in the bulletin), and where it stands (bot/domain/special_actions
    .action_state, with assessment.yaml's thresholds)."""
    tree = await uow.stats.unit_tree()
    by_code = {n.code: n for n in tree.nodes.values()}
    day = now.astimezone(tz).date()
    figures: dict[str, ActionFigures] = {}
    for action in setup.actions:
        if day < action.start:
            continue  # nothing can have been found yet
        ids = [by_code[c].id for c in action.units if c in by_code]
        since, _ = day_bounds(action.start, tz)
        _, until = day_bounds(action.end, tz)
        found, closed, still_open, overdue = await uow.assessment.action_figures(
            ids, action.categories, since, until, since, now)
        figures[action.code] = ActionFigures(found, closed, still_open, overdue)
    states = battle_map(setup.actions, day, figures, setup.config.lag_rule)
    rows = []
    for state in states:
        lead = by_code.get(state.action.lead)
        rows.append(MapRow(state, lead.name(lang) if lead else state.action.lead))
    return BattleMapView(lang, day, tuple(rows), setup.config.lag_rule)
