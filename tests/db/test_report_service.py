"""The report use cases against a real, migrated database (SQLite, and PostgreSQL), on the demo
city."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import Core
from bot.domain import reports as dom
from bot.domain.errors import DomainError, NotAllowed, StaleAction
from bot.domain.org import load_org_file
from bot.domain.standards import load_standards
from bot.domain.tasks import Action
from bot.render import reports as rv
from bot.services import tasks as task_service
from bot.services.inspections import PhotoMeta
from bot.services.org_import import import_org
from bot.services.reports import (
    ReportContext,
    blocking,
    cancel_draft,
    decisions,
    drafts,
    duplicates,
    followup,
    queries,
    submitting,
)
from db.models import (
    OutboxMessage,
    Person,
    Photo,
    Report,
    ReportFollower,
    Task,
    TaskEvent,
    Unit,
)
from db.uow import UnitOfWork, UnitOfWorkFactory
from tests.conftest import DEMO_CITY, FakeClock

ROOT = Path(__file__).resolve().parents[2]
Sessions = async_sessionmaker[AsyncSession]
Uow = UnitOfWorkFactory
RESIDENT, ALICE, BOB = 20001, 20002, 20003
HOUQIJIE = (34.3660, 107.1950)
FAR_AWAY = (35.0, 108.0)  # no site, no community within reach


@pytest.fixture
async def city(core: Core, clock: FakeClock) -> Uow:
    """The demo city, and units of work wired as the app wires them (the report side hears
    "task.changed")."""
    sessions = core.uow.sessions
    standards = set(load_standards(ROOT / "standards"))
    await import_org(core.uow, load_org_file(DEMO_CITY, standards))
    async with sessions() as s, s.begin():
        houqijie = await s.scalar(select(Unit.id).where(Unit.code == "houqijie"))
        for pid, name in ((RESIDENT, "赵居民"), (ALICE, "Alice"), (BOB, "Bob")):
            s.add(Person(id=pid, first_name=name, role="resident", created_at=clock()))
        s.add(Person(id=10013, first_name="杨社区", role="unit_member", unit_id=houqijie,
                     created_at=clock()))
        s.add(Person(id=10000, first_name="王管理", role="admin", created_at=clock()))
    return core.uow


@pytest.fixture
def rc(core: Core) -> ReportContext:
    return core.reports


_message_ids = iter(range(1, 10_000))


async def draft_with_photo(uow: UnitOfWork, rc: ReportContext, pid: int, clock: FakeClock,
                           phash: int = 0x1234_5678_9ABC_DEF0) -> Report:
    person = await uow.session.get(Person, pid)
    assert person is not None
    meta = PhotoMeta("a" * 64, None, 100, 100, 1000, phash, pid, next(_message_ids))
    added = await drafts.add_photo(rc, uow, person, meta, None, clock())
    return added.report


async def file(city: Uow, rc: ReportContext, pid: int, clock: FakeClock, category: str,
               at: tuple[float, float] | None = HOUQIJIE, address: str | None = None,
               phash: int = 0x1234_5678_9ABC_DEF0) -> Report:
    async with city() as uow:
        person = await uow.session.get(Person, pid)
        assert person is not None
        report = await draft_with_photo(uow, rc, pid, clock, phash)
        await drafts.choose_category(rc, uow, person, report.id, category, clock())
        if at is not None:
            await drafts.set_location(rc, uow, person, *at, clock())
        else:
            assert address is not None
            await drafts.text(rc, uow, person, address, clock())
        await drafts.skip_description(rc, uow, person, report.id, clock())
        done = await submitting.submit(rc, uow, person, report.id, clock())
        await uow.commit()
    return done.report


async def test_tickets_count_up_per_year_and_concurrently_never_repeat(
    city: Uow, database_url: str
) -> None:
    async def one() -> int:
        async with city() as uow:
            value = await uow.reports.next_number("report:2026")
            await uow.commit()
            return value

    first = await one()
    assert first == 1
    if database_url.startswith("sqlite"):
        values = [await one() for _ in range(5)]
    else:
        values = list(await asyncio.gather(*(one() for _ in range(5))))
    assert sorted(values) == [2, 3, 4, 5, 6]
    async with city() as uow:
        assert await uow.reports.next_number("report:2027") == 1


async def test_a_report_gets_a_ticket_and_goes_to_the_unit_whose_area_holds_it(
    city: Uow, rc: ReportContext, clock: FakeClock
) -> None:
    report = await file(city, rc, RESIDENT, clock, "stairwell")
    assert report.ticket == "R-2026-000001" and report.status == dom.SUBMITTED
    async with city.sessions() as s:
        unit = await s.get(Unit, report.unit_id)
        assert unit is not None and unit.code == "houqijie"
        rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    # Photo, location, card; all to the community's group, nothing to the resident yet.
    assert [(r.chat_id, r.method) for r in rows] == [
        (-1001004, "sendPhoto"), (-1001004, "sendLocation"), (-1001004, "sendMessage")]
    assert str(rows[0].params["photo"]).endswith("a" * 64 + ".jpg")
    assert "赵居民" not in str(rows[2].params) and str(RESIDENT) not in str(rows[2].params)
    # Parking goes to law enforcement when it is at no site: a typed address far from
    # everything has no area either.
    far = await file(city, rc, ALICE, clock, "parking", at=None, address="某某路100号")
    async with city.sessions() as s:
        office = await s.get(Unit, far.unit_id)
    assert office is not None and office.code == "law_enforcement"
    assert far.ticket == "R-2026-000002"


async def test_submit_is_idempotent_and_one_draft_per_resident(
    city: Uow, rc: ReportContext, clock: FakeClock
) -> None:
    async with city() as uow:
        person = await uow.session.get(Person, RESIDENT)
        assert person is not None
        first = await drafts.start(rc, uow, person, clock())
        await uow.commit()
    async with city() as uow:
        person = await uow.session.get(Person, RESIDENT)
        assert person is not None
        assert (await drafts.start(rc, uow, person, clock())).id == first.id
        with pytest.raises(DomainError):
            # no photo yet
            await drafts.choose_category(rc, uow, person, first.id, "litter", clock())
    report = await file(city, rc, RESIDENT, clock, "litter")
    async with city() as uow:
        person = await uow.session.get(Person, RESIDENT)
        assert person is not None
        again = await submitting.submit(rc, uow, person, report.id, clock())
        assert not again.new and again.report.ticket == report.ticket
        await uow.commit()
    async with city.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Report)) == 1
        assert await s.scalar(select(func.count()).select_from(OutboxMessage)) == 3


async def test_cancel_drops_the_draft_and_nothing_else(
    city: Uow, rc: ReportContext, clock: FakeClock
) -> None:
    async with city() as uow:
        await draft_with_photo(uow, rc, RESIDENT, clock)
        await uow.commit()
    async with city() as uow:
        person = await uow.session.get(Person, RESIDENT)
        assert person is not None
        assert await cancel_draft(uow, person)
        assert not await cancel_draft(uow, person)
        await uow.commit()
    async with city.sessions() as s:
        # Kept as cancelled (its id is never reused for a later draft), no longer a draft.
        assert (await s.scalars(select(Report.status))).all() == [dom.CANCELLED]
        assert await s.scalar(select(func.count()).select_from(Photo)) == 1


async def test_a_duplicate_is_offered_and_following_raises_priority(
    city: Uow, rc: ReportContext, clock: FakeClock
) -> None:
    original = await file(city, rc, RESIDENT, clock, "litter")
    async with city() as uow:
        alice = await uow.session.get(Person, ALICE)
        assert alice is not None
        # A near-identical photo (2 bits apart), another category, no location yet.
        draft = await draft_with_photo(uow, rc, ALICE, clock, phash=0x1234_5678_9ABC_DEF3)
        await drafts.choose_category(rc, uow, alice, draft.id, "posters", clock())
        await drafts.text(rc, uow, alice, "某某路100号", clock())
        await drafts.skip_description(rc, uow, alice, draft.id, clock())
        view = await drafts.view(rc, uow, alice, draft)
        assert [c.ticket for c in view.candidates] == [original.ticket]
        followed = await duplicates.follow(rc, uow, alice, draft.id, original.id, clock())
        assert followed.followers == 1 and not followed.own
        await uow.commit()
    async with city.sessions() as s:
        assert (await s.get(Report, original.id)).priority == 1  # type: ignore[union-attr]
        assert [f.person_id for f in (await s.scalars(select(ReportFollower))).all()] == [ALICE]
        assert await s.scalar(select(func.count()).select_from(Report)
                              .where(Report.status == dom.DRAFT)) == 0
    # A different photo, far away: nothing offered.
    async with city() as uow:
        bob = await uow.session.get(Person, BOB)
        assert bob is not None
        draft = await draft_with_photo(uow, rc, BOB, clock, phash=~0x1234_5678_9ABC_DEF0
                                       & (2**64 - 1))
        await drafts.choose_category(rc, uow, bob, draft.id, "litter", clock())
        await drafts.set_location(rc, uow, bob, *FAR_AWAY, clock())
        await drafts.skip_description(rc, uow, bob, draft.id, clock())
        assert (await drafts.view(rc, uow, bob, draft)).candidates == []


async def test_the_unit_rejects_with_a_reason_and_the_reporter_and_followers_hear_it(
    city: Uow, rc: ReportContext, clock: FakeClock
) -> None:
    report = await file(city, rc, RESIDENT, clock, "posters")
    async with city() as uow:
        bob = await uow.session.get(Person, BOB)
        assert bob is not None
        uow.session.add(ReportFollower(report_id=report.id, person_id=ALICE))
        # A resident of another unit may not decide.
        with pytest.raises(NotAllowed):
            await decisions.reject(rc, uow, bob, report.id, "unclear", clock())
        member = await uow.session.get(Person, 10013)  # 杨社区, 后祁街社区
        assert member is not None
        await decisions.reject(rc, uow, member, report.id, "already_fixed", clock())
        with pytest.raises(StaleAction):
            await decisions.accept(rc, uow, member, report.id, clock())
        await uow.commit()
    async with city.sessions() as s:
        pushes = (await s.scalars(select(OutboxMessage).where(
            OutboxMessage.purpose == "report_push"))).all()
    assert sorted(p.chat_id for p in pushes) == sorted([ALICE, RESIDENT])
    assert all("已经处理完毕" in str(p.params["text"]) for p in pushes)


async def _task_act(city: Uow, who: int, task_id: int, action: Action,
                    clock: FakeClock, **kw: Any) -> None:
    async with city() as uow:
        person = await uow.session.get(Person, who)
        task = await uow.session.get(Task, task_id)
        assert person is not None and task is not None
        await task_service.act(uow, person, task_id, action, expected_version=task.version,
                               now=clock(), **kw)
        await uow.commit()


async def _to_resident(city: Uow, after: int = 0) -> list[OutboxMessage]:
    async with city.sessions() as s:
        return list((await s.scalars(select(OutboxMessage).where(
            OutboxMessage.chat_id == RESIDENT, OutboxMessage.id > after)
            .order_by(OutboxMessage.id))).all())


async def _verified_report(city: Uow, rc: ReportContext, clock: FakeClock
                           ) -> tuple[Report, int, int]:
    """A report accepted by 杨社区, fixed with an after-photo: (report, task id, the last
    outbox row before the check)."""
    report = await file(city, rc, RESIDENT, clock, "charging")
    async with city() as uow:
        _r, task = await decisions.accept(rc, uow, await _get(uow, 10013), report.id, clock())
        after = Photo(sha256="b" * 64, width=10, height=10, size=10, phash=0, chat_id=1,
                      message_id=1, uploaded_by=10013)
        uow.session.add(after)
        await uow.session.commit()
    await _task_act(city, 10013, task.id, Action.SUBMIT_FIX, clock, after_photo_ids=[after.id],
                    reason="已拆除飞线")
    return report, task.id, max([0, *(m.id for m in await _to_resident(city))])


async def _get(uow: UnitOfWork, pid: int) -> Person:
    person = await uow.session.get(Person, pid)
    assert person is not None
    return person


async def test_the_reporter_is_asked_once_the_fix_is_verified_not_before(
    city: Uow, rc: ReportContext, clock: FakeClock
) -> None:
    """Issue 11 item 6: a submitted fix is only announced (no question, no buttons, and a
    press is refused as stale); once an inspector's check passes and closes the task, the
    reporter gets the after-photo and 👍/👎, and 👍 records satisfaction; a second answer is
    "already answered"."""
    report, task_id, seen = await _verified_report(city, rc, clock)
    announced = await _to_resident(city)
    assert all("reply_markup" not in m.params for m in announced)
    assert "复核" in str(announced[-1].params["text"])
    async with city() as uow:
        with pytest.raises(StaleAction) as refused:
            await followup.confirm_fix(rc, uow, await _get(uow, RESIDENT), report.id, clock())
    assert refused.value.key == "error.stale_button"

    await _task_act(city, 10000, task_id, Action.VERIFY_PASS, clock)
    asked = await _to_resident(city, seen)
    assert [m.method for m in asked] == ["sendPhoto", "sendMessage"]
    assert str(asked[0].params["photo"]).endswith("b" * 64 + ".jpg")
    keyboard = str(asked[1].params["reply_markup"])
    assert f"rp:{report.id}:ok" in keyboard and f"rp:{report.id}:still" in keyboard
    async with city.sessions() as s:
        r = await s.get(Report, report.id)
        assert r is not None and r.status == dom.CLOSED and r.confirm_until is not None
        assert r.confirm_until == clock() + timedelta(days=rc.config.dispute_days)
    async with city() as uow:
        resident = await _get(uow, RESIDENT)
        assert (await followup.confirm_fix(rc, uow, resident, report.id, clock())).status == (
            dom.CONFIRMED)
        await uow.commit()
    async with city() as uow:
        resident = await _get(uow, RESIDENT)
        for answer in (followup.confirm_fix, followup.dispute_fix):
            with pytest.raises(StaleAction) as again:
                await answer(rc, uow, resident, report.id, clock())
            assert again.value.key == "reports.already_answered"
    lines = await _mine(city, rc)
    assert lines == [dom.CONFIRMED]


async def _mine(city: Uow, rc: ReportContext) -> list[str]:
    """The statuses /myreports shows the reporter."""
    async with city() as uow:
        lines = await queries.mine(uow, await _get(uow, RESIDENT))
    return [line.report.status for line in lines]


async def test_still_there_within_the_window_reopens_the_task_as_rework(
    city: Uow, rc: ReportContext, clock: FakeClock
) -> None:
    """Issue 11 item 6: "still there" after the closing, within dispute_days, sends the task
    back (returned, counted as rework, the unit's group told); a press after the window is
    refused as out of time."""
    report, task_id, _seen = await _verified_report(city, rc, clock)
    await _task_act(city, 10000, task_id, Action.VERIFY_PASS, clock)
    # /myreports says until when "still there" may be said.
    async with city() as uow:
        lines = await queries.mine(uow, await _get(uow, RESIDENT))
    mine = rv.my_reports_text("zh-hans", lines, rc.config, rc.tz, clock())
    assert "前可点“👎 问题还在”" in mine
    clock.advance(days=rc.config.dispute_days - 1)
    async with city() as uow:
        await followup.dispute_fix(rc, uow, await _get(uow, RESIDENT), report.id, clock())
        await uow.commit()
    async with city.sessions() as s:
        task = await s.get(Task, task_id)
        r = await s.get(Report, report.id)
        groups = (await s.scalars(select(OutboxMessage).where(
            OutboxMessage.chat_id == -1001004,
            OutboxMessage.dedup_key.like(f"report:{report.id}:disputed:%")))).all()
    assert task is not None and task.status == "returned" and task.reopen_count == 1
    assert r is not None and r.status == dom.ACCEPTED
    assert len(groups) == 1
    assert await _mine(city, rc) == [dom.ACCEPTED]
    async with city() as uow:
        with pytest.raises(StaleAction) as again:
            await followup.dispute_fix(rc, uow, await _get(uow, RESIDENT), report.id, clock())
    assert again.value.key == "reports.already_answered"

    # Fixed and checked again: asked again; this time the window passes.
    async with city() as uow:
        after = Photo(sha256="c" * 64, width=10, height=10, size=10, phash=0, chat_id=1,
                      message_id=2, uploaded_by=10013)
        uow.session.add(after)
        await uow.session.commit()
    await _task_act(city, 10013, task_id, Action.SUBMIT_FIX, clock, after_photo_ids=[after.id],
                    reason="再次拆除")
    await _task_act(city, 10000, task_id, Action.VERIFY_PASS, clock)
    clock.advance(days=rc.config.dispute_days, minutes=1)
    async with city() as uow:
        with pytest.raises(StaleAction) as late:
            await followup.dispute_fix(rc, uow, await _get(uow, RESIDENT), report.id, clock())
    assert late.value.key == "reports.confirm_expired"
    async with city.sessions() as s:
        task = await s.get(Task, task_id)
    assert task is not None and task.status == "closed" and task.reopen_count == 1


async def test_resident_numbers_are_stable_and_not_telegram_ids(
    city: Uow, rc: ReportContext, clock: FakeClock
) -> None:
    async with city() as uow:
        first = await uow.people.first_contact_rank(RESIDENT)
        assert first > 0 and first != RESIDENT
        assert await uow.people.first_contact_rank(RESIDENT) == first
        assert await uow.people.first_contact_rank(ALICE) != first
        admin = await uow.session.get(Person, 10000)
        assert admin is not None
        person, number = await blocking.set_blocked(rc, uow, admin, str(ALICE), True)
        assert person.blocked and number == await uow.people.first_contact_rank(ALICE)
        with pytest.raises(NotAllowed):
            await drafts.start(rc, uow, person, clock())


async def test_the_dispute_reason_is_typed_next_and_masked_for_the_group(
    city: Uow, rc: ReportContext, clock: FakeClock
) -> None:
    """Issue 11 items 6 and 13: 👎 asks what is still wrong; the typed reason reopens the task,
    is kept in full in its history and reaches the unit's group masked."""
    report, task_id, _seen = await _verified_report(city, rc, clock)
    await _task_act(city, 10000, task_id, Action.VERIFY_PASS, clock)
    async with city() as uow:
        resident = await _get(uow, RESIDENT)
        await followup.ask_dispute(rc, uow, resident, report.id, clock())
        reason = "还有飞线 18612345678"
        assert await followup.dispute_reason(rc, uow, resident, reason, clock()) is not None
        assert resident.pending is None
        assert await followup.dispute_reason(rc, uow, resident, "再说一句", clock()) is None
        await uow.commit()
    async with city.sessions() as s:
        reopened = (await s.scalars(select(TaskEvent).where(
            TaskEvent.task_id == task_id, TaskEvent.action == "reopened"))).one()
        notice = (await s.scalars(select(OutboxMessage).where(
            OutboxMessage.dedup_key.like(f"report:{report.id}:disputed:%")))).one()
    assert reopened.reason is not None and "18612345678" in reopened.reason
    assert "186****5678" in str(notice.params["text"])
    assert "18612345678" not in str(notice.params["text"])


async def test_a_new_report_after_thumbs_down_takes_the_next_text_not_the_dispute(
    city: Uow, rc: ReportContext, clock: FakeClock
) -> None:
    """Issue 11 item 6: after 👎 the reporter's next text was taken as the dispute reason
    whatever it was meant for. Starting a new report (photo, category) ends the wait for the
    reason: the typed address is the draft's, and the closed task is not reopened."""
    report, task_id, _seen = await _verified_report(city, rc, clock)
    await _task_act(city, 10000, task_id, Action.VERIFY_PASS, clock)
    async with city() as uow:
        resident = await _get(uow, RESIDENT)
        await followup.ask_dispute(rc, uow, resident, report.id, clock())
        await uow.commit()
    async with city() as uow:
        resident = await _get(uow, RESIDENT)
        draft = await draft_with_photo(uow, rc, RESIDENT, clock, phash=0x0F0F_0F0F_0F0F_0F0F)
        await drafts.choose_category(rc, uow, resident, draft.id, "stairwell", clock())
        await uow.commit()
    async with city() as uow:
        resident = await _get(uow, RESIDENT)
        assert await followup.dispute_reason(rc, uow, resident, "后祁街18号楼", clock()) is None
        typed = await drafts.text(rc, uow, resident, "后祁街18号楼", clock())
        await uow.commit()
    assert typed is not None and typed.id == draft.id and typed.address == "后祁街18号楼"
    async with city.sessions() as s:
        task = await s.get(Task, task_id)
    assert task is not None and task.status == "closed" and task.reopen_count == 0


async def test_followers_hear_the_fix_was_verified_without_a_button_they_do_not_have(
    city: Uow, rc: ReportContext, clock: FakeClock
) -> None:
    """Issue 11 item 6: once the fix is verified the reporter is asked, with 👍/👎 and the
    "press 👎 by …" sentence; a follower ("me too") gets the news and the photos but no
    buttons, so they are not told to press one."""
    report, task_id, seen = await _verified_report(city, rc, clock)
    async with city() as uow:
        uow.session.add(ReportFollower(report_id=report.id, person_id=ALICE))
        await uow.commit()
    await _task_act(city, 10000, task_id, Action.VERIFY_PASS, clock)
    async with city.sessions() as s:
        told = (await s.scalars(select(OutboxMessage).where(
            OutboxMessage.id > seen, OutboxMessage.method == "sendMessage",
            OutboxMessage.chat_id.in_([RESIDENT, ALICE])))).all()
    by_chat = {m.chat_id: m.params for m in told}
    press_by = "👎 问题还在"
    assert press_by in str(by_chat[RESIDENT]["text"]) and "reply_markup" in by_chat[RESIDENT]
    assert press_by not in str(by_chat[ALICE]["text"]) and "reply_markup" not in by_chat[ALICE]
    assert report.ticket is not None and report.ticket in str(by_chat[ALICE]["text"])


async def test_the_dispute_reason_in_english_has_no_full_width_colon(
    city: Uow, rc: ReportContext, clock: FakeClock
) -> None:
    """Issue 11 item 12: with English as the default language, the task's history records
    the reporter's "still there" reason in English punctuation."""
    english = replace(rc, group_lang="en")
    report, task_id, _seen = await _verified_report(city, english, clock)
    await _task_act(city, 10000, task_id, Action.VERIFY_PASS, clock)
    async with city() as uow:
        resident = await _get(uow, RESIDENT)
        await followup.ask_dispute(english, uow, resident, report.id, clock())
        assert await followup.dispute_reason(english, uow, resident, "the wires are back", clock())
        await uow.commit()
    async with city.sessions() as s:
        reopened = (await s.scalars(select(TaskEvent).where(
            TaskEvent.task_id == task_id, TaskEvent.action == "reopened"))).one()
    assert reopened.reason == (f"{report.ticket}: the reporter says the problem is still "
                               "there: the wires are back")
