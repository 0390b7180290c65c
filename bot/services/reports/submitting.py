"""Submitting: the ticket, routing, and the post to the unit's groups."""

from __future__ import annotations

from datetime import datetime

from bot.domain import reports as dom
from bot.domain.errors import DomainError, StaleAction
from bot.render import reports as rv
from bot.render.buttons import keyboard_json
from bot.services.reports import drafts, places, routing
from bot.services.reports.context import ReportContext
from bot.services.reports.results import Submitted
from db.models import Person, Report, Unit
from db.outbox_keys import dedup_key
from db.uow import UnitOfWork


async def submit(
    ctx: ReportContext, uow: UnitOfWork, person: Person, report_id: int, now: datetime
) -> Submitted:
    """Give the draft its ticket, route it, and post it to the unit's group. Idempotent."""
    report = await uow.reports.get(report_id)
    if report is None or report.reporter_id != person.id:
        raise StaleAction("error.stale_button")
    if report.status != dom.DRAFT:
        unit = await uow.people.unit(report.unit_id) if report.unit_id else None
        if report.ticket is None or unit is None:
            raise StaleAction("error.stale_button")
        return Submitted(report, unit, False)
    if report.step != dom.STEP_CONFIRM or report.category is None or not drafts._has_place(report):
        raise StaleAction("error.stale_button")
    if await uow.reports.photo_count(report.id) == 0:
        raise DomainError("reports.need_photo")
    await drafts.check_allowed(ctx, uow, person, now)
    local = now.astimezone(ctx.tz)
    number = await uow.reports.next_number(dom.counter_name(local.year))
    report.ticket = dom.ticket_number(local.year, number)
    report.status = dom.SUBMITTED
    report.step = None
    report.submitted_at = report.updated_at = now
    unit = await routing.route(ctx, uow, report)
    report.unit_id = unit.id
    await uow.flush()
    await post_to_groups(ctx, uow, report, unit, "report_post")
    return Submitted(report, unit, True)


async def post_to_groups(
    ctx: ReportContext, uow: UnitOfWork, report: Report, unit: Unit, kind: str, *occasion: object
) -> int:
    """Photos (the stored, metadata-free copies), the place, and the card with buttons; keyed
    as `kind` (report_post, or report_reroute with its `occasion`)."""
    groups = await uow.people.active_groups_of_unit(unit.id)
    outbox = uow.outbox
    photos = await uow.reports.photos(report.id)
    cat = ctx.category(report)
    site = await uow.sites.get(report.site_id) if report.site_id else None
    followers = await uow.reports.follower_count(report.id)
    resident = await uow.people.first_contact_rank(report.reporter_id)
    near = None if site is not None else await places.landmark(ctx, uow, report)
    lang = ctx.group_lang
    text, rows = rv.group_card(lang, report, cat, site, unit, resident, followers,
                                 len(photos), near=near)
    for group in groups:
        chat = group.chat_id

        def key(part: str, chat: int = chat) -> str:
            return dedup_key(kind, report.id, *occasion, chat, part)

        for i, photo in enumerate(photos, 1):
            params: dict[str, object] = {"photo": str(ctx.media.path(photo.sha256)
                                                      .resolve())}
            if i == 1:
                params.update(caption=rv.photo_caption(lang, report, cat, len(photos)),
                              parse_mode="HTML")
            await outbox.enqueue(key(f"photo:{i}"), chat, "sendPhoto", params,
                                 purpose="report_photo", ref_id=report.id)
        if report.latitude is not None and report.longitude is not None:
            await outbox.enqueue(key("location"), chat, "sendLocation",
                                 {"latitude": report.latitude,
                                  "longitude": report.longitude})
        await outbox.enqueue(key("card"), chat, "sendMessage",
                             {"text": text, "parse_mode": "HTML",
                              "reply_markup": keyboard_json(rows)},
                             purpose="report_card", ref_id=report.id)
    return len(groups)
