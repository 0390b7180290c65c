"""Supervision plans against a real database (SQLite, and PostgreSQL): the day's occurrences
are created once however often (and by however many replicas) the morning runs, shared out
evenly, ticked off by inspections, and missed or late when not done on their day."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import DEFAULTS_DIR
from bot.domain.draws_config import DrawConfig
from bot.domain.org import load_org_file
from bot.domain.plans import load_plans, parse_plans
from bot.domain.schedule import parse_schedule
from bot.domain.standards import load_standards
from bot.render.i18n import t
from bot.services import plans as service
from bot.services.bulletins import digest_text
from bot.services.org_import import import_org
from db.models import (
    Inspection,
    OutboxMessage,
    Person,
    PlanOccurrence,
    Site,
    StandardVersion,
    Unit,
)
from db.uow import UnitOfWorkFactory
from scheduler.runner import Scheduler
from tests.conftest import DEMO_CITY, ROOT, FakeClock

Sessions = async_sessionmaker[AsyncSession]
SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = dt.date(2026, 12, 7)
TUESDAY = MONDAY + dt.timedelta(days=1)
# Extra inspectors of two liaison groups (the commerce plan's crew units) and a blocked one.
LIAISON_INSPECTORS = (20001, 20002)
BLOCKED = 20003


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), SHANGHAI).astimezone(dt.UTC)


@pytest.fixture
async def city(sessions: Sessions) -> dict[str, int]:
    async with sessions() as s, s.begin():
        for pid, name in ((10000, "王管理"), (10001, "张督查"), (10002, "李测评")):
            s.add(Person(id=pid, first_name=name, telegram_language="zh-hans"))
    org = load_org_file(DEMO_CITY, set(load_standards(ROOT / "standards")))
    await import_org(UnitOfWorkFactory(sessions), org)
    async with sessions() as s, s.begin():
        units = {u.code: u.id for u in (await s.scalars(select(Unit))).all()}
        for pid, unit in zip(LIAISON_INSPECTORS, ("liaison_1", "liaison_3"), strict=True):
            s.add(Person(id=pid, first_name=f"联络{pid}", role="inspector", unit_id=units[unit]))
        s.add(Person(id=BLOCKED, first_name="停用", role="inspector", blocked=True,
                     unit_id=units["liaison_2"]))
        s.add(StandardVersion(content_hash="h" * 64, standard_id="mall", body={}))
        sites = {x.code: x.id for x in (await s.scalars(select(Site))).all()}
    uow = UnitOfWorkFactory(sessions)
    async with uow() as u:
        await service.import_plans(u, load_plans(DEFAULTS_DIR / "plans.yaml"), local(MONDAY, 0))
        await u.commit(mark_update_handled=False)
    return sites


def shanghai_scheduler(sessions: Sessions, clock: FakeClock, tmp_path: Path,
                       draws: DrawConfig | None = None) -> Scheduler:
    """The scheduler as the demo city runs it: Shanghai, lists at 07:30, `draws` if given."""
    return Scheduler(UnitOfWorkFactory(sessions), parse_schedule(""), timezone="Asia/Shanghai",
                     language="zh-hans", media_dir=tmp_path / "media", clock=clock,
                     plans_morning=dt.time(7, 30), draws=draws)


async def occurrences(sessions: Sessions, day: dt.date | None = None) -> list[PlanOccurrence]:
    async with sessions() as s:
        stmt = select(PlanOccurrence).order_by(PlanOccurrence.id)
        if day is not None:
            stmt = stmt.where(PlanOccurrence.day == day)
        return list((await s.scalars(stmt)).all())


async def morning(sessions: Sessions, day: dt.date) -> service.Morning:
    async with UnitOfWorkFactory(sessions)() as uow:
        result = await service.run_morning(uow, day, SHANGHAI, local(day, 7, 30), "zh-hans")
        await uow.commit(mark_update_handled=False)
    return result


async def inspect(sessions: Sessions, site_id: int, inspector: int, at: dt.datetime) -> int:
    async with sessions() as s, s.begin():
        insp = Inspection(site_id=site_id, inspector_id=inspector, standard_id="mall",
                          standard_hash="h" * 64, status="submitted", submitted_at=at)
        s.add(insp)
        await s.flush()
        inspection_id = insp.id
    async with UnitOfWorkFactory(sessions)() as uow:
        await service.tick_off(uow, site_id, inspection_id, at, SHANGHAI)
        await uow.commit(mark_update_handled=False)
    return inspection_id


async def test_a_mondays_rounds_are_created_once_however_often_the_morning_runs(
    sessions: Sessions, city: dict[str, int]
) -> None:
    first = await morning(sessions, MONDAY)
    # Every mall and hotel of the demo city, door to door (seed line 169).
    async with sessions() as s:
        commerce = set((await s.scalars(
            select(Site.id).where(Site.site_type.in_(("mall", "hotel"))))).all())
    rows = await occurrences(sessions, MONDAY)
    assert {r.site_id for r in rows} == commerce and len(rows) == len(commerce) == first.added
    assert {r.plan for r in rows} == {"commerce_weekly"} and {r.kind for r in rows} == {"round"}
    # Two replicas at once, and a third run: nothing new, no list twice.
    again = await asyncio.gather(morning(sessions, MONDAY), morning(sessions, MONDAY))
    assert [m.added for m in again] == [0, 0] and sum(m.lists for m in again) == 0
    assert len(await occurrences(sessions, MONDAY)) == len(commerce)
    # The community patrol is due Tuesday, not Monday.
    tuesday = await morning(sessions, TUESDAY)
    patrol = await occurrences(sessions, TUESDAY)
    assert tuesday.added == len(patrol) > 0 and {r.plan for r in patrol} == {"community_patrol"}


async def test_rounds_are_shared_evenly_among_the_crew_available(
    sessions: Sessions, city: dict[str, int]
) -> None:
    result = await morning(sessions, MONDAY)
    rows = await occurrences(sessions, MONDAY)
    load: dict[int | None, int] = {}
    for r in rows:
        load[r.inspector_id] = load.get(r.inspector_id, 0) + 1
    # 张督查 (named in the plan) and the two liaison groups' inspectors; not the blocked one,
    # not 李测评 (not in this plan's crew), nobody left without an inspector.
    assert set(load) == {10001, *LIAISON_INSPECTORS}
    assert max(load.values()) - min(load.values()) <= 1
    assert result.unassigned == 0 and result.assigned == len(rows)
    # 张督查 is given his own sites first (his assignments in the organisation file).
    async with sessions() as s:
        own = set((await s.scalars(select(Site.id).where(Site.code.in_(
            ("crowne_plaza", "yintai", "rt_mart", "haitang_holiday"))))).all())
    mine = {r.site_id for r in rows if r.inspector_id == 10001}
    assert len(mine & own) >= len(mine) - 1
    # Each inspector's list is queued in private, once, with a button per site.
    async with sessions() as s:
        lists = (await s.scalars(select(OutboxMessage).where(
            OutboxMessage.purpose == "plans"))).all()
    assert sorted(m.chat_id for m in lists) == sorted(k for k in load if k is not None)
    zhang = next(m for m in lists if m.chat_id == 10001)
    markup = zhang.params["reply_markup"]
    assert isinstance(markup, dict)
    assert len(markup["inline_keyboard"]) == load[10001]
    assert str(zhang.params["text"]).startswith(
        t("zh-hans", "plans.list.title", date="12/7").split("12/7")[0])


async def test_the_draw_adds_its_sites_before_the_share_out(
    sessions: Sessions, city: dict[str, int]
) -> None:
    async with UnitOfWorkFactory(sessions)() as uow:
        added = await service.add_occurrences(
            uow, TUESDAY, [(city["qunzhonglu_noodles"], "spot", None),
                           (city["qunzhonglu_noodles"], "spot", None)], local(TUESDAY, 0))
        await uow.commit(mark_update_handled=False)
    assert added == 1
    await morning(sessions, TUESDAY)
    spot = [r for r in await occurrences(sessions, TUESDAY) if r.kind == "spot"]
    assert len(spot) == 1 and spot[0].inspector_id is not None and spot[0].plan == ""


async def test_an_inspection_ticks_off_the_day_missed_and_late_follow(
    sessions: Sessions, city: dict[str, int]
) -> None:
    await morning(sessions, MONDAY)
    rows = await occurrences(sessions, MONDAY)
    async with UnitOfWorkFactory(sessions).read() as uow:
        listed = await uow.plans.of_day(MONDAY)  # in the order the digest lists them
    done_site, late_site = listed[-1].site_id, listed[0].site_id
    # Any inspector's inspection there on the day ticks it off.
    inspection = await inspect(sessions, done_site, LIAISON_INSPECTORS[0], local(MONDAY, 15))
    by_site = {r.site_id: r for r in await occurrences(sessions, MONDAY)}
    assert by_site[done_site].status == "done"
    assert by_site[done_site].inspection_id == inspection
    # The next morning, what was not done on Monday is missed ...
    result = await morning(sessions, TUESDAY)
    by_site = {r.site_id: r for r in await occurrences(sessions, MONDAY)}
    assert result.missed == len(rows) - 1
    assert by_site[late_site].status == "missed" and by_site[done_site].status == "done"
    # ... and shows in Tuesday's digest, by site and inspector.
    async with UnitOfWorkFactory(sessions)() as uow:
        digest = await digest_text(uow, parse_schedule(""), SHANGHAI, "zh-hans", TUESDAY,
                                   local(TUESDAY, 8, 30))
    assert t("zh-hans", "plans.digest.missed", count=len(rows) - 1) in digest
    async with sessions() as s:
        late_name = await s.scalar(select(Site.name).where(Site.id == late_site))
    assert f"• {late_name}（" in digest
    # An inspection on Wednesday is allowed: Monday's round is marked late.
    await inspect(sessions, late_site, 10001, local(TUESDAY + dt.timedelta(days=1), 10))
    by_site = {r.site_id: r for r in await occurrences(sessions, MONDAY)}
    assert by_site[late_site].status == "late"
    # The week's completion per unit counts rounds done on their day only.
    async with UnitOfWorkFactory(sessions)() as uow:
        completion = await uow.plans.completion_by_unit(MONDAY, MONDAY + dt.timedelta(days=6))
    assert sum(d for d, _ in completion.values()) == 1
    tuesday = await occurrences(sessions, TUESDAY)
    assert sum(n for _, n in completion.values()) == len(rows) + len(tuesday)


async def test_a_paused_plan_adds_no_rounds_and_import_keeps_it_paused(
    sessions: Sessions, city: dict[str, int]
) -> None:
    async with UnitOfWorkFactory(sessions)() as uow:
        admin = await uow.people.get(10000)
        assert admin is not None
        await service.set_paused(uow, admin, "commerce_weekly", True, MONDAY, local(MONDAY, 0))
        await uow.commit(mark_update_handled=False)
    async with UnitOfWorkFactory(sessions)() as uow:
        summary = await service.import_plans(uow, load_plans(DEFAULTS_DIR / "plans.yaml"),
                                             local(MONDAY, 1))
        await uow.commit(mark_update_handled=False)
    assert summary == (0, 0, 0)
    assert (await morning(sessions, MONDAY)).added == 0
    # A file without the plan removes it.
    async with UnitOfWorkFactory(sessions)() as uow:
        summary = await service.import_plans(uow, parse_plans("plans: []"), local(MONDAY, 2))
        await uow.commit(mark_update_handled=False)
        assert await uow.plans.plans() == []
    assert summary == (0, 0, 2)


async def test_the_scheduler_sends_the_lists_once_at_the_morning_hour(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    clock = FakeClock(local(MONDAY, 6))
    scheduler = shanghai_scheduler(sessions, clock, tmp_path)
    await scheduler.tick()  # a fresh database: nothing before the scheduler started
    assert await occurrences(sessions) == []
    clock.now = local(MONDAY, 7, 31)
    first = await scheduler.tick()
    assert f"plans:{MONDAY.isoformat()}" in first.ran and first.lists == 3
    assert (await scheduler.tick()).lists == 0
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.purpose == "plans")) == 3


async def test_the_weekly_bulletin_shows_plan_completion_per_unit(
    sessions: Sessions, city: dict[str, int]
) -> None:
    from bot.media.bulletin import render_png
    from bot.render.bulletin import caption
    from bot.services.bulletins import build_bulletins

    await morning(sessions, MONDAY)
    await inspect(sessions, city["crowne_plaza"], 10001, local(MONDAY, 10))
    async with UnitOfWorkFactory(sessions).read() as uow:
        bulletins = await build_bulletins(uow, parse_schedule(""), SHANGHAI, "zh-hans",
                                          "2026-W50")
        liaison_1 = (await uow.stats.unit_tree()).office("liaison_1")
    assert liaison_1 is not None
    office = next(b for b in bulletins if b.chat_id == -1001001)
    # 第1联络小组 has three malls and hotels (东岭皇冠假日酒店 done on Monday).
    assert office.view.plans[liaison_1.id] == (1, 3)
    text = caption(office.view)
    assert t("zh-hans", "plans.bulletin.completion_row", unit=liaison_1.name_zh, done=1,
             due=3) in text
    assert render_png(office.view)[:4] == b"\x89PNG"


BERLIN_PLANS = """
morning: "07:30"
plans:
  - code: commerce_weekly
    name: {zh: 商场宾馆每周排查, en: Weekly commerce round}
    rrule: FREQ=WEEKLY;BYDAY=MO
    start: 2026-03-02
    target: {site_types: [mall, hotel]}
    crew: {people: [10001]}
"""


async def test_the_lists_go_out_at_the_local_morning_across_daylight_saving(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    """Berlin moves its clocks on Sunday 2026-03-29: the lists go out at 07:30 on the wall
    clock on the Mondays either side (06:30 UTC before, 05:30 UTC after)."""
    berlin = ZoneInfo("Europe/Berlin")
    config = parse_plans(BERLIN_PLANS)
    async with UnitOfWorkFactory(sessions)() as uow:
        await service.import_plans(uow, config, dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
        await uow.commit(mark_update_handled=False)
    clock = FakeClock(dt.datetime(2026, 3, 22, 12, tzinfo=dt.UTC))
    scheduler = Scheduler(UnitOfWorkFactory(sessions), parse_schedule(""),
                          timezone="Europe/Berlin", language="zh-hans",
                          media_dir=tmp_path / "media", clock=clock,
                          plans_morning=config.morning)
    await scheduler.tick()  # a fresh database: its first tick
    for monday, utc_hour in ((dt.date(2026, 3, 23), 6), (dt.date(2026, 3, 30), 5)):
        clock.now = dt.datetime.combine(monday, dt.time(utc_hour, 29), dt.UTC)
        assert (await scheduler.tick()).lists == 0, monday
        clock.now += dt.timedelta(minutes=2)
        assert clock.now.astimezone(berlin).time() == dt.time(7, 31)
        ran = await scheduler.tick()
        assert ran.lists == 1 and f"plans:{monday.isoformat()}" in ran.ran
        assert {r.day for r in await occurrences(sessions, monday)} == {monday}
    # Tuesday 31 March: no round, nothing sent.
    clock.now = dt.datetime(2026, 3, 31, 5, 31, tzinfo=dt.UTC)
    assert (await scheduler.tick()).lists == 0
    assert await occurrences(sessions, dt.date(2026, 3, 31)) == []


async def test_the_days_draw_reaches_only_the_inspectors_lists(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    """The morning's share-out takes the day's random spot checks with the plans' rounds:
    each drawn site is in one inspector's private list, and no group hears of it."""
    from db.models import DrawEntry

    clock = FakeClock(local(MONDAY, 6))
    scheduler = shanghai_scheduler(sessions, clock, tmp_path,
                                   DrawConfig(per_subdistrict=2, recheck_share=0.0))
    await scheduler.tick()
    clock.now = local(MONDAY, 7, 31)
    assert f"plans:{MONDAY.isoformat()}" in (await scheduler.tick()).ran
    async with sessions() as s:
        drawn = set((await s.scalars(select(DrawEntry.site_id).where(
            DrawEntry.day == MONDAY.isoformat()))).all())
        names = {x.id: x.name for x in (await s.scalars(select(Site))).all()}
        sent = (await s.scalars(select(OutboxMessage))).all()
    spot = [r for r in await occurrences(sessions, MONDAY) if r.kind == "spot"]
    assert drawn and {r.site_id for r in spot} == drawn
    assert all(r.inspector_id is not None for r in spot)
    lists = {m.chat_id: str(m.params.get("text", "")) for m in sent if m.purpose == "plans"}
    for r in spot:
        assert names[r.site_id] in lists[r.inspector_id]
    groups = " ".join(str(m.params.get("text", "")) + str(m.params.get("caption", ""))
                      for m in sent if m.chat_id < 0)
    assert not any(names[site] in groups for site in drawn)


async def digest_line(sessions: Sessions, name: str) -> str:
    """The line of Tuesday's digest on `name`'s plan."""
    async with UnitOfWorkFactory(sessions)() as uow:
        text = await digest_text(uow, parse_schedule(""), SHANGHAI, "zh-hans", TUESDAY,
                                 local(TUESDAY, 8, 30))
    return next(x for x in text.splitlines() if name in x and "计划" in x)


async def test_the_digest_counts_each_inspectors_rounds_against_their_plan(
    sessions: Sessions, city: dict[str, int]
) -> None:
    """An inspector given rounds who did none is in the morning digest, at 0 of their plan."""
    await morning(sessions, MONDAY)
    assigned = [r for r in await occurrences(sessions, MONDAY) if r.inspector_id == 10001]
    assert assigned
    line = await digest_line(sessions, "张督查")
    assert f"计划完成 0/{len(assigned)}" in line


async def test_a_round_done_by_another_inspector_counts_for_the_one_who_did_it(
    sessions: Sessions, city: dict[str, int]
) -> None:
    """Tryout 14, defect 10: 李测评 inspected a site on 张督查's list; /stats and the digest
    credit 李测评 with it, and 张督查 stays at 0 of his rounds."""
    await morning(sessions, MONDAY)
    mine = [r for r in await occurrences(sessions, MONDAY) if r.inspector_id == 10001]
    assert mine
    await inspect(sessions, mine[0].site_id, 10002, local(MONDAY, 11))
    async with UnitOfWorkFactory(sessions).read() as uow:
        counts = await uow.plans.per_inspector(MONDAY, MONDAY)
    assert counts[10001] == (0, len(mine))
    assert counts[10002][0] == 1
    line = await digest_line(sessions, "张督查")
    assert f"计划完成 0/{len(mine)}" in line


async def test_days_the_morning_did_not_run_are_recorded_as_missed(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    """Tryout 14, defect 6: the bot ran on Monday 7 Dec, then not until Monday 14 Dec 09:00
    (down, or the sandbox clock jumped). The Tuesday and Friday patrols between are recorded
    as missed, count in the week's completion and the digest, and no list goes out for them."""
    clock = FakeClock(local(MONDAY, 6))
    uow = UnitOfWorkFactory(sessions)
    scheduler = shanghai_scheduler(sessions, clock, tmp_path)
    await scheduler.tick()
    clock.now = local(MONDAY, 7, 31)
    assert (await scheduler.tick()).lists == 3
    next_monday = MONDAY + dt.timedelta(days=7)
    clock.now = local(next_monday, 9)
    ran = await scheduler.tick()
    assert f"plans:{next_monday.isoformat()}" in ran.ran
    friday = MONDAY + dt.timedelta(days=4)
    patrol = await occurrences(sessions, TUESDAY)
    assert patrol and {r.status for r in patrol} == {"missed"}
    assert {r.plan for r in patrol} == {"community_patrol"}
    assert {r.status for r in await occurrences(sessions, friday)} == {"missed"}
    assert all(r.inspector_id is None for r in patrol)  # nobody had a list for them
    # A second replica's morning (or tick) adds nothing twice.
    async with uow() as u:
        again = await service.run_morning(u, next_monday, SHANGHAI, clock.now, "zh-hans")
        await u.commit(mark_update_handled=False)
    assert again.backfilled == 0 and again.added == 0
    async with sessions() as s:
        lists = (await s.scalars(select(OutboxMessage).where(
            OutboxMessage.purpose == "plans"))).all()
    assert not any(TUESDAY.isoformat() in str(m.dedup_key) for m in lists)
    async with uow.read() as u:
        week = await u.plans.completion_by_unit(MONDAY, MONDAY + dt.timedelta(days=6))
    assert sum(n for _, n in week.values()) == len(await occurrences(sessions, MONDAY)) + \
        2 * len(patrol)
    # The Saturday's digest (had it gone out) would say Friday's rounds were not listed.
    async with uow() as u:
        text = await digest_text(u, parse_schedule(""), SHANGHAI, "zh-hans", friday
                                 + dt.timedelta(days=1), local(next_monday, 9))
    assert t("zh-hans", "plans.digest.not_sent") in text


async def test_import_refuses_units_and_sites_the_database_does_not_know(
    sessions: Sessions, city: dict[str, int], database_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """Tryout 14, defect 14: a plan over `units: [nosuchunit]` for `people: [99999]` was
    imported and listed. Unknown unit and site codes are errors (nothing is imported),
    an unknown person is a warning."""
    from bot.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    path = tmp_path / "plans.yaml"
    path.write_text("""\
plans:
  - code: x
    name: 测试
    rrule: FREQ=WEEKLY;BYDAY=MO
    start: 2026-12-07
    target: {units: [nosuchunit], sites: [nosite]}
    crew: {people: [99999]}
""", encoding="utf-8")
    assert await asyncio.to_thread(main, ["plans", "import", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2: plan 'x': target.units: 'nosuchunit' is not a unit code" in err
    assert f"{path}:2: plan 'x': target.sites: 'nosite' is not a site code" in err
    assert f"{path}:2: plan 'x': warning: crew.people: 99999" in err
    async with UnitOfWorkFactory(sessions).read() as uow:
        assert "x" not in {p.code for p in await uow.plans.plans()}
    path.write_text(path.read_text(encoding="utf-8").replace(
        "{units: [nosuchunit], sites: [nosite]}", "{units: [wolongsi]}"), encoding="utf-8")
    assert await asyncio.to_thread(main, ["plans", "import", str(path)]) == 0
    out = capsys.readouterr()
    assert "warning: crew.people: 99999" in out.err and "1 added" in out.out


async def test_the_office_is_told_which_inspectors_have_not_started_the_bot(
    sessions: Sessions, city: dict[str, int]
) -> None:
    """Tryout 14: an inspector the organisation file names gets no list and no rounds until
    they first write to the bot (a bot may not start a chat), and nobody was told. The
    digest and /plans now name them, from the file's names, until they /start."""
    import dataclasses

    from bot.domain.org import PersonSpec
    from bot.services.org_import import apply_pending

    org = load_org_file(DEMO_CITY, set(load_standards(ROOT / "standards")))
    newcomer = PersonSpec(20099, "赵新人", "inspector", "liaison_1", (), 1)
    await import_org(UnitOfWorkFactory(sessions), dataclasses.replace(
        org, people=(*org.people, newcomer)))
    await morning(sessions, MONDAY)
    uow = UnitOfWorkFactory(sessions)
    says = t("zh-hans", "plans.waiting", count=1, names="赵新人")
    async with uow() as u:
        digest = await digest_text(u, parse_schedule(""), SHANGHAI, "zh-hans", TUESDAY,
                                   local(TUESDAY, 9))
        admin = await u.people.get(10000)
        assert admin is not None
        screen, _ = await service.plans_overview(u, admin, MONDAY, "en")
    assert says in digest
    assert "1 inspector(s) have not started the bot yet: 赵新人" in screen
    # Once they write to the bot, the import's role applies and they are no longer named.
    async with uow() as u:
        person, _ = await u.people.add(Person(id=20099, first_name="赵", role="resident"))
        assert await apply_pending(u, person)
        await u.commit(mark_update_handled=False)
    async with uow() as u:
        digest = await digest_text(u, parse_schedule(""), SHANGHAI, "zh-hans", TUESDAY,
                                   local(TUESDAY, 9))
    assert "未启动机器人" not in digest


async def test_an_older_lists_button_says_which_later_missed_day_the_inspection_counts_for(
    sessions: Sessions, city: dict[str, int]
) -> None:
    """Review of issue 14: the Tuesday and Friday patrols both missed, Tuesday's button
    pressed on Saturday was told "planned over a week ago, no longer counts", though the
    inspection counts, late, for Friday's round (the latest missed is the one ticked)."""
    from bot.render.plans import LATER, press_notice

    friday = MONDAY + dt.timedelta(days=4)
    saturday = friday + dt.timedelta(days=1)
    for day in (MONDAY, TUESDAY, friday, saturday):
        await morning(sessions, day)
    tuesdays = [r for r in await occurrences(sessions, TUESDAY)
                if r.plan == "community_patrol" and r.inspector_id == 10002]
    assert tuesdays and tuesdays[0].status == "missed"
    occ = tuesdays[0]
    async with UnitOfWorkFactory(sessions).read() as u:
        li = await u.people.get(10002)
        assert li is not None
        press = await service.planned_press(u, li, occ.id, saturday)
    assert (press.counts_as, press.counts_for) == (LATER, friday)
    notice = press_notice("zh-hans", day=TUESDAY, counts_as=press.counts_as, kind="round",
                          counts_for=press.counts_for)
    assert notice == t("zh-hans", "plans.press.for_later", date="12月8日", later="12月11日")
    # And so it is: the inspection ticks Friday's round late, Tuesday's stays missed.
    await inspect(sessions, occ.site_id, 10002, local(saturday, 10))
    by_day = {r.day: r.status for r in await occurrences(sessions)
              if r.site_id == occ.site_id and r.plan == "community_patrol"}
    assert (by_day[TUESDAY], by_day[friday]) == ("missed", "late")


async def test_two_inspections_submitted_at_once_both_show_on_the_list(
    sessions: Sessions, city: dict[str, int]
) -> None:
    """Two inspections of sites on one inspector's delivered list, submitted in parallel
    transactions: the list's last edit shows both ticks (each edit used to be drawn from its
    own transaction's view, and the later one wiped the other's tick). SQLite runs one writer
    at a time, so the race is PostgreSQL's; the test runs on both."""
    await morning(sessions, MONDAY)
    async with sessions() as s:
        mine = list((await s.scalars(select(PlanOccurrence).where(
            PlanOccurrence.day == MONDAY, PlanOccurrence.inspector_id == 10001))).all())
        names = dict((await s.execute(select(Site.id, Site.name))).all())
    first, second = mine[0].site_id, mine[1].site_id
    async with sessions() as s, s.begin():
        listed = (await s.scalars(select(OutboxMessage).where(
            OutboxMessage.purpose == "plans", OutboxMessage.chat_id == 10001))).one()
        listed.status, listed.sent_message_id = "sent", 500  # delivered this morning

    async def submit(site_id: int, hold: asyncio.Event | None) -> None:
        at = local(MONDAY, 10)
        async with sessions() as s, s.begin():
            insp = Inspection(site_id=site_id, inspector_id=10001, standard_id="mall",
                              standard_hash="h" * 64, status="submitted", submitted_at=at)
            s.add(insp)
            await s.flush()
            inspection_id = insp.id
        async with UnitOfWorkFactory(sessions)() as uow:
            await service.on_inspection_submitted(uow, tz=SHANGHAI, site_id=site_id,
                                                  inspection_id=inspection_id, now=at)
            if hold is not None:
                await hold.wait()
            await uow.commit(mark_update_handled=False)

    hold = asyncio.Event()
    one = asyncio.create_task(submit(first, hold))
    await asyncio.sleep(0.3)  # the first holds its transaction open, the list's row read
    two = asyncio.create_task(submit(second, None))
    await asyncio.sleep(0.3)
    hold.set()
    await asyncio.gather(one, two)

    async with sessions() as s:
        edits = list((await s.scalars(select(OutboxMessage).where(
            OutboxMessage.method == "editMessageText", OutboxMessage.chat_id == 10001)
            .order_by(OutboxMessage.id))).all())
    assert len(edits) == 2 and edits[-1].params["message_id"] == 500
    done = t("zh-hans", "plans.mark.done")
    assert f"{done} {names[first]}" in edits[-1].params["text"]
    assert f"{done} {names[second]}" in edits[-1].params["text"]


@pytest.mark.parametrize("days", [7, 8])
async def test_after_a_jump_the_morning_runs_before_the_digest_and_the_bulletin(
    sessions: Sessions, city: dict[str, int], tmp_path: Path, days: int
) -> None:
    """Tryout: the clock jumped from Wednesday to the next Monday 09:00 (a stopped bot, the
    sandbox's clock): the bulletin went out first, counting only the rounds created before
    the jump, and the digest after it. Now the morning's rounds and lists come first (days
    the morning never ran recorded as missed), then the digest, then the bulletin: also when
    the bot comes back on Tuesday, when Monday's bulletin is still due (review: a sort by due
    time put it before Tuesday's morning)."""
    clock = FakeClock(local(MONDAY, 6))
    scheduler = shanghai_scheduler(sessions, clock, tmp_path)
    await scheduler.tick()  # a fresh database: nothing before the scheduler started
    clock.now = local(MONDAY, 8, 31)  # Monday's lists and digest go out
    await scheduler.tick()
    back = MONDAY + dt.timedelta(days=days)
    clock.now = local(back, 9, 1)
    ran = (await scheduler.tick()).ran
    assert [r.split(":")[0] for r in ran] == ["plans", "digest", "bulletin"], ran
    # The week's rounds were all there when the bulletin counted them: Friday's patrol too.
    friday = await occurrences(sessions, MONDAY + dt.timedelta(days=4))
    assert friday and {o.status for o in friday} == {"missed"}
    # No digest went out after Monday's: this one says how many rounds were not done on the
    # days none told of (from Monday to the day before its own "yesterday"), so they are not
    # lost from sight.
    untold = [o for day in range(days - 1)
              for o in await occurrences(sessions, MONDAY + dt.timedelta(days=day))]
    async with sessions() as s:
        digest = (await s.scalars(select(OutboxMessage).where(
            OutboxMessage.purpose == "digest").order_by(OutboxMessage.id.desc()))).first()
    assert digest is not None
    assert t("zh-hans", "plans.digest.unreported", count=len(untold), first="12月7日",
             last=f"12月{7 + days - 2}日") in digest.params["text"]


async def test_a_spot_check_or_recheck_at_a_site_with_a_round_goes_to_the_rounds_inspector(
    sessions: Sessions, city: dict[str, int]
) -> None:
    """Review: a re-check drawn at a site a round is due at was shared out on its own, so a
    second inspector could be sent to the same door. It goes with the round."""
    async with UnitOfWorkFactory(sessions)() as uow:
        await service.expand_day(uow, MONDAY, SHANGHAI, local(MONDAY, 7))
        await uow.commit(mark_update_handled=False)
    rounds = {o.site_id for o in await occurrences(sessions, MONDAY) if o.kind == "round"}
    sites = sorted(rounds)[:4]
    async with UnitOfWorkFactory(sessions)() as uow:
        await service.add_occurrences(uow, MONDAY, [(s, "recheck", None) for s in sites],
                                      local(MONDAY, 7))
        await service.assign_day(uow, MONDAY, local(MONDAY, 7, 30))
        await uow.commit(mark_update_handled=False)
    who: dict[tuple[int, str], int | None] = {
        (o.site_id, o.kind): o.inspector_id for o in await occurrences(sessions, MONDAY)}
    for site in sites:
        assert who[(site, "recheck")] == who[(site, "round")] is not None


async def test_no_spot_check_is_drawn_at_a_site_a_round_is_due_at_that_day(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    """Tryout: on Monday the weekly mall and hotel round had 华润万家超市 for one inspector
    and the draw sent another there as a spot check; one inspection ticked both. A site a
    round is due at is inspected that day anyway: it is no candidate (the draw here takes
    every candidate, so a round's site would surely be drawn), and a re-run of the stored
    draw gives the same sites."""
    from bot.services.draws import rerun

    clock = FakeClock(local(MONDAY, 6))
    scheduler = shanghai_scheduler(sessions, clock, tmp_path,
                                   DrawConfig(per_subdistrict=1000, recheck_share=0.0))
    await scheduler.tick()
    clock.now = local(MONDAY, 7, 31)
    await scheduler.tick()
    monday = await occurrences(sessions, MONDAY)
    rounds = {o.site_id for o in monday if o.kind == "round"}
    spots = {o.site_id for o in monday if o.kind == "spot"}
    assert rounds and spots  # the malls and hotels; every other site
    assert not rounds & spots
    assert rounds | spots == set(city.values())
    async with UnitOfWorkFactory(sessions).read() as uow:
        again = await rerun(uow, MONDAY, SHANGHAI)
    assert again is not None and again.matches
