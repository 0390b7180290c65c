"""People service against a real, migrated database: first contact, invites, group binding."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.errors import DomainError, NotAllowed
from bot.domain.roles import Role
from bot.services.people import (
    INVITE_ALPHABET,
    TelegramUser,
    bind_group,
    create_invite,
    deactivate_group,
    ensure_person,
    group_unit,
    redeem_invite,
)
from db.models import (
    Assignment,
    GroupBinding,
    Invite,
    InviteUse,
    PendingAssignment,
    Person,
    Site,
    Unit,
)
from db.uow import UnitOfWork
from tests.conftest import FakeClock

Sessions = async_sessionmaker[AsyncSession]

ADMIN_ID, INSPECTOR_ID, RESIDENT_ID, NEWCOMER_ID = 10000, 20000, 30000, 40000
ADMIN_IDS = frozenset({ADMIN_ID})


@dataclass(frozen=True)
class World:
    dongfeng_community: int
    dongfeng_street: int
    dongfeng_group: int
    site_a: int
    site_b: int


@pytest.fixture
async def world(sessions: Sessions, clock: FakeClock) -> World:
    async with UnitOfWork(sessions) as uow:
        s = uow.session
        units = [
            Unit(code="dfsq", name_zh="东风社区", name_en="Dongfeng Community", kind="community"),
            Unit(code="dfjd", name_zh="东风街道", name_en="Dongfeng Street", kind="subdistrict"),
            Unit(code="dfsq2", name_zh="东风社区二组", name_en="Dongfeng Group 2",
                 kind="community"),
        ]
        s.add_all(units)
        await s.flush()
        sites = [
            Site(code="sa", name="Site A", site_type="hotel", unit_id=units[0].id),
            Site(code="sb", name="Site B", site_type="hotel", unit_id=units[0].id),
        ]
        s.add_all(sites)
        s.add_all([
            Person(id=ADMIN_ID, first_name="Admin", role="admin", created_at=clock.now),
            Person(id=INSPECTOR_ID, first_name="Insp", role="inspector", created_at=clock.now),
            Person(id=RESIDENT_ID, first_name="Res", role="resident", created_at=clock.now),
        ])
        await s.flush()
        world = World(units[0].id, units[1].id, units[2].id, sites[0].id, sites[1].id)
        await uow.commit()
    return world


def user(uid: int, name: str = "Newcomer", lang: str | None = "zh-hans") -> TelegramUser:
    return TelegramUser(id=uid, first_name=name, username=f"u{uid}", language_code=lang)


async def ensure(
    sessions: Sessions, u: TelegramUser, now: datetime, admin_ids: frozenset[int] = ADMIN_IDS
) -> tuple[Person, bool]:
    async with UnitOfWork(sessions) as uow:
        person, changed = await ensure_person(uow, u, admin_ids, now)
        await uow.commit()
        return person, changed


async def person_row(sessions: Sessions, pid: int) -> Person:
    async with sessions() as s:
        person = await s.get(Person, pid)
    assert person is not None
    return person


async def count(sessions: Sessions, model: type[object]) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def add_invite(
    sessions: Sessions, code: str, role: str, expires_at: datetime, *, unit_id: int | None = None,
    max_uses: int = 1, uses: int = 0,
) -> None:
    async with UnitOfWork(sessions) as uow:
        uow.session.add(Invite(code=code, role=role, unit_id=unit_id, created_by=ADMIN_ID,
                               expires_at=expires_at, max_uses=max_uses, uses=uses))
        await uow.commit()


async def redeem(
    sessions: Sessions, pid: int, code: str, now: datetime
) -> tuple[Role, Unit | None, bool]:
    async with UnitOfWork(sessions) as uow:
        person = await uow.session.get(Person, pid)
        assert person is not None
        result = await redeem_invite(uow, person, code, now)
        await uow.commit()
        return result


# ---- first contact --------------------------------------------------------------------------


async def test_first_contact_creates_a_resident(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    _, changed = await ensure(sessions, user(NEWCOMER_ID, "小王", "zh-CN"), clock.now)
    assert changed
    stored = await person_row(sessions, NEWCOMER_ID)
    assert (stored.role, stored.first_name, stored.username, stored.telegram_language) == (
        "resident", "小王", f"u{NEWCOMER_ID}", "zh-CN")
    assert stored.unit_id is None
    # Nothing new the second time; a changed name is saved.
    _, again = await ensure(sessions, user(NEWCOMER_ID, "小王", "zh-CN"), clock.now)
    assert not again
    _, renamed = await ensure(sessions, user(NEWCOMER_ID, "王先生", "zh-CN"), clock.now)
    assert renamed
    assert (await person_row(sessions, NEWCOMER_ID)).first_name == "王先生"
    assert await count(sessions, Person) == 4


async def test_configured_admin_ids_become_admins(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    _, changed = await ensure(sessions, user(NEWCOMER_ID), clock.now,
                              admin_ids=frozenset({NEWCOMER_ID}))
    assert changed
    assert (await person_row(sessions, NEWCOMER_ID)).role == "admin"
    # An existing inspector named in the list is promoted too.
    _, promoted = await ensure(sessions, user(INSPECTOR_ID, "Insp", None), clock.now,
                               admin_ids=frozenset({INSPECTOR_ID}))
    assert promoted
    assert (await person_row(sessions, INSPECTOR_ID)).role == "admin"


async def test_pending_assignment_is_applied_on_first_contact(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    async with UnitOfWork(sessions) as uow:
        uow.session.add(PendingAssignment(telegram_id=NEWCOMER_ID, role="inspector",
                                          unit_id=world.dongfeng_street,
                                          site_codes=["sa", "sb", "gone"]))
        await uow.commit()
    _, changed = await ensure(sessions, user(NEWCOMER_ID), clock.now)
    assert changed
    stored = await person_row(sessions, NEWCOMER_ID)
    assert (stored.role, stored.unit_id) == ("inspector", world.dongfeng_street)
    async with sessions() as s:
        sites = set(await s.scalars(
            select(Assignment.site_id).where(Assignment.person_id == NEWCOMER_ID)))
        pending = await s.get(PendingAssignment, NEWCOMER_ID)
    assert sites == {world.site_a, world.site_b}  # the unknown code is left out
    assert pending is None  # applied once, then gone


async def test_admin_list_outranks_a_pending_assignment(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    async with UnitOfWork(sessions) as uow:
        uow.session.add(PendingAssignment(telegram_id=NEWCOMER_ID, role="inspector",
                                          unit_id=None, site_codes=[]))
        await uow.commit()
    await ensure(sessions, user(NEWCOMER_ID), clock.now, admin_ids=frozenset({NEWCOMER_ID}))
    assert (await person_row(sessions, NEWCOMER_ID)).role == "admin"


async def test_two_first_messages_at_once_create_one_person(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    results = await asyncio.gather(
        ensure(sessions, user(NEWCOMER_ID), clock.now),
        ensure(sessions, user(NEWCOMER_ID), clock.now),
    )
    assert {p.id for p, _ in results} == {NEWCOMER_ID}
    assert await count(sessions, Person) == 4


# ---- invites --------------------------------------------------------------------------------


async def test_redeem_grants_role_and_unit_once(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    await add_invite(sessions, "unitcode", "unit_member", clock.now + timedelta(days=1),
                     unit_id=world.dongfeng_community, max_uses=1)
    role, unit, new = await redeem(sessions, RESIDENT_ID, "unitcode", clock.now)
    assert (role, new) == (Role.UNIT_MEMBER, True)
    assert unit is not None and unit.id == world.dongfeng_community
    stored = await person_row(sessions, RESIDENT_ID)
    assert (stored.role, stored.unit_id) == ("unit_member", world.dongfeng_community)

    # The same person again (a repeated /start): harmless, even though the invite is used up
    # and, later, expired.
    clock.advance(days=2)
    role2, unit2, new2 = await redeem(sessions, RESIDENT_ID, "unitcode", clock.now)
    assert (role2, new2) == (Role.UNIT_MEMBER, False)
    assert unit2 is not None and unit2.id == world.dongfeng_community
    async with sessions() as s:
        invite = await s.get(Invite, "unitcode")
    assert invite is not None and invite.uses == 1
    assert await count(sessions, InviteUse) == 1


async def test_redeem_refuses_unknown_expired_and_used_up_codes(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    await add_invite(sessions, "expired", "inspector", clock.now)  # expires exactly now
    await add_invite(sessions, "usedup", "inspector", clock.now + timedelta(days=1),
                     max_uses=2, uses=2)
    for code, key in (("nosuchcode", "invite.unknown"), ("expired", "invite.expired"),
                      ("usedup", "invite.used_up")):
        with pytest.raises(DomainError) as exc:
            await redeem(sessions, RESIDENT_ID, code, clock.now)
        assert exc.value.key == key, code
    assert (await person_row(sessions, RESIDENT_ID)).role == "resident"
    assert await count(sessions, InviteUse) == 0


async def test_multi_use_invite_counts_each_person(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    await add_invite(sessions, "two", "inspector", clock.now + timedelta(days=1), max_uses=2)
    await ensure(sessions, user(NEWCOMER_ID), clock.now)
    assert (await redeem(sessions, RESIDENT_ID, "two", clock.now))[2]
    assert (await redeem(sessions, NEWCOMER_ID, "two", clock.now))[2]
    with pytest.raises(DomainError, match=r"invite\.used_up"):
        await redeem(sessions, INSPECTOR_ID, "two", clock.now)
    assert (await person_row(sessions, NEWCOMER_ID)).role == "inspector"


async def test_an_invite_never_lowers_an_admin(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    await add_invite(sessions, "insp", "inspector", clock.now + timedelta(days=1))
    await add_invite(sessions, "unit", "unit_member", clock.now + timedelta(days=1),
                     unit_id=world.dongfeng_community)
    role, _, new = await redeem(sessions, ADMIN_ID, "insp", clock.now)
    assert role is Role.INSPECTOR and new
    assert (await person_row(sessions, ADMIN_ID)).role == "admin"
    await redeem(sessions, ADMIN_ID, "unit", clock.now)
    admin = await person_row(sessions, ADMIN_ID)
    assert admin.role == "admin"
    # An inspector given a unit-member invite stays an inspector as well.
    await add_invite(sessions, "unit2", "unit_member", clock.now + timedelta(days=1),
                     unit_id=world.dongfeng_community)
    await redeem(sessions, INSPECTOR_ID, "unit2", clock.now)
    assert (await person_row(sessions, INSPECTOR_ID)).role == "inspector"


async def test_admin_creates_invites(sessions: Sessions, world: World, clock: FakeClock) -> None:
    async with UnitOfWork(sessions) as uow:
        admin = await uow.session.get(Person, ADMIN_ID)
        assert admin is not None
        invite, unit = await create_invite(uow, admin, Role.UNIT_MEMBER, "dfsq", 5,
                                           timedelta(days=3), clock.now)
        code = invite.code
        await uow.commit()
    assert unit is not None and unit.id == world.dongfeng_community
    assert len(code) == 12 and set(code) <= set(INVITE_ALPHABET)
    async with sessions() as s:
        stored = await s.get(Invite, code)
    assert stored is not None
    assert (stored.role, stored.unit_id, stored.max_uses, stored.uses) == (
        "unit_member", world.dongfeng_community, 5, 0)
    assert stored.expires_at == clock.now + timedelta(days=3)
    role, _, _ = await redeem(sessions, RESIDENT_ID, code, clock.now)
    assert role is Role.UNIT_MEMBER


@pytest.mark.parametrize("pid", [INSPECTOR_ID, RESIDENT_ID])
async def test_non_admins_cannot_create_invites(
    sessions: Sessions, world: World, clock: FakeClock, pid: int
) -> None:
    async with UnitOfWork(sessions) as uow:
        person = await uow.session.get(Person, pid)
        assert person is not None
        with pytest.raises(NotAllowed) as exc:
            await create_invite(uow, person, Role.INSPECTOR, None, 1, timedelta(days=1),
                                clock.now)
        await uow.commit()
    assert exc.value.key == "error.role_required"
    assert await count(sessions, Invite) == 0


@pytest.mark.parametrize(
    ("role", "unit", "uses", "key"),
    [
        (Role.RESIDENT, None, 1, "invite.bad_role"),
        (Role.UNIT_MEMBER, None, 1, "invite.unit_required"),
        (Role.UNIT_MEMBER, "nowhere", 1, "unit.not_found"),
        (Role.INSPECTOR, None, 0, "invite.bad_uses"),
        (Role.INSPECTOR, None, 501, "invite.bad_uses"),
    ],
)
async def test_create_invite_refuses_bad_requests(
    sessions: Sessions, world: World, clock: FakeClock, role: Role, unit: str | None,
    uses: int, key: str,
) -> None:
    async with UnitOfWork(sessions) as uow:
        admin = await uow.session.get(Person, ADMIN_ID)
        assert admin is not None
        with pytest.raises(DomainError) as exc:
            await create_invite(uow, admin, role, unit, uses, timedelta(days=1), clock.now)
    assert exc.value.key == key


# ---- binding groups -------------------------------------------------------------------------


async def bind(
    sessions: Sessions, pid: int, chat_id: int, query: str, now: datetime
) -> GroupBinding:
    async with UnitOfWork(sessions) as uow:
        person = await uow.session.get(Person, pid)
        assert person is not None
        binding = await bind_group(uow, person, chat_id, "Group title", query, now)
        await uow.commit()
        return binding


async def test_bind_group_by_code_and_by_unique_name(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    by_code = await bind(sessions, ADMIN_ID, -100, "dfjd", clock.now)
    assert by_code.unit_id == world.dongfeng_street
    by_name = await bind(sessions, ADMIN_ID, -200, "东风街道", clock.now)
    assert by_name.unit_id == world.dongfeng_street
    by_en = await bind(sessions, ADMIN_ID, -300, "Group 2", clock.now)  # one unit matches
    assert by_en.unit_id == world.dongfeng_group
    # An exact name wins although a longer name contains it (东风社区 ⊂ 东风社区二组).
    exact = await bind(sessions, ADMIN_ID, -400, "东风社区", clock.now)
    assert exact.unit_id == world.dongfeng_community
    async with UnitOfWork(sessions) as uow:
        unit = await group_unit(uow, -100)
    assert unit is not None and unit.id == world.dongfeng_street


async def test_rebinding_moves_the_group_and_reactivates_it(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    await bind(sessions, ADMIN_ID, -100, "dfjd", clock.now)
    async with UnitOfWork(sessions) as uow:
        assert await deactivate_group(uow, -100)
        await uow.commit()
    async with UnitOfWork(sessions) as uow:
        assert await group_unit(uow, -100) is None
    await bind(sessions, ADMIN_ID, -100, "dfsq", clock.now)
    async with sessions() as s:
        rows = list(await s.scalars(select(GroupBinding)))
    assert [(g.chat_id, g.unit_id, g.active, g.bound_by) for g in rows] == [
        (-100, world.dongfeng_community, True, ADMIN_ID)
    ]


async def test_bind_group_refuses_an_ambiguous_name(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    with pytest.raises(DomainError) as exc:
        await bind(sessions, ADMIN_ID, -100, "东风", clock.now)
    assert exc.value.key == "unit.ambiguous"
    assert exc.value.values["query"] == "东风"
    assert "dfsq" in str(exc.value.values["candidates"])
    with pytest.raises(DomainError) as exc2:
        await bind(sessions, ADMIN_ID, -100, "西湖", clock.now)
    assert exc2.value.key == "unit.not_found"
    assert await count(sessions, GroupBinding) == 0


@pytest.mark.parametrize("pid", [INSPECTOR_ID, RESIDENT_ID])
async def test_non_admins_cannot_bind_groups(
    sessions: Sessions, world: World, clock: FakeClock, pid: int
) -> None:
    with pytest.raises(NotAllowed) as exc:
        await bind(sessions, pid, -100, "dfsq", clock.now)
    assert exc.value.key == "bind.admin_only"
    assert await count(sessions, GroupBinding) == 0


async def test_bind_group_by_english_name_ignores_letter_case(
    sessions: Sessions, world: World, clock: FakeClock, database_url: str,
    request: pytest.FixtureRequest,
) -> None:
    binding = await bind(sessions, ADMIN_ID, -100, "dongfeng street", clock.now)
    assert binding.unit_id == world.dongfeng_street
