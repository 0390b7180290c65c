"""The task service against a real, migrated database (SQLite, and PostgreSQL when set)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.errors import DomainError, NotAllowed, StaleAction
from bot.domain.scoring import compute_score
from bot.domain.standards import Verdict
from bot.domain.tasks import Action, TaskFilter, TaskState
from bot.media.phash import signed64
from bot.media.store import MediaStore
from bot.render.refusals import explain
from bot.render.tasks import default_tz
from bot.services import tasks as svc
from bot.services.catalog import StandardCatalog
from bot.services.events import EventBus
from bot.services.inspections import InspectionService
from db.models import (
    GroupBinding,
    OutboxMessage,
    Person,
    Photo,
    Site,
    SiteItem,
    Task,
    TaskEvent,
    TaskPhoto,
    Unit,
)
from db.outbox_keys import dedup_key
from db.uow import UnitOfWork, UnitOfWorkFactory
from tests.conftest import FakeClock
from tests.db.test_inspection_service import plan, start, submit, walk

ROOT = Path(__file__).resolve().parents[2]
Sessions = async_sessionmaker[AsyncSession]
C, B, N = Verdict.COMPLIANT, Verdict.BASIC, Verdict.NONCOMPLIANT

INSPECTOR, INSPECTOR_2, RESIDENT, MEMBER, ADMIN, OTHER_MEMBER, MEMBER_2 = (
    501, 502, 503, 504, 505, 506, 507)
GROUP, OTHER_GROUP = -1001, -1002


@dataclass(frozen=True)
class World:
    office: int
    subdistrict: int
    community: int
    other: int
    hotel: int


@pytest.fixture(scope="module")
def catalog() -> StandardCatalog:
    return StandardCatalog.load(ROOT / "standards")


@pytest.fixture
async def world(sessions: Sessions, clock: FakeClock) -> World:
    async with UnitOfWork(sessions) as uow:
        s = uow.session
        office = Unit(code="office", name_zh="区创文办", kind="office")
        s.add(office)
        await s.flush()
        sub = Unit(code="sub", name_zh="卧龙寺街道", kind="subdistrict", parent_id=office.id)
        s.add(sub)
        await s.flush()
        community = Unit(code="hq", name_zh="后祁街社区", kind="community", parent_id=sub.id)
        other = Unit(code="xj", name_zh="新建路社区", kind="community", parent_id=sub.id)
        s.add_all([community, other])
        await s.flush()
        hotel = Site(code="h1", name="东岭皇冠假日酒店", site_type="hotel", unit_id=community.id)
        s.add(hotel)
        people = [
            (INSPECTOR, "张督查", "inspector", office.id),
            (INSPECTOR_2, "李测评", "inspector", office.id),
            (RESIDENT, "居民甲", "resident", None),
            (MEMBER, "杨社区", "unit_member", community.id),
            (MEMBER_2, "钱社区", "unit_member", community.id),
            (ADMIN, "王管理", "admin", office.id),
            (OTHER_MEMBER, "赵新建", "unit_member", other.id),
        ]
        s.add_all(Person(id=i, first_name=n, role=r, unit_id=u, created_at=clock.now)
                  for i, n, r, u in people)
        s.add_all([
            GroupBinding(chat_id=GROUP, unit_id=community.id, title="后祁街", active=True,
                         bound_at=clock.now),
            GroupBinding(chat_id=OTHER_GROUP, unit_id=other.id, title="新建路", active=True,
                         bound_at=clock.now),
        ])
        await s.flush()
        w = World(office.id, sub.id, community.id, other.id, hotel.id)
        await uow.commit()
    return w


@dataclass
class Published:
    """Every "task.changed" published by units of work from `uow`: (task id, event action)."""

    uow: UnitOfWorkFactory
    seen: list[tuple[int, str]]


@pytest.fixture
def published(sessions: Sessions) -> Published:
    seen: list[tuple[int, str]] = []

    async def collect(uow: UnitOfWork, **payload: Any) -> None:
        seen.append((payload["task"].id, payload["event"].action))

    bus = EventBus()
    bus.subscribe("task.changed", collect)
    return Published(UnitOfWorkFactory(sessions, events=bus), seen)


# ---- helpers: one unit of work per update, as the handlers do --------------------------------


def _open(db: Sessions | UnitOfWorkFactory) -> UnitOfWork:
    return db() if isinstance(db, UnitOfWorkFactory) else UnitOfWork(db)


async def new_task(db: Sessions | UnitOfWorkFactory, world: World, now: datetime,
                   **kw: Any) -> int:
    async with _open(db) as uow:
        args: dict[str, Any] = dict(source="finding", unit_id=world.community, title="楼道堆物",
                                    due_at=now + timedelta(days=3), created_by=INSPECTOR,
                                    now=now)
        args.update(kw)
        task = await svc.create_task(uow, **args)
        await uow.commit()
        return task.id


async def do(db: Sessions | UnitOfWorkFactory, pid: int | None, task_id: int, action: Action,
             now: datetime, *, version: int | None = None, **kw: Any) -> svc.Outcome:
    async with _open(db) as uow:
        person = await uow.session.get(Person, pid) if pid is not None else None
        if version is None:
            version = (await svc.get_task(uow, task_id)).version
        outcome = await svc.act(uow, person, task_id, action, expected_version=version,
                                now=now, **kw)
        await uow.commit()
        return outcome


def spread(n: int) -> int:
    """A stand-in perceptual hash per message: different pictures differ in many bits (the same
    value for every photo would make each after-photo a duplicate of the before-photo)."""
    return signed64((n * 0x9E37_79B9_7F4A_7C15 + 0x1234_5678) & ((1 << 64) - 1))


async def photo(sessions: Sessions, pid: int, message_id: int) -> int:
    async with UnitOfWork(sessions) as uow:
        p = await svc.add_photo(uow, Photo(
            sha256=f"{message_id:064x}", telegram_file_id=f"file-{message_id}", width=640,
            height=480, size=1000, phash=spread(message_id), chat_id=pid, message_id=message_id,
            uploaded_by=pid))
        await uow.commit()
        return p.id


async def fix(db: Sessions | UnitOfWorkFactory, pid: int, task_id: int, now: datetime,
              message_id: int, note: str = "已清理") -> svc.Outcome:
    """The unit member's private flow: press, send a photo, write a note, press Done."""
    await begin_fix(db, pid, task_id)
    async with _open(db) as uow:
        person = await uow.session.get(Person, pid)
        assert person is not None
        await svc.add_draft_photo(uow, person, task_id, Photo(
            sha256=f"{message_id:064x}", telegram_file_id=f"after-{message_id}", width=640,
            height=480, size=1000, phash=spread(message_id), chat_id=pid, message_id=message_id,
            uploaded_by=pid))
        await svc.add_note(uow, person, task_id, note, now)
        await uow.commit()
    return await do(db, pid, task_id, Action.SUBMIT_FIX, now)


async def begin_fix(db: Sessions | UnitOfWorkFactory, pid: int, task_id: int) -> None:
    """提交整改 pressed: the person's next private photos are this fix's after-photos."""
    async with _open(db) as uow:
        person = await uow.session.get(Person, pid)
        assert person is not None
        task = await svc.get_task(uow, task_id)
        await svc.begin_input(uow, person, task_id, Action.SUBMIT_FIX, task.version)
        await uow.commit()


async def load(sessions: Sessions, task_id: int) -> Task:
    async with sessions() as s:
        task = await s.get(Task, task_id)
        assert task is not None
        return task


async def outbox(sessions: Sessions) -> list[OutboxMessage]:
    async with sessions() as s:
        return list((await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def task_events(sessions: Sessions, task_id: int) -> list[TaskEvent]:
    async with UnitOfWork(sessions) as uow:
        return await svc.history(uow, task_id)


# ---- creating -------------------------------------------------------------------------------


async def test_create_records_queues_a_card_and_publishes(
    sessions: Sessions, world: World, clock: FakeClock, published: Published
) -> None:
    before = await photo(sessions, INSPECTOR, 1)
    tid = await new_task(published.uow, world, clock.now, before_photo_ids=[before],
                         site_id=world.hotel)
    task = await load(sessions, tid)
    assert (task.status, task.version, task.unit_id) == ("open", 0, world.community)
    [event] = await task_events(sessions, tid)
    assert (event.action, event.actor_id, event.to_status) == ("created", INSPECTOR, "open")
    # One card, as a photo with the before photo, in the unit's group only.
    [card] = await outbox(sessions)
    assert (card.chat_id, card.method, card.purpose, card.ref_id) == (
        GROUP, "sendPhoto", "task_card", tid)
    # The stored, metadata-free copy, never the uploader's own file id.
    assert card.params["file"] == MediaStore.relpath(f"{1:064x}")
    assert "photo" not in card.params
    assert f"#{tid}" in str(card.params["caption"]) and "楼道堆物" in str(card.params["caption"])
    labels = [b["text"] for row in card.params["reply_markup"]["inline_keyboard"]  # type: ignore[index]
              for b in row]
    assert any("签收" in label for label in labels)
    assert published.seen == [(tid, "created")]


async def test_a_card_without_photos_is_a_text_message(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    await new_task(sessions, world, clock.now)
    [card] = await outbox(sessions)
    assert card.method == "sendMessage" and "楼道堆物" in str(card.params["text"])


async def test_the_delivered_card_is_remembered_for_editing(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)
    async with sessions() as s, s.begin():
        await deliver_card(s, tid, GROUP, 77)
        # A card that lands in a group of another unit (re-routed meanwhile) is where it is,
        # but it does not speak for the task: it is not edited as the task's.
        await deliver_card(s, tid, OTHER_GROUP, 78)
    async with UnitOfWork(sessions) as uow:
        assert await uow.cards.places(tid) == [(GROUP, 77), (OTHER_GROUP, 78)]
        placed = await uow.cards.in_chat(tid, GROUP)
        assert placed is not None and (placed.version, placed.has_photo) == (0, False)
        assert await svc.queue_card_edits(uow, tid, clock.now) == 1
        assert await svc.chats_with_queued_edits(uow, tid) == {GROUP}


async def test_a_card_stale_on_arrival_is_brought_up_to_date_behind_itself(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    """The task moved while its card was on its way: the card records the version it was
    rendered at (outbox.ref_version), and an edit to the task's state is queued behind it."""
    tid = await new_task(sessions, world, clock.now)
    await do(sessions, MEMBER, tid, Action.ACCEPT, clock.now)  # no card known yet: no edit
    async with sessions() as s, s.begin():
        await deliver_card(s, tid, GROUP, 90)
    async with UnitOfWork(sessions) as uow:
        placed = await uow.cards.in_chat(tid, GROUP)
        assert placed is not None and placed.version == 0 and placed.message_id == 90
    edit = (await outbox(sessions))[-1]
    assert edit.dedup_key == f"task:{tid}:edit:{GROUP}:1:caught-up"
    assert (edit.chat_id, edit.params["message_id"]) == (GROUP, 90)


async def deliver_card(s: AsyncSession, task_id: int, chat_id: int, message_id: int) -> None:
    """What the outbox does once Telegram accepted the task's card in `chat_id`: the row is
    marked sent and the card hook runs, in one transaction."""
    row = await s.scalar(select(OutboxMessage).where(
        OutboxMessage.purpose == svc.CARD_PURPOSE, OutboxMessage.ref_id == task_id,
        OutboxMessage.chat_id == chat_id))
    if row is None:  # a card queued before the task was re-routed away from this chat
        task = await s.get(Task, task_id)
        assert task is not None
        row = OutboxMessage(
            dedup_key=dedup_key("task_card", task_id, chat_id, "new", task.version),
            chat_id=chat_id, method="sendMessage", params={}, purpose=svc.CARD_PURPOSE,
            ref_id=task_id, ref_version=task.version)
        s.add(row)
    row.status, row.sent_message_id = "sent", message_id
    await svc.card_delivered(UnitOfWork.within(s), row, chat_id, message_id)


# ---- the whole loop -------------------------------------------------------------------------


async def test_accept_fix_verify_close_with_history(
    sessions: Sessions, world: World, clock: FakeClock, published: Published
) -> None:
    tid = await new_task(published.uow, world, clock.now)
    clock.advance(hours=1)
    await do(published.uow, MEMBER, tid, Action.ACCEPT, clock.now)
    clock.advance(hours=5)
    fixed = await fix(published.uow, MEMBER_2, tid, clock.now, 500, note="杂物已清运")
    assert fixed.task.status == "fix_submitted" and fixed.task.fixed_by == MEMBER_2
    # Whoever filed it (an inspector) is asked in private to check it.
    told = (await outbox(sessions))[-1]
    assert told.chat_id == INSPECTOR and "待复核" in str(told.params["text"])
    clock.advance(hours=1)
    done = await do(published.uow, INSPECTOR_2, tid, Action.VERIFY_PASS, clock.now)
    assert done.task.status == "closed" and done.task.closed_at == clock.now
    assert done.warning is None
    history = await task_events(sessions, tid)
    assert [(e.action, e.actor_id) for e in history] == [
        ("created", INSPECTOR), ("accepted", MEMBER), ("note", MEMBER_2),
        ("fix_submitted", MEMBER_2), ("verified", INSPECTOR_2)]
    submitted = history[3]
    assert submitted.reason == "杂物已清运" and len(submitted.data["photos"]) == 1  # type: ignore[arg-type]
    async with sessions() as s:
        kinds = list(await s.scalars(select(TaskPhoto.kind).where(TaskPhoto.task_id == tid)))
    assert kinds == ["after"]
    assert [a for _, a in published.seen] == ["created", "accepted", "fix_submitted", "verified"]
    async with UnitOfWork(sessions) as uow:
        data = await svc.task_data(uow, tid)
    assert data.state is TaskState.CLOSED and data.after_file_ids == ("after-500",)


async def test_a_fix_needs_an_after_photo(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)
    await do(sessions, MEMBER, tid, Action.ACCEPT, clock.now)
    with pytest.raises(DomainError) as exc:
        await do(sessions, MEMBER, tid, Action.SUBMIT_FIX, clock.now)
    assert exc.value.key == "task.after_photo_required"
    assert (await load(sessions, tid)).status == "accepted"


async def test_return_then_rework_then_close(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)
    await do(sessions, MEMBER, tid, Action.ACCEPT, clock.now)
    await fix(sessions, MEMBER, tid, clock.now, 600)
    with pytest.raises(DomainError) as exc:
        await do(sessions, INSPECTOR, tid, Action.VERIFY_RETURN, clock.now, reason="")
    assert exc.value.key == "task.reason_required"
    back = await do(sessions, INSPECTOR, tid, Action.VERIFY_RETURN, clock.now,
                    reason="地面仍有杂物")
    assert back.task.status == "returned" and back.task.reopen_count == 1
    # Returned work goes straight to a new fix, no second 签收.
    with pytest.raises(DomainError) as exc:
        await do(sessions, MEMBER, tid, Action.ACCEPT, clock.now)
    assert exc.value.key == "task.not_allowed_in_state"
    await fix(sessions, MEMBER, tid, clock.now, 601)
    await do(sessions, INSPECTOR, tid, Action.VERIFY_PASS, clock.now)
    async with UnitOfWork(sessions) as uow:
        data = await svc.task_data(uow, tid)
    # The newest after photo is the one the card shows first.
    assert data.after_file_ids == ("after-601", "after-600") and data.reopen_count == 1


async def test_refusals_name_what_is_wrong(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)
    for pid in (RESIDENT, OTHER_MEMBER, INSPECTOR):
        with pytest.raises(NotAllowed) as exc:
            await do(sessions, pid, tid, Action.ACCEPT, clock.now)
        assert exc.value.key == "task.not_your_role"
    with pytest.raises(DomainError) as exc:
        await do(sessions, INSPECTOR, tid, Action.VERIFY_PASS, clock.now)
    assert exc.value.key == "task.not_allowed_in_state"
    assert (await load(sessions, tid)).version == 0  # nothing moved


async def test_the_fixer_cannot_check_their_own_fix_unless_admin(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)
    await do(sessions, ADMIN, tid, Action.ACCEPT, clock.now)
    await fix(sessions, ADMIN, tid, clock.now, 700)
    outcome = await do(sessions, ADMIN, tid, Action.VERIFY_PASS, clock.now)
    assert outcome.warning == "task.self_verified_warning"
    assert outcome.event.data == {"self_verified": True}
    assert outcome.task.status == "closed"


async def test_an_old_button_is_stale_and_a_repeat_says_who_did_it(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)
    await do(sessions, MEMBER, tid, Action.ACCEPT, clock.now, version=0)
    with pytest.raises(StaleAction) as exc:
        await do(sessions, MEMBER_2, tid, Action.ACCEPT, clock.now, version=0)
    assert exc.value.key == "task.already_done"
    assert exc.value.values == {"who": "杨社区", "action": "accepted"}
    with pytest.raises(StaleAction) as exc:
        await do(sessions, MEMBER_2, tid, Action.NOT_OURS, clock.now, version=0, reason="x")
    assert exc.value.key == "task.stale"


async def test_two_people_pressing_at_once_move_the_task_once(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)
    results = await asyncio.gather(
        do(sessions, MEMBER, tid, Action.ACCEPT, clock.now, version=0),
        do(sessions, MEMBER_2, tid, Action.ACCEPT, clock.now, version=0),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, svc.Outcome)]
    losses = [r for r in results if isinstance(r, StaleAction)]
    assert len(wins) == 1 and len(losses) == 1, results
    winner = wins[0].task.accepted_by
    assert losses[0].key == "task.already_done"
    assert losses[0].values["who"] == {MEMBER: "杨社区", MEMBER_2: "钱社区"}[winner or 0]
    task = await load(sessions, tid)
    assert task.version == 1
    assert [e.action for e in await task_events(sessions, tid)] == ["created", "accepted"]


# ---- side flows -----------------------------------------------------------------------------


async def test_extension_requested_then_granted_or_refused(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)
    due = (await load(sessions, tid)).due_at
    asked = await do(sessions, MEMBER, tid, Action.REQUEST_EXTENSION, clock.now,
                     reason="等待材料", new_due=due + timedelta(days=7))
    assert asked.task.status == "open" and asked.task.extension_until == due + timedelta(days=7)
    with pytest.raises(DomainError) as exc:
        await do(sessions, MEMBER, tid, Action.REQUEST_EXTENSION, clock.now, reason="再等等")
    assert exc.value.key == "task.extension_pending"
    with pytest.raises(NotAllowed):
        await do(sessions, MEMBER, tid, Action.GRANT_EXTENSION, clock.now)
    granted = await do(sessions, ADMIN, tid, Action.GRANT_EXTENSION, clock.now)
    assert granted.task.due_at == due + timedelta(days=7)
    assert granted.task.extension_until is None
    # A second request can be refused; the deadline stays.
    await do(sessions, MEMBER, tid, Action.REQUEST_EXTENSION, clock.now, reason="还要等",
             new_due=due + timedelta(days=9))
    refused = await do(sessions, ADMIN, tid, Action.REFUSE_EXTENSION, clock.now)
    assert refused.task.due_at == due + timedelta(days=7) and refused.task.extension_until is None
    actions = [e.action for e in await task_events(sessions, tid)]
    assert actions[1:] == ["extension_requested", "extension_granted", "extension_requested",
                           "extension_refused"]


async def test_the_admins_extension_notice_says_how_many_days_were_asked(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    """Issue 11 item 11: the admin deciding an extension reads how many days were asked and
    the deadline they lead to, not only the reason."""
    tid = await new_task(sessions, world, clock.now)
    due = (await load(sessions, tid)).due_at
    await do(sessions, MEMBER, tid, Action.REQUEST_EXTENSION, clock.now,
             reason="等待材料", new_due=due + timedelta(days=7))
    notice = next(m for m in await outbox(sessions) if m.chat_id == ADMIN)
    until = (due + timedelta(days=7)).astimezone(default_tz()).strftime("%Y-%m-%d")
    assert f"申请延期 7 天（至 {until}）：等待材料" in str(notice.params["text"])


async def test_not_ours_then_rerouted_gets_a_card_in_the_new_units_group(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)
    await do(sessions, MEMBER, tid, Action.ACCEPT, clock.now)
    await do(sessions, MEMBER, tid, Action.NOT_OURS, clock.now, reason="属于新建路社区")
    async with UnitOfWork(sessions) as uow:
        assert (await svc.task_data(uow, tid)).reroute_claim == "属于新建路社区"
    with pytest.raises(DomainError) as exc:
        await do(sessions, ADMIN, tid, Action.REROUTE, clock.now, new_unit_id=world.community)
    assert exc.value.key == "task.reroute_same_unit"
    moved = await do(sessions, ADMIN, tid, Action.REROUTE, clock.now, new_unit_id=world.other)
    assert (moved.task.unit_id, moved.task.status, moved.task.accepted_by) == (
        world.other, "open", None)
    assert moved.old_unit_id == world.community
    sent = [(m.chat_id, m.purpose) for m in await outbox(sessions)]
    # The card in the first unit's group, the admin asked in private, the new unit's card.
    assert sent == [(GROUP, "task_card"), (ADMIN, svc.NOTICE_PURPOSE),
                    (OTHER_GROUP, "task_card")]
    asked = (await outbox(sessions))[1]
    assert "属于新建路社区" in str(asked.params["text"])
    async with UnitOfWork(sessions) as uow:
        assert (await svc.task_data(uow, tid)).reroute_claim is None
    # The old unit can no longer act; the new one can.
    with pytest.raises(NotAllowed):
        await do(sessions, MEMBER, tid, Action.ACCEPT, clock.now)
    await do(sessions, OTHER_MEMBER, tid, Action.ACCEPT, clock.now)


async def test_a_claim_can_be_refused(sessions: Sessions, world: World, clock: FakeClock) -> None:
    tid = await new_task(sessions, world, clock.now)
    await do(sessions, MEMBER, tid, Action.NOT_OURS, clock.now, reason="不归我们")
    kept = await do(sessions, ADMIN, tid, Action.REFUSE_REROUTE, clock.now, reason="属地负责")
    assert kept.task.unit_id == world.community
    with pytest.raises(DomainError) as exc:
        await do(sessions, ADMIN, tid, Action.REFUSE_REROUTE, clock.now)
    assert exc.value.key == "task.no_reroute_pending"


async def test_reopen_by_an_admin_and_by_a_reporter(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)
    await do(sessions, MEMBER, tid, Action.ACCEPT, clock.now)
    await fix(sessions, MEMBER, tid, clock.now, 800)
    await do(sessions, INSPECTOR, tid, Action.VERIFY_PASS, clock.now)
    reopened = await do(sessions, ADMIN, tid, Action.REOPEN, clock.now, reason="复查又发现")
    assert reopened.task.status == "returned" and reopened.task.closed_at is None
    await fix(sessions, MEMBER, tid, clock.now, 801)
    async with UnitOfWork(sessions) as uow:
        task = await svc.reopen_task(uow, tid, actor_id=RESIDENT, reason="还在", now=clock.now)
        await uow.commit()
    assert task is not None and task.status == "returned" and task.reopen_count == 2
    async with UnitOfWork(sessions) as uow:
        assert await svc.reopen_task(uow, tid, actor_id=RESIDENT, reason="x",
                                     now=clock.now) is None
        data = await svc.task_data(uow, tid)
    # The resident who disputed is not named on the card.
    assert data.events[-1].actor is None and data.events[-1].actor_id == RESIDENT


# ---- relapse, escalation ---------------------------------------------------------------------


async def close_one(sessions: Sessions, world: World, clock: FakeClock, item: str) -> int:
    tid = await new_task(sessions, world, clock.now, site_id=world.hotel, item_key=item)
    await do(sessions, MEMBER, tid, Action.ACCEPT, clock.now)
    await fix(sessions, MEMBER, tid, clock.now, 900 + tid)
    await do(sessions, INSPECTOR, tid, Action.VERIFY_PASS, clock.now)
    return tid


async def test_the_same_item_failing_within_the_window_is_a_relapse(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    first = await close_one(sessions, world, clock, "9")
    clock.advance(weeks=7)
    again = await new_task(sessions, world, clock.now, site_id=world.hotel, item_key="9")
    assert (await load(sessions, again)).relapse_of_id == first
    other_item = await new_task(sessions, world, clock.now, site_id=world.hotel, item_key="3")
    assert (await load(sessions, other_item)).relapse_of_id is None
    # Outside the window it is a new problem; the window is configurable.
    clock.advance(weeks=2)
    late = await new_task(sessions, world, clock.now, site_id=world.hotel, item_key="9")
    assert (await load(sessions, late)).relapse_of_id is None
    longer = await new_task(sessions, world, clock.now, site_id=world.hotel, item_key="9",
                            relapse_weeks=12)
    assert (await load(sessions, longer)).relapse_of_id == first
    [created] = [e for e in await task_events(sessions, longer) if e.action == "created"]
    assert created.data["relapse_of"] == first


async def test_escalate_is_recorded_once_and_not_for_closed_tasks(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)
    async with sessions() as s, s.begin():
        await deliver_card(s, tid, GROUP, 41)
    async with UnitOfWork(sessions) as uow:
        task = await svc.escalate(uow, tid, 1, clock.now)
        await uow.commit()
    assert task is not None and task.escalation_level == 1 and task.escalated_at == clock.now
    # The card in the group is edited (through the outbox: a job has no bot at hand).
    edit = (await outbox(sessions))[-1]
    assert (edit.chat_id, edit.method, edit.params["message_id"]) == (
        GROUP, "editMessageText", 41)
    assert "已升级督办" in str(edit.params["text"]) and "卧龙寺街道" in str(edit.params["text"])
    async with UnitOfWork(sessions) as uow:
        assert await svc.escalate(uow, tid, 1, clock.now) is None
        assert await svc.escalate(uow, tid, 0, clock.now) is None
        data = await svc.task_data(uow, tid)
        await uow.commit()
    assert data.escalation_unit == "卧龙寺街道"
    escalated = [e for e in await task_events(sessions, tid) if e.action == "escalated"]
    assert len(escalated) == 1 and escalated[0].data["level"] == 1
    assert escalated[0].data["target_unit_id"] == world.subdistrict
    closed = await close_one(sessions, world, clock, "5")
    async with UnitOfWork(sessions) as uow:
        assert await svc.escalate(uow, closed, 2, clock.now) is None
        units = list((await uow.session.scalars(select(Unit))).all())
        community = await uow.session.get(Unit, world.community)
        assert community is not None
        target = svc.escalation_target(units, community, 2)
        assert target is not None and target.id == world.office


# ---- inspection tasks: re-answering the item moves the site's score ------------------------


async def test_inspection_failures_become_tasks_and_verification_updates_the_score(
    sessions: Sessions, world: World, clock: FakeClock, catalog: StandardCatalog
) -> None:
    service = InspectionService(catalog)
    hotel = catalog.current["hotel"]
    started = await start(sessions, service, INSPECTOR, world.hotel, clock.now)
    verdicts = plan(hotel)  # items 3 and 9 fail
    view = await walk(sessions, service, started, clock, verdicts)
    _, task_ids, groups = await submit(sessions, service, INSPECTOR, view.inspection_id,
                                       view.step, clock.now)
    assert groups == 1 and len(task_ids) == 2
    cards = [m for m in await outbox(sessions) if m.purpose == "task_card"]
    assert sorted(m.ref_id or 0 for m in cards) == sorted(task_ids)
    # Item 9 had photo evidence: its card shows it; item 3 (static) has none.
    by_task = {m.ref_id: m for m in cards}
    async with sessions() as s:
        nine = (await s.scalars(select(Task).where(Task.item_key == "9"))).one()
        rows = list((await s.scalars(select(SiteItem))).all())
    assert by_task[nine.id].method == "sendPhoto"
    assert len(rows) == len(verdicts)
    async with UnitOfWork(sessions) as uow:
        score = await svc.current_site_score(uow, world.hotel)
    assert score == compute_score(hotel, verdicts)

    await do(sessions, MEMBER, nine.id, Action.ACCEPT, clock.now)
    await fix(sessions, MEMBER, nine.id, clock.now, 950)
    with pytest.raises(DomainError) as exc:
        await do(sessions, INSPECTOR_2, nine.id, Action.VERIFY_PASS, clock.now)
    assert exc.value.key == "task.verdict_required"
    with pytest.raises(DomainError) as exc:
        await do(sessions, INSPECTOR_2, nine.id, Action.VERIFY_PASS, clock.now, verdict=N)
    assert exc.value.key == "task.verdict_mismatch"
    await do(sessions, INSPECTOR_2, nine.id, Action.VERIFY_PASS, clock.now, verdict=B)
    async with UnitOfWork(sessions) as uow:
        score = await svc.current_site_score(uow, world.hotel)
        row = await uow.session.get(SiteItem, (world.hotel, "hotel", "9"))
    assert row is not None and (row.verdict, row.source, row.source_id) == (
        "basic", "verification", nine.id)
    assert score == compute_score(hotel, {**verdicts, "9": B})
    assert score is not None and score.overall is not None
    assert score.overall > (compute_score(hotel, verdicts).overall or 0)


# ---- lists ------------------------------------------------------------------------------------


async def test_lists_fit_the_person(sessions: Sessions, world: World, clock: FakeClock) -> None:
    late = await new_task(sessions, world, clock.now, title="晚的", due_at=clock.now
                          + timedelta(days=5))
    soon = await new_task(sessions, world, clock.now, title="早的", due_at=clock.now
                          + timedelta(days=1))
    elsewhere = await new_task(sessions, world, clock.now, unit_id=world.other, title="别处")
    await do(sessions, MEMBER, late, Action.ACCEPT, clock.now)
    await fix(sessions, MEMBER, late, clock.now, 990)
    clock.advance(days=2)

    async def ids(pid: int, flt: TaskFilter | None = None, group: int | None = None
                  ) -> tuple[str, list[int]]:
        flt = flt or TaskFilter()
        async with UnitOfWork(sessions) as uow:
            person = await uow.session.get(Person, pid)
            assert person is not None
            got = await svc.tasks_for(uow, person, flt, clock.now, group_unit_id=group)
            return got.title_key, [d.id for d in got.tasks]

    assert await ids(MEMBER) == ("task.list.unit", [soon])  # the fixed one waits for a check
    assert await ids(INSPECTOR) == ("task.list.to_verify", [late])
    assert await ids(ADMIN) == ("task.list.filtered", [soon, elsewhere, late])
    assert await ids(ADMIN, TaskFilter(overdue=True)) == ("task.list.filtered", [soon])
    assert (await ids(ADMIN, TaskFilter(unit_query="新建路社区")))[1] == [elsewhere]
    assert (await ids(ADMIN, TaskFilter(states=(TaskState.FIX_SUBMITTED,))))[1] == [late]
    assert await ids(RESIDENT, group=world.community) == ("task.list.group", [soon, late])
    with pytest.raises(NotAllowed):
        await ids(RESIDENT)


# ---- review fixes ------------------------------------------------------------------------------


async def test_who_reported_and_disputed_is_never_named_whatever_their_role(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    """A unit member (杨社区) files a report, follows it up and disputes the fix; a colleague
    who also said "me too" (钱社区) fixes it. Neither is named on the card or in /tasks <id>,
    although neither is a resident: the decision comes from the task's report."""
    from bot.render import tasks as tv
    from db.models import Report, ReportFollower

    async with UnitOfWork(sessions) as uow:
        report = Report(reporter_id=MEMBER, status="accepted", description="楼道堆物",
                        created_at=clock.now, updated_at=clock.now)
        uow.session.add(report)
        await uow.session.flush()
        uow.session.add(ReportFollower(report_id=report.id, person_id=MEMBER_2,
                                       created_at=clock.now))
        report_id = report.id
        await uow.commit()
    tid = await new_task(sessions, world, clock.now, source="report", report_id=report_id,
                         created_by=ADMIN)
    await do(sessions, ADMIN, tid, Action.ACCEPT, clock.now)
    await fix(sessions, MEMBER_2, tid, clock.now, 1200)
    await do(sessions, INSPECTOR, tid, Action.VERIFY_PASS, clock.now)
    async with UnitOfWork(sessions) as uow:
        task = await svc.reopen_task(uow, tid, actor_id=MEMBER, reason="问题仍在", now=clock.now)
        await uow.commit()
    assert task is not None and task.status == "returned"
    async with UnitOfWork(sessions) as uow:
        data = await svc.task_data(uow, tid)
    tz = tv.default_tz()
    card = tv.card(data, clock.now, tz).text
    history = tv.history_text("zh-hans", data, clock.now, tz)
    resident = tv.t("zh-hans", "task.who.resident")
    for text in (card, history):
        assert "杨社区" not in text and "钱社区" not in text, text
        assert resident in text
        assert "张督查" in text  # staff acting are named as before
    assert "王管理" in history
    # The admin pressing an old 重新打开 button is told "a resident" did it, not who.
    with pytest.raises(StaleAction) as exc:
        await do(sessions, ADMIN, tid, Action.REOPEN, clock.now, version=data.version - 1,
                 reason="x")
    assert exc.value.values.get("who") == "resident"
    assert "杨社区" not in explain("zh-hans", exc.value)


async def test_after_photo_drafts_belong_to_whoever_sent_them(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)
    await do(sessions, MEMBER, tid, Action.ACCEPT, clock.now)
    version = (await load(sessions, tid)).version

    async def start_fix(pid: int) -> None:
        async with UnitOfWork(sessions) as uow:
            person = await uow.session.get(Person, pid)
            assert person is not None
            await svc.begin_input(uow, person, tid, Action.SUBMIT_FIX, version)
            await uow.commit()

    async def send(pid: int, message_id: int) -> int:
        async with UnitOfWork(sessions) as uow:
            person = await uow.session.get(Person, pid)
            assert person is not None
            count = await svc.add_draft_photo(uow, person, tid, Photo(
                sha256=f"{message_id:064x}", telegram_file_id=f"after-{message_id}",
                width=640, height=480, size=1000, phash=spread(message_id), chat_id=pid,
                message_id=message_id, uploaded_by=pid))
            await uow.commit()
            return count

    await start_fix(MEMBER)
    assert await send(MEMBER, 1301) == 1
    # A colleague starts the same fix: the first member's photo stays theirs.
    await start_fix(MEMBER_2)
    assert await send(MEMBER_2, 1302) == 1
    assert await send(MEMBER_2, 1303) == 2
    async with UnitOfWork(sessions) as uow:
        mine = await svc.drafts(uow, tid, MEMBER)
        theirs = await svc.drafts(uow, tid, MEMBER_2)
        # The colleague cancels: only their own drafts go.
        await svc.drop_drafts(uow, tid, MEMBER_2)
        await uow.commit()
    assert len(mine) == 1 and len(theirs) == 2
    done = await do(sessions, MEMBER, tid, Action.SUBMIT_FIX, clock.now)
    assert done.event.data["photos"] == mine
    async with UnitOfWork(sessions) as uow:
        data = await svc.task_data(uow, tid)
    assert data.after_file_ids == ("after-1301",)


async def test_a_returned_or_reopened_task_gets_a_fresh_deadline(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    from bot.domain.tasks import end_of_day, is_overdue
    from bot.render.tasks import default_tz

    start_at = clock.now
    tid = await new_task(sessions, world, clock.now)  # due in 3 days
    await do(sessions, MEMBER, tid, Action.ACCEPT, clock.now)
    # An extension does not change what the task was first given.
    await do(sessions, MEMBER, tid, Action.REQUEST_EXTENSION, clock.now, reason="等材料",
             new_due=start_at + timedelta(days=10))
    await do(sessions, ADMIN, tid, Action.GRANT_EXTENSION, clock.now)
    await fix(sessions, MEMBER, tid, clock.now, 1400)
    clock.advance(days=12)  # the verifier took their time: past even the extended deadline
    async with sessions() as s, s.begin():
        task = await s.get(Task, tid)
        assert task is not None
        task.reminded_before_at = task.reminded_due_at = clock.now
        task.last_overdue_reminder_at = clock.now
    async with UnitOfWork(sessions) as uow:
        await svc.escalate(uow, tid, 1, clock.now)
        await uow.commit()

    def fresh(task: Task) -> None:
        # As many days as first given, to the end of the local day.
        assert task.due_at == end_of_day(clock.now + timedelta(days=3), default_tz())
        assert not is_overdue(task.status, task.due_at, clock.now)
        assert (task.reminded_before_at, task.reminded_due_at,
                task.last_overdue_reminder_at) == (None, None, None)
        assert task.escalation_level == 1  # an announced escalation stands

    back = await do(sessions, INSPECTOR, tid, Action.VERIFY_RETURN, clock.now, reason="仍有")
    fresh(back.task)
    fresh(await load(sessions, tid))
    await fix(sessions, MEMBER, tid, clock.now, 1401)
    await do(sessions, INSPECTOR, tid, Action.VERIFY_PASS, clock.now)
    clock.advance(days=20)
    reopened = await do(sessions, ADMIN, tid, Action.REOPEN, clock.now, reason="复查又发现")
    fresh(reopened.task)
    await fix(sessions, MEMBER, tid, clock.now, 1402)
    clock.advance(days=9)
    async with UnitOfWork(sessions) as uow:
        disputed = await svc.reopen_task(uow, tid, actor_id=RESIDENT, reason="还在",
                                         now=clock.now)
        await uow.commit()
    assert disputed is not None
    fresh(await load(sessions, tid))
    # A task given less than a day gets a day.
    short = await new_task(sessions, world, clock.now, due_at=clock.now + timedelta(hours=2))
    await do(sessions, MEMBER, short, Action.ACCEPT, clock.now)
    await fix(sessions, MEMBER, short, clock.now, 1403)
    clock.advance(days=1)
    back = await do(sessions, INSPECTOR, short, Action.VERIFY_RETURN, clock.now, reason="没好")
    assert back.task.due_at == end_of_day(clock.now + timedelta(days=1), default_tz())


async def test_queued_edits_only_for_the_chats_asked_and_in_the_cards_own_kind(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    """A card posted as text is edited as text even once the task has photos."""
    tid = await new_task(sessions, world, clock.now)
    async with sessions() as s, s.begin():
        await deliver_card(s, tid, GROUP, 61)
    await do(sessions, MEMBER, tid, Action.ACCEPT, clock.now)
    await fix(sessions, MEMBER, tid, clock.now, 1500)
    async with UnitOfWork(sessions) as uow:
        assert await svc.queue_card_edits(uow, tid, clock.now, chats=[OTHER_GROUP]) == 0
        assert await svc.queue_card_edits(uow, tid, clock.now, chats=[GROUP]) == 1
        assert await svc.chats_with_queued_edits(uow, tid) == {GROUP}
        await uow.commit()
    edit = (await outbox(sessions))[-1]
    assert (edit.chat_id, edit.method, edit.params["message_id"]) == (
        GROUP, "editMessageText", 61)


# ---- UX review ------------------------------------------------------------------------------


async def test_a_deadline_is_the_end_of_a_local_day(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    from bot.render.tasks import default_tz

    tid = await new_task(sessions, world, clock.now,
                         due_at=clock.now + timedelta(days=2, hours=5, minutes=47))
    local = (await load(sessions, tid)).due_at.astimezone(default_tz())
    assert (local.hour, local.minute, local.second) == (23, 59, 59)


async def test_a_return_is_posted_in_the_group_and_the_fix_goes_back_to_the_returner(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)  # filed by INSPECTOR
    await do(sessions, MEMBER, tid, Action.ACCEPT, clock.now)
    await fix(sessions, MEMBER, tid, clock.now, 1500)
    before = {m.id for m in await outbox(sessions)}
    await do(sessions, INSPECTOR_2, tid, Action.VERIFY_RETURN, clock.now, reason="东侧还有杂物")
    new = [m for m in await outbox(sessions) if m.id not in before]
    told = [m for m in new if m.chat_id == GROUP and m.method == "sendMessage"]
    assert len(told) == 1 and "东侧还有杂物" in str(told[0].params["text"])
    assert str(told[0].params["text"]).startswith("↩️")
    before = {m.id for m in await outbox(sessions)}
    await fix(sessions, MEMBER, tid, clock.now, 1501, note="东侧也清理了")
    notices = [m for m in await outbox(sessions)
               if m.id not in before and m.purpose == svc.NOTICE_PURPOSE]
    # The filer and the one who returned it are both asked to check the re-submission.
    assert sorted(m.chat_id for m in notices) == [INSPECTOR, INSPECTOR_2]
    assert all("东侧也清理了" in str(m.params["text"]) for m in notices)


async def test_a_delivered_notice_loses_its_buttons_once_someone_acts(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)
    await do(sessions, MEMBER, tid, Action.ACCEPT, clock.now)
    await fix(sessions, MEMBER, tid, clock.now, 1600)
    async with sessions() as s, s.begin():
        notice = (await s.scalars(select(OutboxMessage).where(
            OutboxMessage.purpose == svc.NOTICE_PURPOSE))).one()
        notice.status, notice.sent_message_id = "sent", 77
    await do(sessions, INSPECTOR_2, tid, Action.VERIFY_PASS, clock.now)
    edits = [m for m in await outbox(sessions) if m.method == "editMessageReplyMarkup"]
    assert [(m.chat_id, m.params["message_id"]) for m in edits] == [(INSPECTOR, 77)]
    assert "reply_markup" not in edits[0].params  # none: the keyboard goes


async def test_pressing_done_again_says_you_already_did(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)
    await do(sessions, MEMBER, tid, Action.ACCEPT, clock.now)
    await fix(sessions, MEMBER, tid, clock.now, 1700)
    with pytest.raises(StaleAction) as exc:
        await do(sessions, MEMBER, tid, Action.SUBMIT_FIX, clock.now, version=1)
    assert exc.value.key == "task.already_done_self"


async def test_the_reporters_confirmation_redraws_the_card(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    tid = await new_task(sessions, world, clock.now)
    async with sessions() as s, s.begin():
        await deliver_card(s, tid, GROUP, 55)
    # An edit for this version was queued before (e.g. a handler's retry).
    async with UnitOfWork(sessions) as uow:
        await svc.queue_card_edits(uow, tid, clock.now)
        await uow.commit()
    async with UnitOfWork(sessions) as uow:
        event = await svc.note_reporter_confirmed(uow, tid, clock.now)
        await uow.commit()
    assert event is not None and event.data == {"by": "reporter"}
    edits = [m for m in await outbox(sessions) if m.method in ("editMessageText",
                                                              "editMessageCaption")]
    assert len(edits) == 2
    shown = str(edits[-1].params.get("text") or edits[-1].params.get("caption"))
    assert "确认问题已解决" in shown


async def test_deadlines_are_days_in_the_time_zone_the_app_gives(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    """Settings.tz reaches the task service as an argument (no service reads the environment)."""
    from zoneinfo import ZoneInfo

    from bot.domain.tasks import end_of_day

    tz = ZoneInfo("America/New_York")
    tid = await new_task(sessions, world, clock.now, tz=tz)
    assert (await load(sessions, tid)).due_at == end_of_day(clock.now + timedelta(days=3), tz)
