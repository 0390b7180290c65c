"""Rectification task use cases (整改闭环): create, act on, list, escalate, score.

Every function takes a UnitOfWork and `now` and never commits: the caller commits once, then
talks to Telegram. Each transition bumps `Task.version` with a guarded UPDATE (… WHERE id = :id
AND version = :v), so of two people pressing the same button at the same moment exactly one
moves the task and the other is told who did it. Every transition writes a TaskEvent and
publishes "task.changed" (the reports feature tells residents from there).

The relapse window (反弹) is RELAPSE_WEEKS_DEFAULT weeks, or the WENMING_RELAPSE_WEEKS
environment variable: bot/config.py is shared, so the setting lives here until it moves there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.errors import DomainError, NotAllowed, NotFound, StaleAction
from bot.domain.roles import Role
from bot.domain.scoring import Score, compute_score
from bot.domain.standards import Standard, Verdict
from bot.domain.tasks import (
    ACTIVE_STATES,
    CREATED,
    DEFAULT_RELAPSE_WEEKS,
    EVENTS,
    MAX_EXTENSION_DAYS,
    NOTE,
    REPORTER_CONFIRMED,
    UNIT_TODO_STATES,
    Action,
    TaskFilter,
    TaskState,
    end_of_day,
    escalation_target,
    relapse_window,
    require_reason,
    rework_due,
    self_verified,
    transition,
)
from bot.images import MediaStore
from bot.services.events import publish
from bot.task_views import Card, EventLine, TaskData, card, default_tz
from db.models import (
    GroupBinding,
    Inspection,
    OutboxMessage,
    Person,
    Photo,
    Report,
    ReportFollower,
    Site,
    SiteItem,
    StandardVersion,
    Task,
    TaskEvent,
    TaskPhoto,
    Unit,
)
from db.repositories import OutboxRepository, PeopleRepository
from db.types import utcnow
from db.uow import UnitOfWork

log = logging.getLogger(__name__)

RELAPSE_WEEKS_DEFAULT = DEFAULT_RELAPSE_WEEKS
RELAPSE_WEEKS_ENV = "WENMING_RELAPSE_WEEKS"
CARD_PURPOSE = "task_card"
# A private message with buttons about a task (a fix to check, an extension or a claim to
# decide): its keyboard is taken away once anyone has acted on the task.
NOTICE_PURPOSE = "task_notice"
# TaskPhoto.kind: "before", "after", and "draft" for after-photos sent while a fix is being
# written (they become "after" when it is submitted; a cancelled fix leaves them unused).
# Drafts belong to whoever sent them (Photo.uploaded_by): two members writing a fix for the
# same task at once each see, drop and submit only their own.
BEFORE, AFTER, DRAFT = "before", "after", "draft"
LIST_LIMIT = 30
VERIFY_PASS_VERDICTS = (Verdict.COMPLIANT, Verdict.BASIC)


def relapse_weeks() -> int:
    """How many weeks after a task is closed a new failure of the same item is a relapse."""
    raw = os.environ.get(RELAPSE_WEEKS_ENV, "").strip()
    if not raw:
        return RELAPSE_WEEKS_DEFAULT
    try:
        weeks = int(raw)
    except ValueError:
        log.warning("%s=%r is not a number; using %d", RELAPSE_WEEKS_ENV, raw,
                    RELAPSE_WEEKS_DEFAULT)
        return RELAPSE_WEEKS_DEFAULT
    return max(weeks, 0)


@dataclass(frozen=True)
class Outcome:
    """What a transition did: the task as it is now, the event recorded, and a warning key."""

    task: Task
    event: TaskEvent
    action: Action
    from_state: TaskState
    old_unit_id: int
    warning: str | None = None


# ---- creating ------------------------------------------------------------------------------


async def create_task(
    uow: UnitOfWork,
    *,
    source: str,
    unit_id: int,
    title: str,
    description: str = "",
    due_at: datetime,
    created_by: int | None,
    site_id: int | None = None,
    inspection_id: int | None = None,
    item_key: str | None = None,
    report_id: int | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    before_photo_ids: Iterable[int] = (),
    priority: int = 0,
    now: datetime,
) -> Task:
    """A new open task: its "created" event, relapse check, card queued, "task.changed".

    A deadline is a day: `due_at` is moved to the end (23:59:59) of its local day in the
    campaign's time zone (WENMING_TIMEZONE), whatever the caller computed."""
    due_at = end_of_day(due_at, default_tz())
    if await uow.session.get(Unit, unit_id) is None:
        raise NotFound("task.unit_not_found")
    relapse = None
    if site_id is not None and item_key is not None:
        relapse = await _relapse_of(uow, site_id, item_key, now)
    task = Task(
        source=source, inspection_id=inspection_id, item_key=item_key, report_id=report_id,
        site_id=site_id, unit_id=unit_id, title=title, description=description,
        latitude=latitude, longitude=longitude, status=TaskState.OPEN.value, version=0,
        priority=priority, escalation_level=0, due_at=due_at, created_by=created_by,
        created_at=now, reopen_count=0, relapse_of_id=relapse.id if relapse else None,
    )
    uow.session.add(task)
    await uow.session.flush()
    for photo_id in dict.fromkeys(before_photo_ids):
        uow.session.add(TaskPhoto(task_id=task.id, photo_id=photo_id, kind=BEFORE))
    # The first deadline: a returned or reopened task is given the same time again.
    data: dict[str, object] = {"source": source, "due_at": due_at.isoformat()}
    if relapse is not None:
        data["relapse_of"] = relapse.id
    event = TaskEvent(task_id=task.id, at=now, actor_id=created_by, action=CREATED,
                      from_status=None, to_status=TaskState.OPEN.value, data=data)
    uow.session.add(event)
    await uow.session.flush()
    await queue_cards(uow, task, now)
    await publish(uow, "task.changed", task=task, event=event)
    return task


async def _relapse_of(uow: UnitOfWork, site_id: int, item_key: str, now: datetime) -> Task | None:
    weeks = relapse_weeks()
    if weeks <= 0:
        return None
    return await uow.session.scalar(
        select(Task)
        .where(Task.site_id == site_id, Task.item_key == item_key,
               Task.status == TaskState.CLOSED.value,
               Task.closed_at >= now - relapse_window(weeks))
        .order_by(Task.closed_at.desc())
        .limit(1)
    )


async def queue_cards(uow: UnitOfWork, task: Task, now: datetime, *, tag: str = "new",
                      chats: Iterable[int] | None = None) -> int:
    """Queue the task's card for each active group of its unit (or only for those of `chats`,
    e.g. the groups whose card was deleted); returns how many."""
    groups = await PeopleRepository(uow.session).active_groups_of_unit(task.unit_id)
    if chats is not None:
        wanted = set(chats)
        groups = [g for g in groups if g.chat_id in wanted]
    if not groups:
        return 0
    view = card(await task_data(uow, task.id), now)
    outbox = OutboxRepository(uow.session)
    queued = 0
    for group in groups:
        method, params = card_message(view)
        key = f"task:{task.id}:card:{group.chat_id}:{tag}:{task.version}"
        if await outbox.enqueue(key, group.chat_id, method, params, purpose=CARD_PURPOSE,
                                ref_id=task.id):
            queued += 1
    return queued


def card_message(view: Card) -> tuple[str, dict[str, object]]:
    """The Bot API call that posts a card: a photo with a caption, or a text message."""
    params: dict[str, object] = {"parse_mode": "HTML"}
    markup = view.markup()
    if markup is not None:
        params["reply_markup"] = markup
    if view.photo_sha:
        # The outbox uploads the stored copy once and re-sends the bot's own file id after.
        params.update(file=MediaStore.relpath(view.photo_sha), file_param="photo",
                      filename="photo.jpg", caption=view.text)
        return "sendPhoto", params
    params["text"] = view.text
    return "sendMessage", params


async def record_card(uow: UnitOfWork, task_id: int, chat_id: int, message_id: int) -> None:
    """Remember where the task's card is (the outbox hook and the handlers call this)."""
    # Only the responsible unit's groups speak for the task; a late card in an old group
    # (re-routed meanwhile) must not take its place.
    await remember_card(uow.session, task_id, chat_id, message_id)


async def remember_card(session: AsyncSession, task_id: int, chat_id: int,
                        message_id: int) -> Task | None:
    """Record where the card is; the task, if that chat's group speaks for it."""
    task = await session.get(Task, task_id)
    if task is None:
        return None
    binding = await session.get(GroupBinding, chat_id)
    if binding is not None and binding.unit_id != task.unit_id:
        return None
    task.card_chat_id, task.card_message_id = chat_id, message_id
    return task


async def card_delivered(session: AsyncSession, row: OutboxMessage, chat_id: int,
                         message_id: int) -> None:
    """The outbox delivered a card (this runs in the transaction marking the row sent).

    A press or a job may have changed the task between queueing the card and now, and found no
    card to edit yet (the location is recorded only here). Such a card is stale the moment it
    lands: an edit to the current state is queued behind it, in the same chat.
    """
    assert row.ref_id is not None
    task = await remember_card(session, row.ref_id, chat_id, message_id)
    rendered_at = _card_version(row.dedup_key)
    if task is None or rendered_at is None or task.version <= rendered_at:
        return
    now = row.sent_at or utcnow()  # the outbox's clock, set just before this hook
    await queue_card_edits(UnitOfWork.within(session), task.id, now, chats=[chat_id],
                           tag="caught-up")


def _card_version(dedup_key: str) -> int | None:
    """The task version a queued card was rendered at: task:<id>:card:<chat>:<tag>:<version>."""
    try:
        return int(dedup_key.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


async def chats_with_queued_edits(uow: UnitOfWork, task_id: int) -> set[int]:
    """Chats where an edit of the task's card waits in the outbox. A handler edits such a card
    through the outbox too, behind it, so an older edit never lands after a newer one."""
    rows = await uow.session.scalars(
        select(OutboxMessage.chat_id)
        .where(OutboxMessage.dedup_key.startswith(f"task:{task_id}:edit:"),
               OutboxMessage.status == "pending")
    )
    return {int(chat_id) for chat_id in rows.all()}


async def active_groups(uow: UnitOfWork, unit_id: int) -> list[GroupBinding]:
    return await PeopleRepository(uow.session).active_groups_of_unit(unit_id)


async def cards_of(uow: UnitOfWork, task_id: int) -> list[tuple[int, int]]:
    """Every card of the task that was delivered, newest per chat: (chat_id, message_id)."""
    rows = await uow.session.execute(
        select(OutboxMessage.chat_id, OutboxMessage.sent_message_id)
        .where(OutboxMessage.purpose == CARD_PURPOSE, OutboxMessage.ref_id == task_id,
               OutboxMessage.status == "sent", OutboxMessage.sent_message_id.is_not(None))
        .order_by(OutboxMessage.id)
    )
    latest: dict[int, int] = {}
    for chat_id, message_id in rows.all():
        if message_id is not None:
            latest[int(chat_id)] = int(message_id)
    task = await uow.session.get(Task, task_id)
    if task is not None and task.card_chat_id is not None and task.card_message_id is not None:
        latest[task.card_chat_id] = task.card_message_id
    return list(latest.items())


# ---- reading -------------------------------------------------------------------------------


async def get_task(uow: UnitOfWork, task_id: int) -> Task:
    task = await uow.session.get(Task, task_id)
    if task is None:
        raise NotFound("task.not_found", id=task_id)
    return task


async def history(uow: UnitOfWork, task_id: int) -> list[TaskEvent]:
    """Every recorded event of the task, oldest first."""
    rows = await uow.session.scalars(
        select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.id)
    )
    return list(rows.all())


async def names(uow: UnitOfWork, ids: Iterable[int | None]) -> dict[int, str]:
    """First names by person id. Who must stay unnamed is decided from the task's report
    (report_people, EventLine.resident), not from anyone's current role: a unit member can
    file a report too, and a role changes after the fact."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await uow.session.execute(
        select(Person.id, Person.first_name).where(Person.id.in_(wanted))
    )
    return {pid: name for pid, name in rows.all()}


async def report_people(uow: UnitOfWork, task: Task) -> set[int]:
    """Who filed or followed (+1) the report(s) behind this task: never named on its card or in
    its history, whatever their role (cards are read in groups)."""
    report_ids = set(await uow.session.scalars(select(Report.id).where(Report.task_id == task.id)))
    if task.report_id is not None:
        report_ids.add(task.report_id)
    if not report_ids:
        return set()
    reporters = await uow.session.scalars(select(Report.reporter_id)
                                          .where(Report.id.in_(report_ids)))
    followers = await uow.session.scalars(select(ReportFollower.person_id)
                                          .where(ReportFollower.report_id.in_(report_ids)))
    return set(reporters.all()) | set(followers.all())


def by_resident(event: TaskEvent, private: set[int]) -> bool:
    """Whether the event's actor is shown as "a resident" rather than by name."""
    return ((event.data or {}).get("by") == "reporter"
            or (event.actor_id is not None and event.actor_id in private))


async def task_data(uow: UnitOfWork, task_id: int, *, with_item: bool = False) -> TaskData:
    """Everything a card, a list line or the history shows, read now."""
    task = await get_task(uow, task_id)
    unit = await uow.session.get(Unit, task.unit_id)
    site = await uow.session.get(Site, task.site_id) if task.site_id else None
    events = await history(uow, task_id)
    photos = (await uow.session.execute(
        select(TaskPhoto.kind, Photo.telegram_file_id, Photo.sha256)
        .join(Photo, Photo.id == TaskPhoto.photo_id)
        .where(TaskPhoto.task_id == task_id, TaskPhoto.kind.in_((BEFORE, AFTER)))
        .order_by(Photo.id)
    )).all()
    inspection = (await uow.session.get(Inspection, task.inspection_id)
                  if task.inspection_id else None)
    private = await report_people(uow, task)
    who = await names(uow, [e.actor_id for e in events if not by_resident(e, private)]
                      + [inspection.inspector_id if inspection else None])
    relapse_closed = None
    if task.relapse_of_id is not None:
        earlier = await uow.session.get(Task, task.relapse_of_id)
        relapse_closed = earlier.closed_at if earlier else None
    escalation_unit = None
    if task.escalation_level and unit is not None:
        target = escalation_target(await _units(uow), unit, task.escalation_level)
        escalation_unit = target.name_zh if target else None
    claim = await reroute_claim(uow, task_id)
    item_text = None
    if with_item and inspection is not None and task.item_key:
        item = (await standard_of(uow, inspection.standard_hash)).item(task.item_key)
        item_text = f"{item.number} {item.text.zh}"
    # The latest after-photos come first: the card shows the newest fix.
    after = [(f, s) for k, f, s in photos if k == AFTER][::-1]
    before = [(f, s) for k, f, s in photos if k == BEFORE]
    return TaskData(
        id=task.id, version=task.version, state=TaskState(task.status), source=task.source,
        title=task.title, description=task.description or "",
        unit_name=unit.name_zh if unit else "—", unit_id=task.unit_id,
        site_name=site.name if site else None, due_at=task.due_at,
        extension_until=task.extension_until, escalation_level=task.escalation_level,
        escalation_unit=escalation_unit, reopen_count=task.reopen_count,
        relapse_of_id=task.relapse_of_id, relapse_closed_at=relapse_closed,
        inspector=who.get(inspection.inspector_id) if inspection else None,
        before_file_ids=tuple(f for f, _ in before if f),
        after_file_ids=tuple(f for f, _ in after if f),
        before_shas=tuple(s for _, s in before), after_shas=tuple(s for _, s in after),
        reroute_claim=(claim.reason or "") if claim else None,
        events=tuple(
            EventLine(e.at,
                      None if by_resident(e, private) else who.get(e.actor_id or 0),
                      e.actor_id, e.action, e.reason, dict(e.data or {}),
                      resident=by_resident(e, private))
            for e in events
            # Who filed a report never appears; the event stays in the database.
            if not (e.action == CREATED and task.source == "report")
        ),
        item_text=item_text,
    )


async def _units(uow: UnitOfWork) -> dict[int, Unit]:
    return {u.id: u for u in (await uow.session.scalars(select(Unit))).all()}


async def reroute_claim(uow: UnitOfWork, task_id: int) -> TaskEvent | None:
    """The unit's "not ours" claim, if no admin has decided on it yet."""
    last = await uow.session.scalar(
        select(TaskEvent)
        .where(TaskEvent.task_id == task_id,
               TaskEvent.action.in_((EVENTS[Action.NOT_OURS], EVENTS[Action.REROUTE],
                                     EVENTS[Action.REFUSE_REROUTE])))
        .order_by(TaskEvent.id.desc())
        .limit(1)
    )
    return last if last is not None and last.action == EVENTS[Action.NOT_OURS] else None


# ---- acting --------------------------------------------------------------------------------


def role_of(person: Person | None) -> Role | None:
    if person is None:
        return None
    try:
        return Role.parse(person.role)
    except KeyError:
        return Role.RESIDENT


def is_unit_member(person: Person | None, task: Task) -> bool:
    role = role_of(person)
    return (person is not None and role is not None and role >= Role.UNIT_MEMBER
            and person.unit_id == task.unit_id)


async def check(
    uow: UnitOfWork, person: Person | None, task: Task, action: Action, expected_version: int
) -> TaskState:
    """Whether `person` may do `action` to the task at this version; the state it leads to."""
    if task.version != expected_version:
        await _explain_stale(uow, task, action, person.id if person is not None else None)
    return transition(
        task.status, action, role_of(person), is_unit_member(person, task),
        person is not None and task.fixed_by == person.id,
        extension_pending=task.extension_until is not None,
        reroute_pending=await reroute_claim(uow, task.id) is not None,
    )


async def _explain_stale(uow: UnitOfWork, task: Task, action: Action,
                         presser_id: int | None = None) -> None:
    """Someone moved the task since this button was drawn: say who, if it was this (and "you
    already did" when it was the presser, e.g. 完成 pressed again after submitting)."""
    last = await uow.session.scalar(
        select(TaskEvent).where(TaskEvent.task_id == task.id)
        .order_by(TaskEvent.id.desc()).limit(1)
    )
    same = {EVENTS[action]}
    if action in (Action.VERIFY_PASS, Action.VERIFY_RETURN):
        same = {EVENTS[Action.VERIFY_PASS], EVENTS[Action.VERIFY_RETURN]}
    if last is not None and last.action in same:
        if presser_id is not None and last.actor_id == presser_id:
            raise StaleAction("task.already_done_self", action=last.action)
        if by_resident(last, await report_people(uow, task)):
            who = "resident"  # task_views.explain words it; a reporter is never named
        else:
            who = (await names(uow, [last.actor_id])).get(last.actor_id or 0, "—")
        raise StaleAction("task.already_done", who=who, action=last.action)
    raise StaleAction("task.stale")


async def begin_input(
    uow: UnitOfWork, person: Person, task_id: int, action: Action, expected_version: int
) -> Task:
    """A button that needs more from the person (photos, a reason, a unit): check that they may,
    and remember what their next private message is for."""
    task = await get_task(uow, task_id)
    await check(uow, person, task, action, expected_version)
    person.pending = pending_key(task.id, action, task.version)
    if action is Action.SUBMIT_FIX:
        # This person's drafts from an abandoned attempt are not this fix's evidence (another
        # member's drafts, for a fix they are still writing, stay theirs).
        await drop_drafts(uow, task.id, person.id)
    return task


def pending_key(task_id: int, action: Action, version: int) -> str:
    return f"task:{task_id}:{action.value}:{version}"


@dataclass(frozen=True)
class PendingInput:
    task_id: int
    action: Action
    version: int


def parse_pending(pending: str | None) -> PendingInput | None:
    if not pending or not pending.startswith("task:"):
        return None
    parts = pending.split(":")
    try:
        return PendingInput(int(parts[1]), Action(parts[2]), int(parts[3]))
    except (IndexError, ValueError):
        return None


async def add_draft_photo(uow: UnitOfWork, person: Person, task_id: int, photo: Photo) -> int:
    """An after-photo sent while a fix is being written; returns how many are there now."""
    existing = await uow.session.scalar(
        select(Photo).where(Photo.chat_id == photo.chat_id, Photo.message_id == photo.message_id)
    )
    if existing is None:
        uow.session.add(photo)
        await uow.session.flush()
        existing = photo
    if await uow.session.get(TaskPhoto, (task_id, existing.id)) is None:
        uow.session.add(TaskPhoto(task_id=task_id, photo_id=existing.id, kind=DRAFT))
        await uow.session.flush()
    return len(await drafts(uow, task_id, person.id))


async def add_note(uow: UnitOfWork, person: Person, task_id: int, text: str,
                   now: datetime) -> None:
    """A note written with a fix, kept as an event until the fix is submitted."""
    task = await get_task(uow, task_id)
    uow.session.add(TaskEvent(task_id=task_id, at=now, actor_id=person.id, action=NOTE,
                              from_status=task.status, to_status=task.status,
                              reason=text.strip()[:2000], data={}))


async def drafts(uow: UnitOfWork, task_id: int, person_id: int) -> list[int]:
    """The after-photos this person has sent for the fix they are writing."""
    rows = await uow.session.scalars(
        select(TaskPhoto.photo_id)
        .join(Photo, Photo.id == TaskPhoto.photo_id)
        .where(TaskPhoto.task_id == task_id, TaskPhoto.kind == DRAFT,
               Photo.uploaded_by == person_id)
        .order_by(TaskPhoto.photo_id)
    )
    return list(rows.all())


async def drop_drafts(uow: UnitOfWork, task_id: int, person_id: int) -> None:
    """Forget this person's drafts for the task (a cancelled or restarted fix)."""
    for photo_id in await drafts(uow, task_id, person_id):
        row = await uow.session.get(TaskPhoto, (task_id, photo_id))
        if row is not None:
            await uow.session.delete(row)


async def _fix_note(uow: UnitOfWork, task: Task, person: Person) -> str | None:
    """The notes this person wrote since the task last changed state."""
    since = await uow.session.scalar(
        select(TaskEvent.id).where(TaskEvent.task_id == task.id, TaskEvent.action != NOTE)
        .order_by(TaskEvent.id.desc()).limit(1)
    )
    rows = await uow.session.scalars(
        select(TaskEvent.reason).where(TaskEvent.task_id == task.id, TaskEvent.action == NOTE,
                                       TaskEvent.actor_id == person.id,
                                       TaskEvent.id > (since or 0))
        .order_by(TaskEvent.id)
    )
    notes = [r for r in rows.all() if r]
    return "\n".join(notes) or None


async def act(
    uow: UnitOfWork,
    person: Person | None,
    task_id: int,
    action: Action,
    *,
    expected_version: int,
    reason: str | None = None,
    after_photo_ids: Sequence[int] = (),
    verdict: Verdict | str | None = None,
    new_due: datetime | None = None,
    new_unit_id: int | None = None,
    now: datetime,
) -> Outcome:
    """Apply one transition, or refuse it with a DomainError naming why."""
    task = await get_task(uow, task_id)
    from_state = TaskState(task.status)
    to_state = await check(uow, person, task, action, expected_version)
    fixed_it = person is not None and task.fixed_by == person.id
    reason = require_reason(action, reason)
    actor = person.id if person is not None else None
    values: dict[str, object] = {"status": to_state.value}
    data: dict[str, object] = {}
    warning = None
    old_unit_id = task.unit_id
    site_verdict: Verdict | None = None

    if action is Action.ACCEPT:
        values.update(accepted_by=actor, accepted_at=now)
    elif action is Action.SUBMIT_FIX:
        photos = list(after_photo_ids) or (await drafts(uow, task.id, person.id)
                                           if person is not None else [])
        if not photos:
            raise DomainError("task.after_photo_required")
        if person is not None and reason is None:
            reason = await _fix_note(uow, task, person)
        values.update(fixed_by=actor, fixed_at=now)
        data["photos"] = photos
    elif action in (Action.VERIFY_PASS, Action.VERIFY_RETURN):
        site_verdict = await _verification_verdict(uow, task, action, verdict)
        if site_verdict is not None:
            data["verdict"] = site_verdict.value
        values.update(verified_by=actor, verified_at=now)
        if action is Action.VERIFY_PASS:
            values["closed_at"] = now
        else:
            values["reopen_count"] = task.reopen_count + 1
            values.update(await rework_deadline(uow, task, now))
        if self_verified(action, fixed_it):
            data["self_verified"] = True
            warning = "task.self_verified_warning"
    elif action is Action.REQUEST_EXTENSION:
        if new_due is None:  # never a silent default: the unit says how many days
            raise DomainError("task.extension_days_missing", max=MAX_EXTENSION_DAYS)
        until = end_of_day(new_due, default_tz())
        if until <= task.due_at:
            raise DomainError("task.extension_not_later")
        values["extension_until"] = until
        data["until"] = until.isoformat()
    elif action is Action.GRANT_EXTENSION:
        assert task.extension_until is not None
        # A new deadline: the scheduler's reminders about the old one no longer apply.
        values.update(due_at=task.extension_until, extension_until=None,
                      reminded_before_at=None, reminded_due_at=None,
                      last_overdue_reminder_at=None)
        data["until"] = task.extension_until.isoformat()
    elif action is Action.REFUSE_EXTENSION:
        values["extension_until"] = None
    elif action is Action.REROUTE:
        if new_unit_id is None or await uow.session.get(Unit, new_unit_id) is None:
            raise DomainError("task.reroute_unit_required")
        if new_unit_id == task.unit_id:
            raise DomainError("task.reroute_same_unit")
        values.update(unit_id=new_unit_id, accepted_by=None, accepted_at=None,
                      escalation_level=0, escalated_at=None, extension_until=None,
                      card_chat_id=None, card_message_id=None, reminded_before_at=None,
                      reminded_due_at=None, last_overdue_reminder_at=None)
        data.update(from_unit=task.unit_id, to_unit=new_unit_id)
    elif action is Action.REOPEN:
        values.update(closed_at=None, reopen_count=task.reopen_count + 1)
        values.update(await rework_deadline(uow, task, now))
    elif action is Action.CLOSE_AS_DUPLICATE:
        values["closed_at"] = now
    elif action is Action.ESCALATE:
        raise DomainError("task.use_escalate")

    await _bump(uow, task, expected_version, action, values, actor)
    if action is Action.SUBMIT_FIX:
        for photo_id in data["photos"]:  # type: ignore[attr-defined]
            row = await uow.session.get(TaskPhoto, (task.id, photo_id))
            if row is None:
                uow.session.add(TaskPhoto(task_id=task.id, photo_id=photo_id, kind=AFTER))
            else:
                row.kind = AFTER
    if site_verdict is not None:
        await _record_verification(uow, task, site_verdict, now)
    event = TaskEvent(task_id=task.id, at=now, actor_id=actor, action=EVENTS[action],
                      from_status=from_state.value, to_status=to_state.value, reason=reason,
                      data=data)
    uow.session.add(event)
    await uow.session.flush()
    if action is Action.REROUTE:
        await queue_cards(uow, task, now, tag="reroute")
    await close_notices(uow, task.id)
    if action in (Action.VERIFY_RETURN, Action.REOPEN):
        await tell_groups_returned(uow, task, event)
    await _notify(uow, task, action, event)
    await publish(uow, "task.changed", task=task, event=event)
    return Outcome(task, event, action, from_state, old_unit_id, warning)


# Who is told in private, beyond the card: admins decide extensions and claims (they need not
# be in every unit's group), and whoever filed a finding or inspection learns a fix awaits them.
_DECISIONS = {
    Action.REQUEST_EXTENSION: ("task.notify.extension",
                               (Action.GRANT_EXTENSION, Action.REFUSE_EXTENSION)),
    Action.NOT_OURS: ("task.notify.not_ours", (Action.REROUTE, Action.REFUSE_REROUTE)),
}


async def _notify(uow: UnitOfWork, task: Task, action: Action, event: TaskEvent) -> None:
    from bot.i18n import normalize_language, t
    from bot.task_views import ACTION_CODES, BUTTON_KEYS
    from bot.task_views import data as button_data

    people: list[Person] = []
    if action in _DECISIONS:
        key, choices = _DECISIONS[action]
        people = list(await PeopleRepository(uow.session).admins())
    elif action is Action.SUBMIT_FIX:
        key, choices = "task.notify.fix_submitted", (Action.VERIFY_PASS, Action.VERIFY_RETURN)
        # Whoever filed it, and whoever sent it back last (a re-submission is theirs to check).
        returned = await last_return(uow, task.id)
        for pid in (task.created_by, returned.actor_id if returned is not None else None):
            if pid is None or pid == task.fixed_by or any(p.id == pid for p in people):
                continue
            someone = await uow.session.get(Person, pid)
            if someone is not None and (role_of(someone) or Role.RESIDENT) >= Role.INSPECTOR:
                people.append(someone)
    else:
        return
    unit = await uow.session.get(Unit, task.unit_id)
    outbox = OutboxRepository(uow.session)
    for person in people:
        if person.id == event.actor_id or person.blocked:
            continue
        lang = person.language or normalize_language(person.telegram_language)
        text = t(lang, key, id=task.id, title=task.title[:200],
                 unit=unit.name_zh if unit else "—", reason=(event.reason or "")[:300])
        keyboard = [[{"text": t(lang, BUTTON_KEYS[c]),
                      "callback_data": button_data(task.id, task.version, ACTION_CODES[c])}
                     for c in choices]]
        await outbox.enqueue(f"task:{task.id}:notify:{event.id}:{person.id}", person.id,
                             "sendMessage", {"text": text, "parse_mode": "HTML",
                                             "reply_markup": {"inline_keyboard": keyboard}},
                             purpose=NOTICE_PURPOSE, ref_id=task.id)


async def close_notices(uow: UnitOfWork, task_id: int) -> int:
    """Someone acted on the task: the buttons of its private notices delivered so far no longer
    fit, so take them away (the message stays; a notice not yet sent keeps its buttons, and a
    press on it is answered with who handled the task)."""
    rows = (await uow.session.execute(
        select(OutboxMessage.id, OutboxMessage.chat_id, OutboxMessage.sent_message_id)
        .where(OutboxMessage.purpose == NOTICE_PURPOSE, OutboxMessage.ref_id == task_id,
               OutboxMessage.status == "sent", OutboxMessage.sent_message_id.is_not(None))
    )).all()
    outbox = OutboxRepository(uow.session)
    queued = 0
    for row_id, chat_id, message_id in rows:
        if message_id is None:
            continue
        if await outbox.enqueue(f"task:{task_id}:notice_done:{row_id}", int(chat_id),
                                # No reply_markup: the keyboard is removed.
                                "editMessageReplyMarkup", {"message_id": int(message_id)}):
            queued += 1
    return queued


async def last_return(uow: UnitOfWork, task_id: int) -> TaskEvent | None:
    """The latest event that sent the task back for rework (a failed check or a reopening)."""
    return await uow.session.scalar(
        select(TaskEvent)
        .where(TaskEvent.task_id == task_id,
               TaskEvent.action.in_((EVENTS[Action.VERIFY_RETURN], EVENTS[Action.REOPEN])))
        .order_by(TaskEvent.id.desc()).limit(1))


async def tell_groups_returned(uow: UnitOfWork, task: Task, event: TaskEvent) -> int:
    """A new message in the unit's groups: the card is only edited, and Telegram tells nobody
    about an edit, so a return would go unnoticed."""
    from bot.i18n import t
    from bot.task_views import GROUP_LANG, clip

    outbox = OutboxRepository(uow.session)
    queued = 0
    for group in await active_groups(uow, task.unit_id):
        text = t(GROUP_LANG, "task.returned_group", id=task.id, title=clip(task.title, 60),
                 reason=clip(event.reason or "—", 300))
        if await outbox.enqueue(f"task:{task.id}:returned:{event.id}:{group.chat_id}",
                                group.chat_id, "sendMessage",
                                {"text": text, "parse_mode": "HTML"}):
            queued += 1
    return queued


async def note_reporter_confirmed(uow: UnitOfWork, task_id: int, now: datetime, *,
                                  actor_id: int | None = None) -> TaskEvent | None:
    """The reporter confirmed the problem is solved: a "reporter_confirmed" event (never naming
    them: data["by"] is "reporter") and the task's cards redrawn through the outbox. The state
    does not change. None when the task is gone."""
    task = await uow.session.get(Task, task_id)
    if task is None:
        return None
    event = TaskEvent(task_id=task.id, at=now, actor_id=actor_id, action=REPORTER_CONFIRMED,
                      from_status=task.status, to_status=task.status, data={"by": "reporter"})
    uow.session.add(event)
    await uow.session.flush()
    # The version stays, so the edit's key names the event (an edit for this version may
    # already have been sent).
    await queue_card_edits(uow, task.id, now, tag=f"e{event.id}")
    return event


async def first_due_at(uow: UnitOfWork, task: Task) -> datetime:
    """The deadline the task was created with (kept in its "created" event); for a task
    created before that was recorded, its current deadline."""
    data = await uow.session.scalar(
        select(TaskEvent.data).where(TaskEvent.task_id == task.id, TaskEvent.action == CREATED)
        .order_by(TaskEvent.id).limit(1)
    )
    raw = (data or {}).get("due_at")
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            log.warning("task %s: unreadable first deadline %r", task.id, raw)
    return task.due_at


async def rework_deadline(uow: UnitOfWork, task: Task, now: datetime) -> dict[str, object]:
    """The columns a returned or reopened task gets: a fresh deadline, as long from now as the
    task was first given (bot.domain.tasks.rework_allowance), and the scheduler's marks about
    the old deadline cleared so it reminds about the new one. Like every deadline it is the end
    of a local day (bot.domain.tasks.rework_due). escalation_level is left as it
    is: an escalation already announced stands, and the scheduler escalates further only once
    the new deadline has passed."""
    due = rework_due(task.created_at, await first_due_at(uow, task), now, default_tz())
    return {"due_at": due, "reminded_before_at": None, "reminded_due_at": None,
            "last_overdue_reminder_at": None}


async def _bump(
    uow: UnitOfWork, task: Task, expected_version: int, action: Action, values: dict[str, object],
    presser_id: int | None = None,
) -> None:
    """The guarded UPDATE: 0 rows means someone else moved the task first."""
    result = await uow.session.execute(
        update(Task)
        .where(Task.id == task.id, Task.version == expected_version)
        .values(version=expected_version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await uow.session.refresh(task)
        await _explain_stale(uow, task, action, presser_id)
    await uow.session.refresh(task)


async def _verification_verdict(
    uow: UnitOfWork, task: Task, action: Action, verdict: Verdict | str | None
) -> Verdict | None:
    """For a checklist task, the item answered again; None for other tasks."""
    if task.inspection_id is None or task.item_key is None:
        return None
    if verdict is None:
        if action is Action.VERIFY_PASS:
            raise DomainError("task.verdict_required")
        return Verdict.NONCOMPLIANT
    v = Verdict(verdict)
    if (action is Action.VERIFY_PASS) != (v in VERIFY_PASS_VERDICTS):
        raise DomainError("task.verdict_mismatch")
    return v


# ---- the site's current answers and score --------------------------------------------------


async def record_site_items(
    uow: UnitOfWork, *, site_id: int, standard_id: str, standard_hash: str,
    verdicts: Mapping[str, Verdict | str], source: str, source_id: int, now: datetime,
) -> None:
    """Make these the site's current verdicts for these items (inspection or re-check).

    One read of the rows that exist, then the updates and the inserts each in one batch: a
    17-item inspection costs a handful of statements, not two or four per item.
    """
    values = {key: Verdict(v).value for key, v in verdicts.items()}
    if not values:
        return
    session = uow.session
    existing = {row.item_key: row for row in await session.scalars(
        select(SiteItem).where(SiteItem.site_id == site_id,
                               SiteItem.standard_id == standard_id,
                               SiteItem.item_key.in_(list(values))))}
    missing = [key for key in values if key not in existing]
    if missing:
        try:
            async with session.begin_nested():
                session.add_all(SiteItem(
                    site_id=site_id, standard_id=standard_id, item_key=key,
                    standard_hash=standard_hash, verdict=values[key], source=source,
                    source_id=source_id, updated_at=now) for key in missing)
        except IntegrityError:
            # Another inspection of the same site wrote some of them at the same moment.
            for key in missing:
                row = await session.get(SiteItem, (site_id, standard_id, key))
                if row is None:
                    async with session.begin_nested():
                        session.add(SiteItem(
                            site_id=site_id, standard_id=standard_id, item_key=key,
                            standard_hash=standard_hash, verdict=values[key], source=source,
                            source_id=source_id, updated_at=now))
                else:
                    existing[key] = row
    for key, row in existing.items():
        row.standard_hash, row.verdict, row.source, row.source_id, row.updated_at = (
            standard_hash, values[key], source, source_id, now)


async def _record_verification(uow: UnitOfWork, task: Task, verdict: Verdict,
                               now: datetime) -> None:
    inspection = await uow.session.get(Inspection, task.inspection_id)
    if inspection is None or task.item_key is None or task.site_id is None:
        return
    row = await uow.session.get(SiteItem, (task.site_id, inspection.standard_id, task.item_key))
    if row is not None and row.source == "inspection" and row.source_id != inspection.id:
        # A later inspection has answered this item since: its answer is the current one.
        return
    await record_site_items(
        uow, site_id=task.site_id, standard_id=inspection.standard_id,
        standard_hash=inspection.standard_hash, verdicts={task.item_key: verdict},
        source="verification", source_id=task.id, now=now)


_standards: dict[str, Standard] = {}


async def standard_of(uow: UnitOfWork, content_hash: str) -> Standard:
    """A pinned standard version, from its snapshot (cached: versions never change)."""
    standard = _standards.get(content_hash)
    if standard is None:
        snapshot = await uow.session.get(StandardVersion, content_hash)
        if snapshot is None:
            raise DomainError("inspect.standard_missing")
        standard = _standards[content_hash] = Standard.from_dict(snapshot.body)
    return standard


async def current_site_score(uow: UnitOfWork, site_id: int) -> Score | None:
    """The site's score now: its current verdicts under the latest standard version used."""
    rows = list((await uow.session.scalars(
        select(SiteItem).where(SiteItem.site_id == site_id)
        .order_by(SiteItem.updated_at.desc())
    )).all())
    if not rows:
        return None
    latest = rows[0]
    standard = await standard_of(uow, latest.standard_hash)
    verdicts = {r.item_key: r.verdict for r in rows
                if r.standard_hash == latest.standard_hash and r.standard_id == standard.id}
    return compute_score(standard, verdicts)


# ---- escalation (the scheduler moves it; this records it) ---------------------------------


async def escalate(uow: UnitOfWork, task_id: int, level: int, now: datetime) -> Task | None:
    """Raise the task's escalation level and record an "escalated" event.

    Returns the task only when this call raised the level; None when the task is closed or gone,
    or already at (or above) that level, so a job run twice announces nothing twice. The
    task's cards are edited through the outbox; the scheduler sends the escalation messages.
    """
    task = await uow.session.get(Task, task_id)
    if task is None or task.status == TaskState.CLOSED.value:
        return None
    if level <= task.escalation_level:
        return None  # already there: nothing recorded, nothing for the caller to announce
    version = task.version
    from_level = task.escalation_level
    result = await uow.session.execute(
        update(Task)
        .where(Task.id == task.id, Task.version == version)
        .values(version=version + 1, escalation_level=level, escalated_at=now)
        .execution_options(synchronize_session=False)
    )
    await uow.session.refresh(task)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        # Someone acted on the task meanwhile; look again (a press or a second job run).
        return await escalate(uow, task_id, level, now)
    unit = await uow.session.get(Unit, task.unit_id)
    target = escalation_target(await _units(uow), unit, level) if unit else None
    event = TaskEvent(task_id=task.id, at=now, actor_id=None, action=EVENTS[Action.ESCALATE],
                      from_status=task.status, to_status=task.status,
                      data={"level": level, "from_level": from_level,
                            "target_unit_id": target.id if target else None})
    uow.session.add(event)
    await uow.session.flush()
    await queue_card_edits(uow, task.id, now)
    await publish(uow, "task.changed", task=task, event=event)
    return task


async def reopen_task(
    uow: UnitOfWork, task_id: int, *, actor_id: int | None, reason: str, now: datetime
) -> Task | None:
    """The reporter says the problem is still there: a fixed or closed task goes back to the
    unit as rework (returned). No role check: the reports feature decides who may dispute.
    Returns None when there is nothing to reopen."""
    task = await uow.session.get(Task, task_id)
    if task is None or task.status not in (TaskState.CLOSED.value,
                                           TaskState.FIX_SUBMITTED.value):
        return None
    from_state = task.status
    await _bump(uow, task, task.version, Action.REOPEN,
                {"status": TaskState.RETURNED.value, "closed_at": None,
                 "reopen_count": task.reopen_count + 1,
                 **await rework_deadline(uow, task, now)})
    event = TaskEvent(task_id=task.id, at=now, actor_id=actor_id, action=EVENTS[Action.REOPEN],
                      from_status=from_state, to_status=TaskState.RETURNED.value,
                      reason=reason, data={"by": "reporter"})
    uow.session.add(event)
    await uow.session.flush()
    await close_notices(uow, task.id)
    await tell_groups_returned(uow, task, event)
    await queue_card_edits(uow, task.id, now)
    await publish(uow, "task.changed", task=task, event=event)
    return task


async def queue_card_edits(uow: UnitOfWork, task_id: int, now: datetime, *,
                           chats: Iterable[int] | None = None, tag: str = "") -> int:
    """Edit the cards (all of them, or those in `chats`) through the outbox: for changes made
    where no bot is at hand (a job, another feature's service), and for a card a handler
    could not edit directly (flood control, a network error), so it is retried.

    A card posted as a photo has a caption, one posted as a text message text; a card the
    outbox did not post (a handler's replacement photo card) goes by whether the task has
    photos."""
    data = await task_data(uow, task_id)
    view = card(data, now)
    outbox = OutboxRepository(uow.session)
    wanted = set(chats) if chats is not None else None
    queued = 0
    for chat_id, message_id in await cards_of(uow, task_id):
        if wanted is not None and chat_id not in wanted:
            continue
        binding = await uow.session.get(GroupBinding, chat_id)
        if binding is not None and binding.unit_id != data.unit_id:
            continue
        params: dict[str, object] = {"message_id": message_id, "parse_mode": "HTML"}
        markup = view.markup()
        if markup is not None:
            params["reply_markup"] = markup
        posted_as = await uow.session.scalar(
            select(OutboxMessage.method)
            .where(OutboxMessage.chat_id == chat_id, OutboxMessage.sent_message_id == message_id,
                   OutboxMessage.purpose == CARD_PURPOSE, OutboxMessage.ref_id == task_id)
            .limit(1))
        photo_card = posted_as == "sendPhoto" if posted_as is not None else data.has_photos
        if photo_card:
            method, params["caption"] = "editMessageCaption", view.text
        else:
            method, params["text"] = "editMessageText", view.text
        key = f"task:{task_id}:edit:{chat_id}:{data.version}" + (f":{tag}" if tag else "")
        if await outbox.enqueue(key, chat_id,
                                method, params):
            queued += 1
    return queued


# ---- lists ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskList:
    title_key: str
    tasks: list[TaskData]
    unit_name: str | None = None


async def list_tasks(
    uow: UnitOfWork, *, unit_id: int | None = None, states: Sequence[TaskState] = (),
    overdue: bool = False, now: datetime, limit: int = LIST_LIMIT,
) -> list[Task]:
    """Tasks by deadline, earliest first; by default every task not yet closed."""
    wanted = [s.value for s in (states or ACTIVE_STATES)]
    stmt = select(Task).where(Task.status.in_(wanted))
    if unit_id is not None:
        stmt = stmt.where(Task.unit_id == unit_id)
    if overdue:
        stmt = stmt.where(Task.status.in_([s.value for s in UNIT_TODO_STATES]),
                          Task.due_at < now)
    return list((await uow.session.scalars(stmt.order_by(Task.due_at, Task.id)
                                           .limit(limit))).all())


async def awaiting_verification(uow: UnitOfWork, person: Person,
                                limit: int = LIST_LIMIT) -> list[Task]:
    """Fixes waiting for a check, oldest first, leaving out those this person fixed."""
    stmt = (select(Task).where(Task.status == TaskState.FIX_SUBMITTED.value,
                               or_(Task.fixed_by.is_(None), Task.fixed_by != person.id))
            .order_by(Task.fixed_at, Task.id).limit(limit))
    return list((await uow.session.scalars(stmt)).all())


async def tasks_for(
    uow: UnitOfWork, person: Person, flt: TaskFilter, now: datetime, *,
    group_unit_id: int | None = None,
) -> TaskList:
    """What /tasks shows this person (or, in a bound group, that group's unit)."""
    from bot.services.people import find_one_unit

    if group_unit_id is not None:
        unit = await uow.session.get(Unit, group_unit_id)
        tasks = await list_tasks(uow, unit_id=group_unit_id, now=now)
        return TaskList("task.list.group", await _data(uow, tasks),
                        unit.name_zh if unit else None)
    role = role_of(person) or Role.RESIDENT
    if role >= Role.INSPECTOR:
        if flt.unit_query is None and not flt.states and not flt.overdue and role < Role.ADMIN:
            tasks = await awaiting_verification(uow, person)
            return TaskList("task.list.to_verify", await _data(uow, tasks))
        unit_id = None
        unit_name = None
        if flt.unit_query is not None:
            unit = await find_one_unit(uow, flt.unit_query)
            unit_id, unit_name = unit.id, unit.name_zh
        tasks = await list_tasks(uow, unit_id=unit_id, states=flt.states, overdue=flt.overdue,
                                 now=now)
        return TaskList("task.list.filtered", await _data(uow, tasks), unit_name)
    if role >= Role.UNIT_MEMBER and person.unit_id is not None:
        unit = await uow.session.get(Unit, person.unit_id)
        states = flt.states or UNIT_TODO_STATES
        tasks = await list_tasks(uow, unit_id=person.unit_id, states=states,
                                 overdue=flt.overdue, now=now)
        return TaskList("task.list.unit", await _data(uow, tasks),
                        unit.name_zh if unit else None)
    raise NotAllowed("error.role_required", role=f"role.{Role.UNIT_MEMBER.key}")


async def _data(uow: UnitOfWork, tasks: Iterable[Task]) -> list[TaskData]:
    return [await task_data(uow, t.id) for t in tasks]


async def may_see(uow: UnitOfWork, person: Person, task: Task) -> bool:
    role = role_of(person) or Role.RESIDENT
    return role >= Role.INSPECTOR or is_unit_member(person, task)


# ---- direct findings (/task) ---------------------------------------------------------------


@dataclass(frozen=True)
class FindingTarget:
    unit: Unit
    site: Site | None


async def finding_target(uow: UnitOfWork, query: str) -> FindingTarget:
    """A unit by name or code, or a site (whose unit is responsible for it)."""
    from bot.services.people import find_one_unit
    from db.repositories import SiteRepository

    try:
        return FindingTarget(await find_one_unit(uow, query), None)
    except DomainError as unit_error:
        sites = await SiteRepository(uow.session).search(query)
        exact = [s for s in sites if s.name == query or s.code == query]
        chosen = exact[0] if len(exact) == 1 else sites[0] if len(sites) == 1 else None
        if chosen is None:
            raise unit_error
        unit = await uow.session.get(Unit, chosen.unit_id)
        assert unit is not None
        return FindingTarget(unit, chosen)


async def unattached_photos(uow: UnitOfWork, person: Person, chat_id: int,
                            after_message_id: int) -> list[int]:
    """Photos this person sent in their chat after a prompt, not yet part of any task."""
    rows = await uow.session.scalars(
        select(Photo.id)
        .outerjoin(TaskPhoto, TaskPhoto.photo_id == Photo.id)
        .where(and_(Photo.uploaded_by == person.id, Photo.chat_id == chat_id,
                    Photo.message_id > after_message_id, TaskPhoto.task_id.is_(None)))
        .order_by(Photo.id)
    )
    return list(rows.all())


async def add_photo(uow: UnitOfWork, photo: Photo) -> Photo:
    """Store a photo row once per (chat, message): a redelivered message adds nothing."""
    existing = await uow.session.scalar(
        select(Photo).where(Photo.chat_id == photo.chat_id, Photo.message_id == photo.message_id)
    )
    if existing is not None:
        return existing
    uow.session.add(photo)
    await uow.session.flush()
    return photo


__all__ = [
    "Outcome",
    "TaskList",
    "act",
    "begin_input",
    "create_task",
    "current_site_score",
    "escalate",
    "escalation_target",
    "history",
    "list_tasks",
    "note_reporter_confirmed",
    "queue_card_edits",
    "queue_cards",
    "record_site_items",
    "reopen_task",
    "task_data",
    "tasks_for",
]
