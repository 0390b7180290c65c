"""Reading a task: the task, its history, who is named, and what its card shows."""

from __future__ import annotations

from collections.abc import Iterable

from bot.domain.errors import NotFound
from bot.domain.tasks import CREATED, EVENTS, Action, TaskState, escalation_target
from bot.render.tasks import EventLine, TaskData
from bot.services.tasks.constants import AFTER, BEFORE
from bot.services.tasks.site_items import standard_of
from db.models import Task, TaskEvent
from db.uow import UnitOfWork


async def get_task(uow: UnitOfWork, task_id: int) -> Task:
    task = await uow.tasks.get(task_id)
    if task is None:
        raise NotFound("task.not_found", id=task_id)
    return task


async def history(uow: UnitOfWork, task_id: int) -> list[TaskEvent]:
    """Every recorded event of the task, oldest first."""
    return await uow.tasks.events(task_id)


async def names(uow: UnitOfWork, ids: Iterable[int | None]) -> dict[int, str]:
    """First names by person id. Who must stay unnamed is decided from the task's report
    (report_people, EventLine.resident), not from anyone's current role: a unit member can
    file a report too, and a role changes after the fact."""
    return await uow.people.first_names(i for i in ids if i is not None)


async def report_people(uow: UnitOfWork, task: Task) -> set[int]:
    """Who filed or followed (+1) the report(s) behind this task: never named on its card or in
    its history, whatever their role (cards are read in groups)."""
    return await uow.tasks.report_people(task.id, task.report_id)


def by_resident(event: TaskEvent, private: set[int]) -> bool:
    """Whether the event's actor is shown as "a resident" rather than by name."""
    return ((event.data or {}).get("by") == "reporter"
            or (event.actor_id is not None and event.actor_id in private))


async def task_data(uow: UnitOfWork, task_id: int, *, with_item: bool = False) -> TaskData:
    """Everything a card, a list line or the history shows, read now."""
    task = await get_task(uow, task_id)
    unit = await uow.people.unit(task.unit_id)
    site = await uow.sites.get(task.site_id) if task.site_id else None
    events = await history(uow, task_id)
    photos = await uow.tasks.photos(task_id, (BEFORE, AFTER))
    inspection = (await uow.inspections.get(task.inspection_id)
                  if task.inspection_id else None)
    private = await report_people(uow, task)
    who = await names(uow, [e.actor_id for e in events if not by_resident(e, private)]
                      + [inspection.inspector_id if inspection else None])
    relapse_closed = None
    if task.relapse_of_id is not None:
        earlier = await uow.tasks.get(task.relapse_of_id)
        relapse_closed = earlier.closed_at if earlier else None
    escalation_unit, escalation_unit_en = None, ""
    if task.escalation_level and unit is not None:
        target = escalation_target(await uow.people.units(), unit, task.escalation_level)
        if target is not None:
            escalation_unit, escalation_unit_en = target.name_zh, target.name_en
    claim = await reroute_claim(uow, task_id)
    item_text = item_text_en = None
    if with_item and inspection is not None and task.item_key:
        item = (await standard_of(uow, inspection.standard_hash)).item(task.item_key)
        item_text = f"{item.number} {item.text.zh}"
        item_text_en = f"{item.number} {item.text.en}"
    # The latest after-photos come first: the card shows the newest fix.
    after = [(f, s) for k, f, s in photos if k == AFTER][::-1]
    before = [(f, s) for k, f, s in photos if k == BEFORE]
    return TaskData(
        id=task.id, version=task.version, state=TaskState(task.status), source=task.source,
        title=task.title, title_en=task.title_en, description=task.description or "",
        unit_name=unit.name_zh if unit else "—", unit_name_en=unit.name_en if unit else "",
        unit_id=task.unit_id, site_name=site.name if site else None,
        site_name_en=site.name_en if site else "", due_at=task.due_at,
        extension_until=task.extension_until, escalation_level=task.escalation_level,
        escalation_unit=escalation_unit, escalation_unit_en=escalation_unit_en,
        reopen_count=task.reopen_count,
        relapse_of_id=task.relapse_of_id, relapse_closed_at=relapse_closed,
        inspector=who.get(inspection.inspector_id) if inspection else None,
        before_file_ids=tuple(f for f, _ in before if f),
        after_file_ids=tuple(f for f, _ in after if f),
        before_shas=tuple(s for _, s in before), after_shas=tuple(s for _, s in after),
        reroute_claim=(claim.reason or "") if claim else None,
        events=tuple(
            EventLine(e.at,
                      None if by_resident(e, private) else who.get(e.actor_id or 0),
                      e.actor_id, e.action, e.reason, dict(e.data or {}),
                      resident=by_resident(e, private))
            for e in events
            # Who filed a report never appears; the event stays in the database.
            if not (e.action == CREATED and task.source == "report")
        ),
        item_text=item_text, item_text_en=item_text_en,
        photo_received=await uow.evidence.received_times(task.id, (BEFORE, AFTER)),
    )


async def reroute_claim(uow: UnitOfWork, task_id: int) -> TaskEvent | None:
    """The unit's "not ours" claim, if no admin has decided on it yet."""
    last = await uow.tasks.last_event(task_id, (EVENTS[Action.NOT_OURS],
                                                EVENTS[Action.REROUTE],
                                                EVENTS[Action.REFUSE_REROUTE]))
    return last if last is not None and last.action == EVENTS[Action.NOT_OURS] else None
