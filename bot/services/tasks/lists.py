"""Lists of tasks: what /tasks shows each person, and who may see a task."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.domain.errors import NotAllowed
from bot.domain.roles import Role, role_of
from bot.domain.tasks import ACTIVE_STATES, UNIT_TODO_STATES, TaskFilter, TaskState
from bot.render.i18n import local_name
from bot.render.tasks import TaskData
from bot.services.tasks.constants import LIST_LIMIT
from bot.services.tasks.permissions import is_unit_member
from bot.services.tasks.reads import task_data
from db.models import Person, Task
from db.uow import UnitOfWork


@dataclass(frozen=True)
class TaskList:
    title_key: str
    tasks: list[TaskData]
    unit_name: str | None = None
    unit_name_en: str = ""

    def unit_in(self, lang: str) -> str | None:
        return local_name(lang, self.unit_name, self.unit_name_en) if self.unit_name else None


async def list_tasks(
    uow: UnitOfWork, *, unit_id: int | None = None, states: Sequence[TaskState] = (),
    overdue: bool = False, now: datetime, limit: int = LIST_LIMIT,
) -> list[Task]:
    """Tasks by deadline, earliest first; by default every task not yet closed."""
    return await uow.tasks.listed(
        [s.value for s in (states or ACTIVE_STATES)], unit_id=unit_id,
        overdue_in=[s.value for s in UNIT_TODO_STATES] if overdue else None, now=now,
        limit=limit)


async def awaiting_verification(uow: UnitOfWork, person: Person,
                                limit: int = LIST_LIMIT) -> list[Task]:
    """Fixes waiting for a check, oldest first, leaving out those this person fixed."""
    return await uow.tasks.fixed_not_by(TaskState.FIX_SUBMITTED.value, person.id, limit)


async def tasks_for(
    uow: UnitOfWork, person: Person, flt: TaskFilter, now: datetime, *,
    group_unit_id: int | None = None,
) -> TaskList:
    """What /tasks shows this person (or, in a bound group, that group's unit)."""
    from bot.services.people import find_one_unit

    if group_unit_id is not None:
        unit = await uow.people.unit(group_unit_id)
        tasks = await list_tasks(uow, unit_id=group_unit_id, now=now)
        return TaskList("task.list.group", await _data(uow, tasks),
                        unit.name_zh if unit else None, unit.name_en if unit else "")
    role = role_of(person)
    if role >= Role.INSPECTOR:
        if flt.unit_query is None and not flt.states and not flt.overdue and role < Role.ADMIN:
            tasks = await awaiting_verification(uow, person)
            return TaskList("task.list.to_verify", await _data(uow, tasks))
        unit_id = None
        unit_name, unit_name_en = None, ""
        if flt.unit_query is not None:
            unit = await find_one_unit(uow, flt.unit_query)
            unit_id, unit_name, unit_name_en = unit.id, unit.name_zh, unit.name_en
        tasks = await list_tasks(uow, unit_id=unit_id, states=flt.states, overdue=flt.overdue,
                                 now=now)
        return TaskList("task.list.filtered", await _data(uow, tasks), unit_name,
                        unit_name_en)
    if role >= Role.UNIT_MEMBER and person.unit_id is not None:
        unit = await uow.people.unit(person.unit_id)
        states = flt.states or UNIT_TODO_STATES
        tasks = await list_tasks(uow, unit_id=person.unit_id, states=states,
                                 overdue=flt.overdue, now=now)
        return TaskList("task.list.unit", await _data(uow, tasks),
                        unit.name_zh if unit else None, unit.name_en if unit else "")
    raise NotAllowed("error.role_required", role=f"role.{Role.UNIT_MEMBER.key}")


async def _data(uow: UnitOfWork, tasks: Iterable[Task]) -> list[TaskData]:
    return [await task_data(uow, t.id) for t in tasks]


async def may_see(uow: UnitOfWork, person: Person, task: Task) -> bool:
    role = role_of(person)
    return role >= Role.INSPECTOR or is_unit_member(person, task)
