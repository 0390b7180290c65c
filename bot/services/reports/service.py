"""ReportService, the use cases' entry point, and the task.changed subscriber."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain import reports as dom
from bot.domain.errors import DomainError
from bot.domain.expectation import DisputeReason, decode_pending
from bot.domain.reports import Category, ReportingConfig
from bot.media.store import MediaStore
from bot.render.i18n import DEFAULT_LANGUAGE
from bot.render.reports import Candidate
from bot.services import events
from bot.services.inspections import PhotoMeta
from bot.services.reports import (
    blocking,
    decisions,
    drafts,
    duplicates,
    followup,
    notices,
    places,
    queries,
    routing,
    submitting,
)
from bot.services.reports.drafts import cancel_draft
from bot.services.reports.results import (
    DraftView,
    Followed,
    PhotoAdded,
    ReportLine,
    Submitted,
)
from db.models import Person, Photo, Report, Site, Task, TaskEvent, Unit
from db.uow import UnitOfWork

log = logging.getLogger(__name__)


@cache
def default_config() -> ReportingConfig:
    return dom.load_reporting()


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
        return await drafts.draft(uow, person)

    async def start(self, uow: UnitOfWork, person: Person, now: datetime) -> Report:
        return await drafts.start(self, uow, person, now)

    async def _create_draft(
        self, uow: UnitOfWork, person: Person, now: datetime, media_group_id: str | None
    ) -> Report:
        return await drafts.create_draft(self, uow, person, now, media_group_id)

    async def _check_allowed(self, uow: UnitOfWork, person: Person, now: datetime) -> None:
        await drafts.check_allowed(self, uow, person, now)

    async def add_photo(
        self, uow: UnitOfWork, person: Person, meta: PhotoMeta, media_group_id: str | None,
        now: datetime, caption: str | None = None,
    ) -> PhotoAdded:
        return await drafts.add_photo(self, uow, person, meta, media_group_id, now, caption)

    async def view(self, uow: UnitOfWork, person: Person, report: Report) -> DraftView:
        return await drafts.view(self, uow, person, report)

    async def landmark(self, uow: UnitOfWork, report: Report) -> Site | None:
        return await places.landmark(self, uow, report)

    async def outside(self, uow: UnitOfWork, lat: float, lon: float) -> bool:
        return await places.outside(self, uow, lat, lon)

    async def own_draft(
        self, uow: UnitOfWork, person: Person, report_id: int, steps: Sequence[str]
    ) -> Report:
        return await drafts.own_draft(uow, person, report_id, steps)

    async def choose_category(
        self, uow: UnitOfWork, person: Person, report_id: int, code: str, now: datetime
    ) -> Report:
        return await drafts.choose_category(self, uow, person, report_id, code, now)

    async def set_location(
        self, uow: UnitOfWork, person: Person, lat: float, lon: float, now: datetime
    ) -> Report | None:
        return await drafts.set_location(self, uow, person, lat, lon, now)

    async def text(
        self, uow: UnitOfWork, person: Person, text: str, now: datetime
    ) -> Report | None:
        return await drafts.text(self, uow, person, text, now)

    async def place_action(
        self, uow: UnitOfWork, person: Person, report_id: int, action: dom.PlaceChoice,
        arg: int | None, now: datetime,
    ) -> Report:
        return await drafts.place_action(self, uow, person, report_id, action, arg, now)

    async def skip_description(
        self, uow: UnitOfWork, person: Person, report_id: int, now: datetime
    ) -> Report:
        return await drafts.skip_description(self, uow, person, report_id, now)

    async def cancel_draft(
        self, uow: UnitOfWork, person: Person, report_id: int | None = None
    ) -> bool:
        """Drop the resident's draft (photos stay stored); False if there was none. With
        `report_id`, only that draft (StaleAction for any other)."""
        return await cancel_draft(uow, person, report_id)

    # ---- duplicates ------------------------------------------------------------------------

    async def candidates(
        self, uow: UnitOfWork, report: Report, person: Person, limit: int = 3
    ) -> list[Candidate]:
        return await duplicates.candidates(self, uow, report, person, limit)

    async def follow(
        self, uow: UnitOfWork, person: Person, draft_id: int, target_id: int, now: datetime
    ) -> Followed:
        return await duplicates.follow(self, uow, person, draft_id, target_id, now)

    # ---- submitting ------------------------------------------------------------------------

    async def submit(
        self, uow: UnitOfWork, person: Person, report_id: int, now: datetime
    ) -> Submitted:
        return await submitting.submit(self, uow, person, report_id, now)

    async def _route(self, uow: UnitOfWork, report: Report) -> Unit:
        return await routing.route(self, uow, report)

    async def _post_to_groups(
        self, uow: UnitOfWork, report: Report, unit: Unit, key: str
    ) -> int:
        return await submitting.post_to_groups(self, uow, report, unit, key)

    # ---- the unit's decision ---------------------------------------------------------------

    async def decidable(
        self, uow: UnitOfWork, actor: Person, report_id: int, *, admin_only: bool = False
    ) -> Report:
        return await decisions.decidable(uow, actor, report_id, admin_only=admin_only)

    async def _decide(
        self, uow: UnitOfWork, report: Report, status: str, actor: Person, now: datetime,
        **values: object,
    ) -> bool:
        return await decisions.decide(uow, report, status, actor, now, **values)

    async def _decided_by(self, uow: UnitOfWork, report: Report) -> DomainError:
        return await decisions.decided_by(uow, report)

    async def accept(
        self, uow: UnitOfWork, actor: Person, report_id: int, now: datetime
    ) -> tuple[Report, Task]:
        return await decisions.accept(self, uow, actor, report_id, now)

    async def _take_on(self, uow: UnitOfWork, actor: Person, task: Task, now: datetime) -> Task:
        return await decisions.take_on(uow, actor, task, now)

    async def reject(
        self, uow: UnitOfWork, actor: Person, report_id: int, reason: str, now: datetime
    ) -> Report:
        return await decisions.reject(self, uow, actor, report_id, reason, now)

    async def mark_duplicate(
        self, uow: UnitOfWork, actor: Person, report_id: int, of_id: int, now: datetime
    ) -> tuple[Report, Report]:
        return await decisions.mark_duplicate(self, uow, actor, report_id, of_id, now)

    async def duplicate_choices(
        self, uow: UnitOfWork, actor: Person, report_id: int
    ) -> tuple[Report, list[Candidate]]:
        return await decisions.duplicate_choices(self, uow, actor, report_id)

    async def reroute(
        self, uow: UnitOfWork, actor: Person, report_ref: int | str, unit_ref: int | str,
        now: datetime,
    ) -> tuple[Report, Unit, Unit | None]:
        return await routing.reroute(self, uow, actor, report_ref, unit_ref, now)

    async def reroute_choices(
        self, uow: UnitOfWork, actor: Person, report_id: int
    ) -> tuple[Report, list[Unit]]:
        return await routing.reroute_choices(self, uow, actor, report_id)

    async def by_ref(self, uow: UnitOfWork, ref: int | str) -> Report:
        return await queries.by_ref(uow, ref)

    # ---- after the fix ---------------------------------------------------------------------

    async def confirm_fix(
        self, uow: UnitOfWork, person: Person, report_id: int, now: datetime
    ) -> Report:
        return await followup.confirm_fix(self, uow, person, report_id, now)

    async def ask_dispute(
        self, uow: UnitOfWork, person: Person, report_id: int, now: datetime
    ) -> Report:
        return await followup.ask_dispute(self, uow, person, report_id, now)

    async def dispute_fix(
        self, uow: UnitOfWork, person: Person, report_id: int, now: datetime,
        reason: str | None = None,
    ) -> Report:
        return await followup.dispute_fix(self, uow, person, report_id, now, reason)

    async def dispute_reason(
        self, uow: UnitOfWork, person: Person, text: str, now: datetime
    ) -> Report | None:
        """The reporter's typed reason after 👎; None when no dispute waits for one."""
        pending = decode_pending(person.pending)
        if not isinstance(pending, DisputeReason):
            return None
        return await followup.dispute_fix(self, uow, person, pending.report_id, now, text)

    # ---- the resident's list ---------------------------------------------------------------

    async def mine(self, uow: UnitOfWork, person: Person, limit: int = 20) -> list[ReportLine]:
        return await queries.mine(uow, person, limit)

    # ---- blocking --------------------------------------------------------------------------

    async def set_blocked(
        self, uow: UnitOfWork, admin: Person, target: str, blocked: bool
    ) -> tuple[Person, int]:
        return await blocking.set_blocked(self, uow, admin, target, blocked)

    # ---- task changes (subscriber) ---------------------------------------------------------

    async def task_changed(self, uow: UnitOfWork, task: Task, event: TaskEvent) -> None:
        await followup.task_changed(self, uow, task, event)

    # ---- internals -------------------------------------------------------------------------

    def _cat(self, report: Report) -> Category | None:
        return self.config.category(report.category)

    async def _tell_residents(
        self, uow: UnitOfWork, report: Report, key: str, text: Any, *,
        photos: Sequence[str] = (), reporter_markup: Any = None, skip: int | None = None,
    ) -> None:
        await notices.tell_residents(
            self, uow, report, key, text, photos=photos, reporter_markup=reporter_markup,
            skip=skip)

    async def _tell_unit(self, uow: UnitOfWork, report: Report, key: str, text: str) -> None:
        await notices.tell_unit(uow, report, key, text)

    async def _photo_count(self, uow: UnitOfWork, report_id: int) -> int:
        return await queries.photo_count(uow, report_id)

    async def _photos(self, uow: UnitOfWork, report_id: int) -> list[Photo]:
        return await queries.photos(uow, report_id)

    async def _phashes(
        self, uow: UnitOfWork, report_ids: Sequence[int]
    ) -> dict[int, tuple[int, ...]]:
        return await queries.phashes(uow, report_ids)

    async def _followers(self, uow: UnitOfWork, report_id: int) -> int:
        return await queries.followers(uow, report_id)

    async def _follower_ids(self, uow: UnitOfWork, report_id: int) -> list[int]:
        return await queries.follower_ids(uow, report_id)

    async def _is_follower(self, uow: UnitOfWork, report_id: int, person_id: int) -> bool:
        return await queries.is_follower(uow, report_id, person_id)


# ---- the task.changed subscriber -----------------------------------------------------------

_active: ReportService | None = None


def service_from_env() -> ReportService:
    """For a process that has not built a ReportService yet (e.g. a job runner)."""
    from bot.config import Settings

    settings = Settings.from_env()
    return ReportService(dom.load_reporting(settings.reporting_file),
                         MediaStore(Path(settings.media_dir)), settings.tz,
                         settings.default_language)


async def on_task_changed(uow: UnitOfWork, **payload: Any) -> None:
    task = payload.get("task")
    event = payload.get("event")
    if not isinstance(task, Task) or not isinstance(event, TaskEvent) or task.report_id is None:
        return
    service = _active or service_from_env()
    await service.task_changed(uow, task, event)


events.subscribe("task.changed", on_task_changed)
