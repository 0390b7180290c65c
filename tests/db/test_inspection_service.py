"""InspectionService against a real, Alembic-migrated database (SQLite, and PostgreSQL)."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.checklist import Awaiting
from bot.domain.errors import DomainError, NotAllowed, NotFound, StaleAction
from bot.domain.scoring import compute_score
from bot.domain.standards import Standard, Verdict
from bot.domain.tasks import end_of_day
from bot.render.tasks import default_tz
from bot.services.catalog import StandardCatalog
from bot.services.inspections import InspectionService, InspectionView, PhotoMeta
from db.models import (
    Answer,
    Evidence,
    GroupBinding,
    Inspection,
    OutboxMessage,
    Person,
    Photo,
    Site,
    StandardVersion,
    Task,
    Unit,
)
from db.repositories import InspectionRepository
from db.uow import UnitOfWork
from tests.conftest import FakeClock

ROOT = Path(__file__).resolve().parents[2]
STANDARDS = ROOT / "standards"
C, B, N, NA = Verdict.COMPLIANT, Verdict.BASIC, Verdict.NONCOMPLIANT, Verdict.NA

Sessions = async_sessionmaker[AsyncSession]

INSPECTOR, OTHER_INSPECTOR, RESIDENT, UNIT_MEMBER, ADMIN = 501, 502, 503, 504, 505
ACTIVE_GROUP, INACTIVE_GROUP, OTHER_UNIT_GROUP = -1001, -1002, -1003


@dataclass(frozen=True)
class World:
    unit_id: int
    hotel_id: int
    hotel2_id: int
    community_id: int
    no_standard_id: int


@pytest.fixture(scope="module")
def catalog() -> StandardCatalog:
    return StandardCatalog.load(STANDARDS)


@pytest.fixture
def service(catalog: StandardCatalog) -> InspectionService:
    return InspectionService(catalog)


@pytest.fixture
async def world(sessions: Sessions, clock: FakeClock) -> World:
    async with UnitOfWork(sessions) as uow:
        s = uow.session
        unit = Unit(code="houqijie", name_zh="后启街社区", name_en="Houqijie", kind="community")
        other = Unit(code="other", name_zh="别的单位", name_en="Other", kind="community")
        s.add_all([unit, other])
        await s.flush()
        sites = [
            Site(code="h1", name="Hotel One", site_type="hotel", unit_id=unit.id),
            Site(code="h2", name="Hotel Two", site_type="hotel", unit_id=unit.id),
            Site(code="c1", name="Community One", site_type="community", unit_id=unit.id),
            Site(code="x1", name="Mystery", site_type="no_such_type", unit_id=unit.id),
        ]
        s.add_all(sites)
        roles = {
            INSPECTOR: "inspector", OTHER_INSPECTOR: "inspector", RESIDENT: "resident",
            UNIT_MEMBER: "unit_member", ADMIN: "admin",
        }
        s.add_all(
            Person(id=pid, first_name=f"P{pid}", role=role, created_at=clock.now)
            for pid, role in roles.items()
        )
        s.add_all([
            GroupBinding(chat_id=ACTIVE_GROUP, unit_id=unit.id, title="active", active=True,
                         bound_at=clock.now),
            GroupBinding(chat_id=INACTIVE_GROUP, unit_id=unit.id, title="gone", active=False,
                         bound_at=clock.now),
            GroupBinding(chat_id=OTHER_UNIT_GROUP, unit_id=other.id, title="other",
                         active=True, bound_at=clock.now),
        ])
        await s.flush()
        world = World(unit.id, sites[0].id, sites[1].id, sites[2].id, sites[3].id)
        await uow.commit()
    return world


# ---- helpers: one unit of work per update, as the handlers do -----------------------------


async def start(
    sessions: Sessions, service: InspectionService, pid: int, site_id: int, now: datetime
) -> InspectionView:
    async with UnitOfWork(sessions) as uow:
        person = await uow.session.get(Person, pid)
        assert person is not None
        view = await service.start(uow, person, site_id, chat_id=pid, now=now)
        await uow.commit()
        return view


async def act(
    sessions: Sessions,
    service: InspectionService,
    pid: int,
    inspection_id: int,
    step: int,
    action: str = "verdict",
    *,
    verdict: Verdict | None = None,
    target: int | None = None,
    now: datetime,
) -> InspectionView:
    async with UnitOfWork(sessions) as uow:
        person = await uow.session.get(Person, pid)
        assert person is not None
        view = await service.act(uow, person, inspection_id, step, action, verdict=verdict,
                                 target=target, now=now)
        await uow.commit()
        return view


async def text(
    sessions: Sessions, service: InspectionService, pid: int, body: str, now: datetime
) -> InspectionView | None:
    async with UnitOfWork(sessions) as uow:
        person = await uow.session.get(Person, pid)
        assert person is not None
        view = await service.text(uow, person, body, now)
        await uow.commit()
        return view


def meta(message_id: int, *, chat_id: int = INSPECTOR, phash: int = 12345) -> PhotoMeta:
    return PhotoMeta(sha256=f"{message_id:064x}", file_id=f"file-{message_id}", width=640,
                     height=480, size=50_000, phash=phash, chat_id=chat_id,
                     message_id=message_id)


async def photo(
    sessions: Sessions, service: InspectionService, pid: int, m: PhotoMeta, now: datetime,
    caption: str | None = None,
) -> InspectionView | None:
    async with UnitOfWork(sessions) as uow:
        person = await uow.session.get(Person, pid)
        assert person is not None
        view = await service.photo(uow, person, m, now, caption)
        await uow.commit()
        return view


async def submit(
    sessions: Sessions, service: InspectionService, pid: int, inspection_id: int, step: int,
    now: datetime,
) -> tuple[InspectionView, list[int], int]:
    async with UnitOfWork(sessions) as uow:
        person = await uow.session.get(Person, pid)
        assert person is not None
        done = await service.submit(uow, person, inspection_id, step, now)
        await uow.commit()
        return done.view, [task.id for task in done.tasks], done.notified_groups


async def count(sessions: Sessions, model: type[object], *where: object) -> int:
    async with sessions() as s:
        stmt = select(func.count()).select_from(model)
        for cond in where:
            stmt = stmt.where(cond)  # type: ignore[arg-type]
        return int(await s.scalar(stmt) or 0)


def plan(standard: Standard) -> dict[str, Verdict]:
    """Hotel: 3 (static, 14 days) and 9 (dynamic, 1 day) fail, 4 is na, the rest comply."""
    verdicts = {item.key: C for item in standard.items}
    verdicts.update({"3": N, "9": N, "4": NA, "2": B})
    return verdicts


async def walk(
    sessions: Sessions, service: InspectionService, started: InspectionView, clock: FakeClock,
    verdicts: dict[str, Verdict],
) -> InspectionView:
    """Answer every step as planned, sending what each answer needs."""
    view = started
    message_id = 1000
    while not view.progress.in_review:
        verdict = verdicts[view.standard.items[view.step].key]
        view = await act(sessions, service, INSPECTOR, view.inspection_id, view.step,
                         verdict=verdict, now=clock.now)
        if view.progress.awaiting is Awaiting.PHOTO:
            message_id += 1
            got = await photo(sessions, service, INSPECTOR, meta(message_id), clock.now)
            assert got is not None
            view = await act(sessions, service, INSPECTOR, view.inspection_id, view.step,
                             "done", now=clock.now)
        elif view.progress.awaiting is Awaiting.REMARK:
            got = await text(sessions, service, INSPECTOR, "只有住宿，没有餐厅", clock.now)
            assert got is not None
            view = got
    return view


# ---- starting -------------------------------------------------------------------------------


@pytest.mark.parametrize("pid", [RESIDENT, UNIT_MEMBER])
async def test_people_below_inspector_cannot_start(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock, pid: int
) -> None:
    with pytest.raises(NotAllowed) as exc:
        await start(sessions, service, pid, world.hotel_id, clock.now)
    assert exc.value.key == "error.role_required"
    assert await count(sessions, Inspection) == 0


async def test_an_admin_may_inspect(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    view = await start(sessions, service, ADMIN, world.hotel_id, clock.now)
    assert view.status == "open" and view.step == 0


async def test_unknown_site_and_site_type_without_standard_are_refused(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    with pytest.raises(NotFound) as exc:
        await start(sessions, service, INSPECTOR, 987654, clock.now)
    assert exc.value.key == "inspect.site_not_found"
    with pytest.raises(DomainError) as exc2:
        await start(sessions, service, INSPECTOR, world.no_standard_id, clock.now)
    assert exc2.value.key == "inspect.no_standard"
    assert await count(sessions, Inspection) == 0


async def test_start_pins_the_standard_and_sets_the_active_inspection(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock,
    catalog: StandardCatalog,
) -> None:
    view = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    hotel = catalog.current["hotel"]
    assert view.standard.content_hash == hotel.content_hash
    assert view.site.id == world.hotel_id
    async with sessions() as s:
        insp = await s.get(Inspection, view.inspection_id)
        person = await s.get(Person, INSPECTOR)
        snapshot = await s.get(StandardVersion, hotel.content_hash)
    assert insp is not None and person is not None and snapshot is not None
    assert (insp.standard_id, insp.standard_hash, insp.status) == ("hotel", hotel.content_hash,
                                                                    "open")
    assert person.active_inspection_id == view.inspection_id
    assert Standard.from_dict(snapshot.body) == hotel


async def test_start_twice_resumes_the_same_inspection(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    first = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    await act(sessions, service, INSPECTOR, first.inspection_id, 0, verdict=C, now=clock.now)
    clock.advance(hours=1)
    again = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    assert again.inspection_id == first.inspection_id
    assert again.step == 1  # progress survived
    assert await count(sessions, Inspection) == 1
    # Another inspector at the same site gets their own run.
    other = await start(sessions, service, OTHER_INSPECTOR, world.hotel_id, clock.now)
    assert other.inspection_id != first.inspection_id
    assert await count(sessions, Inspection) == 2


async def test_two_starts_racing_create_one_inspection(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    # The standard's snapshot already exists (pinned by an earlier inspection elsewhere).
    await start(sessions, service, INSPECTOR, world.hotel2_id, clock.now)
    views = await asyncio.gather(
        start(sessions, service, INSPECTOR, world.hotel_id, clock.now),
        start(sessions, service, INSPECTOR, world.hotel_id, clock.now),
    )
    assert views[0].inspection_id == views[1].inspection_id
    assert await count(sessions, Inspection, Inspection.site_id == world.hotel_id) == 1


async def test_two_first_ever_starts_racing_create_one_inspection(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock,
    database_url: str, request: pytest.FixtureRequest,
) -> None:
    """The very first inspection of a standard: both presses also pin its snapshot."""
    # Make the interleaving certain: the first start has written (not committed) when the
    # second one runs; then the first commits.
    async with UnitOfWork(sessions) as uow1:
        person = await uow1.session.get(Person, INSPECTOR)
        assert person is not None
        first = await service.start(uow1, person, world.hotel_id, chat_id=1, now=clock.now)
        second = asyncio.create_task(
            start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
        )
        await asyncio.sleep(0.3)  # let the second start reach the database and wait there
        await uow1.commit()
    resumed = await asyncio.wait_for(second, timeout=20)
    assert resumed.inspection_id == first.inspection_id
    assert await count(sessions, Inspection) == 1


# ---- answering ------------------------------------------------------------------------------


async def test_walk_writes_one_answer_per_item_and_submit_locks(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    started = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    iid = started.inspection_id
    hotel = started.standard
    verdicts = plan(hotel)
    view = await walk(sessions, service, started, clock, verdicts)
    assert view.progress.in_review
    assert await count(sessions, Answer, Answer.inspection_id == iid) == len(hotel.items)
    async with sessions() as s:
        stored = {a.item_key: a for a in await s.scalars(select(Answer))}
    assert {k: Verdict(a.verdict) for k, a in stored.items() if a.verdict} == verdicts
    assert stored["4"].remark == "只有住宿，没有餐厅"
    assert await count(sessions, Evidence, Evidence.item_key == "9") == 1

    clock.advance(minutes=30)
    submitted_at = clock.now
    done, task_ids, groups = await submit(sessions, service, INSPECTOR, iid, view.step,
                                          submitted_at)
    assert done.status == "submitted"
    expected = compute_score(hotel, verdicts)
    assert done.score == expected
    async with sessions() as s:
        insp = await s.get(Inspection, iid)
        person = await s.get(Person, INSPECTOR)
        tasks = list(await s.scalars(select(Task).order_by(Task.item_key)))
        outbox = list(await s.scalars(select(OutboxMessage)))
    assert insp is not None and person is not None
    assert insp.status == "submitted" and insp.submitted_at == submitted_at
    assert insp.score_overall == pytest.approx(expected.overall)
    assert insp.score_static == pytest.approx(expected.static)
    assert insp.score_dynamic == pytest.approx(expected.dynamic)
    assert person.active_inspection_id is None

    # One task per non-compliant item, due after that item's own deadline.
    assert sorted(task_ids) == sorted(t.id for t in tasks)
    assert [t.item_key for t in tasks] == ["3", "9"]
    for task in tasks:
        item = hotel.item(task.item_key or "")
        # Due at the end of the local day the item's deadline falls on.
        assert task.due_at == end_of_day(submitted_at + timedelta(days=item.deadline_days),
                                         default_tz())
        assert (task.unit_id, task.site_id, task.status) == (world.unit_id, world.hotel_id,
                                                             "open")
        assert task.inspection_id == iid and item.number in task.title
    assert {hotel.item("3").deadline_days, hotel.item("9").deadline_days} == {14, 1}

    # One card per task in each active group of the site's unit; none for the inactive group
    # or another unit's. Item 9 has photo evidence, so its card is a photo; item 3's is text.
    assert groups == 1
    assert sorted((m.chat_id, m.purpose, m.ref_id) for m in outbox) == sorted(
        (ACTIVE_GROUP, "task_card", t.id) for t in tasks)
    methods = {m.ref_id: m.method for m in outbox}
    assert methods == {t.id: "sendPhoto" if t.item_key == "9" else "sendMessage"
                       for t in tasks}

    # Submitting again is refused and creates nothing.
    with pytest.raises(StaleAction) as exc:
        await submit(sessions, service, INSPECTOR, iid, view.step, clock.now)
    assert exc.value.key == "inspect.already_submitted"
    assert await count(sessions, Task) == 2
    assert await count(sessions, OutboxMessage) == 2  # still one card per task
    # And the locked inspection takes no more answers.
    with pytest.raises(StaleAction) as exc2:
        await act(sessions, service, INSPECTOR, iid, view.step, "back", now=clock.now)
    assert exc2.value.key == "inspect.already_submitted"
    # A new start at the site is a new inspection.
    fresh = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    assert fresh.inspection_id != iid and fresh.step == 0


async def test_submit_refuses_while_gaps_remain(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    started = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    iid = started.inspection_id
    view = await act(sessions, service, INSPECTOR, iid, 0, verdict=N, now=clock.now)
    with pytest.raises(DomainError) as exc:
        # Pressed with the current step, as a stale "submit" button would not be.
        await submit(sessions, service, INSPECTOR, iid, view.step, clock.now)
    assert exc.value.key == "checklist.incomplete"
    assert exc.value.values == {"count": len(started.standard.items) - 1}
    async with sessions() as s:
        insp = await s.get(Inspection, iid)
    assert insp is not None and insp.status == "open"
    assert await count(sessions, Task) == 0
    assert await count(sessions, OutboxMessage) == 0


async def test_submit_with_a_stale_step_is_refused(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    started = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    with pytest.raises(StaleAction):
        await submit(sessions, service, INSPECTOR, started.inspection_id, 5, clock.now)


async def test_repeated_press_of_the_same_verdict_is_a_silent_no_op(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    started = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    iid = started.inspection_id
    await act(sessions, service, INSPECTOR, iid, 0, verdict=C, now=clock.now)
    await act(sessions, service, INSPECTOR, iid, 1, verdict=B, now=clock.now)
    clock.advance(minutes=1)
    again = await act(sessions, service, INSPECTOR, iid, 0, verdict=C, now=clock.now)
    assert again.step == 2
    assert await count(sessions, Answer, Answer.inspection_id == iid) == 2
    async with sessions() as s:
        first = await s.scalar(select(Answer).where(Answer.item_key == "1"))
        insp = await s.get(Inspection, iid)
    assert first is not None and first.verdict == "compliant"
    assert insp is not None and insp.step == 2
    # A different verdict from the old message is stale, not a silent change.
    with pytest.raises(StaleAction) as exc:
        await act(sessions, service, INSPECTOR, iid, 0, verdict=N, now=clock.now)
    assert exc.value.key == "checklist.stale_step"
    async with sessions() as s:
        first = await s.scalar(select(Answer).where(Answer.item_key == "1"))
    assert first is not None and first.verdict == "compliant"


async def test_another_inspector_cannot_act_or_view(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    started = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    iid = started.inspection_id
    with pytest.raises(StaleAction) as exc:
        await act(sessions, service, OTHER_INSPECTOR, iid, 0, verdict=C, now=clock.now)
    assert exc.value.key == "inspect.not_yours"
    async with UnitOfWork(sessions) as uow:
        other = await uow.session.get(Person, OTHER_INSPECTOR)
        assert other is not None
        with pytest.raises(StaleAction, match=r"inspect\.not_yours"):
            await service.view(uow, other, iid)
    assert await count(sessions, Answer) == 0
    with pytest.raises(StaleAction) as exc2:
        await act(sessions, service, INSPECTOR, 987654, 0, verdict=C, now=clock.now)
    assert exc2.value.key == "error.stale_button"


async def test_unknown_action_is_a_stale_button(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    started = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    with pytest.raises(StaleAction) as exc:
        await act(sessions, service, INSPECTOR, started.inspection_id, 0, "explode",
                  now=clock.now)
    assert exc.value.key == "error.stale_button"


async def test_same_photo_message_twice_attaches_one_evidence(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    started = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    iid = started.inspection_id
    step9 = started.standard.index("9")
    await act(sessions, service, INSPECTOR, iid, 0, "goto", target=step9, now=clock.now)
    view = await act(sessions, service, INSPECTOR, iid, step9, verdict=N, now=clock.now)
    assert view.progress.awaiting is Awaiting.PHOTO
    async with UnitOfWork(sessions) as uow:
        person = await uow.session.get(Person, INSPECTOR)
        assert person is not None
        assert await service.wants_photo(uow, person)
    # A phash with the top bit set must fit the signed BIGINT column.
    m = meta(77, phash=(1 << 64) - 1)
    first = await photo(sessions, service, INSPECTOR, m, clock.now)
    again = await photo(sessions, service, INSPECTOR, m, clock.now)
    assert first is not None and again is not None
    assert again.progress.answers["9"].photos == 1
    assert await count(sessions, Photo) == 1
    assert await count(sessions, Evidence, Evidence.inspection_id == iid) == 1
    # A second, different message adds a second photo.
    await photo(sessions, service, INSPECTOR, meta(78), clock.now)
    assert await count(sessions, Evidence, Evidence.item_key == "9") == 2
    done = await act(sessions, service, INSPECTOR, iid, step9, "done", now=clock.now)
    assert done.step == step9 + 1


async def test_text_not_wanted_is_ignored_and_an_unasked_photo_is_extra_evidence(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    """Issue 11 item 7: a photo nobody asked for is the current item's extra evidence (its
    caption a note)."""
    started = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    assert await text(sessions, service, INSPECTOR, "hello", clock.now) is None
    # Without an active inspection nothing is wanted either.
    assert await text(sessions, service, OTHER_INSPECTOR, "hello", clock.now) is None
    assert started.progress.answers == {}
    extra = await photo(sessions, service, INSPECTOR, meta(5), clock.now, caption="门口")
    assert extra is not None and extra.step == 0 and extra.progress.awaiting is None
    first = started.standard.items[0].key
    assert extra.progress.answers[first].photos == 1
    assert extra.progress.answers[first].remark == "门口"
    assert extra.progress.answers[first].verdict is None
    assert await count(sessions, Evidence, Evidence.item_key == first) == 1


async def test_text_during_a_remark_is_stored(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    started = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    iid = started.inspection_id
    step4 = started.standard.index("4")
    await act(sessions, service, INSPECTOR, iid, 0, "goto", target=step4, now=clock.now)
    view = await act(sessions, service, INSPECTOR, iid, step4, verdict=NA, now=clock.now)
    assert view.progress.awaiting is Awaiting.REMARK
    got = await text(sessions, service, INSPECTOR, "  没有餐厅  ", clock.now)
    assert got is not None and got.step != step4
    async with sessions() as s:
        answer = await s.scalar(select(Answer).where(Answer.item_key == "4"))
        insp = await s.get(Inspection, iid)
    assert answer is not None and (answer.verdict, answer.remark) == ("na", "没有餐厅")
    assert insp is not None and insp.awaiting is None


async def test_cancelled_failure_is_withdrawn_in_the_database(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    started = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    iid = started.inspection_id
    step9 = started.standard.index("9")
    await act(sessions, service, INSPECTOR, iid, 0, "goto", target=step9, now=clock.now)
    await act(sessions, service, INSPECTOR, iid, step9, verdict=N, now=clock.now)
    view = await act(sessions, service, INSPECTOR, iid, step9, "cancel", now=clock.now)
    assert view.step == step9 and view.progress.awaiting is None
    async with sessions() as s:
        answer = await s.scalar(select(Answer).where(Answer.item_key == "9"))
    assert answer is None or answer.verdict is None


async def test_pause_clears_the_active_inspection_and_open_list_shows_it(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    started = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    iid = started.inspection_id
    await act(sessions, service, INSPECTOR, iid, 0, verdict=C, now=clock.now)
    await act(sessions, service, INSPECTOR, iid, 1, "pause", now=clock.now)
    async with UnitOfWork(sessions) as uow:
        person = await uow.session.get(Person, INSPECTOR)
        assert person is not None
        assert person.active_inspection_id is None
        assert await service.active(uow, person) is None
        listed = await service.open_inspections(uow, person)
    assert [(o.inspection_id, o.site_name, o.answered, o.total) for o in listed] == [
        (iid, "Hotel One", 1, len(started.standard.items))
    ]


# ---- standard versions ----------------------------------------------------------------------


def edited(standard: Standard) -> Standard:
    body = copy.deepcopy(standard.to_dict())
    body["items"][0]["text"]["zh"] = "旧版本的第一项"
    body["items"][0]["text"]["en"] = "The old first item"
    return Standard.from_dict(body)


async def test_an_inspection_keeps_its_standard_version_after_the_yaml_changes(
    sessions: Sessions, world: World, clock: FakeClock, catalog: StandardCatalog
) -> None:
    old = edited(catalog.current["hotel"])
    assert old.content_hash != catalog.current["hotel"].content_hash
    then = InspectionService(StandardCatalog({**catalog.current, "hotel": old}))
    started = await start(sessions, then, INSPECTOR, world.hotel_id, clock.now)
    iid = started.inspection_id
    await act(sessions, then, INSPECTOR, iid, 0, verdict=C, now=clock.now)

    # The bot restarts with the YAML as it is now: a new catalogue without the old version.
    now_catalog = StandardCatalog.load(STANDARDS)
    assert old.content_hash not in {s.content_hash for s in now_catalog.current.values()}
    later = InspectionService(now_catalog)
    async with UnitOfWork(sessions) as uow:
        person = await uow.session.get(Person, INSPECTOR)
        assert person is not None
        view = await later.view(uow, person, iid)
    assert view.standard.content_hash == old.content_hash
    assert view.standard.items[0].text.zh == "旧版本的第一项"
    assert view.standard == old
    cont = await act(sessions, later, INSPECTOR, iid, 1, verdict=B, now=clock.now)
    assert cont.step == 2 and cont.standard.content_hash == old.content_hash

    # A new inspection elsewhere uses the current version.
    fresh = await start(sessions, later, INSPECTOR, world.hotel2_id, clock.now)
    assert fresh.standard.content_hash == now_catalog.current["hotel"].content_hash
    assert await count(sessions, StandardVersion) == 2


async def test_snapshot_round_trips_fractional_weights_exactly(
    sessions: Sessions, world: World, catalog: StandardCatalog
) -> None:
    community = catalog.current["community"]
    async with UnitOfWork(sessions) as uow:
        await catalog.pin(InspectionRepository(uow.session), community)
        await catalog.pin(InspectionRepository(uow.session), community)  # pinned once
        await uow.commit()
    async with UnitOfWork(sessions) as uow:
        fresh = StandardCatalog({})
        resolved = await fresh.resolve(InspectionRepository(uow.session),
                                       community.content_hash)
    assert resolved == community
    assert resolved.content_hash == community.content_hash
    assert await count(sessions, StandardVersion) == 1


async def test_unknown_standard_hash_is_a_domain_error(sessions: Sessions, world: World) -> None:
    async with UnitOfWork(sessions) as uow:
        with pytest.raises(DomainError) as exc:
            await StandardCatalog({}).resolve(InspectionRepository(uow.session), "0" * 64)
    assert exc.value.key == "inspect.standard_missing"


async def test_community_sub_items_are_answered_as_steps(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    started = await start(sessions, service, INSPECTOR, world.community_id, clock.now)
    iid = started.inspection_id
    first = started.standard.index("12.1")
    await act(sessions, service, INSPECTOR, iid, 0, "goto", target=first, now=clock.now)
    view = await act(sessions, service, INSPECTOR, iid, first, verdict=N, now=clock.now)
    assert view.step == first + 1
    assert view.standard.items[view.step].number == "12②"
    async with sessions() as s:
        keys = list(await s.scalars(select(Answer.item_key)))
    assert keys == ["12.1"]
    assert view.score == compute_score(view.standard, {"12.1": N})


async def test_a_misconfigured_role_is_refused_politely(
    sessions: Sessions, service: InspectionService, world: World, clock: FakeClock
) -> None:
    async with UnitOfWork(sessions) as uow:
        person = await uow.session.get(Person, INSPECTOR)
        assert person is not None
        person.role = "boss"
        await uow.commit()
    with pytest.raises(DomainError) as exc:
        await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    assert exc.value.key == "error.unknown_role"
