"""Scheduled jobs' runs: one row per job and period (a week's bulletin, a day's digest)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import JobRun
from db.repositories.rows import add_or_find


class JobRunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def any(self) -> bool:
        """Whether any job has ever run here (none: a fresh install)."""
        return await self.session.scalar(select(JobRun.name).limit(1)) is not None

    async def has_run(self, name: str, period: str) -> bool:
        return await self.session.get(JobRun, (name, period)) is not None

    async def last_ran(self, name: str, before: str, *, limit: int = 60) -> str | None:
        """The latest period before `before` (periods sort as text: ISO dates) in which the
        job really ran (not recorded as skipped), among its last `limit` records."""
        rows = await self.session.execute(
            select(JobRun.period, JobRun.detail)
            .where(JobRun.name == name, JobRun.period < before)
            .order_by(JobRun.period.desc()).limit(limit))
        for period, detail in rows.all():
            if not (isinstance(detail, dict) and detail.get("skipped")):
                return str(period)
        return None

    async def record(self, name: str, period: str, now: datetime,
                     detail: dict[str, object]) -> bool:
        """Record the job's run for the period; False when another runner recorded it first."""
        _, added = await add_or_find(
            self.session, JobRun(name=name, period=period, started_at=now, finished_at=now,
                                 detail=detail),
            lambda: self.session.get(JobRun, (name, period)))
        return added
