"""The resident's draft: photos, category, place and description, step by step."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.domain import reports as dom
from bot.domain.errors import DomainError, NotAllowed, NotFound, StaleAction
from bot.domain.expectation import DisputeReason, decode_pending
from bot.media.phash import signed64
from bot.services.inspections import PhotoMeta
from bot.services.reports import duplicates, places
from bot.services.reports.context import ReportContext
from bot.services.reports.results import DraftView, PhotoAdded
from db.models import Person, Photo, Report
from db.uow import UnitOfWork


async def draft(uow: UnitOfWork, person: Person) -> Report | None:
    return await uow.reports.draft_of(person.id)


async def start(ctx: ReportContext, uow: UnitOfWork, person: Person, now: datetime) -> Report:
    """/report: the resident's draft, created if there is none."""
    found = await draft(uow, person)
    if found is not None:
        return found
    await check_allowed(ctx, uow, person, now)
    return await create_draft(ctx, uow, person, now, None)


async def create_draft(
    ctx: ReportContext, uow: UnitOfWork, person: Person, now: datetime, media_group_id: str | None
) -> Report:
    leave_dispute(person)
    report = Report(reporter_id=person.id, status=dom.DRAFT, step=dom.STEP_PHOTOS,
                    media_group_id=media_group_id, created_at=now, updated_at=now)
    # One draft per resident: the same update run twice at once finds its twin's.
    return await uow.reports.add_draft(report)


async def check_allowed(
    ctx: ReportContext, uow: UnitOfWork, person: Person, now: datetime
) -> None:
    if person.blocked:
        raise NotAllowed("reports.blocked")
    times = await uow.reports.submitted_since(person.id, now - timedelta(hours=1))
    when = dom.next_allowed(times, now, ctx.config.reports_per_hour)
    if when is not None:
        raise DomainError("reports.rate_limited", limit=ctx.config.reports_per_hour,
                          time=when.astimezone(ctx.tz).strftime("%H:%M"))


async def add_photo(
    ctx: ReportContext, uow: UnitOfWork, person: Person, meta: PhotoMeta,
    media_group_id: str | None, now: datetime, caption: str | None = None,
) -> PhotoAdded:
    """Add a stored photo to the draft (creating it); a redelivered message adds nothing.

    The first caption becomes the description (changed on the confirm screen by typing)."""
    known = await uow.inspections.photo_from_message(meta.chat_id, meta.message_id)
    report = await draft(uow, person)
    if known is not None:
        if report is None:
            report = await uow.reports.of_photo(known.id)
        if report is None:
            raise StaleAction("reports.photo_seen")
        return PhotoAdded(report, await uow.reports.photo_count(report.id), False, False)
    if report is None:
        await check_allowed(ctx, uow, person, now)
        report = await create_draft(ctx, uow, person, now, media_group_id)
    count = await uow.reports.photo_count(report.id)
    if count >= ctx.config.max_photos:
        if media_group_id is not None:
            # The rest of an album too big for the draft: not added, and said once in the
            # album's one answer rather than once per photo.
            return PhotoAdded(report, count, True, False, dropped=True)
        raise DomainError("reports.too_many_photos", max=ctx.config.max_photos)
    first_of_album = media_group_id is not None and report.media_group_id != media_group_id
    if count == 0 and media_group_id is not None:
        first_of_album = True
    report.media_group_id = media_group_id or report.media_group_id
    photo = Photo(sha256=meta.sha256, telegram_file_id=meta.file_id, width=meta.width,
                  height=meta.height, size=meta.size, phash=signed64(meta.phash),
                  chat_id=meta.chat_id, message_id=meta.message_id,
                  uploaded_by=person.id, created_at=now, captured_at=meta.captured_at)
    await uow.reports.add_photo(report.id, photo)
    caption = (caption or "").strip()
    if caption and not report.description:
        report.description = caption[:dom.MAX_DESCRIPTION]
    report.updated_at = now
    await uow.flush()
    return PhotoAdded(report, count + 1, True, first_of_album)


async def view(ctx: ReportContext, uow: UnitOfWork, person: Person, report: Report) -> DraftView:
    """What the resident's chat shows for the draft at its step."""
    site = await uow.sites.get(report.site_id) if report.site_id else None
    v = DraftView(report, await uow.reports.photo_count(report.id),
                  ctx.config.category(report.category), site)
    if report.step == dom.STEP_CONFIRM:
        v.candidates = await duplicates.candidates(ctx, uow, report, person)
    if report.step == dom.STEP_PLACE_PICK and report.address:
        v.sites = await uow.sites.search(report.address, limit=6)
    if (report.step in (dom.STEP_DESCRIPTION, dom.STEP_CONFIRM) and site is None
            and report.latitude is not None and report.longitude is not None):
        v.near = await places.landmark(ctx, uow, report)
        v.outside = v.near is None and await places.outside(
            ctx, uow, report.latitude, report.longitude)
    return v


async def own_draft(
    uow: UnitOfWork, person: Person, report_id: int, steps: Sequence[str]
) -> Report:
    report = await uow.reports.get(report_id)
    if report is None or report.reporter_id != person.id:
        raise StaleAction("error.stale_button")
    if report.status != dom.DRAFT:
        if report.ticket:
            raise StaleAction("reports.already_submitted", ticket=report.ticket)
        # A dropped draft's button: whatever is being written now is not touched.
        raise StaleAction("reports.stale_draft")
    if report.step not in steps:
        raise StaleAction("error.stale_button")
    leave_dispute(person)
    return report


def leave_dispute(person: Person) -> None:
    """Writing a report (starting or advancing a draft) ends a 👎 that waited for its reason:
    the next text belongs to the draft, not to the dispute (a button disputes without one)."""
    if isinstance(decode_pending(person.pending), DisputeReason):
        person.pending = None


async def choose_category(
    ctx: ReportContext, uow: UnitOfWork, person: Person, report_id: int, code: str, now: datetime
) -> Report:
    report = await own_draft(uow, person, report_id, dom.STEPS)
    if ctx.config.category(code) is None:
        raise StaleAction("error.stale_button")
    if await uow.reports.photo_count(report.id) == 0:
        raise DomainError("reports.need_photo")
    report.category = code
    report.step = dom.STEP_CONFIRM if _has_place(report) else dom.STEP_PLACE
    report.updated_at = now
    return report


async def set_location(
    ctx: ReportContext, uow: UnitOfWork, person: Person, lat: float, lon: float, now: datetime
) -> Report | None:
    """A shared location for the draft waiting for its place; None if none waits."""
    report = await draft(uow, person)
    if report is None or report.step not in (
            dom.STEP_PLACE, dom.STEP_PLACE_PICK, dom.STEP_CONFIRM):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise DomainError("reports.bad_location")
    leave_dispute(person)
    report.latitude, report.longitude = lat, lon
    report.site_id = None
    if report.step != dom.STEP_CONFIRM:
        report.address = None
        report.step = _after_place(report)
    report.updated_at = now
    return report


async def text(
    ctx: ReportContext, uow: UnitOfWork, person: Person, text: str, now: datetime
) -> Report | None:
    """Typed text for the draft: an address, a description; None if the draft wants none."""
    report = await draft(uow, person)
    if report is None:
        return None
    text = text.strip()
    if report.step in (dom.STEP_PLACE, dom.STEP_PLACE_PICK):
        if len(text) > dom.MAX_ADDRESS:
            raise DomainError("reports.address_too_long", max=dom.MAX_ADDRESS)
        report.address = text
        report.latitude = report.longitude = None
        report.site_id = None
        sites = await uow.sites.search(text, limit=6)
        report.step = dom.STEP_PLACE_PICK if sites else _after_place(report)
    elif report.step in (dom.STEP_DESCRIPTION, dom.STEP_CONFIRM):
        if len(text) > dom.MAX_DESCRIPTION:
            raise DomainError("reports.description_too_long", max=dom.MAX_DESCRIPTION)
        report.description = text
        report.step = dom.STEP_CONFIRM
    elif await uow.reports.photo_count(report.id) == 0:
        # Every photo so far was refused (or none was sent after /report): no category
        # buttons were shown, a photo is what is missing.
        raise DomainError("reports.send_photo_first")
    else:
        raise DomainError("reports.photos_first")
    report.updated_at = now
    return report


async def place_action(
    ctx: ReportContext, uow: UnitOfWork, person: Person, report_id: int,
    action: dom.PlaceChoice, arg: int | None, now: datetime,
) -> Report:
    """The place buttons: a known site, the address as typed, or the list of sites."""
    report = await own_draft(uow, person, report_id,
                             (dom.STEP_PLACE, dom.STEP_PLACE_PICK,
                              dom.STEP_DESCRIPTION, dom.STEP_CONFIRM))
    if action is dom.PlaceChoice.SITE and arg is not None and report.step != dom.STEP_DESCRIPTION:
        site = await uow.sites.get(arg)
        if site is None:
            raise NotFound("reports.site_gone")
        report.site_id = site.id
        report.latitude, report.longitude = site.latitude, site.longitude
        report.address = site.address or site.name
        report.step = _after_place(report)
    elif (action is dom.PlaceChoice.TYPED and report.address
          and report.step != dom.STEP_DESCRIPTION):
        report.step = _after_place(report)
    elif action is dom.PlaceChoice.CHANGE:
        report.step = dom.STEP_PLACE
    else:
        raise StaleAction("error.stale_button")
    report.updated_at = now
    return report


async def skip_description(
    ctx: ReportContext, uow: UnitOfWork, person: Person, report_id: int, now: datetime
) -> Report:
    report = await own_draft(uow, person, report_id, (dom.STEP_DESCRIPTION,))
    report.step = dom.STEP_CONFIRM
    report.updated_at = now
    return report


async def cancel_draft(uow: UnitOfWork, person: Person, report_id: int | None = None) -> bool:
    """Drop the resident's half-written report, if any (for /cancel). With `report_id` (a
    button's), only that draft: a button of an earlier report is refused as stale and the
    draft being written now stays."""
    if report_id is not None:
        drop(await own_draft(uow, person, report_id, dom.STEPS))
        return True
    found = await draft(uow, person)
    if found is None:
        return False
    drop(found)
    return True


def drop(report: Report) -> None:
    """A draft given up: kept as cancelled, never deleted, so its id is not used again."""
    report.status = dom.CANCELLED
    report.step = None


def _after_place(report: Report) -> str:
    """The step after the place: the description, unless a photo's caption already gave one
    (the confirm screen shows it and typing replaces it)."""
    return dom.STEP_CONFIRM if report.description else dom.STEP_DESCRIPTION


def _has_place(report: Report) -> bool:
    return report.site_id is not None or report.latitude is not None or bool(report.address)
