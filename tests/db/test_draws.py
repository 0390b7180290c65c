"""The day's spot-check draw against a real database (SQLite, and PostgreSQL): stored once,
its seed's hash told the day before and the seed after, re-run by `wenming draw`, and a
failed re-check made a relapse."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.domain.draw import RECHECK, SPOT, Drawn
from bot.domain.draws_config import DrawConfig, parse_draws
from bot.render.i18n import t
from bot.services.catalog import StandardCatalog
from bot.services.draws import candidates, day_draw
from bot.services.inspections import InspectionService
from db.models import DrawEntry, GroupBinding, Site, Task
from db.uow import UnitOfWorkFactory
from tests.conftest import FakeClock
from tests.db import test_inspection_service as inspections
from tests.db import test_scheduler as scheduling
from tests.db.test_inspection_service import INSPECTOR, C, N, World, start, submit, walk
from tests.db.test_scheduler import OFFICE, SHANGHAI, Sessions, at, make_scheduler

# The neighbours' fixtures: the demo city (scheduler tests), a hotel world (inspections).
city = scheduling.city
world = inspections.world
catalog = inspections.catalog

DAY = dt.date(2026, 12, 7)
CONFIG = DrawConfig(per_subdistrict=2, recheck_share=0.5)


def seeds(*values: bytes):  # type: ignore[no-untyped-def]
    it = iter(values)
    return lambda n: next(it)


async def draw_on(sessions: Sessions, day: dt.date, now: dt.datetime,
                  cfg: DrawConfig = CONFIG, seed: bytes = b"\x01" * 32) -> list[Drawn]:
    async with UnitOfWorkFactory(sessions)() as uow:
        drawn = await day_draw(uow, day, cfg, now, make_seed=seeds(seed))
        await uow.commit()
    return drawn


async def test_the_day_is_drawn_once_and_stored(sessions: Sessions,
                                                city: dict[str, int]) -> None:
    now = at(2026, 12, 6, 23)  # 07:00 on the 7th in Shanghai
    first = await draw_on(sessions, DAY, now)
    # The demo city: one sub-district (卧龙寺街道); the commerce bureau's liaison groups and
    # the district departments are under none: each department is a stratum of its own.
    async with UnitOfWorkFactory(sessions)() as uow:
        sites, _ = await candidates(uow, CONFIG, now)
    size = Counter(c.subdistrict for c in sites)
    assert size["wolongsi"] >= 3 and size["-district_commerce"] >= 3
    assert Counter(d.stratum.split("/")[0] for d in first) == {
        sub: min(2, n) for sub, n in size.items()}
    assert all(d.kind == SPOT for d in first)
    assert len({d.site_id for d in first}) == len(first)
    # The data changes, another seed is offered: the stored draw is what comes back.
    async with sessions() as s, s.begin():
        s.add(Task(source="inspection", unit_id=city["unit:houqijie"],
                   site_id=city["site:crowne_plaza"], title="x", status="open",
                   due_at=now - dt.timedelta(days=3), created_at=now))
    again = await draw_on(sessions, DAY, now + dt.timedelta(hours=2), seed=b"\x02" * 32)
    assert again == first
    async with sessions() as s:
        rows = (await s.scalars(select(DrawEntry).order_by(DrawEntry.rank))).all()
    assert [(r.site_id, r.kind, r.stratum) for r in rows] == [
        (d.site_id, d.kind, d.stratum) for d in first]


async def test_seed_hash_told_the_day_before_and_seed_revealed_after_once_each(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    clock = FakeClock(at(2026, 12, 6, 11, 55))  # 19:55 on the 6th, Shanghai
    scheduler = make_scheduler(sessions, clock, tmp_path)
    scheduler.draws = parse_draws('announce_time: "20:00"\n')
    async with sessions() as s, s.begin():
        s.add(GroupBinding(chat_id=-1009999, unit_id=city["unit:wolongsi"], title="街道",
                           bound_at=clock.now))
    await scheduler.tick()  # 19:55: not yet
    assert await draw_messages(sessions) == []
    clock.now = at(2026, 12, 6, 12, 5)  # 20:05
    await scheduler.tick()
    await scheduler.tick()  # nothing twice
    msgs = await draw_messages(sessions)
    async with UnitOfWorkFactory(sessions)() as uow:
        row = await uow.draws.get("2026-12-07")
        assert row is not None
        committed = row.seed_hash
    # The seed is told the evening after the day, at the announce time (not "after the day").
    assert msgs == [(OFFICE, t("zh-hans", "draw.commit", day="2026-12-07", hash=committed,
                               reveal="2026-12-08 20:00"))]
    # The 7th: the draw is made (the daily lists ask for it) from the committed seed.
    drawn = await draw_on(sessions, DAY, at(2026, 12, 6, 23))
    assert drawn
    # The 8th, 20:05: the 7th's seed revealed, the 9th's hash told; only the office's group.
    clock.now = at(2026, 12, 8, 12, 5)
    await scheduler.tick()
    await scheduler.tick()
    msgs = await draw_messages(sessions)
    assert len(msgs) == 3 and {chat for chat, _ in msgs} == {OFFICE}
    async with UnitOfWorkFactory(sessions)() as uow:
        seventh = await uow.draws.get("2026-12-07")
        assert seventh is not None and seventh.revealed_at is not None
        seed, snap = seventh.seed, seventh.snapshot_hash
    assert hashlib.sha256(bytes.fromhex(seed)).hexdigest() == committed
    lang = "zh-hans"
    reveal = msgs[1][1]
    assert reveal.startswith("\n".join([
        t(lang, "draw.reveal", day="2026-12-07", seed=seed),
        t(lang, "draw.hash_announced", hash=committed, when="2026-12-06 20:05"),
        t(lang, "draw.snapshot", snapshot=snap),
        t(lang, "draw.sites", count=len(drawn))]))
    assert msgs[2][1].startswith(t("zh-hans", "draw.commit", day="2026-12-09",
                                   hash="", reveal="")[:10])
    # The drawn sites' names: only after the day (the reveal), only in the office's group.
    names = await site_names(sessions, [d.site_id for d in drawn])
    assert all(name in reveal for name in names)
    assert not any(name in text for _, text in msgs[:1] + msgs[2:] for name in names)


async def site_names(sessions: Sessions, site_ids: list[int]) -> list[str]:
    async with sessions() as s:
        return [n for (n,) in (await s.execute(
            select(Site.name).where(Site.id.in_(site_ids)))).all()]


async def draw_messages(sessions: Sessions) -> list[tuple[int, str]]:
    from db.models import OutboxMessage

    async with sessions() as s:
        rows = (await s.scalars(select(OutboxMessage).where(OutboxMessage.purpose == "draw")
                                .order_by(OutboxMessage.id))).all()
    return [(r.chat_id, str(r.params["text"])) for r in rows]


async def test_wenming_draw_reruns_the_stored_draw_even_after_the_data_changed(
    sessions: Sessions, city: dict[str, int], database_url: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    seed = bytes(range(32))
    drawn = await draw_on(sessions, DAY, at(2026, 12, 6, 23), seed=seed)
    async with sessions() as s, s.begin():  # the risk changes after the draw
        for site_id in (city["site:crowne_plaza"], city["site:yintai"]):
            s.add(Task(source="inspection", unit_id=city["unit:liaison_1"], site_id=site_id,
                       title="x", status="open", due_at=at(2026, 12, 1),
                       created_at=at(2026, 12, 1)))
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert await asyncio.to_thread(main, ["draw", "--date", "2026-12-07"]) == 0
    out = capsys.readouterr()
    assert "NOT YET REVEALED" in out.err  # an operator's command: it says so
    assert "seed matches" in out.out and "the stored draw is the same" in out.out
    # Drawn by hand (no announcement): the command says the hash was not told in advance.
    assert "NOT announced before the day" in out.out
    for d in drawn:
        assert d.site_code in out.out
    # A department under no sub-district reads as such, without the stored "-" prefix.
    assert "district_commerce (no sub-district)/" in out.out
    assert " -district_commerce" not in out.out
    # A seed given by hand: the right one re-runs the same draw, another does not match.
    assert await asyncio.to_thread(main, ["draw", "--date", "2026-12-07",
                                          "--seed", seed.hex()]) == 0
    assert await asyncio.to_thread(main, ["draw", "--date", "2026-12-07",
                                          "--seed", "00" * 32]) == 1
    assert "DOES NOT MATCH" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["draw", "--date", "2026-12-08"]) == 1
    assert await asyncio.to_thread(main, ["draw", "--date", "12/07"]) == 2


async def add_closed_task(sessions: Sessions, world: World, clock: FakeClock) -> int:
    """A task about item 3 at the hotel, closed two days ago: a re-check candidate."""
    async with sessions() as s, s.begin():
        closed = Task(source="inspection", unit_id=world.unit_id, site_id=world.hotel_id,
                      item_key="3", title="3 旧问题", status="closed",
                      due_at=clock.now - dt.timedelta(days=3),
                      created_at=clock.now - dt.timedelta(days=6),
                      closed_at=clock.now - dt.timedelta(days=2))
        s.add(closed)
        await s.flush()
        return closed.id


async def test_a_failed_recheck_is_a_relapse_of_the_closed_task(
    sessions: Sessions, world: World, clock: FakeClock, catalog: StandardCatalog
) -> None:
    # The relapse window is off: only the re-check links the new task to the closed one.
    service = InspectionService(catalog, relapse_weeks=0)
    closed_id = await add_closed_task(sessions, world, clock)
    day = clock.now.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    drawn = await draw_on(sessions, day, clock.now,
                          DrawConfig(per_subdistrict=0, recheck_share=1.0))
    assert [(d.site_id, d.kind, d.task_id) for d in drawn] == [
        (world.hotel_id, RECHECK, closed_id)]
    started = await start(sessions, service, INSPECTOR, world.hotel_id, clock.now)
    verdicts = {item.key: C for item in started.standard.items}
    verdicts.update({"3": N, "9": N})
    view = await walk(sessions, service, started, clock, verdicts)
    _, task_ids, _ = await submit(sessions, service, INSPECTOR, view.inspection_id, view.step,
                                  clock.now)
    async with sessions() as s:
        new = {t.item_key: t for t in (await s.scalars(
            select(Task).where(Task.id.in_(task_ids)))).all()}
        entry = (await s.scalars(select(DrawEntry))).one()
    assert new["3"].relapse_of_id == closed_id  # the re-checked item failed again: 反弹
    assert new["9"].relapse_of_id is None  # another item: a new problem
    assert entry.inspection_id == view.inspection_id  # the re-check is done



async def test_the_daily_digest_shows_each_inspectors_figures(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    from db.models import Answer, Inspection

    start = at(2026, 11, 24, 2)  # Tuesday 24th, 10:00 Shanghai
    async with sessions() as s, s.begin():
        insp = Inspection(site_id=city["site:crowne_plaza"], inspector_id=10002,
                          standard_id="community", standard_hash="h" * 64, status="submitted",
                          step=2, started_at=start, updated_at=start,
                          submitted_at=start + dt.timedelta(minutes=3))
        s.add(insp)
        await s.flush()
        s.add_all([Answer(inspection_id=insp.id, item_key="1", verdict="compliant",
                          answered_at=start + dt.timedelta(seconds=30)),
                   Answer(inspection_id=insp.id, item_key="2", verdict="noncompliant",
                          answered_at=start + dt.timedelta(seconds=120))])
    clock = FakeClock(at(2026, 11, 25, 0, 30))  # Wednesday 08:30: the digest of Tuesday
    await make_scheduler(sessions, clock, tmp_path).tick()
    [(chat, text)] = [m for m in await scheduling.messages(sessions, "digest")]
    assert chat == OFFICE
    lang = "zh-hans"
    assert t(lang, "draw.stats.digest_title") in text
    assert t(lang, "draw.stats.row", name="李测评", done=t(lang, "draw.stats.done", done=1),
             seconds=t(lang, "draw.stats.seconds", seconds="60"), failed="50%",
             disagreed=0, rechecked=0) in text


async def test_a_seed_never_announced_is_revealed_saying_so(
    sessions: Sessions, city: dict[str, int]
) -> None:
    from bot.services.draws import commit_and_reveal

    # The bot was down on the 6th's evening: the 7th's seed is made when the 7th is drawn.
    await draw_on(sessions, DAY, at(2026, 12, 6, 23))
    async with UnitOfWorkFactory(sessions)() as uow:
        await commit_and_reveal(uow, dt.date(2026, 12, 8), at(2026, 12, 8, 12), [OFFICE],
                                "en", tz=SHANGHAI)
        await uow.commit()
    reveal = (await draw_messages(sessions))[0][1]
    async with UnitOfWorkFactory(sessions)() as uow:
        row = await uow.draws.get("2026-12-07")
        assert row is not None
    assert reveal.startswith("\n".join([
        t("en", "draw.reveal", day="2026-12-07", seed=row.seed),
        t("en", "draw.hash_not_announced", hash=row.seed_hash)]))
    assert "announced here on" not in reveal


async def test_two_replicas_drawing_at_once_store_one_draw(
    sessions: Sessions, city: dict[str, int], database_url: str
) -> None:
    factory = UnitOfWorkFactory(sessions, serialize_writes=database_url.startswith("sqlite"))

    async def one(seed: bytes) -> list[Drawn]:
        async with factory() as uow:
            drawn = await day_draw(uow, DAY, CONFIG, at(2026, 12, 6, 23), make_seed=seeds(seed))
            await uow.commit()
        return drawn

    first, second = await asyncio.gather(one(b"\x03" * 32), one(b"\x04" * 32))
    assert first == second
    async with sessions() as s:
        assert len((await s.scalars(select(DrawEntry))).all()) == len(first)



# ---- what the tryout found (issue 14) -------------------------------------------------------

async def office_scheduler(sessions: Sessions, clock: FakeClock, tmp_path: Path,
                           city: dict[str, int]):  # type: ignore[no-untyped-def]
    """A scheduler started at `clock.now` (its first tick: nothing before it is stale)."""
    scheduler = make_scheduler(sessions, clock, tmp_path)
    scheduler.draws = parse_draws('announce_time: "20:00"\n')
    await scheduler.tick()
    return scheduler


def reveals(msgs: list[tuple[int, str]], day: str) -> list[str]:
    head = t("zh-hans", "draw.reveal", day=day, seed="")
    return [text for _, text in msgs if text.startswith(head[:head.index("<code>")])]


async def test_a_hash_told_after_the_day_began_is_never_called_announced_before(
    sessions: Sessions, city: dict[str, int], tmp_path: Path, database_url: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    # The clock jumps to the 14th, 09:00: the 14th is drawn (its seed made now, with the
    # lists) and the evening job, late, runs after it. Nothing was told before the 14th.
    clock = FakeClock(at(2026, 12, 12, 11, 55))  # running on the 12th, before 20:00
    scheduler = await office_scheduler(sessions, clock, tmp_path, city)
    clock.now = at(2026, 12, 14, 1)
    drawn = await draw_on(sessions, dt.date(2026, 12, 14), clock.now)
    await scheduler.tick()
    msgs = await draw_messages(sessions)
    # No "sealed" message for a day already begun (and drawn): it would prove nothing.
    assert not any("2026-12-14" in text for _, text in msgs)
    clock.now = at(2026, 12, 15, 12, 5)  # the 15th, 20:05: the 14th revealed
    await scheduler.tick()
    [reveal] = reveals(await draw_messages(sessions), "2026-12-14")
    async with UnitOfWorkFactory(sessions)() as uow:
        row = await uow.draws.get("2026-12-14")
        assert row is not None
    assert t("zh-hans", "draw.hash_not_announced", hash=row.seed_hash) in reveal
    assert "事前" not in reveal and "之前在本群公布" not in reveal
    assert all(name in reveal for name in await site_names(sessions,
                                                          [d.site_id for d in drawn]))
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert await asyncio.to_thread(main, ["draw", "--date", "2026-12-14"]) == 0
    out = capsys.readouterr().out
    assert "NOT announced before the day" in out
    assert "that hash was announced" not in out


async def test_every_past_days_seed_is_revealed_once_after_the_bot_was_down(
    sessions: Sessions, city: dict[str, int], tmp_path: Path, database_url: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    clock = FakeClock(at(2026, 12, 7, 11, 55))
    scheduler = await office_scheduler(sessions, clock, tmp_path, city)
    clock.now = at(2026, 12, 7, 12, 5)  # the 7th, 20:05: the 8th's hash told
    await scheduler.tick()
    eighth = await draw_on(sessions, dt.date(2026, 12, 8), at(2026, 12, 8, 1))
    # Down from the 8th to the 14th, 09:00 (or the sandbox's clock jumped): the evening job
    # runs late, and the 8th is over.
    clock.now = at(2026, 12, 14, 1)
    await scheduler.tick()
    clock.now = at(2026, 12, 14, 12, 5)
    await scheduler.tick()
    clock.now = at(2026, 12, 15, 12, 5)
    await scheduler.tick()
    msgs = await draw_messages(sessions)
    [reveal] = reveals(msgs, "2026-12-08")  # once
    async with UnitOfWorkFactory(sessions)() as uow:
        row = await uow.draws.get("2026-12-08")
        assert row is not None and row.revealed_at is not None
    assert t("zh-hans", "draw.hash_announced", hash=row.seed_hash,
             when="2026-12-07 20:05") in reveal
    assert all(name in reveal for name in await site_names(sessions,
                                                          [d.site_id for d in eighth]))
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert await asyncio.to_thread(main, ["draw", "--date", "2026-12-08"]) == 0
    out = capsys.readouterr()
    assert "NOT YET REVEALED" not in out.err
    assert "that hash was announced before the day (2026-12-07 20:05" in out.out


async def test_a_closed_task_is_drawn_for_a_recheck_once(
    sessions: Sessions, world: World, clock: FakeClock
) -> None:
    closed_id = await add_closed_task(sessions, world, clock)
    cfg = DrawConfig(per_subdistrict=0, recheck_share=1.0)
    day = clock.now.astimezone(SHANGHAI).date()
    first = await draw_on(sessions, day, clock.now, cfg)
    assert [(d.kind, d.task_id) for d in first] == [(RECHECK, closed_id)]
    # Not done, and the next days: the same closed task is not drawn again (nor after the
    # re-check's grace days: a task is drawn for a re-check once).
    for later in (1, 2, 9):
        when = clock.now + dt.timedelta(days=later)
        assert await draw_on(sessions, day + dt.timedelta(days=later), when, cfg) == []
