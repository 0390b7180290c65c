"""The unit's decision on a submitted report: accept, reject, or mark as a duplicate."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain import reports as dom
from bot.domain.errors import DomainError, NotAllowed, StaleAction
from bot.domain.roles import Role, role_of
from bot.render import reports as rv
from bot.render.reports import Candidate
from bot.services.reports import duplicates, notices, routing
from bot.services.reports.context import ReportContext
from db.models import Person, Report, Task
from db.uow import UnitOfWork


async def decidable(
    uow: UnitOfWork, actor: Person, report_id: int, *, admin_only: bool = False
) -> Report:
    report = await uow.reports.get(report_id)
    if report is None or report.status == dom.DRAFT:
        raise StaleAction("error.stale_button")
    role = role_of(actor)
    if role >= Role.ADMIN:
        return report
    if admin_only:
        raise NotAllowed("error.role_required", role="role.admin")
    if role < Role.UNIT_MEMBER or actor.unit_id is None or report.unit_id is None:
        raise NotAllowed("reports.not_your_unit")
    units = await uow.people.units()
    if actor.unit_id not in routing._chain(units, report.unit_id):
        raise NotAllowed("reports.not_your_unit")
    return report


async def decide(
    uow: UnitOfWork, report: Report, status: str, actor: Person, now: datetime,
    **values: object,
) -> bool:
    """The guarded transition out of "submitted": True when this transaction won (the
    report is re-read with the decision); False when someone else decided first (the report
    is re-read with theirs)."""
    return await uow.reports.change_submitted(
        report, status=status, decided_by=actor.id, decided_at=now, updated_at=now, **values)


async def decided_by(uow: UnitOfWork, report: Report) -> DomainError:
    """The refusal for a press on a report someone already decided: who, and how."""
    ticket = report.ticket or ""
    decider = (await uow.people.get(report.decided_by)
               if report.decided_by is not None else None)
    if decider is None:
        return StaleAction("reports.already_decided", ticket=ticket)
    return StaleAction("reports.decided_by", ticket=ticket, who=decider.first_name,
                       decision=rv.DECISION_KEYS.get(report.status,
                                                     "reports.decision.accepted"))


async def accept(
    ctx: ReportContext, uow: UnitOfWork, actor: Person, report_id: int, now: datetime
) -> tuple[Report, Task]:
    """The unit accepts: the report becomes a rectification task with the category's
    deadline. A second press returns the same task."""
    report = await decidable(uow, actor, report_id)
    if report.status != dom.SUBMITTED or not await decide(
            uow, report, dom.ACCEPTED, actor, now):
        # Decided already (or just now, by someone else): only the same member pressing
        # again gets the same task back; anyone else is told who decided and how.
        if report.task_id is not None and report.decided_by == actor.id:
            task = await uow.tasks.get(report.task_id)
            if task is not None:
                return report, task
        raise await decided_by(uow, report)
    cat = ctx.category(report)
    assert report.unit_id is not None
    from bot.services import tasks as task_service  # the task engineer's module

    photos = await uow.reports.photos(report.id)
    followers = await uow.reports.follower_count(report.id)
    title = f"{report.ticket} {cat.name_zh if cat else report.category}"
    title_en = f"{report.ticket} {cat.name_en}" if cat and cat.name_en else None
    description = report.description or ""
    if report.address:
        description = f"{report.address}\n{description}".strip()
    task = await task_service.create_task(
        uow, source="report", unit_id=report.unit_id, title=title, title_en=title_en,
        description=description,
        due_at=now + timedelta(days=cat.deadline_days if cat else 7),
        created_by=actor.id, site_id=report.site_id, report_id=report.id,
        latitude=report.latitude, longitude=report.longitude,
        before_photo_ids=[p.id for p in photos],
        priority=dom.priority_for(followers), tz=ctx.tz, now=now,
    )
    task = await take_on(uow, actor, task, now, ctx.tz)
    report.task_id = task.id
    await notices.tell_residents(ctx, uow, report, "accepted", lambda lang: rv.push_accepted(
        lang, report, ctx.category(report), task.due_at, ctx.tz))
    return report, task


async def take_on(uow: UnitOfWork, actor: Person, task: Task, now: datetime,
                  tz: ZoneInfo) -> Task:
    """Accepting a report is the unit taking it on: the new task is accepted (签收) by the
    member who pressed 受理, in the same transaction, so nobody has to press 签收 again.

    The task service has no "create already accepted" yet: its ACCEPT action is applied
    right after creation, and the card create_task queued (still showing 签收, not sent:
    this transaction has not committed) is queued again as the accepted task's. An admin
    who is not a member of the unit leaves the task open for the unit to take."""
    from bot.domain.tasks import Action
    from bot.services import tasks as task_service

    if not task_service.is_unit_member(actor, task):
        return task
    outcome = await task_service.act(uow, actor, task.id, Action.ACCEPT,
                                     expected_version=task.version, tz=tz, now=now)
    await uow.cards.drop_unsent(task.id, task_service.CARD_PURPOSE)
    await task_service.queue_cards(uow, outcome.task, now, tag="accepted", tz=tz)
    return outcome.task


async def reject(
    ctx: ReportContext, uow: UnitOfWork, actor: Person, report_id: int, reason: str, now: datetime
) -> Report:
    """The unit rejects with a reason; the reporter and followers are told why."""
    report = await decidable(uow, actor, report_id)
    if reason not in dom.REJECT_REASONS:
        raise StaleAction("error.stale_button")
    if report.status != dom.SUBMITTED or not await decide(
            uow, report, dom.REJECTED, actor, now, reason=reason):
        if report.status == dom.REJECTED and report.decided_by == actor.id:
            return report
        raise await decided_by(uow, report)
    await notices.tell_residents(ctx, uow, report, "rejected", lambda lang: rv.push_rejected(
        lang, report, ctx.category(report)))
    return report


async def mark_duplicate(
    ctx: ReportContext, uow: UnitOfWork, actor: Person, report_id: int, of_id: int, now: datetime
) -> tuple[Report, Report]:
    """The unit says it is a duplicate of an earlier ticket: its reporter follows that."""
    report = await decidable(uow, actor, report_id)
    original = await uow.reports.get(of_id)
    if original is None or original.id == report.id or original.ticket is None:
        raise StaleAction("error.stale_button")
    if report.status != dom.SUBMITTED or not await decide(
            uow, report, dom.DUPLICATE, actor, now, duplicate_of_id=original.id):
        if report.status == dom.DUPLICATE and report.duplicate_of_id == original.id:
            return report, original
        raise await decided_by(uow, report)
    movers = [report.reporter_id, *await uow.reports.follower_ids(report.id)]
    await uow.reports.add_followers(
        original.id, [pid for pid in movers if pid != original.reporter_id
                      and not await uow.reports.is_follower(original.id, pid)], now)
    original.priority = dom.priority_for(await uow.reports.follower_count(original.id))
    await notices.tell_residents(ctx, uow, report, "duplicate", lambda lang: rv.push_duplicate(
        lang, report, original))
    return report, original


async def duplicate_choices(
    ctx: ReportContext, uow: UnitOfWork, actor: Person, report_id: int
) -> tuple[Report, list[Candidate]]:
    report = await decidable(uow, actor, report_id)
    reporter = await uow.people.get(report.reporter_id)
    assert reporter is not None
    found = await duplicates.candidates(ctx, uow, report, reporter, limit=6)
    earlier = [c for c in found if c.report_id < report.id]
    return report, earlier
