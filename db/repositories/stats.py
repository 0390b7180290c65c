"""Weekly and daily figures per unit, aggregated in the database (SQLAlchemy Core).

A handful of GROUP BY statements over indexed columns, one per figure family, so the cost
grows with the week's rows, not with history. `bench/bulletin.py` times these beside a plain
SQL aggregate over the same rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.ranking import UnitFigures
from db.models import Inspection, Report, Site, Task, Unit

# Statuses in which a task no longer counts as work to do. closed_at marks a proper closure
# (销号); the others end a task without closing it and leave every figure.
VOID_STATUSES = ("cancelled", "rejected", "merged")
DONE_STATUSES = ("closed", *VOID_STATUSES)
# The unit has done its part and waits for the check: no reminders, no escalation.
WAITING_STATUSES = ("fix_submitted",)
SUBMITTED = ("submitted",)

inspections = Inspection.__table__
sites = Site.__table__
tasks = Task.__table__
reports = Report.__table__
units_t = Unit.__table__


def _not_waiting(at: datetime) -> ColumnElement[bool]:
    """Leaves out a task that, at `at`, was waiting for its check: the unit had done its part
    and the task card says the clock has stopped, so it is not overdue. A fix submitted after
    `at` did not stop that earlier clock (fixed_at is set by every fix submitted)."""
    return or_(tasks.c.status.not_in(WAITING_STATUSES), tasks.c.fixed_at >= at)


@dataclass(frozen=True)
class UnitNode:
    id: int
    code: str
    name_zh: str
    name_en: str
    kind: str
    parent_id: int | None

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" and self.name_en else self.name_zh


class UnitTree:
    """All units, with parents and subtrees; small (a city has hundreds of units at most)."""

    def __init__(self, nodes: Iterable[UnitNode]) -> None:
        self.nodes = {n.id: n for n in nodes}
        self.children: dict[int | None, list[int]] = defaultdict(list)
        for n in self.nodes.values():
            self.children[n.parent_id].append(n.id)
        for ids in self.children.values():
            ids.sort()

    def subtree(self, unit_id: int) -> list[int]:
        """The unit and every unit below it, parents before children."""
        out, stack = [], [unit_id]
        while stack:
            uid = stack.pop(0)
            if uid in self.nodes:
                out.append(uid)
                stack[:0] = self.children.get(uid, [])
        return out

    def ancestors(self, unit_id: int) -> list[int]:
        """Parent, grandparent, … (cycles are cut)."""
        out: list[int] = []
        node = self.nodes.get(unit_id)
        while node is not None and node.parent_id is not None and node.parent_id not in out:
            out.append(node.parent_id)
            node = self.nodes.get(node.parent_id)
        return out

    def office(self, code: str | None) -> UnitNode | None:
        if code:
            match = next((n for n in self.nodes.values() if n.code == code), None)
            if match is not None:
                return match
        offices = sorted((n for n in self.nodes.values() if n.kind == "office"),
                         key=lambda n: n.id)
        roots = sorted((n for n in self.nodes.values() if n.parent_id is None),
                       key=lambda n: n.id)
        found = offices or roots
        return found[0] if found else None


@dataclass(frozen=True)
class DayFigures:
    inspections: int
    average: float | None
    new_tasks: int
    new_reports: int
    closed: int
    overdue: int


class StatsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def unit_tree(self) -> UnitTree:
        rows = await self.session.execute(
            select(units_t.c.id, units_t.c.code, units_t.c.name_zh, units_t.c.name_en,
                   units_t.c.kind, units_t.c.parent_id))
        return UnitTree(UnitNode(*r) for r in rows.all())

    async def site_counts(self) -> dict[int, int]:
        rows = await self.session.execute(
            select(sites.c.unit_id, func.count()).group_by(sites.c.unit_id))
        return {uid: n for uid, n in rows.all()}

    async def week_figures(
        self, start: datetime, end: datetime, office_level: int,
        names: dict[int, str], unit_ids: Sequence[int] | None = None,
    ) -> dict[int, UnitFigures]:
        """Every unit's figures for [start, end); units without any row get zeros."""
        chosen = list(names) if unit_ids is None else list(unit_ids)
        out = {uid: UnitFigures(uid, names.get(uid, str(uid))) for uid in chosen}
        wanted = set(chosen)

        def merge(uid: int, **values: Any) -> None:
            if uid in wanted:
                out[uid] = replace(out[uid], **values)

        # Inspections of each unit's own sites, submitted in the week.
        insp = (
            select(sites.c.unit_id, func.count(), func.avg(inspections.c.score_overall),
                   func.avg(inspections.c.score_static), func.avg(inspections.c.score_dynamic))
            .select_from(inspections.join(sites, sites.c.id == inspections.c.site_id))
            .where(inspections.c.status.in_(SUBMITTED),
                   inspections.c.submitted_at >= start, inspections.c.submitted_at < end)
            .group_by(sites.c.unit_id)
        )
        for uid, n, avg, static, dynamic in (await self.session.execute(insp)).all():
            merge(uid, inspections=n, score=_f(avg), static=_f(static), dynamic=_f(dynamic))

        live = tasks.c.status.not_in(VOID_STATUSES)
        # Deadlines that fell in the week, and how many of those were met.
        due = (
            select(tasks.c.unit_id, func.count(),
                   func.sum(case((and_(tasks.c.closed_at.is_not(None),
                                       tasks.c.closed_at <= tasks.c.due_at), 1), else_=0)))
            .where(live, tasks.c.due_at >= start, tasks.c.due_at < end)
            .group_by(tasks.c.unit_id)
        )
        for uid, n, on_time in (await self.session.execute(due)).all():
            merge(uid, tasks_due=n, closed_on_time=int(on_time or 0))

        # The overdue backlog as it stood at the end of the week (so last week's figure does
        # not change when a task is closed later), and how much of it went up to the office.
        # Tasks waiting for their check are not overdue: the unit has done its part.
        backlog = (
            select(tasks.c.unit_id, func.count(),
                   func.sum(case((tasks.c.escalation_level >= office_level, 1), else_=0)))
            .where(live, tasks.c.created_at < end, tasks.c.due_at < end,
                   or_(tasks.c.closed_at.is_(None), tasks.c.closed_at >= end),
                   _not_waiting(end))
            .group_by(tasks.c.unit_id)
        )
        for uid, n, escalated in (await self.session.execute(backlog)).all():
            merge(uid, overdue=n, escalated=int(escalated or 0))

        closed = (
            select(tasks.c.unit_id, func.count(),
                   func.sum(case((tasks.c.reopen_count > 0, 1), else_=0)))
            .where(tasks.c.closed_at >= start, tasks.c.closed_at < end)
            .group_by(tasks.c.unit_id)
        )
        for uid, n, reworked in (await self.session.execute(closed)).all():
            merge(uid, closed=n, reworked=int(reworked or 0))

        reps = (
            select(reports.c.unit_id, func.count())
            .where(reports.c.unit_id.is_not(None), reports.c.status != "draft",
                   reports.c.submitted_at >= start, reports.c.submitted_at < end)
            .group_by(reports.c.unit_id)
        )
        for uid, n in (await self.session.execute(reps)).all():
            merge(uid, reports=n)
        return out

    async def day_figures(self, start: datetime, end: datetime) -> DayFigures:
        """The whole city's day [start, end) for the morning digest; overdue as of `end`."""
        n, avg = (await self.session.execute(
            select(func.count(), func.avg(inspections.c.score_overall))
            .where(inspections.c.status.in_(SUBMITTED), inspections.c.submitted_at >= start,
                   inspections.c.submitted_at < end))).one()
        new_tasks = await self.session.scalar(
            select(func.count()).select_from(tasks)
            .where(tasks.c.created_at >= start, tasks.c.created_at < end))
        new_reports = await self.session.scalar(
            select(func.count()).select_from(reports)
            .where(reports.c.status != "draft", reports.c.submitted_at >= start,
                   reports.c.submitted_at < end))
        closed = await self.session.scalar(
            select(func.count()).select_from(tasks)
            .where(tasks.c.closed_at >= start, tasks.c.closed_at < end))
        overdue = await self.session.scalar(
            select(func.count()).select_from(tasks)
            .where(tasks.c.status.not_in(DONE_STATUSES), tasks.c.closed_at.is_(None),
                   tasks.c.due_at < end, _not_waiting(end)))
        return DayFigures(n, _f(avg), new_tasks or 0, new_reports or 0, closed or 0,
                          overdue or 0)

    async def day_inspections(
        self, start: datetime, end: datetime, limit: int
    ) -> list[tuple[str, float | None]]:
        rows = await self.session.execute(
            select(sites.c.name, inspections.c.score_overall)
            .select_from(inspections.join(sites, sites.c.id == inspections.c.site_id))
            .where(inspections.c.status.in_(SUBMITTED), inspections.c.submitted_at >= start,
                   inspections.c.submitted_at < end)
            .order_by(inspections.c.submitted_at).limit(limit))
        return [(name, _f(score)) for name, score in rows.all()]

    async def overdue_by_unit(self, now: datetime) -> list[tuple[int, int, datetime]]:
        """(unit, open overdue tasks, oldest deadline), most overdue first; tasks waiting for
        their check are not overdue."""
        rows = await self.session.execute(
            select(tasks.c.unit_id, func.count(), func.min(tasks.c.due_at))
            .where(tasks.c.status.not_in(DONE_STATUSES), tasks.c.closed_at.is_(None),
                   tasks.c.due_at < now, _not_waiting(now))
            .group_by(tasks.c.unit_id)
            .order_by(func.count().desc(), tasks.c.unit_id))
        # min() keeps the column's type, so the deadline comes back as an aware UTC datetime.
        return [(uid, n, oldest) for uid, n, oldest in rows.all()]


def _f(value: object) -> float | None:
    return None if value is None else round(float(value), 2)  # type: ignore[arg-type]
