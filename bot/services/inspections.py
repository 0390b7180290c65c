"""Inspection use cases: start or resume, answer, attach evidence, review, submit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from bot.domain import checklist
from bot.domain.checklist import Awaiting, ItemState, Progress
from bot.domain.errors import DomainError, NotFound, StaleAction
from bot.domain.periods import local_date
from bot.domain.roles import Role, parse_role, require
from bot.domain.scoring import Score, compute_score
from bot.domain.standards import Standard, Verdict
from bot.domain.tasks import DEFAULT_RELAPSE_WEEKS, DEFAULT_TZ
from bot.media.phash import signed64
from bot.render.inspection import HeldBy, OpenInspection
from bot.services.catalog import StandardCatalog
from bot.services.draws import mark_done, recheck_items
from bot.services.events import publish
from bot.services.tasks import create_task, record_site_items
from db.models import Answer, Inspection, Person, Photo, Site, Task
from db.repositories import InspectionRepository
from db.uow import UnitOfWork


async def active_inspection(uow: UnitOfWork, person: Person) -> Inspection | None:
    """The open inspection this person is in, if any."""
    if person.active_inspection_id is None:
        return None
    insp = await uow.inspections.get(person.active_inspection_id)
    if insp is None or insp.status != "open" or insp.inspector_id != person.id:
        return None
    return insp


@dataclass(frozen=True)
class InspectionView:
    """What the chat shows for an inspection right now."""

    inspection_id: int
    site: Site
    standard: Standard
    progress: Progress
    status: str
    # Which message carries the inspection's buttons now (chat id, message id).
    prompt: tuple[int | None, int | None] = (None, None)
    # The answer rows as loaded, so saving needs no second read.
    rows: dict[str, Answer] = field(default_factory=dict, repr=False, compare=False)
    # The row it was built from (ORM paths only): after the commit, the press path's cache
    # starts from it (`PressService.remember`) instead of reading it again.
    record: Inspection | None = field(default=None, repr=False, compare=False)

    @cached_property
    def score(self) -> Score:
        """Computed when shown (the review, the submit), not on every press."""
        verdicts = {k: s.verdict for k, s in self.progress.answers.items()
                    if s.verdict is not None}
        return compute_score(self.standard, verdicts)

    @property
    def step(self) -> int:
        return self.progress.step


@dataclass(frozen=True)
class PhotoMeta:
    """A photo already verified and stored; where it came from in Telegram."""

    sha256: str
    file_id: str | None
    width: int
    height: int
    size: int
    phash: int
    chat_id: int
    message_id: int
    captured_at: datetime | None = None  # EXIF capture time (bot/services/evidence.py)


@dataclass(frozen=True)
class Submitted:
    view: InspectionView
    tasks: list[Task]
    notified_groups: int


ACTIONS = ("back", "skip", "note", "photo", "done", "cancel", "pause", "submit", "goto")


class InspectionService:
    def __init__(self, catalog: StandardCatalog,
                 relapse_weeks: int = DEFAULT_RELAPSE_WEEKS, tz: ZoneInfo = DEFAULT_TZ) -> None:
        self.catalog = catalog
        # Settings.relapse_weeks and Settings.tz, for the tasks of failed items (bot/app.py).
        self.relapse_weeks = relapse_weeks
        self.tz = tz

    # ---- reading -------------------------------------------------------------------------

    async def open_inspections(self, uow: UnitOfWork, person: Person) -> list[OpenInspection]:
        repo = uow.inspections
        out = []
        for insp in await repo.open_of(person.id):
            standard = await self.catalog.resolve(repo, insp.standard_hash)
            answers = await repo.answers(insp.id)
            done = sum(1 for a in answers.values() if a.verdict is not None)
            out.append(OpenInspection(insp.id, insp.site.name, done, len(standard.items),
                                      insp.site.name_en))
        return out

    async def view(self, uow: UnitOfWork, person: Person, inspection_id: int) -> InspectionView:
        insp = await self._own(uow, person, inspection_id)
        return await self._view(uow, insp)

    # ---- starting ------------------------------------------------------------------------

    async def held_by_others(self, uow: UnitOfWork, person: Person, site_id: int
                             ) -> list[HeldBy]:
        """Who else has an open inspection of this site (and since when); nothing if this
        person has one there already (theirs to resume)."""
        repo = uow.inspections
        if await repo.open_at(person.id, site_id) is not None:
            return []
        return [HeldBy(p.first_name or str(p.id), i.started_at)
                for i, p in await repo.open_by_others(site_id, person.id)]

    async def start(
        self, uow: UnitOfWork, person: Person, site_id: int, chat_id: int, now: datetime
    ) -> InspectionView:
        """Start an inspection of a site, or resume the open one there."""
        require(Role(_rank(person)), Role.INSPECTOR)
        repo = uow.inspections
        site = await uow.sites.get(site_id)
        if site is None:
            raise NotFound("inspect.site_not_found")
        insp = await repo.open_at(person.id, site.id)
        if insp is None:
            standard = self.catalog.for_site_type(site.site_type)
            await self.catalog.pin(repo, standard)
            insp = Inspection(
                site_id=site.id, inspector_id=person.id, standard_id=standard.id,
                standard_hash=standard.content_hash, status="open", step=0,
                chat_id=chat_id, started_at=now, updated_at=now,
            )
            insp = await repo.add_open(insp)
        insp.updated_at = now
        person.active_inspection_id = insp.id
        person.pending = None
        return await self._view(uow, insp)

    # ---- answering -----------------------------------------------------------------------

    async def act(
        self,
        uow: UnitOfWork,
        person: Person,
        inspection_id: int,
        step: int,
        action: str,
        *,
        verdict: Verdict | None = None,
        target: int | None = None,
        now: datetime,
    ) -> InspectionView:
        """Apply a button press. A press repeated by Telegram changes nothing the second time."""
        insp = await self._own(uow, person, inspection_id)
        if insp.status != "open":
            raise StaleAction(closed_key(insp.status))
        view = await self._view(uow, insp)
        if not checklist.apply_press(view.progress, step, action, verdict, target):
            return view
        person.active_inspection_id = None if action == "pause" else insp.id
        return await self._save(uow, insp, view, now)

    async def active(self, uow: UnitOfWork, person: Person) -> Inspection | None:
        return await active_inspection(uow, person)

    async def text(
        self, uow: UnitOfWork, person: Person, text: str, now: datetime
    ) -> InspectionView | None:
        """Typed text for the active inspection (a remark or a note); None if not wanted."""
        insp = await self.active(uow, person)
        if insp is None:
            return None
        view = await self._view(uow, insp)
        if not checklist.give_text(view.progress, text):
            return None
        return await self._save(uow, insp, view, now)

    async def wants_photo(self, uow: UnitOfWork, person: Person) -> bool:
        insp = await self.active(uow, person)
        return insp is not None and insp.awaiting in checklist.TAKES_PHOTOS

    async def photo(
        self, uow: UnitOfWork, person: Person, meta: PhotoMeta, now: datetime,
        caption: str | None = None,
    ) -> InspectionView | None:
        """Attach a stored photo to the current item; a redelivered message attaches nothing."""
        insp = await self.active(uow, person)
        if insp is None:
            return None
        repo = uow.inspections
        view = await self._view(uow, insp)
        if await repo.photo_from_message(meta.chat_id, meta.message_id) is not None:
            return view
        asked = checklist.give_photo(view.progress)
        if not asked and not checklist.add_photo(view.progress):
            return None  # the review: no item to attach it to
        photo = await repo.add_photo(
            Photo(sha256=meta.sha256, telegram_file_id=meta.file_id, width=meta.width,
                  height=meta.height, size=meta.size, phash=signed64(meta.phash),
                  chat_id=meta.chat_id, message_id=meta.message_id, uploaded_by=person.id,
                  created_at=now, captured_at=meta.captured_at)
        )
        await repo.attach(insp.id, view.progress.item.key, photo.id)
        if caption and not (asked and checklist.give_text(view.progress, caption)):
            # A caption on an evidence photo is the inspector's note on it.
            checklist.add_note(view.progress, caption)
        return await self._save(uow, insp, view, now)

    # ---- submitting ----------------------------------------------------------------------

    async def submit(
        self, uow: UnitOfWork, person: Person, inspection_id: int, step: int, now: datetime,
    ) -> Submitted:
        """Lock the inspection, turn each non-compliant item into a task, tell the unit."""
        insp = await self._own(uow, person, inspection_id)
        if insp.status != "open":
            raise StaleAction(closed_key(insp.status))
        view = await self._view(uow, insp)
        checklist.expect_step(view.progress, step)
        checklist.require_submittable(view.progress)
        insp.status = "submitted"
        insp.submitted_at = now
        insp.updated_at = now
        insp.awaiting = None
        insp.score_overall = view.score.overall
        insp.score_static = view.score.static
        insp.score_dynamic = view.score.dynamic
        if person.active_inspection_id == insp.id:
            person.active_inspection_id = None
        repo = uow.inspections
        # The site's current answers (SiteItem) become this inspection's: its score follows.
        answered = {item.key: st.verdict for item in view.standard.items
                    if (st := view.progress.answers.get(item.key)) is not None
                    and st.verdict is not None}
        await record_site_items(
            uow, site_id=insp.site_id, standard_id=view.standard.id,
            standard_hash=view.standard.content_hash, verdicts=answered, source="inspection",
            source_id=insp.id, now=now)
        evidence = await repo.evidence_photos(insp.id)
        # A re-check drawn for a closed task (随机抽查 复查) that fails the task's item again is
        # a relapse (反弹) of that task, however long ago it was closed.
        today = local_date(now, self.tz)
        rechecked = await recheck_items(uow, insp.site_id, today)
        tasks = []
        for item in view.standard.items:
            if answered.get(item.key) is not Verdict.NONCOMPLIANT:
                continue
            existing = await repo.task_for(insp.id, item.key)
            if existing is not None:
                tasks.append(existing)
                continue
            # Each failed item is a task with its evidence as before-photos, and its own card
            # in the unit's groups (queued through the outbox by create_task).
            tasks.append(await create_task(
                uow, source="inspection", unit_id=insp.site.unit_id,
                title=f"{item.number} {item.text.zh}", title_en=f"{item.number} {item.text.en}",
                due_at=now + timedelta(days=item.deadline_days), created_by=person.id,
                site_id=insp.site_id, inspection_id=insp.id, item_key=item.key,
                latitude=insp.site.latitude, longitude=insp.site.longitude,
                before_photo_ids=[p.id for p in evidence.get(item.key, [])],
                relapse_weeks=self.relapse_weeks, tz=self.tz, now=now,
                relapse_of_id=rechecked.get(item.key),
            ))
        await mark_done(uow, insp.site_id, today, insp.id)
        groups = 0
        if tasks:
            people = uow.people
            groups = len(await people.active_groups_of_unit(insp.site.unit_id))
        # The day's supervision list ticks this site off (bot/services/plans.py listens).
        await publish(uow, "inspection.submitted", site_id=insp.site_id, inspection_id=insp.id,
                      inspector_id=person.id, now=now)
        return Submitted(await self._view(uow, insp), tasks, groups)

    async def discard(
        self, uow: UnitOfWork, person: Person, inspection_id: int, now: datetime,
    ) -> InspectionView:
        """Give up an open inspection (the wrong site, a visit that could not go on).

        The row and its answers stay, marked discarded: it scores nothing, raises no task, no
        longer blocks a new inspection of the site, and its buttons say what happened to it.
        """
        insp = await self._own(uow, person, inspection_id)
        if insp.status != "open":
            raise StaleAction(closed_key(insp.status))
        insp.status = "discarded"
        insp.awaiting = None
        insp.updated_at = now
        if person.active_inspection_id == insp.id:
            person.active_inspection_id = None
        return await self._view(uow, insp)

    # ---- internals -----------------------------------------------------------------------

    async def _own(self, uow: UnitOfWork, person: Person, inspection_id: int) -> Inspection:
        insp = await uow.inspections.get(inspection_id)
        if insp is None:
            raise StaleAction("error.stale_button")
        if insp.inspector_id != person.id:
            raise StaleAction("inspect.not_yours")
        return insp

    async def _view(self, uow: UnitOfWork, insp: Inspection) -> InspectionView:
        progress, answers = await load_progress(
            self.catalog, uow.inspections, insp)
        return self._rebuild(insp, progress.standard, progress, answers)

    @staticmethod
    def _rebuild(
        insp: Inspection, standard: Standard, progress: Progress, rows: dict[str, Answer]
    ) -> InspectionView:
        return InspectionView(insp.id, insp.site, standard, progress, insp.status,
                              (insp.chat_id, insp.message_id), rows, insp)

    async def _save(
        self, uow: UnitOfWork, insp: Inspection, view: InspectionView, now: datetime
    ) -> InspectionView:
        """Write the changed answers and the step; the view after it, without reading again."""
        progress, rows = view.progress, view.rows
        for key, st in progress.answers.items():
            row = rows.get(key)
            verdict = st.verdict.value if st.verdict else None
            if row is None:
                if verdict is None and not st.skipped and not st.remark:
                    continue
                row = Answer(inspection_id=insp.id, item_key=key, verdict=verdict,
                             skipped=st.skipped, remark=st.remark, answered_at=now)
                uow.add(row)
                rows[key] = row
            elif (row.verdict, row.skipped, row.remark) != (verdict, st.skipped, st.remark):
                row.verdict, row.skipped, row.remark, row.answered_at = (
                    verdict, st.skipped, st.remark, now)
        insp.step = progress.step
        insp.awaiting = progress.awaiting.value if progress.awaiting else None
        insp.updated_at = now
        await uow.flush()
        return self._rebuild(insp, view.standard, progress, rows)


async def load_progress(
    catalog: StandardCatalog, repo: InspectionRepository, insp: Inspection
) -> tuple[Progress, dict[str, Answer]]:
    """An inspection's progress as stored (its pinned standard, answers, evidence counts),
    and the answer rows it was read from."""
    standard = await catalog.resolve(repo, insp.standard_hash)
    answers = await repo.answers(insp.id)
    photos = await repo.evidence_counts(insp.id)
    states = {}
    for key in set(answers) | set(photos):
        a = answers.get(key)
        states[key] = ItemState(
            verdict=Verdict(a.verdict) if a and a.verdict else None,
            skipped=bool(a and a.skipped),
            remark=a.remark if a else None,
            photos=photos.get(key, 0),
        )
    progress = Progress(
        standard=standard, step=insp.step,
        awaiting=Awaiting(insp.awaiting) if insp.awaiting else None, answers=states,
    )
    return progress, answers


def closed_key(status: str) -> str:
    """The message for a press on an inspection that is no longer open."""
    return "inspect.already_discarded" if status == "discarded" else "inspect.already_submitted"


def _rank(person: Person) -> int:
    role = parse_role(person.role)
    if role is None:
        raise DomainError("error.unknown_role")
    return int(role)
