"""After the fix: the reporter's answer, and what task changes tell the residents."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.domain import reports as dom
from bot.domain.errors import StaleAction
from bot.domain.expectation import DisputeReason, decode_pending, encode_pending
from bot.render import reports as rv
from bot.render.buttons import keyboard_json
from bot.render.i18n import t
from bot.services.reports import notices
from bot.services.reports.context import ReportContext
from db.models import Person, Report, Task, TaskEvent
from db.outbox_keys import dedup_key
from db.uow import UnitOfWork

# The task event the reporter's 👍 leaves in the task's history (no actor: never named).
REPORTER_CONFIRMED = "reporter_confirmed"
# Report.reason while the task is reworked because its reporter said "still there".
DISPUTED = "disputed"


async def confirm_fix(
    ctx: ReportContext, uow: UnitOfWork, person: Person, report_id: int, now: datetime
) -> Report:
    """👍 "Solved", asked once the fix was verified and the task closed: the reporter's
    satisfaction is recorded (on the report, and in the task's history) and the unit told."""
    report = await answerable(ctx, uow, person, report_id, now)
    if isinstance(decode_pending(person.pending), DisputeReason):
        person.pending = None  # 👎, then 👍 after all: no reason is awaited any more
    report.status = dom.CONFIRMED
    report.updated_at = now
    if report.task_id is not None:
        from bot.services.tasks import note_reporter_confirmed

        # In the task's history (never naming the resident), and its cards redrawn.
        await note_reporter_confirmed(uow, report.task_id, now, tz=ctx.tz)
    await notices.tell_unit(uow, report, rv.group_confirmed(ctx.group_lang, report),
                            "report_confirmed")
    return report


async def ask_dispute(
    ctx: ReportContext, uow: UnitOfWork, person: Person, report_id: int, now: datetime
) -> Report:
    """👎 pressed: may they still dispute? Then their next text is the reason (a button
    disputes without one)."""
    report = await answerable(ctx, uow, person, report_id, now)
    person.pending = encode_pending(DisputeReason(report.id))  # the reason is typed next
    return report


async def dispute_fix(
    ctx: ReportContext, uow: UnitOfWork, person: Person, report_id: int, now: datetime,
    reason: str | None = None,
) -> Report:
    """"Still there", within dispute_days of the closing: the task is reopened as rework
    (returned, counted as rework, its cards say so) and the unit is told, with the
    reporter's reason if they gave one (stored in full in the task's history; groups see it
    with phone and ID numbers masked)."""
    report = await answerable(ctx, uow, person, report_id, now)
    if isinstance(decode_pending(person.pending), DisputeReason):
        person.pending = None
    why = (reason or "").strip()[:dom.MAX_DESCRIPTION] or None
    report.status = dom.ACCEPTED
    report.reason = DISPUTED
    report.confirm_until = None
    report.updated_at = now
    if report.task_id is not None:
        from bot.services.tasks import reopen_task

        # Back to the unit as rework (returned, reopen_count + 1); cards are edited.
        ticket = report.ticket or ""
        said = (t(ctx.group_lang, "reports.still_there_reason_with", ticket=ticket, reason=why)
                if why else t(ctx.group_lang, "reports.still_there_reason", ticket=ticket))
        await reopen_task(uow, report.task_id, actor_id=person.id, reason=said, now=now,
                          tz=ctx.tz)
    await notices.tell_unit(uow, report, rv.group_disputed(ctx.group_lang, report, why),
                            "report_disputed", int(now.timestamp()))
    return report


async def dispute_reason(
    ctx: ReportContext, uow: UnitOfWork, person: Person, text: str, now: datetime
) -> Report | None:
    """The reporter's typed reason after 👎; None when no dispute waits for one."""
    pending = decode_pending(person.pending)
    if not isinstance(pending, DisputeReason):
        return None
    return await dispute_fix(ctx, uow, person, pending.report_id, now, text)


async def answerable(
    ctx: ReportContext, uow: UnitOfWork, person: Person, report_id: int, now: datetime
) -> Report:
    """The reporter's report, closed after a verified fix and still within its dispute
    window. A second answer is refused as answered (only when it was), a late one as
    out of time, anything else as a stale button."""
    report = await uow.reports.get(report_id)
    if report is None or report.reporter_id != person.id:
        raise StaleAction("error.stale_button")
    if report.status == dom.CONFIRMED or (
            report.status in dom.OPEN_STATUSES and report.reason == DISPUTED):
        raise StaleAction("reports.already_answered")
    if report.status != dom.CLOSED or report.confirm_until is None:
        raise StaleAction("error.stale_button")
    if now > report.confirm_until:
        raise StaleAction("reports.confirm_expired", days=ctx.config.dispute_days)
    return report


async def on_task_changed(ctx: ReportContext, uow: UnitOfWork, **payload: Any) -> None:
    """The "task.changed" subscriber (bot/app.py subscribes it, bound to the app's context)."""
    task = payload.get("task")
    event = payload.get("event")
    if not isinstance(task, Task) or not isinstance(event, TaskEvent) or task.report_id is None:
        return
    await task_changed(ctx, uow, task, event)


async def task_changed(ctx: ReportContext, uow: UnitOfWork, task: Task, event: TaskEvent) -> None:
    """Tell the reporter and followers what happened to the task their report became."""
    if task.report_id is None:
        return
    report = await uow.reports.get(task.report_id)
    if report is None:
        return
    action = event.action
    cat = ctx.category(report)
    key = (dedup_key("news_task_event", event.id) if event.id is not None
           else dedup_key("news_task_action", task.id, action))
    now = event.at
    if action == "fix_submitted":
        # Not asked yet: the fix still has its check (复核) before anyone asks the resident.
        report.status = dom.FIXED
        await notices.tell_residents(
            ctx, uow, report, key,
            lambda lang: rv.push_fixed(lang, report, cat, note=event.reason))
    elif action == "verified":
        # The fix passed its check and the task is closed: now the reporter is asked, with
        # the after-photos, and may say "still there" for dispute_days.
        report.status = dom.CLOSED
        report.reason = None
        report.confirm_until = now + timedelta(days=ctx.config.dispute_days)
        after = [sha for _, _, sha in await uow.tasks.photos(task.id, ("after",))]
        # Only the reporter is asked (and gets 👍/👎); followers hear the news.
        await notices.tell_residents(
            ctx, uow, report, key,
            lambda lang: rv.push_verified_follower(lang, report, cat),
            photos=[str(ctx.media.path(sha).resolve()) for sha in after[:3]],
            reporter_text=lambda lang: rv.push_verified(lang, report, cat,
                                                        report.confirm_until, ctx.tz),
            reporter_markup=lambda lang: keyboard_json(rv.confirm_keyboard(lang, report)))
    elif action in ("closed", "closed_as_duplicate"):
        report.status = dom.CLOSED
        report.confirm_until = None
        await notices.tell_residents(ctx, uow, report, key,
                                     lambda lang: rv.push_closed(lang, report, cat))
    elif action in ("returned", "reopened", "disputed"):
        if report.status in (dom.FIXED, dom.CONFIRMED, dom.CLOSED):
            report.status = dom.ACCEPTED
            report.confirm_until = None
        await notices.tell_residents(ctx, uow, report, key,
                                     lambda lang: rv.push_reopened(lang, report, cat),
                                     skip=event.actor_id)
    elif action in ("extension_granted", "deadline_changed"):
        due = task.extension_until if action == "extension_granted" and (
            task.extension_until is not None and task.extension_until > task.due_at
        ) else task.due_at
        await notices.tell_residents(ctx, uow, report, key,
                                     lambda lang: rv.push_deadline(lang, report, cat, due,
                                                                   ctx.tz))
    elif action == "accepted":
        if event.at == task.created_at:
            return  # taken on with the report (受理): "accepted" has told them already
        await notices.tell_residents(ctx, uow, report, key,
                                     lambda lang: rv.push_in_progress(lang, report, cat))
    elif action == "rerouted":
        # The task moved to another unit: so does the report, so that follow-up notices
        # (+1, confirmed, still there) reach the unit now responsible.
        if task.unit_id == report.unit_id:
            return
        report.unit_id = task.unit_id
    else:
        return
    report.updated_at = now
