"""Creating a task, and the relapse window (反弹) that links it to an earlier one."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.domain.errors import NotFound
from bot.domain.tasks import CREATED, DEFAULT_TZ, TaskState, end_of_day, relapse_window
from bot.services.events import publish
from bot.services.tasks.cards import queue_cards
from bot.services.tasks.constants import BEFORE, RELAPSE_WEEKS_DEFAULT
from db.models import Task, TaskEvent, TaskPhoto
from db.uow import UnitOfWork

log = logging.getLogger(__name__)


async def create_task(
    uow: UnitOfWork,
    *,
    source: str,
    unit_id: int,
    title: str,
    title_en: str | None = None,
    description: str = "",
    due_at: datetime,
    created_by: int | None,
    site_id: int | None = None,
    inspection_id: int | None = None,
    item_key: str | None = None,
    report_id: int | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    before_photo_ids: Iterable[int] = (),
    priority: int = 0,
    relapse_weeks: int = RELAPSE_WEEKS_DEFAULT,
    tz: ZoneInfo = DEFAULT_TZ,
    now: datetime,
    relapse_of_id: int | None = None,
) -> Task:
    """A new open task: its "created" event, relapse check, card queued, "task.changed".

    A task for an inspection item (site_id and item_key) is linked to the same item's task
    closed within `relapse_weeks` (Settings.relapse_weeks; 0: never), or to `relapse_of_id`
    when the caller knows it (a failed re-check of that closed task: bot/services/draws.py).

    A deadline is a day: `due_at` is moved to the end (23:59:59) of its local day in the
    campaign's time zone (`tz`: Settings.tz), whatever the caller computed."""
    due_at = end_of_day(due_at, tz)
    if await uow.people.unit(unit_id) is None:
        raise NotFound("task.unit_not_found")
    relapse = None
    if relapse_of_id is not None:
        relapse = await uow.tasks.get(relapse_of_id)
    if relapse is None and site_id is not None and item_key is not None:
        relapse = await _relapse_of(uow, site_id, item_key, now, relapse_weeks)
    task = Task(
        source=source, inspection_id=inspection_id, item_key=item_key, report_id=report_id,
        site_id=site_id, unit_id=unit_id, title=title, title_en=title_en, description=description,
        latitude=latitude, longitude=longitude, status=TaskState.OPEN.value, version=0,
        priority=priority, escalation_level=0, due_at=due_at, created_by=created_by,
        created_at=now, reopen_count=0, relapse_of_id=relapse.id if relapse else None,
    )
    uow.add(task)
    await uow.flush()
    for photo_id in dict.fromkeys(before_photo_ids):
        uow.add(TaskPhoto(task_id=task.id, photo_id=photo_id, kind=BEFORE))
    # The first deadline: a returned or reopened task is given the same time again.
    data: dict[str, object] = {"source": source, "due_at": due_at.isoformat()}
    if relapse is not None:
        data["relapse_of"] = relapse.id
    event = TaskEvent(task_id=task.id, at=now, actor_id=created_by, action=CREATED,
                      from_status=None, to_status=TaskState.OPEN.value, data=data)
    uow.add(event)
    await uow.flush()
    await queue_cards(uow, task, now, tz=tz)
    await publish(uow, "task.changed", task=task, event=event)
    return task


async def _relapse_of(uow: UnitOfWork, site_id: int, item_key: str, now: datetime,
                      weeks: int) -> Task | None:
    if weeks <= 0:
        return None
    return await uow.tasks.latest_closed(site_id, item_key, TaskState.CLOSED.value,
                                         now - relapse_window(weeks))
