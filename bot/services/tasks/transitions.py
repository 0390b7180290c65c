"""Acting on a task: one guarded transition, its event, and the rework deadline."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.domain.errors import DomainError
from bot.domain.standards import Verdict
from bot.domain.tasks import (
    CREATED,
    DEFAULT_TZ,
    EVENTS,
    MAX_EXTENSION_DAYS,
    REPORTER_CONFIRMED,
    Action,
    TaskState,
    end_of_day,
    require_reason,
    rework_due,
    self_verified,
)
from bot.services.events import publish
from bot.services.evidence import fix_flags
from bot.services.tasks.cards import queue_card_edits, queue_cards
from bot.services.tasks.constants import AFTER, VERIFY_PASS_VERDICTS
from bot.services.tasks.inputs import _fix_note, drafts
from bot.services.tasks.notifications import _notify, close_notices, tell_groups_returned
from bot.services.tasks.permissions import _explain_stale, check
from bot.services.tasks.reads import get_task
from bot.services.tasks.site_items import _record_verification
from db.models import Person, Task, TaskEvent, TaskPhoto
from db.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a transition did: the task as it is now, the event recorded, and a warning key."""

    task: Task
    event: TaskEvent
    action: Action
    from_state: TaskState
    old_unit_id: int
    warning: str | None = None


async def act(
    uow: UnitOfWork,
    person: Person | None,
    task_id: int,
    action: Action,
    *,
    expected_version: int,
    reason: str | None = None,
    after_photo_ids: Sequence[int] = (),
    verdict: Verdict | str | None = None,
    new_due: datetime | None = None,
    new_unit_id: int | None = None,
    tz: ZoneInfo = DEFAULT_TZ,
    now: datetime,
) -> Outcome:
    """Apply one transition, or refuse it with a DomainError naming why (deadlines are days in
    `tz`, Settings.tz)."""
    task = await get_task(uow, task_id)
    from_state = TaskState(task.status)
    to_state = await check(uow, person, task, action, expected_version)
    fixed_it = person is not None and task.fixed_by == person.id
    reason = require_reason(action, reason)
    actor = person.id if person is not None else None
    values: dict[str, object] = {"status": to_state.value}
    data: dict[str, object] = {}
    warning = None
    old_unit_id = task.unit_id
    site_verdict: Verdict | None = None

    if action is Action.ACCEPT:
        values.update(accepted_by=actor, accepted_at=now)
    elif action is Action.SUBMIT_FIX:
        photos = list(after_photo_ids) or (await drafts(uow, task.id, person.id)
                                           if person is not None else [])
        if not photos:
            raise DomainError("task.after_photo_required")
        if person is not None and reason is None:
            reason = await _fix_note(uow, task, person)
        values.update(fixed_by=actor, fixed_at=now)
        data["photos"] = photos
        flags = await fix_flags(uow, task, photos)
        if flags:
            data["evidence"] = flags
    elif action in (Action.VERIFY_PASS, Action.VERIFY_RETURN):
        site_verdict = await _verification_verdict(uow, task, action, verdict)
        if site_verdict is not None:
            data["verdict"] = site_verdict.value
        values.update(verified_by=actor, verified_at=now)
        if action is Action.VERIFY_PASS:
            values["closed_at"] = now
        else:
            values["reopen_count"] = task.reopen_count + 1
            values.update(await rework_deadline(uow, task, now, tz))
        if self_verified(action, fixed_it):
            data["self_verified"] = True
            warning = "task.self_verified_warning"
    elif action is Action.REQUEST_EXTENSION:
        if new_due is None:  # never a silent default: the unit says how many days
            raise DomainError("task.extension_days_missing", max=MAX_EXTENSION_DAYS)
        until = end_of_day(new_due, tz)
        if until <= task.due_at:
            raise DomainError("task.extension_not_later")
        values["extension_until"] = until
        data["until"] = until.isoformat()
        data["days"] = round((until - task.due_at).total_seconds() / 86400)
    elif action is Action.GRANT_EXTENSION:
        assert task.extension_until is not None
        # A new deadline: the scheduler's reminders about the old one no longer apply.
        values.update(due_at=task.extension_until, extension_until=None,
                      reminded_before_at=None, reminded_due_at=None,
                      last_overdue_reminder_at=None)
        data["until"] = task.extension_until.isoformat()
    elif action is Action.REFUSE_EXTENSION:
        values["extension_until"] = None
    elif action is Action.REROUTE:
        if new_unit_id is None or await uow.people.unit(new_unit_id) is None:
            raise DomainError("task.reroute_unit_required")
        if new_unit_id == task.unit_id:
            raise DomainError("task.reroute_same_unit")
        values.update(unit_id=new_unit_id, accepted_by=None, accepted_at=None,
                      escalation_level=0, escalated_at=None, extension_until=None,
                      reminded_before_at=None, reminded_due_at=None,
                      last_overdue_reminder_at=None)
        data.update(from_unit=task.unit_id, to_unit=new_unit_id)
    elif action is Action.REOPEN:
        values.update(closed_at=None, reopen_count=task.reopen_count + 1)
        values.update(await rework_deadline(uow, task, now, tz))
    elif action is Action.CLOSE_AS_DUPLICATE:
        values["closed_at"] = now
    elif action is Action.ESCALATE:
        raise DomainError("task.use_escalate")

    await _bump(uow, task, expected_version, action, values, actor)
    if action is Action.SUBMIT_FIX:
        for photo_id in data["photos"]:  # type: ignore[attr-defined]
            row = await uow.tasks.photo_link(task.id, photo_id)
            if row is None:
                uow.add(TaskPhoto(task_id=task.id, photo_id=photo_id, kind=AFTER))
            else:
                row.kind = AFTER
    if site_verdict is not None:
        await _record_verification(uow, task, site_verdict, now)
    event = TaskEvent(task_id=task.id, at=now, actor_id=actor, action=EVENTS[action],
                      from_status=from_state.value, to_status=to_state.value, reason=reason,
                      data=data)
    uow.add(event)
    await uow.flush()
    if action is Action.REROUTE:
        await queue_cards(uow, task, now, tag="reroute", tz=tz)
    await close_notices(uow, task.id)
    if action in (Action.VERIFY_RETURN, Action.REOPEN):
        await tell_groups_returned(uow, task, event)
    await _notify(uow, task, action, event, tz)
    await publish(uow, "task.changed", task=task, event=event)
    return Outcome(task, event, action, from_state, old_unit_id, warning)


async def note_reporter_confirmed(uow: UnitOfWork, task_id: int, now: datetime, *,
                                  actor_id: int | None = None,
                                  tz: ZoneInfo = DEFAULT_TZ) -> TaskEvent | None:
    """The reporter confirmed the problem is solved: a "reporter_confirmed" event (never naming
    them: data["by"] is "reporter") and the task's cards redrawn through the outbox. The state
    does not change. None when the task is gone."""
    task = await uow.tasks.get(task_id)
    if task is None:
        return None
    event = TaskEvent(task_id=task.id, at=now, actor_id=actor_id, action=REPORTER_CONFIRMED,
                      from_status=task.status, to_status=task.status, data={"by": "reporter"})
    uow.add(event)
    await uow.flush()
    # The version stays, so the edit's key names the event (an edit for this version may
    # already have been sent).
    await queue_card_edits(uow, task.id, now, tag=f"e{event.id}", tz=tz)
    return event


async def first_due_at(uow: UnitOfWork, task: Task) -> datetime:
    """The deadline the task was created with (kept in its "created" event); for a task
    created before that was recorded, its current deadline."""
    data = await uow.tasks.first_event_data(task.id, CREATED)
    raw = (data or {}).get("due_at")
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            log.warning("task %s: unreadable first deadline %r", task.id, raw)
    return task.due_at


async def rework_deadline(uow: UnitOfWork, task: Task, now: datetime,
                          tz: ZoneInfo) -> dict[str, object]:
    """The columns a returned or reopened task gets: a fresh deadline, as long from now as the
    task was first given (bot.domain.tasks.rework_allowance), and the scheduler's marks about
    the old deadline cleared so it reminds about the new one. Like every deadline it is the end
    of a local day (bot.domain.tasks.rework_due). escalation_level is left as it
    is: an escalation already announced stands, and the scheduler escalates further only once
    the new deadline has passed."""
    due = rework_due(task.created_at, await first_due_at(uow, task), now, tz)
    return {"due_at": due, "reminded_before_at": None, "reminded_due_at": None,
            "last_overdue_reminder_at": None}


async def _bump(
    uow: UnitOfWork, task: Task, expected_version: int, action: Action, values: dict[str, object],
    presser_id: int | None = None,
) -> None:
    """The guarded UPDATE: 0 rows means someone else moved the task first."""
    if not await uow.tasks.bump(task, expected_version, values):
        await _explain_stale(uow, task, action, presser_id)


async def _verification_verdict(
    uow: UnitOfWork, task: Task, action: Action, verdict: Verdict | str | None
) -> Verdict | None:
    """For a checklist task, the item answered again; None for other tasks."""
    if task.inspection_id is None or task.item_key is None:
        return None
    if verdict is None:
        if action is Action.VERIFY_PASS:
            raise DomainError("task.verdict_required")
        return Verdict.NONCOMPLIANT
    v = Verdict(verdict)
    if (action is Action.VERIFY_PASS) != (v in VERIFY_PASS_VERDICTS):
        raise DomainError("task.verdict_mismatch")
    return v
