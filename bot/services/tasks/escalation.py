"""Escalation (the scheduler moves it; this records it) and reopening by the reporter."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.domain.tasks import DEFAULT_TZ, EVENTS, Action, TaskState, escalation_target
from bot.services.events import publish
from bot.services.tasks.cards import queue_card_edits
from bot.services.tasks.notifications import close_notices, tell_groups_returned
from bot.services.tasks.transitions import _bump, rework_deadline
from db.models import Task, TaskEvent
from db.uow import UnitOfWork


async def escalate(uow: UnitOfWork, task_id: int, level: int, now: datetime, *,
                   tz: ZoneInfo = DEFAULT_TZ) -> Task | None:
    """Raise the task's escalation level and record an "escalated" event.

    Returns the task only when this call raised the level; None when the task is closed or gone,
    or already at (or above) that level, so a job run twice announces nothing twice. The
    task's cards are edited through the outbox; the scheduler sends the escalation messages.
    """
    task = await uow.tasks.get(task_id)
    if task is None or task.status == TaskState.CLOSED.value:
        return None
    if level <= task.escalation_level:
        return None  # already there: nothing recorded, nothing for the caller to announce
    version = task.version
    from_level = task.escalation_level
    if not await uow.tasks.bump(task, version, {"escalation_level": level,
                                                "escalated_at": now}):
        # Someone acted on the task meanwhile; look again (a press or a second job run).
        return await escalate(uow, task_id, level, now, tz=tz)
    unit = await uow.people.unit(task.unit_id)
    target = escalation_target(await uow.people.units(), unit, level) if unit else None
    event = TaskEvent(task_id=task.id, at=now, actor_id=None, action=EVENTS[Action.ESCALATE],
                      from_status=task.status, to_status=task.status,
                      data={"level": level, "from_level": from_level,
                            "target_unit_id": target.id if target else None})
    uow.add(event)
    await uow.flush()
    await queue_card_edits(uow, task.id, now, tz=tz)
    await publish(uow, "task.changed", task=task, event=event)
    return task


async def reopen_task(
    uow: UnitOfWork, task_id: int, *, actor_id: int | None, reason: str, now: datetime,
    tz: ZoneInfo = DEFAULT_TZ,
) -> Task | None:
    """The reporter says the problem is still there: a fixed or closed task goes back to the
    unit as rework (returned). No role check: the reports feature decides who may dispute.
    Returns None when there is nothing to reopen."""
    task = await uow.tasks.get(task_id)
    if task is None or task.status not in (TaskState.CLOSED.value,
                                           TaskState.FIX_SUBMITTED.value):
        return None
    from_state = task.status
    await _bump(uow, task, task.version, Action.REOPEN,
                {"status": TaskState.RETURNED.value, "closed_at": None,
                 "reopen_count": task.reopen_count + 1,
                 **await rework_deadline(uow, task, now, tz)})
    event = TaskEvent(task_id=task.id, at=now, actor_id=actor_id, action=EVENTS[Action.REOPEN],
                      from_status=from_state, to_status=TaskState.RETURNED.value,
                      reason=reason, data={"by": "reporter"})
    uow.add(event)
    await uow.flush()
    await close_notices(uow, task.id)
    await tell_groups_returned(uow, task, event)
    await queue_card_edits(uow, task.id, now, tz=tz)
    await publish(uow, "task.changed", task=task, event=event)
    return task
