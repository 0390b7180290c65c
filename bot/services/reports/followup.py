"""After the fix: the reporter's answer, and what task changes tell the residents."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot import report_views as rv
from bot.domain import reports as dom
from bot.domain.errors import StaleAction
from bot.i18n import normalize_language, t
from db.models import Person, Photo, Report, Task, TaskEvent, TaskPhoto
from db.repositories import OutboxRepository
from db.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.services.reports.service import ReportService


# The task event the reporter's 👍 leaves in the task's history (no actor: never named).
REPORTER_CONFIRMED = "reporter_confirmed"


async def confirm_fix(
    svc: ReportService, uow: UnitOfWork, person: Person, report_id: int, now: datetime
) -> Report:
    """👍 "Solved": recorded on the task, the checkers and the unit are told. The fix still
    needs its check by someone else (待复核); the report is closed when the task is."""
    report = await svc._fixed_of(uow, person, report_id, now)
    if report.status == dom.CONFIRMED:
        return report
    report.status = dom.CONFIRMED
    report.updated_at = now
    task = await uow.session.get(Task, report.task_id) if report.task_id else None
    if task is not None:
        from bot.services.tasks import note_reporter_confirmed

        # In the task's history (never naming the resident), and its cards redrawn.
        await note_reporter_confirmed(uow, task.id, now)
        await svc._tell_checkers(uow, report, task)
    await svc._tell_unit(uow, report, f"report:{report.id}:confirmed",
                         rv.group_confirmed(svc.group_lang, report))
    return report


async def tell_checkers(uow: UnitOfWork, report: Report, task: Task) -> None:
    """Those who may pass the fix (inspectors and admins): the reporter confirmed it."""
    from bot.domain.tasks import TaskState

    if task.status != TaskState.FIX_SUBMITTED.value:
        return
    checkers = (await uow.session.scalars(select(Person).where(
        Person.role.in_(("inspector", "admin")), Person.blocked.is_(False))
        .order_by(Person.id))).all()
    outbox = OutboxRepository(uow.session)
    for checker in checkers:
        if checker.id in (task.fixed_by, report.reporter_id):
            continue
        lang = checker.language or normalize_language(checker.telegram_language)
        await outbox.enqueue(
            f"report:{report.id}:to-checker:{checker.id}", checker.id, "sendMessage",
            {"text": rv.checker_confirmed(lang, report, task.id), "parse_mode": "HTML"})


async def dispute_fix(
    svc: ReportService, uow: UnitOfWork, person: Person, report_id: int, now: datetime
) -> Report:
    """"Still there": the task is reopened (rework) and the unit is told."""
    report = await svc._fixed_of(uow, person, report_id, now)
    if report.status != dom.FIXED:
        raise StaleAction("reports.already_answered")
    report.status = dom.ACCEPTED
    report.reason = "disputed"
    report.confirm_until = None
    report.updated_at = now
    task = await uow.session.get(Task, report.task_id) if report.task_id else None
    if task is not None:
        from bot.services.tasks import reopen_task

        # Back to the unit as rework (returned, reopen_count + 1); cards are edited.
        await reopen_task(uow, task.id, actor_id=person.id,
                          reason=t(svc.group_lang, "reports.still_there_reason",
                                       ticket=report.ticket or ""), now=now)
    await svc._tell_unit(uow, report, f"report:{report.id}:disputed:{int(now.timestamp())}",
                         rv.group_disputed(svc.group_lang, report))
    return report


async def fixed_of(
    uow: UnitOfWork, person: Person, report_id: int, now: datetime
) -> Report:
    report = await uow.session.get(Report, report_id)
    if report is None or report.reporter_id != person.id:
        raise StaleAction("error.stale_button")
    if report.status == dom.CONFIRMED:
        return report
    if report.status != dom.FIXED:
        raise StaleAction("reports.already_answered")
    if report.confirm_until is not None and now > report.confirm_until:
        raise StaleAction("reports.confirm_expired")
    return report


async def task_changed(svc: ReportService, uow: UnitOfWork, task: Task, event: TaskEvent) -> None:
    """Tell the reporter and followers what happened to the task their report became."""
    if task.report_id is None:
        return
    report = await uow.session.get(Report, task.report_id)
    if report is None:
        return
    action = event.action
    cat = svc._cat(report)
    key = f"task-event:{event.id}" if event.id is not None else f"task:{task.id}:{action}"
    now = event.at
    if action == "fix_submitted":
        report.status = dom.FIXED
        report.confirm_until = now + timedelta(days=svc.config.confirm_days)
        after = (await uow.session.scalars(
            select(Photo).join(TaskPhoto, TaskPhoto.photo_id == Photo.id)
            .where(TaskPhoto.task_id == task.id, TaskPhoto.kind == "after")
            .order_by(Photo.id))).all()
        await svc._tell_residents(
            uow, report, key,
            lambda lang: rv.push_fixed(lang, report, cat, report.confirm_until, svc.tz,
                                       note=event.reason),
            photos=[str(svc.media.path(p.sha256).resolve()) for p in after[:3]],
            reporter_markup=lambda lang: rv.confirm_keyboard(lang, report).to_dict())
    elif action in ("verified", "closed", "closed_as_duplicate"):
        # Closed only now, when the task is: a reporter's 👍 alone is "confirmed".
        report.status = dom.CLOSED
        await svc._tell_residents(uow, report, key,
                                  lambda lang: rv.push_closed(lang, report, cat))
    elif action in ("returned", "reopened", "disputed"):
        if report.status in (dom.FIXED, dom.CONFIRMED, dom.CLOSED):
            report.status = dom.ACCEPTED
        await svc._tell_residents(uow, report, key,
                                  lambda lang: rv.push_reopened(lang, report, cat),
                                  skip=event.actor_id)
    elif action in ("extension_granted", "deadline_changed"):
        due = task.extension_until if action == "extension_granted" and (
            task.extension_until is not None and task.extension_until > task.due_at
        ) else task.due_at
        await svc._tell_residents(uow, report, key,
                                  lambda lang: rv.push_deadline(lang, report, cat, due,
                                                                svc.tz))
    elif action == "accepted":
        if event.at == task.created_at:
            return  # taken on with the report (受理): "accepted" has told them already
        await svc._tell_residents(uow, report, key,
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
