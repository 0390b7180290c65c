"""Rectification tasks: their rows, events (the history), photos and the reports behind them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from db.models import Photo, Report, ReportFollower, Task, TaskEvent, TaskPhoto


@dataclass(frozen=True)
class DeadlineWindow:
    """Which open tasks the deadline policy may owe something now (bot.domain.escalation's
    decide() has the last word): a "before" reminder due by `before_until`, a "due" one, an
    overdue one for the slot starting `slot` (deadline before `slot_day_start`), or an
    escalation below `top_level` for a deadline by `escalate_due_by`."""

    now: datetime
    before_until: datetime
    slot: datetime
    slot_day_start: datetime
    top_level: int | None
    escalate_due_by: datetime | None
    settled_statuses: Sequence[str]  # done, or waiting on someone else: nothing is owed

    def where(self) -> ColumnElement[bool]:
        clauses = [
            and_(Task.reminded_before_at.is_(None), Task.due_at > self.now,
                 Task.due_at <= self.before_until),
            and_(Task.due_at <= self.now, Task.reminded_due_at.is_(None)),
            and_(Task.due_at < self.slot_day_start,
                 or_(Task.last_overdue_reminder_at.is_(None),
                     Task.last_overdue_reminder_at < self.slot)),
        ]
        if self.top_level is not None and self.escalate_due_by is not None:
            clauses.append(and_(Task.escalation_level < self.top_level,
                                Task.due_at <= self.escalate_due_by))
        return and_(Task.closed_at.is_(None), Task.status.not_in(self.settled_statuses),
                    or_(*clauses))


class TaskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, task_id: int) -> Task | None:
        return await self.session.get(Task, task_id)

    async def bump(self, task: Task, expected_version: int, values: dict[str, Any]) -> bool:
        """Move the task to the next version with these values, only if it is still at
        `expected_version` (False: someone else moved it first). The task is read again."""
        result = await self.session.execute(
            update(Task)
            .where(Task.id == task.id, Task.version == expected_version)
            .values(version=expected_version + 1, **values)
            .execution_options(synchronize_session=False)
        )
        await self.session.refresh(task)
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def listed(self, states: Collection[str], *, unit_id: int | None,
                     overdue_in: Collection[str] | None, now: datetime,
                     limit: int) -> list[Task]:
        """Tasks in `states` by deadline, earliest first; `overdue_in`: only those in these
        states whose deadline has passed."""
        stmt = select(Task).where(Task.status.in_(list(states)))
        if unit_id is not None:
            stmt = stmt.where(Task.unit_id == unit_id)
        if overdue_in is not None:
            stmt = stmt.where(Task.status.in_(list(overdue_in)), Task.due_at < now)
        return list((await self.session.scalars(
            stmt.order_by(Task.due_at, Task.id).limit(limit))).all())

    async def fixed_not_by(self, status: str, person_id: int, limit: int) -> list[Task]:
        """Tasks in `status` (a fix to check) this person did not fix, oldest fix first."""
        stmt = (select(Task).where(Task.status == status,
                                   or_(Task.fixed_by.is_(None), Task.fixed_by != person_id))
                .order_by(Task.fixed_at, Task.id).limit(limit))
        return list((await self.session.scalars(stmt)).all())

    async def latest_closed(self, site_id: int, item_key: str, status: str,
                            since: datetime) -> Task | None:
        """The site item's task closed most recently, if that was after `since`."""
        return await self.session.scalar(
            select(Task)
            .where(Task.site_id == site_id, Task.item_key == item_key, Task.status == status,
                   Task.closed_at >= since)
            .order_by(Task.closed_at.desc())
            .limit(1)
        )

    # ---- deadlines ------------------------------------------------------------------------

    async def owed(self, window: DeadlineWindow) -> list[int]:
        """The tasks the deadline policy may owe something, earliest deadline first."""
        return list((await self.session.scalars(
            select(Task.id).where(window.where()).order_by(Task.due_at, Task.id))).all())

    async def lock_owed(self, ids: Collection[int], window: DeadlineWindow) -> list[Task]:
        """Those of `ids` still owed something, read again; PostgreSQL locks them and skips
        those another transaction holds."""
        return list((await self.session.scalars(
            select(Task).where(Task.id.in_(list(ids)), window.where())
            .order_by(Task.due_at, Task.id)
            .with_for_update(skip_locked=True))).all())

    async def claim_marks(self, task: Task, marks: dict[str, datetime]) -> bool:
        """Write the deadline bookkeeping only if the row is still what `task` says; True
        when it was.

        The version catches every transition (an extension, a re-route, a fix submitted, a
        closure); the deadline and bookkeeping columns are compared too, so a reset of either,
        or another scheduler run, makes this one lose. With nothing to mark, the same guard
        still checks (and, on PostgreSQL, locks) the row.
        """
        values: dict[str, object] = dict(marks) or {"version": Task.version}
        result = await self.session.execute(
            update(Task)
            .where(Task.id == task.id, Task.version == task.version, Task.due_at == task.due_at,
                   Task.closed_at.is_(None),
                   _same(Task.reminded_before_at, task.reminded_before_at),
                   _same(Task.reminded_due_at, task.reminded_due_at),
                   _same(Task.last_overdue_reminder_at, task.last_overdue_reminder_at))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    # ---- events ------------------------------------------------------------------------

    async def photo_link(self, task_id: int, photo_id: int) -> TaskPhoto | None:
        """The photo as one of the task's (before, after or a draft of a fix), if it is."""
        return await self.session.get(TaskPhoto, (task_id, photo_id))

    async def unlink_photo(self, task_id: int, photo_id: int) -> None:
        """The photo is no longer one of the task's (the photo itself stays)."""
        row = await self.photo_link(task_id, photo_id)
        if row is not None:
            await self.session.delete(row)

    async def events(self, task_id: int) -> list[TaskEvent]:
        """Every recorded event of the task, oldest first."""
        return list((await self.session.scalars(
            select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id)
        )).all())

    async def last_event(self, task_id: int,
                         actions: Collection[str] | None = None) -> TaskEvent | None:
        """The task's latest event (of these actions)."""
        stmt = select(TaskEvent).where(TaskEvent.task_id == task_id)
        if actions is not None:
            stmt = stmt.where(TaskEvent.action.in_(list(actions)))
        return await self.session.scalar(stmt.order_by(TaskEvent.id.desc()).limit(1))

    async def first_event_data(self, task_id: int, action: str) -> dict[str, object] | None:
        return await self.session.scalar(
            select(TaskEvent.data).where(TaskEvent.task_id == task_id, TaskEvent.action == action)
            .order_by(TaskEvent.id).limit(1)
        )

    async def notes_since_change(self, task_id: int, person_id: int, note: str) -> list[str]:
        """The notes (events of action `note`) this person wrote since the task's last other
        event, oldest first."""
        since = await self.session.scalar(
            select(TaskEvent.id).where(TaskEvent.task_id == task_id, TaskEvent.action != note)
            .order_by(TaskEvent.id.desc()).limit(1)
        )
        rows = await self.session.scalars(
            select(TaskEvent.reason).where(TaskEvent.task_id == task_id, TaskEvent.action == note,
                                           TaskEvent.actor_id == person_id,
                                           TaskEvent.id > (since or 0))
            .order_by(TaskEvent.id)
        )
        return [r for r in rows.all() if r]

    # ---- photos and reports --------------------------------------------------------------

    async def photos(self, task_id: int,
                     kinds: Collection[str]) -> list[tuple[str, str | None, str]]:
        """The task's photos of these kinds, oldest first: (kind, Telegram file id, sha256)."""
        rows = await self.session.execute(
            select(TaskPhoto.kind, Photo.telegram_file_id, Photo.sha256)
            .join(Photo, Photo.id == TaskPhoto.photo_id)
            .where(TaskPhoto.task_id == task_id, TaskPhoto.kind.in_(list(kinds)))
            .order_by(Photo.id)
        )
        return [(kind, file_id, sha) for kind, file_id, sha in rows.all()]

    async def photo_ids_by(self, task_id: int, kind: str, person_id: int) -> list[int]:
        """The task's photos of this kind that this person uploaded."""
        rows = await self.session.scalars(
            select(TaskPhoto.photo_id)
            .join(Photo, Photo.id == TaskPhoto.photo_id)
            .where(TaskPhoto.task_id == task_id, TaskPhoto.kind == kind,
                   Photo.uploaded_by == person_id)
            .order_by(TaskPhoto.photo_id)
        )
        return list(rows.all())

    async def unattached_photos(self, person_id: int, chat_id: int,
                                after_message_id: int) -> list[int]:
        """Photos this person sent in a chat after a message, not part of any task."""
        rows = await self.session.scalars(
            select(Photo.id)
            .outerjoin(TaskPhoto, TaskPhoto.photo_id == Photo.id)
            .where(and_(Photo.uploaded_by == person_id, Photo.chat_id == chat_id,
                        Photo.message_id > after_message_id, TaskPhoto.task_id.is_(None)))
            .order_by(Photo.id)
        )
        return list(rows.all())

    async def report_people(self, task_id: int, report_id: int | None) -> set[int]:
        """Who filed or followed the reports behind the task (those that became it, and
        `report_id`)."""
        report_ids = set(await self.session.scalars(
            select(Report.id).where(Report.task_id == task_id)))
        if report_id is not None:
            report_ids.add(report_id)
        if not report_ids:
            return set()
        reporters = await self.session.scalars(select(Report.reporter_id)
                                               .where(Report.id.in_(report_ids)))
        followers = await self.session.scalars(select(ReportFollower.person_id)
                                               .where(ReportFollower.report_id.in_(report_ids)))
        return set(reporters.all()) | set(followers.all())


def _same(column: InstrumentedAttribute[datetime | None], value: datetime | None
          ) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value
