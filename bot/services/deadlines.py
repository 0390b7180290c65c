"""Deadline reminders and escalation: task rows in, outbox rows and bookkeeping out.

Each batch of tasks is one short transaction: the messages are queued in the outbox and the
task's bookkeeping column is set in the same commit, so a crash either leaves both undone (the
next tick does them) or both done (nothing is said twice). Telegram is never called here.

The bookkeeping is a guarded UPDATE: it lands only while the row is still the one the decision
was read from (same version, deadline and bookkeeping). An extension or a re-route that resets
the deadline in between wins; the scheduler then queues nothing for that task and decides again
from the fresh row on the next tick. On PostgreSQL the batch is also locked (SKIP LOCKED), so a
task being changed right now is simply left for the next tick.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.domain.escalation import Deadline, decide, overdue_days
from bot.domain.periods import day_bounds, latest_slot, local_date
from bot.domain.schedule import ScheduleConfig
from bot.render.dates import format_datetime
from bot.render.i18n import t
from bot.render.tasks import card
from bot.services.tasks import escalate as task_service_escalate
from bot.services.tasks import queue_card_edits, task_data
from db.models import GroupBinding, Task
from db.outbox_keys import dedup_key
from db.repositories.stats import (
    DONE_STATUSES,
    WAITING_STATUSES,
    UnitTree,
)
from db.repositories.tasks import DeadlineWindow
from db.uow import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)
Escalate = Callable[[UnitOfWork, int, int, dt.datetime], Awaitable[Task | None]]


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
    stats = uow.stats
    tree = await stats.unit_tree()
    groups: dict[int, list[GroupBinding]] = defaultdict(list)
    for g in await uow.people.active_groups():
        groups[g.unit_id].append(g)
    office = tree.office(cfg.office_unit)
    return Routing(tree, dict(groups), office.id if office else None)


def _candidates(now: dt.datetime, cfg: ScheduleConfig, tz: ZoneInfo) -> DeadlineWindow:
    """The tasks the policy may owe something; decide() has the last word."""
    slot = latest_slot(now, cfg.overdue_reminder_hour, tz)
    first = cfg.escalation[0] if cfg.escalation else None
    return DeadlineWindow(
        now=now, before_until=now + dt.timedelta(hours=cfg.reminder_before_hours), slot=slot,
        slot_day_start=day_bounds(local_date(slot, tz), tz)[0],
        top_level=cfg.escalation[-1].level if cfg.escalation else None,
        escalate_due_by=(now - dt.timedelta(hours=first.after_overdue_hours)
                         if first is not None else None),
        settled_statuses=DONE_STATUSES + WAITING_STATUSES)


async def remind_and_escalate(
    uow_factory: UnitOfWorkFactory, cfg: ScheduleConfig, tz: ZoneInfo, lang: str,
    now: dt.datetime, *, escalate: Escalate | None = None, batch: int = 100,
) -> int:
    """Queue every reminder and escalation that is due; returns how many messages."""
    escalate = escalate or functools.partial(task_service_escalate, tz=tz)
    where = _candidates(now, cfg, tz)
    async with uow_factory() as uow:
        ids = await uow.tasks.owed(where)
    queued = 0
    for start in range(0, len(ids), batch):
        async with uow_factory() as uow:
            routing = await load_routing(uow, cfg)
            chunk = ids[start:start + batch]
            # Re-read with the same filter (a task may have moved since the ids were taken).
            tasks = await uow.tasks.lock_owed(chunk, where)
            for task in tasks:
                queued += await remind_one(uow, task, routing, cfg, tz, lang, now, escalate)
            await uow.commit(mark_update_handled=False)
    return queued


async def remind_one(
    uow: UnitOfWork, task: Task, routing: Routing, cfg: ScheduleConfig, tz: ZoneInfo,
    lang: str, now: dt.datetime, escalate: Escalate,
) -> int:
    """Queue what `task` is owed now; returns how many messages.

    `task` is the row as read, possibly earlier or in another transaction: the decision is
    taken from it, and nothing is written or queued unless the guarded bookkeeping UPDATE
    finds the row unchanged (TaskRepository.claim_marks). `task` itself is not modified.
    """
    decision = decide(Deadline(task.due_at, task.created_at, task.escalation_level,
                               task.reminded_before_at, task.reminded_due_at,
                               task.last_overdue_reminder_at), now, cfg, tz)
    if decision.empty:
        return 0
    kind = decision.reminder
    marks: dict[str, dt.datetime] = {}
    if decision.skip_before or kind == "before":
        marks["reminded_before_at"] = now
    if kind == "due":
        marks["reminded_due_at"] = now
    # A "due" reminder a day or more late is worded (and counted) as an overdue one.
    late = kind == "overdue" or (kind == "due" and now - task.due_at >= dt.timedelta(days=1))
    if late:
        marks["last_overdue_reminder_at"] = now
    if not await uow.tasks.claim_marks(task, marks):
        log.info("task %s changed since it was read; left for the next tick", task.id)
        return 0
    outbox = uow.outbox
    site = await uow.sites.get(task.site_id) if task.site_id else None
    unit_name = routing.name(task.unit_id, lang)
    due_text = format_datetime(lang, task.due_at, tz)
    days = overdue_days(task.due_at, now)
    queued = 0
    # The period in the key: one "before"/"due" per deadline (an extension moves it), one
    # overdue reminder per local day.
    stamp = local_date(now, tz).isoformat() if kind == "overdue" else task.due_at.isoformat()
    if kind is not None:
        if kind == "before":
            hours = max(1, round((task.due_at - now) / dt.timedelta(hours=1)))
            text = t(lang, "scheduler.reminder.before", unit=unit_name, task=task.id,
                     title=task.title, due=due_text, hours=hours)
        elif not late:
            text = t(lang, "scheduler.reminder.due", unit=unit_name, task=task.id,
                     title=task.title, due=due_text)
        else:
            text = t(lang, "scheduler.reminder.overdue", unit=unit_name, task=task.id,
                     title=task.title, due=due_text, days=days)
        if site is not None:
            text += "\n" + t(lang, "scheduler.reminder.site", site=site.name)
        groups, owner = routing.chats(task.unit_id)
        if owner is not None and owner != task.unit_id:
            text += "\n" + t(lang, "scheduler.reminder.routed", unit=unit_name)
        placed = dict(await uow.cards.places(task.id))
        for g in groups:
            params: dict[str, object] = {"text": text, "parse_mode": "HTML"}
            if g.chat_id in placed:
                # Under the card it is about, one tap from its buttons; sent all the same if
                # the card was deleted.
                params["reply_parameters"] = {"message_id": placed[g.chat_id],
                                              "allow_sending_without_reply": True}
            if await outbox.enqueue(dedup_key("remind", kind, task.id, stamp, g.chat_id),
                                    g.chat_id, "sendMessage", params,
                                    purpose="task_reminder", ref_id=task.id):
                queued += 1
    escalated = False
    for step in decision.escalations:
        changed = await escalate(uow, task.id, step.level, now)
        if changed is None:
            continue
        escalated = True
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
            if await outbox.enqueue(dedup_key("escalate", task.id, step.level, g.chat_id),
                                    g.chat_id,
                                    "sendMessage", {"text": text, "parse_mode": "HTML"},
                                    purpose="task_escalation", ref_id=task.id):
                queued += 1
    if escalated:
        # The escalation raised the version; the version's card edit is new (the task service
        # may have queued it already, then this finds it and queues nothing).
        await queue_card_edits(uow, task.id, now, tz=tz)
    elif kind in ("due", "overdue"):
        await queue_card_edits_for_notice(uow, task.id, task.version, now, f"{kind}:{stamp}", tz)
    return queued


async def queue_card_edits_for_notice(uow: UnitOfWork, task_id: int, version: int,
                                      now: dt.datetime, notice: str, tz: ZoneInfo) -> int:
    """Edit the task's cards for a notice just queued (in its transaction), so a card says
    "overdue" when the group is told so; returns how many edits were queued.

    Called once per notice, and a notice is claimed once (the guarded bookkeeping), so this
    neither loops nor repeats: nothing here leads to another notice. The task service keys
    card edits by task version, and a reminder does not change the version (that would make
    every button on the card stale); for a card already edited at this version (by an
    earlier notice, e.g. the "due" one before today's "overdue" one) the edit is queued again
    under a key naming this notice, with the same method and the card's current text. The
    key keeps the "task:<id>:edit:" prefix, so a handler's later edit still queues behind it.
    """
    cards = await uow.cards.places(task_id)
    # The key queue_card_edits gives an edit: one per card per task version.
    keys = {dedup_key("task_edit", task_id, chat, version): (chat, message_id)
            for chat, message_id in cards}
    earlier = await uow.outbox.by_keys(keys)
    queued = await queue_card_edits(uow, task_id, now, tz=tz)
    if not earlier:
        return queued
    view = card(await task_data(uow, task_id), now, tz)
    outbox = uow.outbox
    for key, row in earlier.items():
        chat, message_id = keys[key]
        params: dict[str, object] = {
            k: v for k, v in row.params.items() if k not in ("text", "caption", "reply_markup")}
        params["message_id"] = message_id
        params["caption" if row.method == "editMessageCaption" else "text"] = view.text
        markup = view.markup()
        if markup is not None:
            params["reply_markup"] = markup
        again = dedup_key("task_edit_again", task_id, chat, version, notice)
        if await outbox.enqueue(again, chat, row.method, params):
            queued += 1
    return queued


