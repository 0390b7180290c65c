"""Importing an organisation file into a real, Alembic-migrated database (SQLite, PostgreSQL)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import DEMO_CITY
from bot.domain.org import OrgFile, load_org_file, parse_org
from bot.services.org_import import ImportSummary, apply_pending, import_org
from db.models import Assignment, GroupBinding, PendingAssignment, Person, Site, Unit
from db.types import utcnow
from db.uow import UnitOfWork, UnitOfWorkFactory

ROOT = Path(__file__).resolve().parents[2]
DEMO = DEMO_CITY
SITE_TYPES = {
    "subdistrict_office", "cultural_station", "community", "community_cultural_center",
    "mall", "hotel", "dining_window",
}

Sessions = async_sessionmaker[AsyncSession]

# `sessions` (a migrated database on every backend) comes from tests/conftest.py.


@pytest.fixture(scope="module")
def demo() -> OrgFile:
    return load_org_file(DEMO, SITE_TYPES)


async def count(sessions: Sessions, model: type[object]) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def unit_by_code(s: AsyncSession, code: str) -> Unit:
    unit = await s.scalar(select(Unit).where(Unit.code == code))
    assert unit is not None, code
    return unit


async def assigned_codes(s: AsyncSession, person_id: int) -> set[str]:
    rows = await s.scalars(
        select(Site.code).join(Assignment, Assignment.site_id == Site.id)
        .where(Assignment.person_id == person_id)
    )
    return set(rows)


def counts(summary: ImportSummary) -> dict[str, tuple[int, int, int]]:
    return {
        kind: (c.created, c.updated, c.unchanged)
        for kind, c in (("units", summary.units), ("sites", summary.sites),
                        ("people", summary.people), ("pending", summary.pending),
                        ("groups", summary.groups))
    }


async def test_demo_import_creates_everything(sessions: Sessions, demo: OrgFile) -> None:
    summary = await import_org(UnitOfWorkFactory(sessions), demo)

    n_units, n_sites = len(demo.units), len(demo.sites)
    assert counts(summary) == {
        "units": (n_units, 0, 0), "sites": (n_sites, 0, 0), "people": (0, 0, 0),
        "pending": (6, 0, 0), "groups": (7, 0, 0),
    }
    assert summary.changed
    assert (summary.units_not_in_file, summary.sites_not_in_file) == (0, 0)
    assert await count(sessions, Unit) == n_units
    assert await count(sessions, Site) == n_sites
    assert await count(sessions, PendingAssignment) == 6
    assert await count(sessions, GroupBinding) == 7

    async with sessions() as s:
        office = await unit_by_code(s, "district_office")
        commerce = await unit_by_code(s, "district_commerce")
        liaison = await unit_by_code(s, "liaison_1")
        assert office.parent_id is None
        assert (commerce.parent_id, liaison.parent_id) == (office.id, commerce.id)
        assert (liaison.name_zh, liaison.kind) == ("第1网络包抓联络小组", "liaison_group")
        hotel = await s.scalar(select(Site).where(Site.code == "crowne_plaza"))
        assert hotel is not None
        assert (hotel.name, hotel.site_type, hotel.unit_id) == ("东岭皇冠假日酒店", "hotel",
                                                                liaison.id)
        assert hotel.latitude == pytest.approx(34.379)
        pending = await s.get(PendingAssignment, 10001)
        assert pending is not None
        assert (pending.role, pending.unit_id) == ("inspector", office.id)
        assert pending.site_codes[:2] == ["crowne_plaza", "yintai"]
        group = await s.get(GroupBinding, -1001003)
        assert group is not None
        assert (group.unit_id, group.active, group.bound_by) == (liaison.id, True, None)
        assert group.bound_at.tzinfo is not None


async def test_reimport_changes_nothing(sessions: Sessions, demo: OrgFile) -> None:
    await import_org(UnitOfWorkFactory(sessions), demo)
    again = await import_org(UnitOfWorkFactory(sessions), demo)

    assert counts(again) == {
        "units": (0, 0, len(demo.units)), "sites": (0, 0, len(demo.sites)),
        "people": (0, 0, 0), "pending": (0, 0, 6), "groups": (0, 0, 7),
    }
    assert not again.changed
    assert "无变化。 Nothing changed." in again.lines()
    assert await count(sessions, Unit) == len(demo.units)
    assert await count(sessions, Site) == len(demo.sites)
    assert await count(sessions, PendingAssignment) == 6
    assert await count(sessions, GroupBinding) == 7


async def test_edits_update_in_place(sessions: Sessions, demo: OrgFile) -> None:
    await import_org(UnitOfWorkFactory(sessions), demo)
    units = tuple(
        dataclasses.replace(u, name_en="Campaign office") if u.code == "district_office"
        # Re-parent a community under the office: a parent change is an update too.
        else dataclasses.replace(u, parent="district_office") if u.code == "xinjianlu"
        else u
        for u in demo.units
    )
    sites = tuple(
        dataclasses.replace(s, name="银泰城（新店名）", latitude=None, longitude=None)
        if s.code == "yintai" else s
        for s in demo.sites
    )
    summary = await import_org(UnitOfWorkFactory(sessions),
                               dataclasses.replace(demo, units=units, sites=sites))

    assert counts(summary)["units"] == (0, 2, len(demo.units) - 2)
    assert counts(summary)["sites"] == (0, 1, len(demo.sites) - 1)
    async with sessions() as s:
        office = await unit_by_code(s, "district_office")
        assert office.name_en == "Campaign office"
        assert (await unit_by_code(s, "xinjianlu")).parent_id == office.id
        yintai = await s.scalar(select(Site).where(Site.code == "yintai"))
        assert yintai is not None
        assert (yintai.name, yintai.latitude) == ("银泰城（新店名）", None)
    assert await count(sessions, Unit) == len(demo.units)


async def test_parent_may_come_after_child(sessions: Sessions) -> None:
    org = parse_org(
        "schema: 1\n"
        "units:\n"
        "  - {code: child, name: 子, kind: community, parent: middle}\n"
        "  - {code: middle, name: 中, kind: subdistrict, parent: top}\n"
        "  - {code: top, name: 顶, kind: office}\n",
        source="t.yaml", known_site_types=SITE_TYPES,
    )
    await import_org(UnitOfWorkFactory(sessions), org)
    async with sessions() as s:
        child, middle, top = [await unit_by_code(s, c) for c in ("child", "middle", "top")]
        assert (child.parent_id, middle.parent_id, top.parent_id) == (middle.id, top.id, None)


async def test_existing_person_gets_role_unit_and_assignments(
    sessions: Sessions, demo: OrgFile
) -> None:
    async with sessions() as s, s.begin():
        s.add(Person(id=10001, first_name="张", role="resident", created_at=utcnow()))
        s.add(Person(id=10013, first_name="杨", role="resident", created_at=utcnow()))

    summary = await import_org(UnitOfWorkFactory(sessions), demo)
    assert counts(summary)["people"] == (0, 2, 0)
    assert counts(summary)["pending"] == (4, 0, 0)
    async with sessions() as s:
        inspector = await s.get(Person, 10001)
        member = await s.get(Person, 10013)
        assert inspector is not None and member is not None
        office = await unit_by_code(s, "district_office")
        houqijie = await unit_by_code(s, "houqijie")
        assert (inspector.role, inspector.unit_id) == ("inspector", office.id)
        assert (member.role, member.unit_id) == ("unit_member", houqijie.id)
        assert await assigned_codes(s, 10001) == {
            "crowne_plaza", "yintai", "rt_mart", "haitang_holiday", "jiameijia_xiguan"
        }
        assert await s.get(PendingAssignment, 10001) is None

    # The file's list replaces the assignments: one site dropped, one added.
    people = tuple(
        dataclasses.replace(p, sites=("crowne_plaza", "huilin_plaza")) if p.telegram_id == 10001
        else p
        for p in demo.people
    )
    summary = await import_org(UnitOfWorkFactory(sessions),
                               dataclasses.replace(demo, people=people))
    assert counts(summary)["people"] == (0, 1, 1)
    async with sessions() as s:
        assert await assigned_codes(s, 10001) == {"crowne_plaza", "huilin_plaza"}

    again = await import_org(UnitOfWorkFactory(sessions),
                               dataclasses.replace(demo, people=people))
    assert counts(again)["people"] == (0, 0, 2)


async def test_import_replaces_a_stale_pending_row(sessions: Sessions, demo: OrgFile) -> None:
    await import_org(UnitOfWorkFactory(sessions), demo)  # 10002 unknown yet: a pending row
    async with sessions() as s, s.begin():
        s.add(Person(id=10002, first_name="李", created_at=utcnow()))  # met the bot, not applied
    summary = await import_org(UnitOfWorkFactory(sessions), demo)
    assert counts(summary)["people"] == (0, 1, 0)
    async with sessions() as s:
        assert await s.get(PendingAssignment, 10002) is None
        person = await s.get(Person, 10002)
        assert person is not None and person.role == "inspector"


async def test_pending_assignment_applies_on_first_contact(
    sessions: Sessions, demo: OrgFile
) -> None:
    await import_org(UnitOfWorkFactory(sessions), demo)

    # What the gatekeeper does when 10002 first writes: create the person, apply, commit.
    async with sessions() as s, s.begin():
        person = Person(id=10002, first_name="李测评", created_at=utcnow())
        s.add(person)
        assert await apply_pending(UnitOfWork.within(s), person) is True

    async with sessions() as s, s.begin():
        met = await s.get(Person, 10002)
        assert met is not None
        office = await unit_by_code(s, "district_office")
        assert (met.role, met.unit_id) == ("inspector", office.id)
        assert await assigned_codes(s, 10002) == {
            "wolongsi_office", "wolongsi_cultural_station", "houqijie_community",
            "houqijie_cultural_center", "qunzhonglu_noodles",
        }
        assert await s.get(PendingAssignment, 10002) is None
        assert await apply_pending(UnitOfWork.within(s), met) is False  # used up

    async with sessions() as s, s.begin():
        stranger = Person(id=55555, first_name="群众", created_at=utcnow())
        s.add(stranger)
        assert await apply_pending(UnitOfWork.within(s), stranger) is False
        assert stranger.role == "resident"


async def test_group_bindings_are_created_and_reactivated(
    sessions: Sessions, demo: OrgFile
) -> None:
    await import_org(UnitOfWorkFactory(sessions), demo)
    async with sessions() as s, s.begin():
        # An admin unbound the sub-district's group and bound another chat in Telegram.
        group = await s.get(GroupBinding, -1001002)
        assert group is not None
        group.active = False
        group.unit_id = (await unit_by_code(s, "houqijie")).id
        s.add(GroupBinding(chat_id=-1009999, unit_id=group.unit_id, title="别的群",
                           bound_by=10000, bound_at=utcnow()))
        # A title the chat reported survives a file that gives none.
        titled = await s.get(GroupBinding, -1001004)
        assert titled is not None
        titled.title = "后祁街社区群（改名）"
    groups = tuple(dataclasses.replace(g, title="") if g.chat_id == -1001004 else g
                   for g in demo.groups)

    summary = await import_org(UnitOfWorkFactory(sessions),
                               dataclasses.replace(demo, groups=groups))

    assert counts(summary)["groups"] == (0, 1, 6)
    assert summary.groups_not_in_file == 1
    assert any("1 active group binding in the database is not in this file" in line
               for line in summary.lines())
    async with sessions() as s:
        group = await s.get(GroupBinding, -1001002)
        assert group is not None
        assert group.active is True
        assert group.unit_id == (await unit_by_code(s, "wolongsi")).id
        other = await s.get(GroupBinding, -1009999)
        assert other is not None and other.active  # never deleted nor deactivated
        titled = await s.get(GroupBinding, -1001004)
        assert titled is not None and titled.title == "后祁街社区群（改名）"


async def test_rows_not_in_the_file_are_kept_and_counted(
    sessions: Sessions, demo: OrgFile
) -> None:
    async with sessions() as s, s.begin():
        s.add(Unit(code="old_unit", name_zh="旧单位", name_en="", kind="office"))
    summary = await import_org(UnitOfWorkFactory(sessions), demo)

    assert summary.units_not_in_file == 1
    assert ("数据库中有 1 个单位不在此文件中（未删除）。 1 unit in the database is not in this "
            "file (nothing was deleted).") in summary.lines()
    assert await count(sessions, Unit) == len(demo.units) + 1


async def test_failed_import_leaves_nothing_behind(sessions: Sessions, demo: OrgFile) -> None:
    # A file that skipped validation: its last site names a unit that does not exist.
    broken = dataclasses.replace(
        demo, sites=(*demo.sites, dataclasses.replace(demo.sites[0], code="x", unit="nowhere"))
    )
    with pytest.raises(KeyError):
        await import_org(UnitOfWorkFactory(sessions), broken)
    assert await count(sessions, Unit) == 0
    assert await count(sessions, Site) == 0


def test_summary_lines_read_in_both_languages() -> None:
    summary = ImportSummary(source="demo.yaml")
    summary.units.add(created=True, changed=True)
    summary.sites_not_in_file = 3
    lines = summary.lines()
    assert lines[0] == "组织导入 Organisation import: demo.yaml"
    assert lines[1] == "单位 Units: 新建 created 1 · 更新 updated 0 · 未变 unchanged 0"
    assert lines[-1] == ("数据库中有 3 个点位不在此文件中（未删除）。 3 sites in the database are "
                         "not in this file (nothing was deleted).")


async def test_a_pending_assignment_the_file_no_longer_names_is_withdrawn(
    sessions: Sessions, demo: OrgFile
) -> None:
    """Someone dropped from the file before they ever wrote to the bot gets no role when they
    do, and stops being named as an inspector who has not started; a file with no people
    withdraws nothing."""
    await import_org(UnitOfWorkFactory(sessions), demo)  # 10002 is pending
    people = tuple(p for p in demo.people if p.telegram_id != 10002)
    summary = await import_org(UnitOfWorkFactory(sessions),
                               dataclasses.replace(demo, people=people))

    assert summary.pending_withdrawn == 1 and summary.changed
    assert ("已撤销 1 项待生效分配（此文件不再列出其人员）。 1 pending assignment was withdrawn "
            "(this file no longer names the person).") in summary.lines()
    async with sessions() as s, s.begin():
        assert await s.get(PendingAssignment, 10002) is None
        assert await s.get(PendingAssignment, 10001) is not None  # still named: kept
        newcomer = Person(id=10002, first_name="李测评", created_at=utcnow())
        s.add(newcomer)
        assert await apply_pending(UnitOfWork.within(s), newcomer) is False
        assert newcomer.role == "resident"

    again = await import_org(UnitOfWorkFactory(sessions), dataclasses.replace(demo, people=()))
    assert again.pending_withdrawn == 0
    assert await count(sessions, PendingAssignment) == len(people)
