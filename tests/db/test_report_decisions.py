"""Deciding a report exactly once, the report following its task's unit, catalogue texts in
stored reasons, and typed user ids (SQLite, and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.domain import reports as dom
from bot.domain.errors import DomainError, StaleAction
from bot.render.i18n import t
from bot.services.reports import ReportContext, blocking, decisions, followup
from db.models import GroupBinding, OutboxMessage, Person, Report, Task, TaskEvent, Unit
from db.uow import UnitOfWork
from tests.conftest import FakeClock
from tests.db import test_report_service as base
from tests.db.test_report_service import RESIDENT, Uow, file

# The demo city and the service, as the report service's own tests set them up.
city = base.city
rc = base.rc

MEMBER, ADMIN = 10013, 10000  # 杨社区 of 后祁街社区, and 王管理
HOUQIJIE_GROUP = -1001004


async def _person(uow: UnitOfWork, pid: int) -> Person:
    person = await uow.session.get(Person, pid)
    assert person is not None
    return person


async def _count(city: Uow, model: type[Task] | type[OutboxMessage]) -> int:
    async with city.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize("second", ["accept", "reject"])
async def test_two_deciders_at_once_make_one_decision_and_one_task(
    city: Uow, rc: ReportContext, clock: FakeClock, database_url: str, second: str
) -> None:
    report = await file(city, rc, RESIDENT, clock, "stairwell")

    async def decide(uow: UnitOfWork, pid: int, how: str) -> None:
        actor = await _person(uow, pid)
        if how == "accept":
            await decisions.accept(rc, uow, actor, report.id, clock())
        else:
            await decisions.reject(rc, uow, actor, report.id, "unclear", clock())

    async def later() -> None:
        async with city() as uow:
            await decide(uow, ADMIN, second)
            await uow.commit()

    if database_url.startswith("sqlite"):
        # SQLite serializes writers: the second simply comes after the first.
        async with city() as uow:
            await decide(uow, MEMBER, "accept")
            await uow.commit()
        with pytest.raises(StaleAction) as refused:
            await later()
    else:
        # The member's transaction has decided but not committed when the admin presses: the
        # admin's guarded UPDATE waits for it, then finds the report decided.
        async with city() as first:
            await decide(first, MEMBER, "accept")
            racing = asyncio.create_task(later())
            await asyncio.sleep(0.5)
            assert not racing.done()  # held by the first transaction's row lock
            await first.commit()
        with pytest.raises(StaleAction) as refused:
            await racing
    assert refused.value.key == "reports.decided_by"
    assert refused.value.values["who"] == "杨社区"
    assert t("zh-hans", "reports.decision.accepted") in t(
        "zh-hans", refused.value.key,
        **{**refused.value.values,
           "decision": t("zh-hans", str(refused.value.values["decision"]))})
    assert await _count(city, Task) == 1
    async with city.sessions() as s:
        stored = await s.get(Report, report.id)
        assert stored is not None and stored.status == dom.ACCEPTED
        assert stored.decided_by == MEMBER and stored.task_id is not None
        pushes = (await s.scalars(select(OutboxMessage).where(
            OutboxMessage.purpose == "report_push"))).all()
    assert len(pushes) == 1  # the reporter hears "accepted" once, and no "rejected"


async def test_the_same_member_pressing_accept_again_gets_the_same_task(
    city: Uow, rc: ReportContext, clock: FakeClock
) -> None:
    report = await file(city, rc, RESIDENT, clock, "stairwell")
    tasks = []
    for _ in range(2):
        async with city() as uow:
            member = await _person(uow, MEMBER)
            _r, task = await decisions.accept(rc, uow, member, report.id, clock())
            await uow.commit()
            tasks.append(task.id)
    assert tasks[0] == tasks[1] and await _count(city, Task) == 1
    # A rejection after the acceptance is refused, naming who accepted.
    async with city() as uow:
        with pytest.raises(StaleAction) as refused:
            await decisions.reject(rc, uow, await _person(uow, ADMIN), report.id, "unclear",
                                   clock())
    assert refused.value.values["who"] == "杨社区"


async def test_a_rerouted_task_takes_its_report_and_follow_up_notices_along(
    city: Uow, rc: ReportContext, clock: FakeClock
) -> None:
    report = await file(city, rc, RESIDENT, clock, "charging")
    async with city() as uow:
        other = await uow.session.scalar(
            select(Unit).join(GroupBinding, GroupBinding.unit_id == Unit.id)
            .where(Unit.code == "district_office", GroupBinding.active.is_(True)))
        assert other is not None
        chats = (await uow.session.scalars(select(GroupBinding.chat_id).where(
            GroupBinding.unit_id == other.id, GroupBinding.active.is_(True)))).all()
        r = await uow.session.get(Report, report.id)
        assert r is not None and r.unit_id is not None and r.unit_id != other.id
        task = Task(source="report", report_id=r.id, unit_id=r.unit_id, title="t",
                    due_at=clock(), status="open")
        uow.session.add(task)
        await uow.session.flush()
        r.task_id, r.status = task.id, dom.ACCEPTED
        # The task service re-routes the task and publishes task.changed ("rerouted").
        task.unit_id = other.id
        event = TaskEvent(task_id=task.id, at=clock(), actor_id=ADMIN, action="rerouted")
        uow.session.add(event)
        await uow.session.flush()
        await followup.task_changed(rc, uow, task, event)
        assert r.unit_id == other.id
        # Later the fix passes its check and the reporter confirms it: the new unit hears.
        task.status = "closed"
        fixed = TaskEvent(task_id=task.id, at=clock(), actor_id=ADMIN, action="verified")
        uow.session.add(fixed)
        await uow.session.flush()
        await followup.task_changed(rc, uow, task, fixed)
        await followup.confirm_fix(rc, uow, await _person(uow, RESIDENT), report.id, clock())
        await uow.commit()
    async with city.sessions() as s:
        confirmed = (await s.scalars(select(OutboxMessage).where(
            OutboxMessage.dedup_key.like(f"report:{report.id}:confirmed:%")))).all()
    assert sorted(m.chat_id for m in confirmed) == sorted(chats)
    assert HOUQIJIE_GROUP not in {m.chat_id for m in confirmed}


async def test_still_there_is_recorded_in_the_group_language_not_in_english(
    city: Uow, rc: ReportContext, clock: FakeClock
) -> None:
    report = await file(city, rc, RESIDENT, clock, "charging")
    async with city() as uow:
        r = await uow.session.get(Report, report.id)
        assert r is not None and r.unit_id is not None
        task = Task(source="report", report_id=r.id, unit_id=r.unit_id, title="t",
                    due_at=clock(), status="closed")
        uow.session.add(task)
        await uow.session.flush()
        r.task_id, r.status, r.confirm_until = task.id, dom.CLOSED, clock() + timedelta(days=1)
        await followup.dispute_fix(rc, uow, await _person(uow, RESIDENT), report.id, clock())
        await uow.commit()
    async with city.sessions() as s:
        reopened = (await s.scalars(select(TaskEvent).where(
            TaskEvent.task_id == task.id, TaskEvent.action == "reopened"))).one()
    assert reopened.reason == t("zh-hans", "reports.still_there_reason", ticket=report.ticket)
    assert "still there" not in (reopened.reason or "")


@pytest.mark.parametrize("typed", ["③", "12③", "99999999999999999999999", "-5", "１２"])
async def test_block_refuses_odd_numbers_instead_of_crashing(
    city: Uow, rc: ReportContext, typed: str
) -> None:
    async with city() as uow:
        with pytest.raises(DomainError) as refused:
            await blocking.set_blocked(rc, uow, await _person(uow, ADMIN), typed, True)
    assert refused.value.key in ("reports.bad_ticket", "reports.no_such_person")
    # A plain id still works.
    async with city() as uow:
        person, _number = await blocking.set_blocked(rc, uow, await _person(uow, ADMIN),
                                                     str(RESIDENT), True)
        assert person.id == RESIDENT and person.blocked
