"""External test scores (the assessment's imported half) and special actions' weekly figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.assessment import ScoreRecord
from db.models import ExternalScore, Report, Task
from db.repositories.stats import VOID_STATUSES, _not_waiting

scores_t = ExternalScore.__table__
tasks = Task.__table__
reports = Report.__table__


@dataclass(frozen=True)
class StoredScore:
    unit_id: int
    level: str
    period: str
    score: float


class AssessmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def replace(self, records: Sequence[ScoreRecord], now: datetime,
                      by: int | None) -> list[tuple[int, str, str]]:
        """Store the records; every (level, period) they cover is replaced as a whole (a unit
        left out of the new table loses its old score), so importing a file again changes
        nothing. Returns the (unit, level, period) of the scores removed."""
        covered = sorted({(r.level.value, r.period.key) for r in records})
        removed: list[tuple[int, str, str]] = []
        if covered:
            of_covered = tuple_(ExternalScore.level, ExternalScore.period).in_(covered)
            rows = await self.session.execute(
                select(scores_t.c.unit_id, scores_t.c.level, scores_t.c.period)
                .where(of_covered).order_by(scores_t.c.id))
            removed = [(int(u), str(lv), str(p)) for u, lv, p in rows.all()]
            await self.session.execute(delete(ExternalScore).where(of_covered))
        self.session.add_all(
            ExternalScore(unit_id=r.unit_id, level=r.level.value, period=r.period.key,
                          year=r.period.year, score=r.score, imported_at=now, imported_by=by)
            for r in records)
        await self.session.flush()
        return removed

    async def scores(self, *, up_to_year: int | None = None,
                     year: int | None = None) -> list[StoredScore]:
        """The stored scores of one year, or of every year up to one (small: units × levels
        × periods)."""
        q = select(scores_t.c.unit_id, scores_t.c.level, scores_t.c.period, scores_t.c.score)
        if year is not None:
            q = q.where(scores_t.c.year == year)
        if up_to_year is not None:
            q = q.where(scores_t.c.year <= up_to_year)
        rows = await self.session.execute(q.order_by(scores_t.c.id))
        return [StoredScore(u, lv, p, float(s)) for u, lv, p, s in rows.all()]

    async def action_figures(
        self, unit_ids: Sequence[int], categories: Sequence[str], since: datetime,
        until: datetime, week_start: datetime, week_end: datetime,
    ) -> tuple[int, int, int, int]:
        """A special action's week: its tasks are those of `unit_ids` made from reports of
        `categories`, created within the action's dates [since, until). Returns (found in
        the week, closed in the week, open at its end, overdue at its end)."""
        if not unit_ids or not categories:
            return 0, 0, 0, 0
        mine = and_(tasks.c.unit_id.in_(list(unit_ids)), reports.c.category.in_(list(categories)),
                    tasks.c.created_at >= since, tasks.c.created_at < until,
                    tasks.c.status.not_in(VOID_STATUSES))
        end = week_end
        open_at_end = and_(tasks.c.created_at < end,
                           or_(tasks.c.closed_at.is_(None), tasks.c.closed_at >= end))
        overdue = and_(open_at_end, tasks.c.due_at < end, _not_waiting(end))

        q = (select(
            func.count().filter(and_(tasks.c.created_at >= week_start, tasks.c.created_at < end)),
            func.count().filter(and_(tasks.c.closed_at >= week_start, tasks.c.closed_at < end)),
            func.count().filter(open_at_end),
            func.count().filter(overdue))
            .select_from(tasks.join(reports, reports.c.id == tasks.c.report_id))
            .where(mine))
        found, closed, still_open, late = (await self.session.execute(q)).one()
        return int(found or 0), int(closed or 0), int(still_open or 0), int(late or 0)
