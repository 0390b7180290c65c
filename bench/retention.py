"""The database after a simulated year of the demo city, with and without retention.

    .venv/bin/python bench/retention.py                 # SQLite, 365 days, retention 90 days
    .venv/bin/python bench/retention.py --days 120      # quicker

Each simulated day writes what a busy day of the demo city writes: 800 handled updates (an
inspection's presses, reports, task actions; each stored with a typical 1 KB update body),
200 delivered messages (cards, reminders, notices, bulletins), 30 inspections of 17 answers,
20 tasks, and the day's job runs; then the day's retention pass runs
(db/repositories/retention.py, as the scheduler runs it). The baseline is the same year with
retention off, in the same run. SQLite reuses freed pages, so the pruned file stops growing
once the retention window is full; the campaign's records (inspections, answers, tasks) grow
in both. Output goes to stdout: this is a command-line tool.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select

from bot.config import DEMO_CITY, sqlite_url
from bot.domain.org import load_org_file
from bot.domain.standards import load_standards
from bot.services.org_import import import_org
from db.migrate import upgrade_async
from db.models import (
    Answer,
    InboxUpdate,
    Inspection,
    JobRun,
    OutboxMessage,
    Person,
    Site,
    StandardVersion,
    Task,
    Unit,
)
from db.repositories.retention import RetentionRepository
from db.session import create_engine, create_sessionmaker
from db.uow import UnitOfWorkFactory

ROOT = Path(__file__).resolve().parents[1]
UPDATES, MESSAGES, INSPECTIONS, ITEMS, TASKS = 800, 200, 30, 17, 20
START = dt.datetime(2026, 1, 1, 2, tzinfo=dt.UTC)
# A typical callback-query update as Telegram sends it (about 1 KB of JSON).
PAYLOAD = {"update_id": 0, "callback_query": {
    "id": "4382bfdwdsb323b2d9", "chat_instance": "-1234567890123456789", "data": "v:17:3:c",
    "from": {"id": 41001, "is_bot": False, "first_name": "张督查", "language_code": "zh-hans"},
    "message": {"message_id": 1234, "date": 1796504594, "text": "检查项 4/17 " + "说明" * 120,
                "chat": {"id": 41001, "type": "private", "first_name": "张督查"},
                "from": {"id": 1, "is_bot": True, "first_name": "文明督查"}}}}


async def simulate(db: Path, days: int, retention_days: int) -> dict[str, float]:
    url = sqlite_url(db)
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    await import_org(UnitOfWorkFactory(sessions),
                     load_org_file(DEMO_CITY, set(load_standards(ROOT / "standards"))))
    async with sessions() as s, s.begin():
        s.add(StandardVersion(content_hash="h" * 64, standard_id="hotel", body={}))
        s.add(Person(id=10002, first_name="李测评", role="inspector"))
        site = (await s.scalars(select(Site.id).limit(1))).one()
        unit = (await s.scalars(select(Unit.id).limit(1))).one()
    update_id = 0
    started = time.perf_counter()
    for day in range(days):
        now = START + dt.timedelta(days=day)
        async with sessions() as s, s.begin():
            rows = []
            for _ in range(UPDATES):
                update_id += 1
                rows.append({"update_id": update_id, "chat_key": 41001,
                             "payload": {**PAYLOAD, "update_id": update_id},
                             "received_at": now, "processed_at": now, "attempts": 1})
            await s.execute(insert(InboxUpdate), rows)
            await s.execute(insert(OutboxMessage), [
                {"dedup_key": f"d{day}:m{i}", "chat_id": -1001004, "method": "sendMessage",
                 "params": {"text": "整改提醒：" + "说明" * 60, "parse_mode": "HTML"},
                 "status": "sent", "attempts": 1, "created_at": now, "sent_at": now,
                 "sent_message_id": i, "purpose": "digest"} for i in range(MESSAGES)])
            for _ in range(INSPECTIONS):
                inspection = Inspection(site_id=site, inspector_id=10002, standard_id="hotel",
                                        standard_hash="h" * 64, status="submitted",
                                        step=ITEMS, started_at=now, updated_at=now,
                                        submitted_at=now, score_overall=92.5)
                s.add(inspection)
                await s.flush()
                await s.execute(insert(Answer), [
                    {"inspection_id": inspection.id, "item_key": f"H{i:02d}",
                     "verdict": "compliant", "answered_at": now} for i in range(ITEMS)])
            await s.execute(insert(Task), [
                {"source": "inspection", "unit_id": unit, "site_id": site,
                 "title": "楼道堆物未清理", "status": "closed", "due_at": now,
                 "created_at": now} for _ in range(TASKS)])
            s.add(JobRun(name="digest", period=now.date().isoformat(), started_at=now,
                         finished_at=now, detail={"groups": 4}))
            if retention_days:
                await RetentionRepository(s).prune(now - dt.timedelta(days=retention_days))
    elapsed = time.perf_counter() - started
    async with sessions() as s:
        counts = {name: await s.scalar(select(func.count()).select_from(model)) or 0
                  for name, model in (("inbox", InboxUpdate), ("outbox", OutboxMessage),
                                      ("answers", Answer), ("tasks", Task))}
    await engine.dispose()
    return {"mb": db.stat().st_size / 1e6, "seconds": elapsed, **counts}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--retention-days", type=int, default=90)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        kept = await simulate(Path(tmp) / "kept.db", args.days, 0)
        pruned = await simulate(Path(tmp) / "pruned.db", args.days, args.retention_days)
    print(json.dumps({"days": args.days, "retention_days": args.retention_days,
                      "baseline_no_retention": kept, "with_retention": pruned}, indent=2))
    print(f"\nafter {args.days} days: {pruned['mb']:.0f} MB with retention "
          f"({args.retention_days} days) vs {kept['mb']:.0f} MB without "
          f"(x{pruned['mb'] / kept['mb']:.2f}); inbox rows {pruned['inbox']:,} vs "
          f"{kept['inbox']:,}, outbox rows {pruned['outbox']:,} vs {kept['outbox']:,}")


if __name__ == "__main__":
    asyncio.run(main())
