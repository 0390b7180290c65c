"""Who may act on a task, and why a stale button is refused."""

from __future__ import annotations

from bot.domain.errors import StaleAction
from bot.domain.roles import Role, role_of
from bot.domain.tasks import EVENTS, Action, TaskState, transition
from bot.services.tasks.reads import by_resident, names, report_people, reroute_claim
from db.models import Person, Task
from db.uow import UnitOfWork


def is_unit_member(person: Person | None, task: Task) -> bool:
    return (person is not None and role_of(person) >= Role.UNIT_MEMBER
            and person.unit_id == task.unit_id)


async def check(
    uow: UnitOfWork, person: Person | None, task: Task, action: Action, expected_version: int
) -> TaskState:
    """Whether `person` may do `action` to the task at this version; the state it leads to."""
    if task.version != expected_version:
        await _explain_stale(uow, task, action, person.id if person is not None else None)
    return transition(
        task.status, action, None if person is None else role_of(person),
        is_unit_member(person, task),
        person is not None and task.fixed_by == person.id,
        extension_pending=task.extension_until is not None,
        reroute_pending=await reroute_claim(uow, task.id) is not None,
    )


async def _explain_stale(uow: UnitOfWork, task: Task, action: Action,
                         presser_id: int | None = None) -> None:
    """Someone moved the task since this button was drawn: say who, if it was this (and "you
    already did" when it was the presser, e.g. 完成 pressed again after submitting)."""
    last = await uow.tasks.last_event(task.id)
    same = {EVENTS[action]}
    if action in (Action.VERIFY_PASS, Action.VERIFY_RETURN):
        same = {EVENTS[Action.VERIFY_PASS], EVENTS[Action.VERIFY_RETURN]}
    if last is not None and last.action in same:
        if presser_id is not None and last.actor_id == presser_id:
            raise StaleAction("task.already_done_self", action=last.action)
        if by_resident(last, await report_people(uow, task)):
            who = "resident"  # task_views.explain words it; a reporter is never named
        else:
            who = (await names(uow, [last.actor_id])).get(last.actor_id or 0, "—")
        raise StaleAction("task.already_done", who=who, action=last.action)
    raise StaleAction("task.stale")
