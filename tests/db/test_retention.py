"""Retention (issue 13): the queues are pruned once a day, the campaign's records never are."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from bot.config import Settings, SettingsError
from db.models import InboxUpdate, JobRun, OutboxMessage, Task
from tests.conftest import FakeClock
from tests.db.test_scheduler import Sessions, add_task, city, make_scheduler  # noqa: F401

NOW = dt.datetime(2026, 12, 1, 2, tzinfo=dt.UTC)  # 10:00 in Shanghai
OLD = NOW - dt.timedelta(days=100)
RECENT = NOW - dt.timedelta(days=10)


async def seed(sessions: Sessions, city: dict[str, int]) -> dict[str, int]:  # noqa: F811
    unit = city["unit:houqijie"]
    open_task = await add_task(sessions, unit, OLD, OLD - dt.timedelta(days=1))
    closed_task = await add_task(sessions, unit, OLD, OLD - dt.timedelta(days=1))
    async with sessions() as s, s.begin():
        (await s.get_one(Task, closed_task)).status = "closed"
        s.add_all([
            InboxUpdate(update_id=1, chat_key=1, payload={}, received_at=OLD, processed_at=OLD),
            InboxUpdate(update_id=2, chat_key=1, payload={}, received_at=RECENT,
                        processed_at=RECENT),
            InboxUpdate(update_id=3, chat_key=1, payload={}, received_at=OLD),  # unhandled
        ])

        def row(key: str, status: str, purpose: str | None = None,
                ref: int | None = None) -> OutboxMessage:
            return OutboxMessage(dedup_key=key, chat_id=-1, method="sendMessage", params={},
                                 status=status, created_at=OLD,
                                 sent_at=OLD if status == "sent" else None,
                                 purpose=purpose, ref_id=ref)

        s.add_all([
            row("old-sent", "sent", "digest"),
            row("old-failed", "failed"),
            row("old-pending", "pending"),
            row("card-of-open-task", "sent", "task_card", open_task),
            row("card-of-closed-task", "sent", "task_card", closed_task),
        ])
        s.add_all([
            JobRun(name="digest", period="2026-08-01", started_at=OLD),
            JobRun(name="digest", period="2026-11-30", started_at=RECENT),
            JobRun(name="bulletin", period="2026-W34", started_at=OLD),  # its latest: kept
        ])
    return {"open": open_task, "closed": closed_task}


async def test_old_updates_messages_and_runs_are_pruned_what_is_still_needed_stays(
    sessions: Sessions, city: dict[str, int], tmp_path: Path,  # noqa: F811
) -> None:
    tasks = await seed(sessions, city)
    scheduler = make_scheduler(sessions, FakeClock(NOW), tmp_path)
    scheduler.retention_days = 90

    assert await scheduler.prune(NOW)

    async with sessions() as s:
        updates = set((await s.scalars(select(InboxUpdate.update_id))).all())
        messages = set((await s.scalars(select(OutboxMessage.dedup_key))).all())
        runs = {(r.name, r.period) for r in (await s.scalars(select(JobRun))).all()}
        remaining_tasks = set((await s.scalars(select(Task.id))).all())
    assert updates == {2, 3}  # the recent one, and the one never handled
    assert messages == {"old-pending", "card-of-open-task"}
    assert runs == {("digest", "2026-11-30"), ("bulletin", "2026-W34"),
                    ("retention", "2026-12-01")}
    assert remaining_tasks == set(tasks.values())  # the campaign's records are never pruned


async def test_pruning_runs_once_a_day_however_many_schedulers_tick(
    sessions: Sessions, city: dict[str, int], tmp_path: Path,  # noqa: F811
) -> None:
    await seed(sessions, city)
    first = make_scheduler(sessions, FakeClock(NOW), tmp_path)
    second = make_scheduler(sessions, FakeClock(NOW), tmp_path)
    first.retention_days = second.retention_days = 90
    assert await first.prune(NOW)
    assert not await second.prune(NOW + dt.timedelta(hours=3))  # same local day
    assert await second.prune(NOW + dt.timedelta(days=1))


async def test_retention_off_keeps_everything(
    sessions: Sessions, city: dict[str, int], tmp_path: Path,  # noqa: F811
) -> None:
    await seed(sessions, city)
    scheduler = make_scheduler(sessions, FakeClock(NOW), tmp_path)
    assert not await scheduler.prune(NOW)
    async with sessions() as s:
        assert len((await s.scalars(select(InboxUpdate.id))).all()) == 3


def test_retention_days_from_the_environment() -> None:
    assert Settings.from_env({}).retention_days == 90
    assert Settings.from_env({"WENMING_RETENTION_DAYS": "0"}).retention_days == 0
    for bad in ("-1", "ninety"):
        try:
            Settings.from_env({"WENMING_RETENTION_DAYS": bad})
        except SettingsError as exc:
            assert "WENMING_RETENTION_DAYS" in str(exc)
        else:
            raise AssertionError(f"{bad!r} accepted")
