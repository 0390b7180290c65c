"""The rows inspectors' figures are computed from (bot/domain/inspector_stats.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.inspector_stats import AnswerRow
from db.models import Answer, Inspection, Person

SUBMITTED = "submitted"


class InspectorStatsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def answers(self, start: datetime, end: datetime) -> list[AnswerRow]:
        """Every answer of the inspections submitted in [start, end)."""
        rows = await self.session.execute(
            select(Inspection.id, Inspection.inspector_id, Inspection.site_id,
                   Inspection.started_at, Inspection.submitted_at, Answer.item_key,
                   Answer.verdict, Answer.answered_at)
            .join(Answer, Answer.inspection_id == Inspection.id)
            .where(Inspection.status == SUBMITTED, Inspection.submitted_at >= start,
                   Inspection.submitted_at < end))
        return [AnswerRow(iid, pid, sid, started, submitted, key, verdict, answered)
                for iid, pid, sid, started, submitted, key, verdict, answered in rows.all()
                if submitted is not None]

    async def names(self, ids: Iterable[int]) -> dict[int, str]:
        wanted = list(ids)
        if not wanted:
            return {}
        rows = await self.session.execute(
            select(Person.id, Person.first_name, Person.username).where(Person.id.in_(wanted)))
        return {pid: first or (f"@{user}" if user else str(pid)) for pid, first, user in rows}
