"""Pruning what only the machinery needed: handled updates, delivered messages, old job runs.

The campaign's records (inspections, answers, tasks, reports, their events and photos) are
never pruned here; the queues are, so that the database does not grow by a row per update and
per message for as long as the city runs the bot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.domain import reports as report_states
from bot.domain.tasks import TaskState
from db.models import InboxUpdate, JobRun, OutboxMessage, Report, Task

# Outbox rows that record a message the bot may still edit or take buttons from, by purpose
# prefix, while what they are about is still worked on (a task's card and notices, a
# report's card and photos in the unit's group).
TASK_PURPOSES = "task"
REPORT_PURPOSES = "report"
REPORTS_IN_HAND = (report_states.DRAFT, report_states.SUBMITTED, report_states.ACCEPTED,
                   report_states.FIXED)


@dataclass(frozen=True)
class Pruned:
    inbox: int
    outbox: int
    job_runs: int


class RetentionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def prune(self, before: datetime) -> Pruned:
        """Delete what was finished before `before`, keeping what is still needed:
        unhandled updates, pending messages, the messages of tasks not yet closed (their
        cards and notices may still be edited), and each job's latest run (the scheduler
        reads "has this job ever run" from it)."""
        inbox = await self.session.execute(
            delete(InboxUpdate).where(InboxUpdate.processed_at.is_not(None),
                                      InboxUpdate.processed_at < before))
        open_tasks = select(Task.id).where(Task.status != TaskState.CLOSED.value)
        open_reports = select(Report.id).where(Report.status.in_(REPORTS_IN_HAND))
        # (SQL's NULLs: a row without purpose or ref must count as not needed, not unknown.)
        still_needed = and_(OutboxMessage.purpose.is_not(None), OutboxMessage.ref_id.is_not(None),
                            or_(
            and_(OutboxMessage.purpose.startswith(TASK_PURPOSES),
                 OutboxMessage.ref_id.in_(open_tasks)),
            and_(OutboxMessage.purpose.startswith(REPORT_PURPOSES),
                 OutboxMessage.ref_id.in_(open_reports)),
        ))
        outbox = await self.session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.status.in_(("sent", "failed")),
                func.coalesce(OutboxMessage.sent_at, OutboxMessage.created_at) < before,
                not_(still_needed),
            ).execution_options(synchronize_session=False))
        other = aliased(JobRun)
        newest = (select(func.max(other.started_at)).where(other.name == JobRun.name)
                  .scalar_subquery())
        runs = await self.session.execute(
            delete(JobRun).where(JobRun.started_at < before, JobRun.started_at < newest)
            .execution_options(synchronize_session=False))
        return Pruned(inbox.rowcount or 0, outbox.rowcount or 0, runs.rowcount or 0)  # type: ignore[attr-defined]
