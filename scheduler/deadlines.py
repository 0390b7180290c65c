"""Deadline reminders and escalation: task rows in, outbox rows and bookkeeping out.

Each batch of tasks is one short transaction: the messages are queued in the outbox and the
task's bookkeeping column is set in the same commit, so a crash either leaves both undone (the
next tick does them) or both done (nothing is said twice). Telegram is never called here.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select

from bot.i18n import t
from db.models import GroupBinding, Site, Task, TaskEvent
from db.repositories import OutboxRepository
from db.repositories.stats import (
    DONE_STATUSES,
    WAITING_STATUSES,
    StatsRepository,
    UnitTree,
)
from db.uow import UnitOfWork, UnitOfWorkFactory
from scheduler.config import ScheduleConfig
from scheduler.periods import day_bounds, latest_slot, local_date
from scheduler.policy import Deadline, decide, overdue_days

log = logging.getLogger(__name__)
Escalate = Callable[[UnitOfWork, int, int, dt.datetime], Awaitable[Task | None]]


async def _fallback_escalate(
    uow: UnitOfWork, task_id: int, level: int, now: dt.datetime
) -> Task | None:
    """FALLBACK until bot.services.tasks.escalate exists: raise the level, record the event.

    Same contract as the task service's: None when the task is gone, closed, or already at
    that level. It does not notify anyone; the scheduler does.
    """
    task = await uow.session.get(Task, task_id)
    if task is None or task.closed_at is not None or task.status in DONE_STATUSES:
        return None
    if task.escalation_level >= level:
        return None
    task.escalation_level = level
    task.escalated_at = now
    uow.session.add(TaskEvent(task_id=task.id, at=now, actor_id=None, action="escalated",
                              from_status=task.status, to_status=task.status,
                              reason="overdue", data={"level": level}))
    return task


def task_service_escalate() -> Escalate:
    """The task service's escalate() when it is there; the marked fallback otherwise."""
    try:
        from bot.services import tasks as task_service
    except ImportError:
        return _fallback_escalate
    found: Escalate | None = getattr(task_service, "escalate", None)
    return found if found is not None else _fallback_escalate


@dataclass(frozen=True)
class Routing:
    tree: UnitTree
    groups: dict[int, list[GroupBinding]]
    office_unit: int | None

    def chats(self, unit_id: int) -> tuple[list[GroupBinding], int | None]:
        """The unit's active groups or, if it has none, its nearest ancestor's; with the unit
        whose groups they are."""
        for uid in [unit_id, *self.tree.ancestors(unit_id)]:
            if self.groups.get(uid):
                return self.groups[uid], uid
        return [], None

    def name(self, unit_id: int, lang: str) -> str:
        node = self.tree.nodes.get(unit_id)
        return node.name(lang) if node else str(unit_id)


async def load_routing(uow: UnitOfWork, cfg: ScheduleConfig) -> Routing:
    stats = StatsRepository(uow.session)
    tree = await stats.unit_tree()
    groups: dict[int, list[GroupBinding]] = defaultdict(list)
    for g in (await uow.session.scalars(
            select(GroupBinding).where(GroupBinding.active.is_(True))
            .order_by(GroupBinding.chat_id))).all():
        groups[g.unit_id].append(g)
    office = tree.office(cfg.office_unit)
    return Routing(tree, dict(groups), office.id if office else None)


def _candidates(now: dt.datetime, cfg: ScheduleConfig, tz: ZoneInfo) -> object:
    """A WHERE clause narrowing tasks to those the policy may owe something; decide() has the
    last word."""
    slot = latest_slot(now, cfg.overdue_reminder_hour, tz)
    slot_day_start = day_bounds(local_date(slot, tz), tz)[0]
    clauses = [
        and_(Task.reminded_before_at.is_(None), Task.due_at > now,
             Task.due_at <= now + dt.timedelta(hours=cfg.reminder_before_hours)),
        and_(Task.due_at <= now, Task.reminded_due_at.is_(None)),
        and_(Task.due_at < slot_day_start,
             or_(Task.last_overdue_reminder_at.is_(None), Task.last_overdue_reminder_at < slot)),
    ]
    if cfg.escalation:
        first = cfg.escalation[0]
        clauses.append(and_(Task.escalation_level < cfg.escalation[-1].level,
                            Task.due_at <= now - dt.timedelta(hours=first.after_overdue_hours)))
    return and_(Task.closed_at.is_(None), Task.status.not_in(DONE_STATUSES + WAITING_STATUSES),
                or_(*clauses))


async def remind_and_escalate(
    uow_factory: UnitOfWorkFactory, cfg: ScheduleConfig, tz: ZoneInfo, lang: str,
    now: dt.datetime, *, escalate: Escalate | None = None, batch: int = 100,
) -> int:
    """Queue every reminder and escalation that is due; returns how many messages."""
    escalate = escalate or task_service_escalate()
    async with uow_factory() as uow:
        ids = list((await uow.session.scalars(
            select(Task.id).where(_candidates(now, cfg, tz))  # type: ignore[arg-type]
            .order_by(Task.due_at, Task.id))).all())
    queued = 0
    for start in range(0, len(ids), batch):
        async with uow_factory() as uow:
            routing = await load_routing(uow, cfg)
            chunk = ids[start:start + batch]
            tasks = (await uow.session.scalars(
                select(Task).where(Task.id.in_(chunk)).order_by(Task.due_at, Task.id))).all()
            for task in tasks:
                queued += await _one(uow, task, routing, cfg, tz, lang, now, escalate)
            await uow.commit(mark_update_handled=False)
    return queued


async def _one(
    uow: UnitOfWork, task: Task, routing: Routing, cfg: ScheduleConfig, tz: ZoneInfo,
    lang: str, now: dt.datetime, escalate: Escalate,
) -> int:
    decision = decide(Deadline(task.due_at, task.created_at, task.escalation_level,
                               task.reminded_before_at, task.reminded_due_at,
                               task.last_overdue_reminder_at), now, cfg, tz)
    if decision.empty:
        return 0
    outbox = OutboxRepository(uow.session)
    site = await uow.session.get(Site, task.site_id) if task.site_id else None
    unit_name = routing.name(task.unit_id, lang)
    due_text = _when(task.due_at, tz, lang)
    days = overdue_days(task.due_at, now)
    queued = 0
    if decision.skip_before:
        task.reminded_before_at = now
    if decision.reminder is not None:
        kind = decision.reminder
        if kind == "before":
            hours = max(1, round((task.due_at - now) / dt.timedelta(hours=1)))
            text = t(lang, "scheduler.reminder.before", unit=unit_name, task=task.id,
                     title=task.title, due=due_text, hours=hours)
            task.reminded_before_at = now
        elif kind == "due" and now - task.due_at < dt.timedelta(days=1):
            text = t(lang, "scheduler.reminder.due", unit=unit_name, task=task.id,
                     title=task.title, due=due_text)
            task.reminded_due_at = now
        else:
            text = t(lang, "scheduler.reminder.overdue", unit=unit_name, task=task.id,
                     title=task.title, due=due_text, days=days)
            if kind == "due":
                task.reminded_due_at = now
            task.last_overdue_reminder_at = now
        if site is not None:
            text += "\n" + t(lang, "scheduler.reminder.site", site=site.name)
        groups, owner = routing.chats(task.unit_id)
        if owner is not None and owner != task.unit_id:
            text += "\n" + t(lang, "scheduler.reminder.routed", unit=unit_name)
        # The period in the key: one "before"/"due" per deadline (an extension moves it), one
        # overdue reminder per local day.
        stamp = local_date(now, tz).isoformat() if kind == "overdue" else task.due_at.isoformat()
        for g in groups:
            if await outbox.enqueue(f"remind:{kind}:{task.id}:{stamp}:{g.chat_id}", g.chat_id,
                                    "sendMessage", {"text": text, "parse_mode": "HTML"},
                                    purpose="task_reminder", ref_id=task.id):
                queued += 1
    for step in decision.escalations:
        changed = await escalate(uow, task.id, step.level, now)
        if changed is None:
            continue
        if step.notify == "office":
            target = routing.office_unit
            text = t(lang, "scheduler.escalation.office", unit=unit_name, task=task.id,
                     title=task.title, due=due_text, days=days, level=step.level)
        else:
            parents = routing.tree.ancestors(task.unit_id)
            target = parents[0] if parents else routing.office_unit
            text = t(lang, "scheduler.escalation.parent", unit=unit_name, task=task.id,
                     title=task.title, due=due_text, days=days)
        if site is not None:
            text += "\n" + t(lang, "scheduler.reminder.site", site=site.name)
        groups = routing.chats(target)[0] if target is not None else []
        if not groups:
            log.warning("task %s escalated to level %s: no group to tell", task.id, step.level)
        for g in groups:
            if await outbox.enqueue(f"escalate:{task.id}:{step.level}:{g.chat_id}", g.chat_id,
                                    "sendMessage", {"text": text, "parse_mode": "HTML"},
                                    purpose="task_escalation", ref_id=task.id):
                queued += 1
    return queued


def _when(instant: dt.datetime, tz: ZoneInfo, lang: str) -> str:
    local = instant.astimezone(tz)
    return t(lang, "scheduler.datetime", month=local.month, day=local.day,
             time=local.strftime("%H:%M"))

