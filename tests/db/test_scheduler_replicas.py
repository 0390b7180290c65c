"""Every replica runs the scheduler (issue 13): two schedulers ticking at once on one database,
each with its own engine as two processes would, queue each reminder, digest and bulletin once
(the JobRun primary key and the outbox's dedup keys decide, not the replicas)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from sqlalchemy import func, select

from db.models import JobRun, OutboxMessage
from db.session import create_engine, create_sessionmaker
from tests.conftest import FakeClock
from tests.db.test_scheduler import (
    DEPARTMENTS,
    HOUQIJIE,
    Sessions,
    add_task,
    at,
    city,
    deliver_card,
    make_scheduler,
)

__all__ = ["city"]  # the fixture, shared with test_scheduler


async def test_two_schedulers_on_one_database_queue_everything_once(
    database_url: str, sessions: Sessions, city: dict[str, int], tmp_path: Path
) -> None:
    async with sessions() as s, s.begin():  # not a fresh install: last week's bulletin ran
        s.add(JobRun(name="bulletin", period="2026-W47", started_at=at(2026, 11, 23, 1),
                     finished_at=at(2026, 11, 23, 1), detail={"groups": 7}))
    now = at(2026, 11, 30, 1, 0)  # Monday 09:00 Shanghai: the bulletin and the digest are due
    task = await add_task(sessions, city["unit:houqijie"], now + dt.timedelta(hours=23),
                          at(2026, 11, 29))  # and a reminder
    await deliver_card(sessions, task, HOUQIJIE, 77)
    engines = [create_engine(database_url) for _ in range(2)]
    try:
        replicas = [make_scheduler(create_sessionmaker(e), FakeClock(now), tmp_path / f"r{i}")
                    for i, e in enumerate(engines)]
        results = await asyncio.gather(*(r.tick() for r in replicas))
        again = await asyncio.gather(*(r.tick() for r in replicas))
    finally:
        for engine in engines:
            await engine.dispose()
    ran = sorted(job for r in results for job in r.ran)
    assert ran == ["bulletin:2026-W48", "digest:2026-11-30"]  # each by one replica
    assert sum(r.reminders for r in results) == 1
    assert sum(r.queued for r in again) == 0
    async with sessions() as s:
        purposes = dict((await s.execute(
            select(OutboxMessage.purpose, func.count()).group_by(OutboxMessage.purpose))).all())
        runs = (await s.scalars(select(JobRun.name).where(JobRun.period.in_(
            ["2026-W48", "2026-11-30"])))).all()
    assert purposes.get("task_reminder") == 1
    assert sorted(runs) == ["bulletin", "digest"]
    async with sessions() as s:
        bulletins = await s.scalar(select(func.count()).select_from(OutboxMessage)
                                   .where(OutboxMessage.dedup_key.like("bulletin:2026-W48:%")))
    assert bulletins == 4 + len(DEPARTMENTS)  # every bound group once
