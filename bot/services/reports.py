"""Residents' reports (随手拍): the draft, submitting, routing, the unit's decision, follow-up.

Every use case takes a unit of work and never commits; messages to groups and to residents are
queued in the outbox inside the same transaction, so they go out once, after it commits.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot import report_views as rv
from bot.domain import reports as dom
from bot.domain.errors import DomainError, NotAllowed, NotFound, StaleAction
from bot.domain.reports import Category, DupFacts, Place, ReportingConfig
from bot.domain.roles import Role
from bot.i18n import DEFAULT_LANGUAGE, normalize_language, t
from bot.images import DUPLICATE_MAX_DISTANCE, MediaStore, hamming, signed64, unsigned64
from bot.services import events
from bot.services.inspections import PhotoMeta
from bot.services.people import find_one_unit, role_of
from db.models import (
    Counter,
    GroupBinding,
    OutboxMessage,
    Person,
    Photo,
    Report,
    ReportFollower,
    ReportPhoto,
    Site,
    Task,
    TaskEvent,
    TaskPhoto,
    Unit,
)
from db.repositories import OutboxRepository, PeopleRepository, SiteRepository
from db.repositories.sites import distance_m
from db.uow import UnitOfWork

log = logging.getLogger(__name__)


# A Telegram user id as an admin types it: ASCII digits only (str.isdigit() also takes "③",
# which int() refuses), and short enough for a BIGINT (Telegram's ids fit in 52 bits).
USER_ID_RE = re.compile(r"[0-9]{1,16}")
# The task event the reporter's 👍 leaves in the task's history (no actor: never named).
REPORTER_CONFIRMED = "reporter_confirmed"


@cache
def default_config() -> ReportingConfig:
    return dom.load_reporting()


@dataclass(frozen=True)
class PhotoAdded:
    report: Report
    photos: int
    new: bool  # False: this Telegram message was handled before (a redelivered update)
    first_of_album: bool  # the first photo of its album in this draft: answer once, later


@dataclass(frozen=True)
class Candidate:
    """An open report the draft may be the same as."""

    report_id: int
    ticket: str
    category: str | None
    followers: int
    own: bool


@dataclass
class DraftView:
    report: Report
    photos: int
    category: Category | None
    site: Site | None
    candidates: list[Candidate] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)  # sites matching a typed address
    near: Site | None = None  # for a shared location: the site or area routing finds there
    outside: bool = False  # the shared location is far from every known site: warn


@dataclass(frozen=True)
class Submitted:
    report: Report
    unit: Unit
    new: bool


@dataclass(frozen=True)
class Followed:
    target: Report
    followers: int
    own: bool


@dataclass(frozen=True)
class ReportLine:
    report: Report
    following: bool


class ReportService:
    """Use cases of residents' reports; one per application."""

    def __init__(
        self, config: ReportingConfig, media: MediaStore, tz: ZoneInfo,
        group_lang: str = DEFAULT_LANGUAGE,
    ) -> None:
        self.config = config
        self.media = media
        self.tz = tz
        self.group_lang = group_lang
        global _active
        _active = self  # the task.changed subscriber renders with the newest application's

    # ---- the draft -------------------------------------------------------------------------

    async def draft(self, uow: UnitOfWork, person: Person) -> Report | None:
        return await uow.session.scalar(
            select(Report).where(Report.reporter_id == person.id, Report.status == dom.DRAFT))

    async def start(self, uow: UnitOfWork, person: Person, now: datetime) -> Report:
        """/report: the resident's draft, created if there is none."""
        found = await self.draft(uow, person)
        if found is not None:
            return found
        await self._check_allowed(uow, person, now)
        return await self._create_draft(uow, person, now, None)

    async def _create_draft(
        self, uow: UnitOfWork, person: Person, now: datetime, media_group_id: str | None
    ) -> Report:
        report = Report(reporter_id=person.id, status=dom.DRAFT, step=dom.STEP_PHOTOS,
                        media_group_id=media_group_id, created_at=now, updated_at=now)
        try:
            async with uow.session.begin_nested():
                uow.session.add(report)
        except IntegrityError:
            # One draft per resident (a unique index): the same update ran twice at once.
            found = await self.draft(uow, person)
            if found is None:
                raise
            return found
        return report

    async def _check_allowed(self, uow: UnitOfWork, person: Person, now: datetime) -> None:
        if person.blocked:
            raise NotAllowed("reports.blocked")
        times = (await uow.session.scalars(
            select(Report.submitted_at).where(
                Report.reporter_id == person.id, Report.submitted_at.is_not(None),
                Report.submitted_at > now - timedelta(hours=1)))).all()
        when = dom.next_allowed([t for t in times if t is not None], now,
                                self.config.reports_per_hour)
        if when is not None:
            raise DomainError("reports.rate_limited", limit=self.config.reports_per_hour,
                              time=when.astimezone(self.tz).strftime("%H:%M"))

    async def add_photo(
        self, uow: UnitOfWork, person: Person, meta: PhotoMeta, media_group_id: str | None,
        now: datetime, caption: str | None = None,
    ) -> PhotoAdded:
        """Add a stored photo to the draft (creating it); a redelivered message adds nothing.

        The first caption becomes the description (changed on the confirm screen by typing)."""
        known = await uow.session.scalar(select(Photo).where(
            Photo.chat_id == meta.chat_id, Photo.message_id == meta.message_id))
        report = await self.draft(uow, person)
        if known is not None:
            if report is None:
                report = await uow.session.scalar(
                    select(Report).join(ReportPhoto, ReportPhoto.report_id == Report.id)
                    .where(ReportPhoto.photo_id == known.id))
            if report is None:
                raise StaleAction("reports.photo_seen")
            return PhotoAdded(report, await self._photo_count(uow, report.id), False, False)
        if report is None:
            await self._check_allowed(uow, person, now)
            report = await self._create_draft(uow, person, now, media_group_id)
            await uow.session.flush()
        count = await self._photo_count(uow, report.id)
        if count >= self.config.max_photos:
            raise DomainError("reports.too_many_photos", max=self.config.max_photos)
        first_of_album = media_group_id is not None and report.media_group_id != media_group_id
        if count == 0 and media_group_id is not None:
            first_of_album = True
        report.media_group_id = media_group_id or report.media_group_id
        photo = Photo(sha256=meta.sha256, telegram_file_id=meta.file_id, width=meta.width,
                      height=meta.height, size=meta.size, phash=signed64(meta.phash),
                      chat_id=meta.chat_id, message_id=meta.message_id,
                      uploaded_by=person.id, created_at=now)
        uow.session.add(photo)
        await uow.session.flush()
        uow.session.add(ReportPhoto(report_id=report.id, photo_id=photo.id))
        caption = (caption or "").strip()
        if caption and not report.description:
            report.description = caption[:dom.MAX_DESCRIPTION]
        report.updated_at = now
        await uow.session.flush()
        return PhotoAdded(report, count + 1, True, first_of_album)

    async def view(self, uow: UnitOfWork, person: Person, report: Report) -> DraftView:
        """What the resident's chat shows for the draft at its step."""
        site = await uow.session.get(Site, report.site_id) if report.site_id else None
        v = DraftView(report, await self._photo_count(uow, report.id),
                      self.config.category(report.category), site)
        if report.step == dom.STEP_CONFIRM:
            v.candidates = await self.candidates(uow, report, person)
        if report.step == dom.STEP_PLACE_PICK and report.address:
            v.sites = await SiteRepository(uow.session).search(report.address, limit=6)
        if (report.step in (dom.STEP_DESCRIPTION, dom.STEP_CONFIRM) and site is None
                and report.latitude is not None and report.longitude is not None):
            v.near = await self.landmark(uow, report)
            v.outside = v.near is None and await self.outside(
                uow, report.latitude, report.longitude)
        return v

    async def landmark(self, uow: UnitOfWork, report: Report) -> Site | None:
        """What routing finds at a shared location, to name it: the nearest site within the
        category's site radius, else the community or sub-district site whose area holds it."""
        if report.latitude is None or report.longitude is None:
            return None
        cat = self._cat(report)
        reach = max(self.config.area_radius_m, cat.site_radius_m if cat else 0.0)
        pairs = await SiteRepository(uow.session).nearest(
            report.latitude, report.longitude, limit=50, within_m=reach)
        if cat is not None:
            for site, dist in pairs:
                if dist <= cat.site_radius_m:
                    return site
        for site, dist in pairs:
            if site.site_type in self.config.area_site_types and (
                    dist <= self.config.area_radius_m):
                return site
        return None

    async def outside(self, uow: UnitOfWork, lat: float, lon: float) -> bool:
        """Whether a point is farther than outside_radius_m from every known site (a city with
        no sites yet warns nobody)."""
        repo = SiteRepository(uow.session)
        if await repo.nearest(lat, lon, limit=1, within_m=self.config.outside_radius_m):
            return False
        return bool(await uow.session.scalar(
            select(func.count()).select_from(Site).where(Site.latitude.is_not(None))))

    async def own_draft(
        self, uow: UnitOfWork, person: Person, report_id: int, steps: Sequence[str]
    ) -> Report:
        report = await uow.session.get(Report, report_id)
        if report is None or report.reporter_id != person.id:
            raise StaleAction("error.stale_button")
        if report.status != dom.DRAFT:
            if report.ticket:
                raise StaleAction("reports.already_submitted", ticket=report.ticket)
            raise StaleAction("error.stale_button")
        if report.step not in steps:
            raise StaleAction("error.stale_button")
        return report

    async def choose_category(
        self, uow: UnitOfWork, person: Person, report_id: int, code: str, now: datetime
    ) -> Report:
        report = await self.own_draft(uow, person, report_id, dom.STEPS)
        if self.config.category(code) is None:
            raise StaleAction("error.stale_button")
        if await self._photo_count(uow, report.id) == 0:
            raise DomainError("reports.need_photo")
        report.category = code
        report.step = dom.STEP_CONFIRM if _has_place(report) else dom.STEP_PLACE
        report.updated_at = now
        return report

    async def set_location(
        self, uow: UnitOfWork, person: Person, lat: float, lon: float, now: datetime
    ) -> Report | None:
        """A shared location for the draft waiting for its place; None if none waits."""
        report = await self.draft(uow, person)
        if report is None or report.step not in (
                dom.STEP_PLACE, dom.STEP_PLACE_PICK, dom.STEP_CONFIRM):
            return None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise DomainError("reports.bad_location")
        report.latitude, report.longitude = lat, lon
        report.site_id = None
        if report.step != dom.STEP_CONFIRM:
            report.address = None
            report.step = _after_place(report)
        report.updated_at = now
        return report

    async def text(
        self, uow: UnitOfWork, person: Person, text: str, now: datetime
    ) -> Report | None:
        """Typed text for the draft: an address, a description; None if the draft wants none."""
        report = await self.draft(uow, person)
        if report is None:
            return None
        text = text.strip()
        if report.step in (dom.STEP_PLACE, dom.STEP_PLACE_PICK):
            if len(text) > dom.MAX_ADDRESS:
                raise DomainError("reports.address_too_long", max=dom.MAX_ADDRESS)
            report.address = text
            report.latitude = report.longitude = None
            report.site_id = None
            sites = await SiteRepository(uow.session).search(text, limit=6)
            report.step = dom.STEP_PLACE_PICK if sites else _after_place(report)
        elif report.step in (dom.STEP_DESCRIPTION, dom.STEP_CONFIRM):
            if len(text) > dom.MAX_DESCRIPTION:
                raise DomainError("reports.description_too_long", max=dom.MAX_DESCRIPTION)
            report.description = text
            report.step = dom.STEP_CONFIRM
        elif await self._photo_count(uow, report.id) == 0:
            # Every photo so far was refused (or none was sent after /report): no category
            # buttons were shown, a photo is what is missing.
            raise DomainError("reports.send_photo_first")
        else:
            raise DomainError("reports.photos_first")
        report.updated_at = now
        return report

    async def place_action(
        self, uow: UnitOfWork, person: Person, report_id: int, action: str, arg: int | None,
        now: datetime,
    ) -> Report:
        """The place buttons: a known site, the address as typed, or the list of sites."""
        report = await self.own_draft(uow, person, report_id,
                                       (dom.STEP_PLACE, dom.STEP_PLACE_PICK,
                                        dom.STEP_DESCRIPTION, dom.STEP_CONFIRM))
        if action == "site" and arg is not None and report.step != dom.STEP_DESCRIPTION:
            site = await uow.session.get(Site, arg)
            if site is None:
                raise NotFound("reports.site_gone")
            report.site_id = site.id
            report.latitude, report.longitude = site.latitude, site.longitude
            report.address = site.address or site.name
            report.step = _after_place(report)
        elif action == "typed" and report.address and report.step != dom.STEP_DESCRIPTION:
            report.step = _after_place(report)
        elif action == "place":
            report.step = dom.STEP_PLACE
        else:
            raise StaleAction("error.stale_button")
        report.updated_at = now
        return report

    async def skip_description(
        self, uow: UnitOfWork, person: Person, report_id: int, now: datetime
    ) -> Report:
        report = await self.own_draft(uow, person, report_id, (dom.STEP_DESCRIPTION,))
        report.step = dom.STEP_CONFIRM
        report.updated_at = now
        return report

    async def cancel_draft(self, uow: UnitOfWork, person: Person) -> bool:
        """Drop the resident's draft (photos stay stored); False if there was none."""
        return await cancel_draft(uow, person)

    # ---- duplicates ------------------------------------------------------------------------

    async def candidates(
        self, uow: UnitOfWork, report: Report, person: Person, limit: int = 3
    ) -> list[Candidate]:
        """Open reports that look like the same problem: same category nearby, or same photo."""
        cat = self.config.category(report.category)
        since = report.updated_at - timedelta(days=self.config.duplicate_window_days)
        others = (await uow.session.scalars(
            select(Report).where(Report.status.in_(dom.OPEN_STATUSES), Report.id != report.id,
                                 Report.submitted_at >= since)
            .order_by(Report.submitted_at.desc()).limit(500))).all()
        if not others:
            return []
        hashes = await self._phashes(uow, [report.id, *(o.id for o in others)])
        mine = DupFacts(report.category, report.latitude, report.longitude,
                        hashes.get(report.id, ()))
        out: list[Candidate] = []
        for other in others:
            radius = (self.config.category(other.category) or cat)
            facts = DupFacts(other.category, other.latitude, other.longitude,
                             hashes.get(other.id, ()))
            if dom.same_problem(mine, facts,
                                radius_m=radius.duplicate_radius_m if radius else 0.0,
                                max_distance=DUPLICATE_MAX_DISTANCE, distance=distance_m,
                                hamming=hamming):
                out.append(Candidate(other.id, other.ticket or "", other.category,
                                     await self._followers(uow, other.id),
                                     other.reporter_id == person.id))
            if len(out) >= limit:
                break
        return out

    async def follow(
        self, uow: UnitOfWork, person: Person, draft_id: int, target_id: int, now: datetime
    ) -> Followed:
        """"Me too": the resident follows the earlier report instead of filing a new one."""
        draft = await uow.session.get(Report, draft_id)
        target = await uow.session.get(Report, target_id)
        if target is None or target.status not in dom.OPEN_STATUSES:
            raise StaleAction("reports.target_closed")
        if draft is None or draft.status != dom.DRAFT or draft.reporter_id != person.id:
            # Pressed again after it worked: the resident already follows it.
            if await self._is_follower(uow, target.id, person.id) or (
                    target.reporter_id == person.id):
                return Followed(target, await self._followers(uow, target.id),
                                target.reporter_id == person.id)
            raise StaleAction("error.stale_button")
        await uow.session.delete(draft)
        if target.reporter_id == person.id:
            return Followed(target, await self._followers(uow, target.id), True)
        if not await self._is_follower(uow, target.id, person.id):
            uow.session.add(ReportFollower(report_id=target.id, person_id=person.id,
                                           created_at=now))
            await uow.session.flush()
        count = await self._followers(uow, target.id)
        target.priority = dom.priority_for(count)
        target.updated_at = now
        if target.task_id is not None:
            task = await uow.session.get(Task, target.task_id)
            if task is not None and task.priority < target.priority:
                task.priority = target.priority
        if target.unit_id is not None:
            text = rv.group_follow_notice(self.group_lang, target, self._cat(target), count)
            for group in await PeopleRepository(uow.session).active_groups_of_unit(
                    target.unit_id):
                await OutboxRepository(uow.session).enqueue(
                    f"report:{target.id}:follow:{person.id}:{group.chat_id}", group.chat_id,
                    "sendMessage", {"text": text, "parse_mode": "HTML"})
        return Followed(target, count, False)

    # ---- submitting ------------------------------------------------------------------------

    async def submit(
        self, uow: UnitOfWork, person: Person, report_id: int, now: datetime
    ) -> Submitted:
        """Give the draft its ticket, route it, and post it to the unit's group. Idempotent."""
        report = await uow.session.get(Report, report_id)
        if report is None or report.reporter_id != person.id:
            raise StaleAction("error.stale_button")
        if report.status != dom.DRAFT:
            unit = await uow.session.get(Unit, report.unit_id) if report.unit_id else None
            if report.ticket is None or unit is None:
                raise StaleAction("error.stale_button")
            return Submitted(report, unit, False)
        if report.step != dom.STEP_CONFIRM or report.category is None or not _has_place(report):
            raise StaleAction("error.stale_button")
        if await self._photo_count(uow, report.id) == 0:
            raise DomainError("reports.need_photo")
        await self._check_allowed(uow, person, now)
        local = now.astimezone(self.tz)
        number = await next_counter(uow, dom.counter_name(local.year))
        report.ticket = dom.ticket_number(local.year, number)
        report.status = dom.SUBMITTED
        report.step = None
        report.submitted_at = report.updated_at = now
        unit = await self._route(uow, report)
        report.unit_id = unit.id
        await uow.session.flush()
        await self._post_to_groups(uow, report, unit, f"report:{report.id}:post")
        return Submitted(report, unit, True)

    async def _route(self, uow: UnitOfWork, report: Report) -> Unit:
        cat = self.config.category(report.category)
        assert cat is not None
        units = {u.id: u for u in (await uow.session.scalars(select(Unit))).all()}
        by_code = {u.code: u.id for u in units.values()}
        with_group = set((await uow.session.scalars(
            select(GroupBinding.unit_id).where(GroupBinding.active.is_(True)))).all())
        site_unit = None
        if report.site_id is not None:
            site = await uow.session.get(Site, report.site_id)
            site_unit = site.unit_id if site else None
        near: list[tuple[int, float]] = []
        areas: list[tuple[tuple[int, ...], float]] = []
        if report.latitude is not None and report.longitude is not None:
            reach = max(self.config.area_radius_m, max(c.site_radius_m
                                                        for c in self.config.categories))
            pairs = await SiteRepository(uow.session).nearest(
                report.latitude, report.longitude, limit=50, within_m=reach)
            for site, dist in pairs:
                near.append((site.unit_id, dist))
                if site.site_type in self.config.area_site_types:
                    areas.append((_chain(units, site.unit_id), dist))
        fallback = by_code.get(self.config.fallback_unit)
        if fallback is None:
            # The office must exist; a city without it has no one to send reports to.
            roots = [u.id for u in units.values() if u.parent_id is None]
            if not roots:
                raise DomainError("reports.no_units")
            fallback = roots[0]
        decision = dom.route(cat, Place(site_unit, tuple(near), tuple(areas)),
                             units_by_code=by_code, has_group=with_group.__contains__,
                             fallback_unit=fallback, area_radius_m=self.config.area_radius_m)
        return units[decision.unit_id]

    async def _post_to_groups(
        self, uow: UnitOfWork, report: Report, unit: Unit, key: str
    ) -> int:
        """Photos (the stored, metadata-free copies), the place, and the card with buttons."""
        groups = await PeopleRepository(uow.session).active_groups_of_unit(unit.id)
        outbox = OutboxRepository(uow.session)
        photos = await self._photos(uow, report.id)
        cat = self._cat(report)
        site = await uow.session.get(Site, report.site_id) if report.site_id else None
        followers = await self._followers(uow, report.id)
        resident = await resident_number(uow, report.reporter_id)
        near = None if site is not None else await self.landmark(uow, report)
        lang = self.group_lang
        text, markup = rv.group_card(lang, report, cat, site, unit, resident, followers,
                                     len(photos), near=near)
        for group in groups:
            chat = group.chat_id
            for i, photo in enumerate(photos, 1):
                params: dict[str, object] = {"photo": str(self.media.path(photo.sha256)
                                                          .resolve())}
                if i == 1:
                    params.update(caption=rv.photo_caption(lang, report, cat, len(photos)),
                                  parse_mode="HTML")
                await outbox.enqueue(f"{key}:{chat}:photo:{i}", chat, "sendPhoto", params,
                                     purpose="report_photo", ref_id=report.id)
            if report.latitude is not None and report.longitude is not None:
                await outbox.enqueue(f"{key}:{chat}:location", chat, "sendLocation",
                                     {"latitude": report.latitude,
                                      "longitude": report.longitude})
            await outbox.enqueue(f"{key}:{chat}:card", chat, "sendMessage",
                                 {"text": text, "parse_mode": "HTML",
                                  "reply_markup": markup.to_dict()},
                                 purpose="report_card", ref_id=report.id)
        return len(groups)

    # ---- the unit's decision ---------------------------------------------------------------

    async def decidable(
        self, uow: UnitOfWork, actor: Person, report_id: int, *, admin_only: bool = False
    ) -> Report:
        report = await uow.session.get(Report, report_id)
        if report is None or report.status == dom.DRAFT:
            raise StaleAction("error.stale_button")
        role = role_of(actor)
        if role >= Role.ADMIN:
            return report
        if admin_only:
            raise NotAllowed("error.role_required", role="role.admin")
        if role < Role.UNIT_MEMBER or actor.unit_id is None or report.unit_id is None:
            raise NotAllowed("reports.not_your_unit")
        units = {u.id: u for u in (await uow.session.scalars(select(Unit))).all()}
        if actor.unit_id not in _chain(units, report.unit_id):
            raise NotAllowed("reports.not_your_unit")
        return report

    async def _decide(
        self, uow: UnitOfWork, report: Report, status: str, actor: Person, now: datetime,
        **values: object,
    ) -> bool:
        """The guarded transition out of "submitted": one UPDATE … WHERE status='submitted'.

        True when this transaction won (the report is re-read with the decision); False when
        someone else decided first (the report is re-read with theirs). On PostgreSQL a
        concurrent decision waits for the first one's commit and then finds no row to change.
        """
        result = await uow.session.execute(
            update(Report).where(Report.id == report.id, Report.status == dom.SUBMITTED)
            .values(status=status, decided_by=actor.id, decided_at=now, updated_at=now,
                    **values)
            .execution_options(synchronize_session=False))
        await uow.session.refresh(report)
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def _decided_by(self, uow: UnitOfWork, report: Report) -> DomainError:
        """The refusal for a press on a report someone already decided: who, and how."""
        ticket = report.ticket or ""
        decider = (await uow.session.get(Person, report.decided_by)
                   if report.decided_by is not None else None)
        if decider is None:
            return StaleAction("reports.already_decided", ticket=ticket)
        return StaleAction("reports.decided_by", ticket=ticket, who=decider.first_name,
                           decision=rv.DECISION_KEYS.get(report.status,
                                                         "reports.decision.accepted"))

    async def accept(
        self, uow: UnitOfWork, actor: Person, report_id: int, now: datetime
    ) -> tuple[Report, Task]:
        """The unit accepts: the report becomes a rectification task with the category's
        deadline. A second press returns the same task."""
        report = await self.decidable(uow, actor, report_id)
        if report.status != dom.SUBMITTED or not await self._decide(
                uow, report, dom.ACCEPTED, actor, now):
            # Decided already (or just now, by someone else): only the same member pressing
            # again gets the same task back; anyone else is told who decided and how.
            if report.task_id is not None and report.decided_by == actor.id:
                task = await uow.session.get(Task, report.task_id)
                if task is not None:
                    return report, task
            raise await self._decided_by(uow, report)
        cat = self._cat(report)
        assert report.unit_id is not None
        from bot.services import tasks as task_service  # the task engineer's module

        photos = await self._photos(uow, report.id)
        followers = await self._followers(uow, report.id)
        title = f"{report.ticket} {cat.name_zh if cat else report.category}"
        description = report.description or ""
        if report.address:
            description = f"{report.address}\n{description}".strip()
        task = await task_service.create_task(
            uow, source="report", unit_id=report.unit_id, title=title, description=description,
            due_at=now + timedelta(days=cat.deadline_days if cat else 7),
            created_by=actor.id, site_id=report.site_id, report_id=report.id,
            latitude=report.latitude, longitude=report.longitude,
            before_photo_ids=[p.id for p in photos],
            priority=dom.priority_for(followers), now=now,
        )
        task = await self._take_on(uow, actor, task, now)
        report.task_id = task.id
        await self._tell_residents(uow, report, "accepted", lambda lang: rv.push_accepted(
            lang, report, self._cat(report), task.due_at, self.tz))
        return report, task

    async def _take_on(self, uow: UnitOfWork, actor: Person, task: Task, now: datetime) -> Task:
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
                                         expected_version=task.version, now=now)
        await uow.session.execute(delete(OutboxMessage).where(
            OutboxMessage.purpose == task_service.CARD_PURPOSE,
            OutboxMessage.ref_id == task.id, OutboxMessage.status == "pending"))
        await task_service.queue_cards(uow, outcome.task, now, tag="accepted")
        return outcome.task

    async def reject(
        self, uow: UnitOfWork, actor: Person, report_id: int, reason: str, now: datetime
    ) -> Report:
        """The unit rejects with a reason; the reporter and followers are told why."""
        report = await self.decidable(uow, actor, report_id)
        if reason not in dom.REJECT_REASONS:
            raise StaleAction("error.stale_button")
        if report.status != dom.SUBMITTED or not await self._decide(
                uow, report, dom.REJECTED, actor, now, reason=reason):
            if report.status == dom.REJECTED and report.decided_by == actor.id:
                return report
            raise await self._decided_by(uow, report)
        await self._tell_residents(uow, report, "rejected", lambda lang: rv.push_rejected(
            lang, report, self._cat(report)))
        return report

    async def mark_duplicate(
        self, uow: UnitOfWork, actor: Person, report_id: int, of_id: int, now: datetime
    ) -> tuple[Report, Report]:
        """The unit says it is a duplicate of an earlier ticket: its reporter follows that."""
        report = await self.decidable(uow, actor, report_id)
        original = await uow.session.get(Report, of_id)
        if original is None or original.id == report.id or original.ticket is None:
            raise StaleAction("error.stale_button")
        if report.status != dom.SUBMITTED or not await self._decide(
                uow, report, dom.DUPLICATE, actor, now, duplicate_of_id=original.id):
            if report.status == dom.DUPLICATE and report.duplicate_of_id == original.id:
                return report, original
            raise await self._decided_by(uow, report)
        movers = [report.reporter_id, *await self._follower_ids(uow, report.id)]
        for pid in movers:
            if pid != original.reporter_id and not await self._is_follower(uow, original.id, pid):
                uow.session.add(ReportFollower(report_id=original.id, person_id=pid,
                                               created_at=now))
        await uow.session.flush()
        original.priority = dom.priority_for(await self._followers(uow, original.id))
        await self._tell_residents(uow, report, "duplicate", lambda lang: rv.push_duplicate(
            lang, report, original))
        return report, original

    async def duplicate_choices(
        self, uow: UnitOfWork, actor: Person, report_id: int
    ) -> tuple[Report, list[Candidate]]:
        report = await self.decidable(uow, actor, report_id)
        reporter = await uow.session.get(Person, report.reporter_id)
        assert reporter is not None
        found = await self.candidates(uow, report, reporter, limit=6)
        earlier = [c for c in found if c.report_id < report.id]
        return report, earlier

    async def reroute(
        self, uow: UnitOfWork, actor: Person, report_ref: int | str, unit_ref: int | str,
        now: datetime,
    ) -> tuple[Report, Unit, Unit | None]:
        """An admin sends the report to another unit: its group gets the post anew."""
        report = await self.by_ref(uow, report_ref)
        report = await self.decidable(uow, actor, report.id, admin_only=True)
        if report.status != dom.SUBMITTED:
            raise StaleAction("reports.already_decided", ticket=report.ticket or "")
        unit = (await uow.session.get(Unit, unit_ref) if isinstance(unit_ref, int)
                else await find_one_unit(uow, unit_ref))
        if unit is None:
            raise StaleAction("error.stale_button")
        if not await PeopleRepository(uow.session).active_groups_of_unit(unit.id):
            raise DomainError("reports.unit_has_no_group", unit=unit.name_zh)
        old = await uow.session.get(Unit, report.unit_id) if report.unit_id else None
        if old is not None and old.id == unit.id:
            return report, unit, old
        # Guarded like a decision: a report accepted meanwhile is not posted anew elsewhere.
        moved = await uow.session.execute(
            update(Report).where(Report.id == report.id, Report.status == dom.SUBMITTED)
            .values(unit_id=unit.id, updated_at=now)
            .execution_options(synchronize_session=False))
        await uow.session.refresh(report)
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise await self._decided_by(uow, report)
        await self._post_to_groups(uow, report, unit,
                                   f"report:{report.id}:reroute:{int(now.timestamp())}")
        return report, unit, old

    async def reroute_choices(
        self, uow: UnitOfWork, actor: Person, report_id: int
    ) -> tuple[Report, list[Unit]]:
        report = await self.decidable(uow, actor, report_id, admin_only=True)
        units = (await uow.session.scalars(
            select(Unit).where(Unit.id.in_(
                select(GroupBinding.unit_id).where(GroupBinding.active.is_(True))))
            .order_by(Unit.id))).all()
        return report, [u for u in units if u.id != report.unit_id]

    async def by_ref(self, uow: UnitOfWork, ref: int | str) -> Report:
        """A report by id, or by its ticket as typed."""
        if isinstance(ref, int):
            found = await uow.session.get(Report, ref)
        else:
            ticket = dom.parse_ticket(ref)
            if ticket is None:
                raise DomainError("reports.bad_ticket", ticket=ref)
            found = await uow.session.scalar(select(Report).where(Report.ticket == ticket))
        if found is None or found.ticket is None:
            raise NotFound("reports.no_such_ticket", ticket=str(ref))
        return found

    # ---- after the fix ---------------------------------------------------------------------

    async def confirm_fix(
        self, uow: UnitOfWork, person: Person, report_id: int, now: datetime
    ) -> Report:
        """👍 "Solved": recorded on the task, the checkers and the unit are told. The fix still
        needs its check by someone else (待复核); the report is closed when the task is."""
        report = await self._fixed_of(uow, person, report_id, now)
        if report.status == dom.CONFIRMED:
            return report
        report.status = dom.CONFIRMED
        report.updated_at = now
        task = await uow.session.get(Task, report.task_id) if report.task_id else None
        if task is not None:
            from bot.services.tasks import note_reporter_confirmed

            # In the task's history (never naming the resident), and its cards redrawn.
            await note_reporter_confirmed(uow, task.id, now)
            await self._tell_checkers(uow, report, task)
        await self._tell_unit(uow, report, f"report:{report.id}:confirmed",
                              rv.group_confirmed(self.group_lang, report))
        return report

    async def _tell_checkers(self, uow: UnitOfWork, report: Report, task: Task) -> None:
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
        self, uow: UnitOfWork, person: Person, report_id: int, now: datetime
    ) -> Report:
        """"Still there": the task is reopened (rework) and the unit is told."""
        report = await self._fixed_of(uow, person, report_id, now)
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
                              reason=t(self.group_lang, "reports.still_there_reason",
                                           ticket=report.ticket or ""), now=now)
        await self._tell_unit(uow, report, f"report:{report.id}:disputed:{int(now.timestamp())}",
                              rv.group_disputed(self.group_lang, report))
        return report

    async def _fixed_of(
        self, uow: UnitOfWork, person: Person, report_id: int, now: datetime
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

    # ---- the resident's list ---------------------------------------------------------------

    async def mine(self, uow: UnitOfWork, person: Person, limit: int = 20) -> list[ReportLine]:
        own = (await uow.session.scalars(
            select(Report).where(Report.reporter_id == person.id, Report.ticket.is_not(None))
            .order_by(Report.id.desc()).limit(limit))).all()
        followed = (await uow.session.scalars(
            select(Report).join(ReportFollower, ReportFollower.report_id == Report.id)
            .where(ReportFollower.person_id == person.id)
            .order_by(Report.id.desc()).limit(limit))).all()
        lines = [ReportLine(r, False) for r in own] + [ReportLine(r, True) for r in followed]
        lines.sort(key=lambda line: line.report.id, reverse=True)
        return lines[:limit]

    # ---- blocking --------------------------------------------------------------------------

    async def set_blocked(
        self, uow: UnitOfWork, admin: Person, target: str, blocked: bool
    ) -> tuple[Person, int]:
        """/block and /unblock, by Telegram user id or by a ticket of theirs."""
        if role_of(admin) < Role.ADMIN:
            raise NotAllowed("error.role_required", role="role.admin")
        target = target.strip()
        if USER_ID_RE.fullmatch(target):
            person = await uow.session.get(Person, int(target))
        else:
            report = await self.by_ref(uow, target)
            person = await uow.session.get(Person, report.reporter_id)
        if person is None:
            raise NotFound("reports.no_such_person", who=target)
        if role_of(person) >= Role.ADMIN:
            raise DomainError("reports.cannot_block_admin")
        person.blocked = blocked
        if blocked:
            await cancel_draft(uow, person)
        return person, await resident_number(uow, person.id)

    # ---- task changes (subscriber) ---------------------------------------------------------

    async def task_changed(self, uow: UnitOfWork, task: Task, event: TaskEvent) -> None:
        """Tell the reporter and followers what happened to the task their report became."""
        if task.report_id is None:
            return
        report = await uow.session.get(Report, task.report_id)
        if report is None:
            return
        action = event.action
        cat = self._cat(report)
        key = f"task-event:{event.id}" if event.id is not None else f"task:{task.id}:{action}"
        now = event.at
        if action == "fix_submitted":
            report.status = dom.FIXED
            report.confirm_until = now + timedelta(days=self.config.confirm_days)
            after = (await uow.session.scalars(
                select(Photo).join(TaskPhoto, TaskPhoto.photo_id == Photo.id)
                .where(TaskPhoto.task_id == task.id, TaskPhoto.kind == "after")
                .order_by(Photo.id))).all()
            await self._tell_residents(
                uow, report, key,
                lambda lang: rv.push_fixed(lang, report, cat, report.confirm_until, self.tz,
                                           note=event.reason),
                photos=[str(self.media.path(p.sha256).resolve()) for p in after[:3]],
                reporter_markup=lambda lang: rv.confirm_keyboard(lang, report).to_dict())
        elif action in ("verified", "closed", "closed_as_duplicate"):
            # Closed only now, when the task is: a reporter's 👍 alone is "confirmed".
            report.status = dom.CLOSED
            await self._tell_residents(uow, report, key,
                                       lambda lang: rv.push_closed(lang, report, cat))
        elif action in ("returned", "reopened", "disputed"):
            if report.status in (dom.FIXED, dom.CONFIRMED, dom.CLOSED):
                report.status = dom.ACCEPTED
            await self._tell_residents(uow, report, key,
                                       lambda lang: rv.push_reopened(lang, report, cat),
                                       skip=event.actor_id)
        elif action in ("extension_granted", "deadline_changed"):
            due = task.extension_until if action == "extension_granted" and (
                task.extension_until is not None and task.extension_until > task.due_at
            ) else task.due_at
            await self._tell_residents(uow, report, key,
                                       lambda lang: rv.push_deadline(lang, report, cat, due,
                                                                     self.tz))
        elif action == "accepted":
            if event.at == task.created_at:
                return  # taken on with the report (受理): "accepted" has told them already
            await self._tell_residents(uow, report, key,
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

    # ---- internals -------------------------------------------------------------------------

    def _cat(self, report: Report) -> Category | None:
        return self.config.category(report.category)

    async def _tell_residents(
        self, uow: UnitOfWork, report: Report, key: str, text: Any, *,
        photos: Sequence[str] = (), reporter_markup: Any = None, skip: int | None = None,
    ) -> None:
        outbox = OutboxRepository(uow.session)
        people = [report.reporter_id, *await self._follower_ids(uow, report.id)]
        for pid in people:
            if pid == skip:
                continue
            person = await uow.session.get(Person, pid)
            if person is None or person.blocked:
                continue
            lang = person.language or normalize_language(person.telegram_language)
            base = f"report:{report.id}:{key}:to:{pid}"
            for i, path in enumerate(photos, 1):
                await outbox.enqueue(f"{base}:photo:{i}", pid, "sendPhoto", {"photo": path})
            params: dict[str, object] = {"text": text(lang), "parse_mode": "HTML"}
            if reporter_markup is not None and pid == report.reporter_id:
                params["reply_markup"] = reporter_markup(lang)
            await outbox.enqueue(base, pid, "sendMessage", params, purpose="report_push",
                                 ref_id=report.id)

    async def _tell_unit(self, uow: UnitOfWork, report: Report, key: str, text: str) -> None:
        if report.unit_id is None:
            return
        for group in await PeopleRepository(uow.session).active_groups_of_unit(report.unit_id):
            await OutboxRepository(uow.session).enqueue(
                f"{key}:{group.chat_id}", group.chat_id, "sendMessage",
                {"text": text, "parse_mode": "HTML"})

    async def _photo_count(self, uow: UnitOfWork, report_id: int) -> int:
        return int(await uow.session.scalar(
            select(func.count()).select_from(ReportPhoto)
            .where(ReportPhoto.report_id == report_id)) or 0)

    async def _photos(self, uow: UnitOfWork, report_id: int) -> list[Photo]:
        return list((await uow.session.scalars(
            select(Photo).join(ReportPhoto, ReportPhoto.photo_id == Photo.id)
            .where(ReportPhoto.report_id == report_id).order_by(Photo.id))).all())

    async def _phashes(
        self, uow: UnitOfWork, report_ids: Sequence[int]
    ) -> dict[int, tuple[int, ...]]:
        rows = (await uow.session.execute(
            select(ReportPhoto.report_id, Photo.phash)
            .join(Photo, Photo.id == ReportPhoto.photo_id)
            .where(ReportPhoto.report_id.in_(report_ids)))).all()
        out: dict[int, list[int]] = {}
        for rid, ph in rows:
            out.setdefault(rid, []).append(unsigned64(ph))
        return {k: tuple(v) for k, v in out.items()}

    async def _followers(self, uow: UnitOfWork, report_id: int) -> int:
        return int(await uow.session.scalar(
            select(func.count()).select_from(ReportFollower)
            .where(ReportFollower.report_id == report_id)) or 0)

    async def _follower_ids(self, uow: UnitOfWork, report_id: int) -> list[int]:
        return list((await uow.session.scalars(
            select(ReportFollower.person_id).where(ReportFollower.report_id == report_id)
            .order_by(ReportFollower.created_at))).all())

    async def _is_follower(self, uow: UnitOfWork, report_id: int, person_id: int) -> bool:
        return await uow.session.get(ReportFollower, (report_id, person_id)) is not None


# ---- module-level use cases -----------------------------------------------------------------


async def cancel_draft(uow: UnitOfWork, person: Person) -> bool:
    """Drop the resident's half-written report, if any (for /cancel)."""
    found = await uow.session.scalar(
        select(Report.id).where(Report.reporter_id == person.id, Report.status == dom.DRAFT))
    if found is None:
        return False
    await uow.session.execute(delete(ReportPhoto).where(ReportPhoto.report_id == found))
    await uow.session.execute(delete(Report).where(Report.id == found))
    return True


async def next_counter(uow: UnitOfWork, name: str) -> int:
    """Increment a named counter atomically (one UPDATE … RETURNING) and return the value."""
    stmt = (update(Counter).where(Counter.name == name).values(value=Counter.value + 1)
            .returning(Counter.value))
    value = await uow.session.scalar(stmt)
    if value is not None:
        return int(value)
    try:
        async with uow.session.begin_nested():
            uow.session.add(Counter(name=name, value=1))
        return 1
    except IntegrityError:
        # Another transaction created it first; its row is there now.
        value = await uow.session.scalar(stmt)
        assert value is not None
        return int(value)


async def resident_number(uow: UnitOfWork, person_id: int) -> int:
    """A stable public number for a resident ("resident #12"): their order of first contact.

    Never the Telegram id. People are never deleted, so the number never changes.
    """
    me = await uow.session.get(Person, person_id)
    if me is None:
        return 0
    return int(await uow.session.scalar(
        select(func.count()).select_from(Person).where(or_(
            Person.created_at < me.created_at,
            and_(Person.created_at == me.created_at, Person.id <= me.id)))) or 0)


def _after_place(report: Report) -> str:
    """The step after the place: the description, unless a photo's caption already gave one
    (the confirm screen shows it and typing replaces it)."""
    return dom.STEP_CONFIRM if report.description else dom.STEP_DESCRIPTION


def _has_place(report: Report) -> bool:
    return report.site_id is not None or report.latitude is not None or bool(report.address)


def _chain(units: dict[int, Unit], unit_id: int) -> tuple[int, ...]:
    """The unit and its ancestors, nearest first (a cycle-safe walk up the tree)."""
    out: list[int] = []
    current: int | None = unit_id
    while current is not None and current in units and current not in out:
        out.append(current)
        current = units[current].parent_id
    return tuple(out)


# ---- the task.changed subscriber -----------------------------------------------------------

_active: ReportService | None = None


def service_from_env() -> ReportService:
    """For a process that has not built a ReportService yet (e.g. a job runner)."""
    from bot.config import Settings

    settings = Settings.from_env()
    return ReportService(default_config(), MediaStore(Path(settings.media_dir)), settings.tz,
                         settings.default_language)


async def on_task_changed(uow: UnitOfWork, **payload: Any) -> None:
    task = payload.get("task")
    event = payload.get("event")
    if not isinstance(task, Task) or not isinstance(event, TaskEvent) or task.report_id is None:
        return
    service = _active or service_from_env()
    await service.task_changed(uow, task, event)


events.subscribe("task.changed", on_task_changed)
