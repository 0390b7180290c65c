"""Telling people about a task beyond its card: private notices and group messages."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.domain.roles import Role, role_of
from bot.domain.tasks import EVENTS, Action
from bot.services.tasks.cards import active_groups
from bot.services.tasks.constants import NOTICE_PURPOSE
from db.models import OutboxMessage, Person, Task, TaskEvent
from db.outbox_keys import dedup_key
from db.uow import UnitOfWork

# Who is told in private, beyond the card: admins decide extensions and claims (they need not
# be in every unit's group), and whoever filed a finding or inspection learns a fix awaits them.
_DECISIONS = {
    Action.REQUEST_EXTENSION: ("task.notify.extension",
                               (Action.GRANT_EXTENSION, Action.REFUSE_EXTENSION)),
    Action.NOT_OURS: ("task.notify.not_ours", (Action.REROUTE, Action.REFUSE_REROUTE)),
}


async def _notify(uow: UnitOfWork, task: Task, action: Action, event: TaskEvent,
                  tz: ZoneInfo) -> None:
    from bot.render import evidence
    from bot.render.buttons import Button, keyboard_json
    from bot.render.callbacks import task_action
    from bot.render.i18n import Html, local_name, normalize_language, t
    from bot.render.tasks import BUTTON_KEYS

    people: list[Person] = []
    if action in _DECISIONS:
        key, choices = _DECISIONS[action]
        people = list(await uow.people.admins())
    elif action is Action.SUBMIT_FIX:
        key, choices = "task.notify.fix_submitted", (Action.VERIFY_PASS, Action.VERIFY_RETURN)
        # Whoever filed it, and whoever sent it back last (a re-submission is theirs to check).
        returned = await last_return(uow, task.id)
        for pid in (task.created_by, returned.actor_id if returned is not None else None):
            if pid is None or pid == task.fixed_by or any(p.id == pid for p in people):
                continue
            someone = await uow.people.get(pid)
            if someone is not None and role_of(someone) >= Role.INSPECTOR:
                people.append(someone)
    else:
        return
    unit = await uow.people.unit(task.unit_id)
    outbox = uow.outbox
    for person in people:
        if person.id == event.actor_id or person.blocked:
            continue
        lang = person.language or normalize_language(person.telegram_language)
        # An extension request says how long: the days asked and the deadline they lead to.
        until = event.data.get("until")
        # A fix's note, if any, on its own labelled line (nothing dangles when there is none).
        note = Html("\n" + t(lang, "task.notify.fix_note", note=(event.reason or "")[:300])
                    if event.reason else "")
        text = t(lang, key, note=note, id=task.id,
                 title=local_name(lang, task.title, task.title_en)[:200],
                 unit=local_name(lang, unit.name_zh, unit.name_en) if unit else "—",
                 reason=(event.reason or "")[:300],
                 days=event.data.get("days", "—"),
                 until=datetime.fromisoformat(until).astimezone(tz).strftime(
                     "%Y-%m-%d") if isinstance(until, str) else "—")
        if action is Action.SUBMIT_FIX:  # what the checker should look at twice
            notes = evidence.card_lines(lang, event.data, tz)
            if notes:
                text += "\n\n" + "\n".join(notes)
        keyboard = keyboard_json([[Button(t(lang, BUTTON_KEYS[c]),
                                          task_action(task.id, task.version, c))
                                   for c in choices]])
        await outbox.enqueue(dedup_key("task_notify", task.id, event.id, person.id), person.id,
                             "sendMessage", {"text": text, "parse_mode": "HTML",
                                             "reply_markup": keyboard},
                             purpose=NOTICE_PURPOSE, ref_id=task.id)


async def remember_screen(uow: UnitOfWork, task_id: int, chat_id: int, message_id: int,
                          now: datetime) -> None:
    """A private screen with the task's buttons (/tasks N) was sent directly: note it beside
    the notices, so that the next change to the task takes its buttons away too."""
    uow.add(OutboxMessage(
        dedup_key=dedup_key("task_screen", task_id, chat_id, message_id), chat_id=chat_id,
        method="sendMessage", params={}, status="sent", sent_at=now,
        sent_message_id=message_id, purpose=NOTICE_PURPOSE, ref_id=task_id, created_at=now))


async def close_notices(uow: UnitOfWork, task_id: int) -> int:
    """Someone acted on the task: the buttons of its private notices delivered so far no longer
    fit, so take them away (the message stays; a notice not yet sent keeps its buttons, and a
    press on it is answered with who handled the task)."""
    outbox = uow.outbox
    queued = 0
    for row_id, chat_id, message_id in await outbox.delivered(NOTICE_PURPOSE, task_id):
        if await outbox.enqueue(dedup_key("task_notice_done", task_id, row_id), chat_id,
                                # No reply_markup: the keyboard is removed.
                                "editMessageReplyMarkup", {"message_id": message_id}):
            queued += 1
    return queued


async def last_return(uow: UnitOfWork, task_id: int) -> TaskEvent | None:
    """The latest event that sent the task back for rework (a failed check or a reopening)."""
    return await uow.tasks.last_event(task_id, (EVENTS[Action.VERIFY_RETURN],
                                                EVENTS[Action.REOPEN]))


async def tell_groups_returned(uow: UnitOfWork, task: Task, event: TaskEvent) -> int:
    """A new message in the unit's groups: the card is only edited, and Telegram tells nobody
    about an edit, so a return would go unnoticed."""
    from bot.domain.privacy import mask_personal
    from bot.render.i18n import t
    from bot.render.tasks import GROUP_LANG, clip

    outbox = uow.outbox
    queued = 0
    for group in await active_groups(uow, task.unit_id):
        text = t(GROUP_LANG, "task.returned_group", id=task.id, title=clip(task.title, 60),
                 reason=clip(mask_personal(event.reason or "—"), 300))
        if await outbox.enqueue(dedup_key("task_returned", task.id, event.id, group.chat_id),
                                group.chat_id, "sendMessage",
                                {"text": text, "parse_mode": "HTML"}):
            queued += 1
    return queued
