"""The scheduler against a real database (SQLite, and PostgreSQL), driven by a FakeClock.

Each test moves the clock and calls `await scheduler.tick()`, then reads the outbox: what the
groups would receive, and when. Texts are compared with the catalogue, not with literals.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.org import load_org_file
from bot.domain.schedule import parse_schedule
from bot.domain.standards import load_standards
from bot.render.i18n import t
from bot.services import deadlines
from bot.services import tasks as tasks_service
from bot.services.bulletins import build_bulletins
from bot.services.org_import import import_org
from db.models import (
    GroupBinding,
    Inspection,
    JobRun,
    OutboxMessage,
    Person,
    Report,
    Site,
    StandardVersion,
    Task,
    TaskEvent,
    Unit,
)
from db.repositories.stats import StatsRepository
from db.uow import UnitOfWork, UnitOfWorkFactory
from scheduler.runner import Scheduler
from tests.conftest import DEMO_CITY, ROOT, FakeClock

Sessions = async_sessionmaker[AsyncSession]
UTC = dt.UTC
SHANGHAI = ZoneInfo("Asia/Shanghai")
OFFICE, WOLONGSI, LIAISON1, HOUQIJIE = -1001001, -1001002, -1001003, -1001004
# The departments' groups (law enforcement, traffic police, construction bureau).
DEPARTMENTS = (-1001005, -1001006, -1001007)
SCHEDULE = """
reminder_before_hours: 24
overdue_reminder_hour: 9
escalation:
  - {after_overdue_hours: 48, level: 1, notify: parent}
  - {after_overdue_hours: 120, level: 2, notify: office}
office_unit: district_office
bulletin: {weekday: monday, time: "09:00", min_inspections: 2, laggards: 3}
digest: {time: "08:30"}
phases:
  - {name: {zh: 巩固阶段, en: Consolidation}, start: 2026-07-01, end: 2026-12-31}
"""


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=UTC)


@pytest.fixture
async def city(sessions: Sessions) -> dict[str, int]:
    org = load_org_file(DEMO_CITY, set(load_standards(ROOT / "standards")))
    await import_org(UnitOfWorkFactory(sessions), org)
    async with sessions() as s, s.begin():
        s.add(StandardVersion(content_hash="h" * 64, standard_id="community", body={}))
        s.add(Person(id=10002, first_name="李测评", role="inspector"))
        units = {u.code: u.id for u in (await s.scalars(select(Unit))).all()}
        sites = {x.code: x.id for x in (await s.scalars(select(Site))).all()}
    return {**{f"unit:{k}": v for k, v in units.items()},
            **{f"site:{k}": v for k, v in sites.items()}}


def make_scheduler(sessions: Sessions, clock: FakeClock, tmp_path: Path,
                   schedule: str = SCHEDULE, tz: str = "Asia/Shanghai",
                   lang: str = "zh-hans") -> Scheduler:
    return Scheduler(UnitOfWorkFactory(sessions), parse_schedule(schedule), timezone=tz,
                     language=lang, media_dir=tmp_path / "media", clock=clock)


async def add_task(sessions: Sessions, unit_id: int, due: dt.datetime, created: dt.datetime,
                   site_id: int | None = None, title: str = "楼道堆物未清理") -> int:
    async with sessions() as s, s.begin():
        task = Task(source="inspection", unit_id=unit_id, site_id=site_id, title=title,
                    status="open", due_at=due, created_at=created)
        s.add(task)
        await s.flush()
        return task.id


async def messages(sessions: Sessions, *purposes: str) -> list[tuple[int, str]]:
    async with sessions() as s:
        rows = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    return [(r.chat_id, str(r.params.get("text", r.params.get("caption"))))
            for r in rows if not purposes or r.purpose in purposes]


async def test_a_reminder_replies_to_the_card_it_is_about(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    clock = FakeClock(at(2026, 11, 23, 1))
    due = at(2026, 11, 25, 2)
    with_card = await add_task(sessions, city["unit:houqijie"], due, at(2026, 11, 23, 0))
    without = await add_task(sessions, city["unit:houqijie"], due, at(2026, 11, 23, 0),
                             title="垃圾桶满溢")
    await deliver_card(sessions, with_card, HOUQIJIE, 77)
    clock.now = due - dt.timedelta(hours=23)
    await make_scheduler(sessions, clock, tmp_path).tick()
    async with sessions() as s:
        rows = {r.ref_id: r.params for r in (await s.scalars(
            select(OutboxMessage).where(OutboxMessage.purpose == "task_reminder"))).all()}
    assert rows[with_card]["reply_parameters"] == {"message_id": 77,
                                                   "allow_sending_without_reply": True}
    assert "reply_parameters" not in rows[without]  # no card known: a plain message


async def test_reminders_before_at_and_after_the_deadline(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    # Deadline Wednesday 2026-11-25 10:00 Shanghai (02:00 UTC); created Monday morning.
    clock = FakeClock(at(2026, 11, 23, 1))
    due = at(2026, 11, 25, 2)
    task_id = await add_task(sessions, city["unit:houqijie"], due, at(2026, 11, 23, 0),
                             city["site:houqijie_community"])
    sched = make_scheduler(sessions, clock, tmp_path)
    kinds = ("task_reminder", "task_escalation")

    await sched.tick()
    assert await messages(sessions, *kinds) == []  # 49 h to go: nothing yet

    clock.now = due - dt.timedelta(hours=23)
    await sched.tick()
    await sched.tick()  # a second tick in the same window says nothing more
    before = t("zh-hans", "scheduler.reminder.before", unit="后祁街社区", task=task_id,
               title="楼道堆物未清理", due="11月25日 10:00", hours=23)
    before += "\n" + t("zh-hans", "scheduler.reminder.site", site="后祁街社区")
    assert await messages(sessions, *kinds) == [(HOUQIJIE, before)]

    clock.now = due + dt.timedelta(minutes=1)
    await sched.tick()
    sent = await messages(sessions, *kinds)
    assert len(sent) == 2 and sent[1][0] == HOUQIJIE
    assert sent[1][1].startswith(t("zh-hans", "scheduler.reminder.due", unit="后祁街社区",
                                   task=task_id, title="楼道堆物未清理", due="11月25日 10:00"))

    # Same day, later: no overdue reminder on the day the deadline reminder went out.
    clock.now = at(2026, 11, 25, 10)
    await sched.tick()
    assert len(await messages(sessions, *kinds)) == 2

    # Thursday 09:00 local: the first daily overdue reminder; once only that day.
    clock.now = at(2026, 11, 26, 0, 59)
    await sched.tick()
    assert len(await messages(sessions, *kinds)) == 2
    clock.now = at(2026, 11, 26, 1, 0)
    await sched.tick()
    clock.now = at(2026, 11, 26, 9)
    await sched.tick()
    sent = await messages(sessions, *kinds)
    assert len(sent) == 3
    assert sent[2] == (HOUQIJIE, t("zh-hans", "scheduler.reminder.overdue", unit="后祁街社区",
                                   task=task_id, title="楼道堆物未清理", due="11月25日 10:00",
                                   days=1)
                       + "\n" + t("zh-hans", "scheduler.reminder.site", site="后祁街社区"))
    async with sessions() as s:
        task = await s.get(Task, task_id)
        assert task is not None
        assert task.reminded_before_at == due - dt.timedelta(hours=23)
        assert task.reminded_due_at == due + dt.timedelta(minutes=1)
        assert task.last_overdue_reminder_at == at(2026, 11, 26, 1)


async def test_escalation_ladder_parent_then_office(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    due = at(2026, 11, 25, 2)
    task_id = await add_task(sessions, city["unit:houqijie"], due, at(2026, 11, 20))
    clock = FakeClock(due + dt.timedelta(hours=47, minutes=59))
    sched = make_scheduler(sessions, clock, tmp_path)
    await sched.tick()
    assert await messages(sessions, "task_escalation") == []

    clock.now = due + dt.timedelta(hours=48)
    await sched.tick()
    await sched.tick()
    parent = t("zh-hans", "scheduler.escalation.parent", unit="后祁街社区", task=task_id,
               title="楼道堆物未清理", due="11月25日 10:00", days=2)
    # The parent (卧龙寺街道) is told, once; the office is not, yet.
    assert await messages(sessions, "task_escalation") == [(WOLONGSI, parent)]

    clock.now = due + dt.timedelta(hours=120)
    await sched.tick()
    office = t("zh-hans", "scheduler.escalation.office", unit="后祁街社区", task=task_id,
               title="楼道堆物未清理", due="11月25日 10:00", days=5, level=2)
    assert await messages(sessions, "task_escalation") == [(WOLONGSI, parent), (OFFICE, office)]
    async with sessions() as s:
        task = await s.get(Task, task_id)
        assert task is not None and task.escalation_level == 2
        events = (await s.scalars(select(TaskEvent).where(TaskEvent.task_id == task_id)
                                  .order_by(TaskEvent.id))).all()
        assert [e.data["level"] for e in events if e.action == "escalated"] == [1, 2]


async def test_a_bot_down_for_a_week_catches_up_once(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    """Down from before the deadline until 6 days after: one overdue reminder (not before +
    due + five dailies), both escalation steps in order, and nothing more on the next tick."""
    due = at(2026, 11, 25, 2)
    task_id = await add_task(sessions, city["unit:houqijie"], due, at(2026, 11, 20))
    clock = FakeClock(due + dt.timedelta(days=6))
    sched = make_scheduler(sessions, clock, tmp_path)
    await sched.tick()
    await sched.tick()
    sent = await messages(sessions, "task_reminder", "task_escalation")
    assert [chat for chat, _ in sent] == [HOUQIJIE, WOLONGSI, OFFICE]
    assert sent[0][1].startswith(t("zh-hans", "scheduler.reminder.overdue", unit="后祁街社区",
                                   task=task_id, title="楼道堆物未清理",
                                   due="11月25日 10:00", days=6))


async def test_closed_and_waiting_tasks_are_left_alone(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    due = at(2026, 11, 25, 2)
    closed = await add_task(sessions, city["unit:houqijie"], due, at(2026, 11, 20))
    waiting = await add_task(sessions, city["unit:houqijie"], due, at(2026, 11, 20))
    async with sessions() as s, s.begin():
        c, w = await s.get(Task, closed), await s.get(Task, waiting)
        assert c is not None and w is not None
        c.status, c.closed_at = "closed", due
        w.status = "fix_submitted"
    sched = make_scheduler(sessions, FakeClock(due + dt.timedelta(days=6)), tmp_path)
    await sched.tick()
    assert await messages(sessions, "task_reminder", "task_escalation") == []


async def test_a_unit_without_a_group_is_reminded_through_its_parent(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    due = at(2026, 11, 25, 2)
    await add_task(sessions, city["unit:xinjianlu"], due, at(2026, 11, 20))
    sched = make_scheduler(sessions, FakeClock(due + dt.timedelta(minutes=5)), tmp_path)
    await sched.tick()
    [(chat, text)] = await messages(sessions, "task_reminder")
    assert chat == WOLONGSI
    assert text.endswith(t("zh-hans", "scheduler.reminder.routed", unit="新建路社区"))


# ---- bulletin ---------------------------------------------------------------------------------


async def add_inspections(sessions: Sessions, site_id: int, when: dt.datetime,
                          scores: list[float]) -> None:
    async with sessions() as s, s.begin():
        for i, score in enumerate(scores):
            s.add(Inspection(site_id=site_id, inspector_id=10002, standard_id="community",
                             standard_hash="h" * 64, status="submitted",
                             submitted_at=when + dt.timedelta(hours=i),
                             started_at=when, updated_at=when, score_overall=score,
                             score_static=min(100.0, score + 5),
                             score_dynamic=score - 5))


async def seed_week(sessions: Sessions, city: dict[str, int]) -> None:
    w47, w48 = at(2026, 11, 17, 2), at(2026, 11, 24, 2)  # Tue of each week, local morning
    # Week 47: 后祁街 leads, 龙泉巷 second, 卧龙寺 third.
    await add_inspections(sessions, city["site:houqijie_community"], w47, [95, 93])
    await add_inspections(sessions, city["site:longquanxiang_community"], w47, [85, 87])
    await add_inspections(sessions, city["site:wolongsi_office"], w47, [80, 82])
    # Week 48: 龙泉巷 moves up; 卧龙寺 stays last; 新建路 has one inspection: not ranked.
    await add_inspections(sessions, city["site:houqijie_community"], w48, [88, 90])
    await add_inspections(sessions, city["site:longquanxiang_community"], w48, [96, 94])
    await add_inspections(sessions, city["site:wolongsi_office"], w48, [60, 70, 65])
    await add_inspections(sessions, city["site:xinjianlu_community"], w48, [99])
    # 卧龙寺: one task due in week 48 closed late, one closed on time and reworked, one
    # overdue at the end of the week and escalated to the office.
    async with sessions() as s, s.begin():
        u = city["unit:wolongsi"]
        s.add_all([
            Task(source="inspection", unit_id=u, title="a", status="closed",
                 due_at=at(2026, 11, 25), created_at=at(2026, 11, 20),
                 closed_at=at(2026, 11, 26)),
            Task(source="inspection", unit_id=u, title="b", status="closed",
                 due_at=at(2026, 11, 26), created_at=at(2026, 11, 20),
                 closed_at=at(2026, 11, 25), reopen_count=1),
            Task(source="inspection", unit_id=u, title="c", status="open",
                 due_at=at(2026, 11, 18), created_at=at(2026, 11, 10), escalation_level=2),
        ])
        s.add(Report(reporter_id=10002, status="submitted", unit_id=city["unit:houqijie"],
                     submitted_at=at(2026, 11, 25), created_at=at(2026, 11, 25),
                     updated_at=at(2026, 11, 25)))


async def test_weekly_bulletin_ranks_compares_and_names(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    await seed_week(sessions, city)
    clock = FakeClock(at(2026, 11, 30, 0, 59))  # Monday 08:59 Shanghai: not yet
    sched = make_scheduler(sessions, clock, tmp_path)
    result = await sched.tick()
    # A fresh install backfills nothing that fell due before it started (week 47's bulletin,
    # this morning's digest): both are recorded as skipped; week 48's is not due yet.
    assert result.ran == []
    assert result.skipped == ["digest:2026-11-30", "bulletin:2026-W47"]
    clock.now = at(2026, 11, 30, 1, 0)
    result = await sched.tick()
    assert "bulletin:2026-W48" in result.ran
    async with sessions() as s:
        rows = (await s.scalars(select(OutboxMessage)
                                .where(OutboxMessage.dedup_key.like("bulletin:2026-W48:%"))
                                .order_by(OutboxMessage.chat_id))).all()
        view = (await build_bulletins(UnitOfWork.within(s), sched.config, sched.tz, "zh-hans",
                                      "2026-W48", chat_ids=[WOLONGSI]))[0].view
    # Every bound group, once, keyed by week and chat.
    assert sorted(r.dedup_key for r in rows) == sorted(
        f"bulletin:2026-W48:{c}" for c in (OFFICE, WOLONGSI, LIAISON1, HOUQIJIE, *DEPARTMENTS))
    ranked = [(r.rank, r.figures.name, r.rank_change) for r in view.ranking.ranked]
    assert ranked == [(1, "龙泉巷社区", 1), (2, "后祁街社区", -1), (3, "卧龙寺街道", 0)]
    wolongsi = view.ranking.ranked[2].figures
    assert (wolongsi.score, wolongsi.static, wolongsi.dynamic) == (65.0, 70.0, 60.0)
    assert (wolongsi.tasks_due, wolongsi.closed_on_time, wolongsi.on_time_rate) == (2, 1, 0.5)
    assert (wolongsi.overdue, wolongsi.escalated, wolongsi.rework_rate) == (1, 1, 0.5)
    assert view.ranking.ranked[1].figures.reports == 1
    assert view.ranking.ranked[0].score_change == 9.0
    # Too few inspections: listed apart, not ranked.
    assert [r.figures.name for r in view.ranking.unranked] == ["新建路社区"]
    # The caption names the unit whose overdue task reached the office; the phase is there.
    caption = next(str(r.params["caption"]) for r in rows if r.chat_id == WOLONGSI)
    # 卧龙寺 is last of three (a third of the ranked are named) and its overdue task went up.
    assert "• " + t("zh-hans", "scheduler.bulletin.laggard_both", unit="卧龙寺街道", rank=3,
                    score="65.0", count=1) in caption
    assert t("zh-hans", "scheduler.bulletin.phase", phase="巩固阶段", days=32) in caption
    # The picture: a PNG a phone shows at full width, sent as a photo.
    row = next(r for r in rows if r.chat_id == WOLONGSI)
    assert row.method == "sendPhoto"
    png = (tmp_path / "media" / str(row.params["file"])).read_bytes()
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG" and img.width == 1080 and 800 < img.height <= 2560

    # The next tick, and the one after a restart, send nothing again.
    clock.advance(minutes=5)
    again = make_scheduler(sessions, clock, tmp_path)
    assert (await again.tick()).bulletins == 0
    async with sessions() as s:
        count = await s.scalar(select(func.count()).select_from(OutboxMessage)
                               .where(OutboxMessage.purpose == "bulletin"))
        runs = (await s.scalars(select(JobRun).where(JobRun.name == "bulletin")
                                .order_by(JobRun.period))).all()
    assert count == 4 + len(DEPARTMENTS)
    assert [r.period for r in runs] == ["2026-W47", "2026-W48"]
    assert runs[0].detail["skipped"] == "before_first_start"


async def test_a_missed_bulletin_runs_once_on_start_and_inactive_groups_get_none(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    async with sessions() as s, s.begin():
        group = await s.get(GroupBinding, LIAISON1)
        assert group is not None
        group.active = False
        s.add(JobRun(name="bulletin", period="2026-W47", started_at=at(2026, 11, 23, 1),
                     finished_at=at(2026, 11, 23, 1), detail={"groups": 4}))
    # Down over Monday morning; back on Wednesday afternoon.
    clock = FakeClock(at(2026, 12, 2, 7))
    sched = make_scheduler(sessions, clock, tmp_path)
    result = await sched.tick()
    assert "bulletin:2026-W48" in result.ran and result.bulletins == 3 + len(DEPARTMENTS)
    assert (await sched.tick()).bulletins == 0


async def test_daily_digest_for_the_office(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    await seed_week(sessions, city)
    # Tuesday 2026-11-24 08:30 Shanghai: yesterday is Monday 23rd (nothing); Wednesday 25th
    # 08:30: Tuesday 24th had the week-48 inspections.
    clock = FakeClock(at(2026, 11, 25, 0, 30))
    sched = make_scheduler(sessions, clock, tmp_path)
    await sched.tick()
    [(chat, text)] = await messages(sessions, "digest")
    assert chat == OFFICE
    assert t("zh-hans", "scheduler.digest.title", day=t(
        "zh-hans", "scheduler.digest.day", date="11月24日", weekday="星期二")) in text
    assert t("zh-hans", "scheduler.digest.inspections", count=8, score="82.8") in text
    assert t("zh-hans", "scheduler.digest.inspection_row", site="龙泉巷社区", score="96.0") in text
    assert t("zh-hans", "scheduler.digest.overdue", count=1) in text
    assert t("zh-hans", "scheduler.digest.overdue_row", unit="卧龙寺街道", count=1,
             days=7) in text
    await sched.tick()
    assert len(await messages(sessions, "digest")) == 1


async def test_bulletin_time_follows_daylight_saving(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    """Europe/Berlin: Monday 09:00 is 07:00 UTC in summer time and 08:00 UTC after the
    change on Sunday 2026-10-25; the overdue reminder hour moves with it."""
    schedule = SCHEDULE.replace("office_unit: district_office", "office_unit: district_office")
    clock = FakeClock(at(2026, 10, 19, 6, 59))
    sched = make_scheduler(sessions, clock, tmp_path, schedule, tz="Europe/Berlin")
    assert "bulletin:2026-W42" not in (await sched.tick()).ran
    clock.now = at(2026, 10, 19, 7, 0)
    assert "bulletin:2026-W42" in (await sched.tick()).ran
    clock.now = at(2026, 10, 26, 7, 0)  # 08:00 CET: one hour early after the change
    assert "bulletin:2026-W43" not in (await sched.tick()).ran
    clock.now = at(2026, 10, 26, 7, 59)
    assert "bulletin:2026-W43" not in (await sched.tick()).ran
    clock.now = at(2026, 10, 26, 8, 0)
    assert "bulletin:2026-W43" in (await sched.tick()).ran

    # A task due Saturday 24 Oct 12:00 CEST: Sunday's 09:00 CET overdue reminder is 08:00 UTC.
    task_id = await add_task(sessions, city["unit:houqijie"], at(2026, 10, 24, 10),
                             at(2026, 10, 20))
    async with sessions() as s, s.begin():
        task = await s.get(Task, task_id)
        assert task is not None
        task.reminded_due_at = at(2026, 10, 24, 10)
    clock.now = at(2026, 10, 25, 7, 59)
    await sched.tick()
    assert await messages(sessions, "task_reminder") == []
    clock.now = at(2026, 10, 25, 8, 0)
    await sched.tick()
    assert len(await messages(sessions, "task_reminder")) == 1


# ---- a row that changed between the scheduler's read and its write ---------------------------


async def extend(sessions: Sessions, task_id: int, until: dt.datetime) -> None:
    """What granting an extension writes (bot.services.tasks.act): a new deadline, the
    bookkeeping about the old one cleared, the version bumped."""
    async with sessions() as s, s.begin():
        await s.execute(update(Task).where(Task.id == task_id).values(
            due_at=until, version=Task.version + 1, extension_until=None,
            reminded_before_at=None, reminded_due_at=None, last_overdue_reminder_at=None))


async def read_task(sessions: Sessions, task_id: int) -> Task:
    async with sessions() as s:
        task = await s.get(Task, task_id)
        assert task is not None
        return task


async def run_remind_one(sessions: Sessions, task: Task, now: dt.datetime,
                         tmp_path: Path) -> int:
    """The scheduler's write step for a row it read earlier, in a transaction of its own."""
    sched = make_scheduler(sessions, FakeClock(now), tmp_path)
    uow_factory = UnitOfWorkFactory(sessions)
    async with uow_factory() as uow:
        routing = await deadlines.load_routing(uow, sched.config)
        n = await deadlines.remind_one(uow, task, routing, sched.config, sched.tz, sched.lang,
                                       now, tasks_service.escalate)
        await uow.commit(mark_update_handled=False)
    return n


async def test_an_extension_between_read_and_write_wins_over_the_scheduler(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    """The scheduler read the task when it was two days overdue (a late "due" reminder and the
    first escalation owed); the deadline was extended before it wrote. It must neither queue
    the reminder nor the escalation, nor overwrite the reset bookkeeping."""
    due = at(2026, 11, 25, 2)
    task_id = await add_task(sessions, city["unit:houqijie"], due, at(2026, 11, 20))
    now = due + dt.timedelta(hours=49)
    stale = await read_task(sessions, task_id)
    new_due = now + dt.timedelta(days=3)
    await extend(sessions, task_id, new_due)

    assert await run_remind_one(sessions, stale, now, tmp_path) == 0
    assert await messages(sessions, "task_reminder", "task_escalation") == []
    async with sessions() as s:
        task = await s.get(Task, task_id)
        assert task is not None
        assert task.due_at == new_due and task.escalation_level == 0
        assert (task.reminded_before_at, task.reminded_due_at,
                task.last_overdue_reminder_at) == (None, None, None)
        assert not (await s.scalars(select(TaskEvent).where(TaskEvent.task_id == task_id,
                                                            TaskEvent.action == "escalated"))
                    ).all()
    # The fresh row is decided on the next tick: the new deadline's reminders still come.
    clock = FakeClock(new_due - dt.timedelta(hours=23))
    await make_scheduler(sessions, clock, tmp_path).tick()
    [(chat, text)] = await messages(sessions, "task_reminder")
    assert chat == HOUQIJIE and text.startswith(t(
        "zh-hans", "scheduler.reminder.before", unit="后祁街社区", task=task_id,
        title="楼道堆物未清理", due=f"{new_due.astimezone(SHANGHAI):%-m月%-d日 %H:%M}",
        hours=23))


async def test_a_reset_before_reminder_is_not_overwritten(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    """Read inside the "before" window; the deadline then moved further out and the
    bookkeeping was reset. The stale "before" reminder is dropped and reminded_before_at stays
    clear, so the new deadline gets its own reminder."""
    due = at(2026, 11, 25, 2)
    task_id = await add_task(sessions, city["unit:houqijie"], due, at(2026, 11, 20))
    now = due - dt.timedelta(hours=10)
    stale = await read_task(sessions, task_id)
    await extend(sessions, task_id, due + dt.timedelta(days=5))
    assert await run_remind_one(sessions, stale, now, tmp_path) == 0
    assert await messages(sessions, "task_reminder") == []
    async with sessions() as s:
        task = await s.get(Task, task_id)
        assert task is not None and task.reminded_before_at is None


async def test_an_unchanged_row_read_earlier_is_still_reminded(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    due = at(2026, 11, 25, 2)
    task_id = await add_task(sessions, city["unit:houqijie"], due, at(2026, 11, 20))
    now = due + dt.timedelta(minutes=5)
    stale = await read_task(sessions, task_id)
    assert await run_remind_one(sessions, stale, now, tmp_path) == 1
    # The same stale copy again (a second scheduler run that read it too): the bookkeeping it
    # was based on has changed, so it loses and says nothing twice.
    assert await run_remind_one(sessions, stale, now + dt.timedelta(minutes=1), tmp_path) == 0
    assert len(await messages(sessions, "task_reminder")) == 1
    async with sessions() as s:
        task = await s.get(Task, task_id)
        assert task is not None and task.reminded_due_at == now


# ---- tasks waiting for their check are not overdue ----------------------------------------------


async def test_tasks_waiting_for_a_check_are_not_overdue_in_digest_or_bulletin(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    """后祁街 submitted its fix before the deadline; the check is still pending. It is named
    neither in the digest's overdue backlog nor as a laggard for an escalated overdue task in
    the bulletin. A fix submitted after the week's end still counts for that week."""
    u = city["unit:houqijie"]
    async with sessions() as s, s.begin():
        s.add_all([
            # Fixed on time, escalated to the office earlier, waiting for the check.
            Task(source="inspection", unit_id=u, title="w", status="fix_submitted",
                 due_at=at(2026, 11, 18), created_at=at(2026, 11, 10), escalation_level=2,
                 fixed_at=at(2026, 11, 17)),
            # Fixed only after week 48 ended: overdue at the end of week 48.
            Task(source="inspection", unit_id=city["unit:longquanxiang"], title="x",
                 status="fix_submitted", due_at=at(2026, 11, 18),
                 created_at=at(2026, 11, 10), fixed_at=at(2026, 12, 1)),
        ])
    async with sessions() as s:
        stats = StatsRepository(s)
        names = {u: "后祁街社区", city["unit:longquanxiang"]: "龙泉巷社区"}
        week = await stats.week_figures(at(2026, 11, 22, 16), at(2026, 11, 29, 16), 2, names)
        assert (week[u].overdue, week[u].escalated) == (0, 0)
        assert week[city["unit:longquanxiang"]].overdue == 1
        assert await stats.overdue_by_unit(at(2026, 12, 2)) == []
        # On 24 November only 龙泉巷's task was overdue (its fix came on 1 December).
        day = await stats.day_figures(at(2026, 11, 23, 16), at(2026, 11, 24, 16))
        assert day.overdue == 1

    clock = FakeClock(at(2026, 11, 25, 0, 30))
    await make_scheduler(sessions, clock, tmp_path).tick()
    [(_, text)] = await messages(sessions, "digest")
    assert t("zh-hans", "scheduler.digest.overdue", count=1) in text
    assert t("zh-hans", "scheduler.digest.overdue_row", unit="龙泉巷社区", count=1,
             days=7) in text
    assert "后祁街社区" not in text


async def test_postgresql_leaves_a_task_being_changed_for_the_next_tick(
    sessions: Sessions, city: dict[str, int], tmp_path: Path, database_url: str
) -> None:
    """While another transaction holds the task's row (an extension being granted), the
    batch skips it instead of deciding from a row about to change; the next tick reminds."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE); no row locks to skip")
    due = at(2026, 11, 25, 2)
    task_id = await add_task(sessions, city["unit:houqijie"], due, at(2026, 11, 20))
    sched = make_scheduler(sessions, FakeClock(due + dt.timedelta(minutes=5)), tmp_path)
    async with sessions() as other, other.begin():
        await other.execute(select(Task.id).where(Task.id == task_id).with_for_update())
        await sched.tick()
        assert await messages(sessions, "task_reminder") == []
    await sched.tick()
    assert len(await messages(sessions, "task_reminder")) == 1


# ---- the card follows the notices -------------------------------------------------------------


async def deliver_card(sessions: Sessions, task_id: int, chat_id: int, message_id: int) -> None:
    """The task's card, as the outbox records it once Telegram accepted it."""
    async with sessions() as s, s.begin():
        row = OutboxMessage(dedup_key=f"task:{task_id}:card:{chat_id}:new:0", chat_id=chat_id,
                            method="sendMessage", params={"text": "card"}, purpose="task_card",
                            ref_id=task_id, ref_version=0, status="sent",
                            sent_message_id=message_id)
        s.add(row)
        await tasks_service.card_delivered(UnitOfWork.within(s), row, chat_id,
                                            message_id)


async def card_edits(sessions: Sessions, task_id: int) -> list[OutboxMessage]:
    async with sessions() as s:
        return list((await s.scalars(
            select(OutboxMessage).where(OutboxMessage.dedup_key.startswith(f"task:{task_id}:edit:"))
            .order_by(OutboxMessage.id))).all())


async def test_due_overdue_and_escalation_notices_each_edit_the_card_once(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    """The card said "剩余 1 天 0 小时" after the group was told the task was overdue. Each
    notice now edits the card in its own transaction, once: "due", every daily "overdue" (the
    task's version does not change between them) and the escalation."""
    due = at(2026, 11, 25, 2)  # Wednesday 10:00 Shanghai
    task_id = await add_task(sessions, city["unit:houqijie"], due, at(2026, 11, 20))
    await deliver_card(sessions, task_id, HOUQIJIE, 777)
    overdue_mark = t("zh-hans", "task.card.overdue", span="").strip()
    left_mark = t("zh-hans", "task.card.left", span="").strip()
    clock = FakeClock(due - dt.timedelta(hours=23))
    sched = make_scheduler(sessions, clock, tmp_path)
    await sched.tick()  # the "before" reminder: the card's countdown is still right
    assert await card_edits(sessions, task_id) == []

    clock.now = due + dt.timedelta(minutes=1)
    await sched.tick()
    await sched.tick()
    [edit] = await card_edits(sessions, task_id)
    assert (edit.chat_id, edit.method, edit.params["message_id"]) == (
        HOUQIJIE, "editMessageText", 777)
    assert overdue_mark in str(edit.params["text"]) and left_mark not in str(edit.params["text"])
    assert edit.params["reply_markup"]  # the buttons stay

    # Thursday 09:00: the first daily overdue reminder; the card says a day overdue (less
    # one minute: 23 hours), once.
    clock.now = at(2026, 11, 26, 1)
    await sched.tick()
    await sched.tick()
    edits = await card_edits(sessions, task_id)
    assert len(edits) == 2 and edits[1].params["message_id"] == 777
    assert t("zh-hans", "task.card.overdue", span=t("zh-hans", "task.span.hours", hours=23)) \
        in str(edits[1].params["text"])
    assert len(await messages(sessions, "task_reminder")) == 3

    # 48 hours overdue: the parent is told (and Friday's reminder goes out): one edit more.
    clock.now = due + dt.timedelta(hours=48)
    await sched.tick()
    await sched.tick()
    edits = await card_edits(sessions, task_id)
    assert len(edits) == 3
    assert t("zh-hans", "task.card.overdue", span=t("zh-hans", "task.span.days_hours", days=2,
                                                     hours=0)) in str(edits[2].params["text"])
    # Later ticks the same day: no notice, no edit.
    clock.advance(hours=3)
    await sched.tick()
    assert len(await card_edits(sessions, task_id)) == 3
    assert len(await messages(sessions, "task_reminder", "task_escalation")) == 5


async def test_a_notice_for_a_task_without_a_card_queues_no_edit(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    due = at(2026, 11, 25, 2)
    task_id = await add_task(sessions, city["unit:houqijie"], due, at(2026, 11, 20))
    await make_scheduler(sessions, FakeClock(due + dt.timedelta(minutes=1)), tmp_path).tick()
    assert len(await messages(sessions, "task_reminder")) == 1
    assert await card_edits(sessions, task_id) == []


# ---- what a bot that was down (or a fresh install) sends when it starts ------------------------


async def mark_not_fresh(sessions: Sessions) -> None:
    """A job ran on this database before (a bot that was down, not a fresh install)."""
    async with sessions() as s, s.begin():
        s.add(JobRun(name="digest", period="2026-11-01", started_at=at(2026, 11, 1),
                     finished_at=at(2026, 11, 1), detail={"groups": 1}))


async def job_runs(sessions: Sessions) -> dict[str, dict[str, object]]:
    async with sessions() as s:
        return {f"{r.name}:{r.period}": dict(r.detail)
                for r in (await s.scalars(select(JobRun))).all()}


def phase_days(text: str) -> int:
    for days in range(1, 400):
        if t("zh-hans", "scheduler.bulletin.phase", phase="巩固阶段", days=days) in text or \
                t("zh-hans", "scheduler.digest.phase", phase="巩固阶段", days=days) in text:
            return days
    raise AssertionError(f"no phase countdown in {text!r}")


async def test_a_fresh_install_sends_nothing_stale_and_digest_and_bulletin_agree(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    """First start at 05:45 on Sunday 11-29: neither the digest of 11-28 (about the 27th) nor
    week 47's bulletin (due Monday 11-23) goes out. The 08:30 digest is about the 28th and
    says so; on Monday digest and bulletin count the same days left."""
    clock = FakeClock(at(2026, 11, 28, 21, 45))  # 2026-11-29 05:45 Shanghai
    sched = make_scheduler(sessions, clock, tmp_path)
    result = await sched.tick()
    assert result.ran == [] and result.queued == 0
    assert result.skipped == ["digest:2026-11-28", "bulletin:2026-W47"]
    assert await messages(sessions, "digest", "bulletin") == []
    runs = await job_runs(sessions)
    assert runs["digest:2026-11-28"]["skipped"] == "before_first_start"
    assert runs["bulletin:2026-W47"]["skipped"] == "before_first_start"
    assert (await sched.tick()).skipped == []  # recorded once

    clock.now = at(2026, 11, 29, 0, 30)  # 08:30
    assert (await sched.tick()).ran == ["digest:2026-11-29"]
    [(chat, text)] = await messages(sessions, "digest")
    day = t("zh-hans", "scheduler.digest.day", date="11月28日", weekday="星期六")
    assert chat == OFFICE and t("zh-hans", "scheduler.digest.title", day=day) in text
    assert "11月28日（昨日" in text and "11月27日" not in text
    assert phase_days(text) == 33  # 11-29 to 12-31, today included

    clock.now = at(2026, 11, 30, 1)  # Monday 09:00: digest (08:30) and bulletin together
    result = await sched.tick()
    assert result.ran == ["digest:2026-11-30", "bulletin:2026-W48"]  # the digest first
    digest = (await messages(sessions, "digest"))[-1][1]
    bulletin = next(text for chat, text in await messages(sessions, "bulletin")
                    if chat == OFFICE)
    assert phase_days(digest) == phase_days(bulletin) == 32


async def test_a_bot_down_overnight_skips_yesterdays_digest_but_sends_this_weeks_bulletin(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    """Not a fresh install, down from Saturday morning to Sunday 05:45: the digest of the
    28th (about the 27th) is a day late, so it is skipped and recorded; week 47's bulletin was
    due on Monday of this same ISO week, so it still goes out, counting from today."""
    await mark_not_fresh(sessions)
    clock = FakeClock(at(2026, 11, 28, 21, 45))
    sched = make_scheduler(sessions, clock, tmp_path)
    result = await sched.tick()
    assert result.ran == ["bulletin:2026-W47"] and result.skipped == ["digest:2026-11-28"]
    assert (await job_runs(sessions))["digest:2026-11-28"]["skipped"] == "stale"
    assert await messages(sessions, "digest") == []
    bulletin = next(text for chat, text in await messages(sessions, "bulletin")
                    if chat == OFFICE)
    assert phase_days(bulletin) == 33  # sent 11-29, not counted from Monday 11-23 (39)

    # Down on the digest's own morning only: it goes out late the same day.
    clock.now = at(2026, 11, 29, 7)  # 15:00
    assert (await sched.tick()).ran == ["digest:2026-11-29"]


async def test_a_missed_bulletin_goes_out_only_within_its_iso_week(
    sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    await mark_not_fresh(sessions)
    # Back on Tuesday: Monday's bulletin still goes out.
    clock = FakeClock(at(2026, 11, 24, 2))
    sched = make_scheduler(sessions, clock, tmp_path)
    assert "bulletin:2026-W47" in (await sched.tick()).ran
    # Then down from Tuesday until the next Monday 08:00, before its 09:00 bulletin: week 47's
    # is done, and nothing older is dug up; the day before's digest is not sent either.
    clock.now = at(2026, 11, 30, 0)
    result = await make_scheduler(sessions, clock, tmp_path).tick()
    assert result.ran == [] and result.skipped == ["digest:2026-11-29"]
    clock.now = at(2026, 11, 30, 1)
    assert "bulletin:2026-W48" in (await sched.tick()).ran

    # Down a whole week over the next Monday: week 49's bulletin (due 12-07) is out of its
    # week by Monday 12-14 08:00, so it is skipped.
    clock.now = at(2026, 12, 14, 0)
    result = await make_scheduler(sessions, clock, tmp_path).tick()
    assert "bulletin:2026-W49" in result.skipped
    assert (await job_runs(sessions))["bulletin:2026-W49"]["skipped"] == "stale"
    assert not any(text for _, text in await messages(sessions, "bulletin")
                   if "第49周" in text)
