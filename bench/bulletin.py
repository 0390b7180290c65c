"""Bulletin benchmark: the weekly ranking's aggregation, and a broadcast under flood control.

    .venv/bin/python -m bench.bulletin [--backends sqlite,postgresql] [--groups 300]

1. Ranking: 43 sub-districts under a campaign office, 2,000 sites, 100,000 answers (in
   6,668 submitted inspections of 15 answers, over two weeks), 3,000 tasks and 1,000 reports.
   Times the bulletin's figures (db/repositories/stats.py, SQLAlchemy Core: five GROUP BY
   statements, this week and last week) plus the pure ranking, beside a plain SQL aggregate
   over the same rows in the same run (the inspection averages per unit in one hand-written
   statement; and the same over the 100,000 answers, to show what the stored per-inspection
   scores save). Median of 7 runs after one warm-up.
2. Broadcast: N groups (default 300), one message each, through
   bot.telegram.outbox.OutboxSender and its rate limiter (bot/telegram/flood.py) against the
   local sandbox with flood control ON. Reports the
   time from start to the last delivery against Telegram's bound 1.1 x max(0, (N - 30) / 30) + 2 s,
   and the 429s met (target 0). Run once with text messages and once with the bulletin PNG
   (the sandbox decodes every photo upload with Pillow in its own event loop, the same loop
   as the sender here, so the photo run also measures the sandbox).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text

from bench.common import city_rows, create_database, drop_database
from bot.domain.ranking import rank_units
from db.migrate import upgrade_async
from db.models import (
    Answer,
    GroupBinding,
    Inspection,
    OutboxMessage,
    Person,
    Report,
    Site,
    StandardVersion,
    Task,
    Unit,
)
from db.repositories.stats import StatsRepository
from db.session import create_engine, create_sessionmaker

UNITS, SITES, ANSWERS, PER_INSPECTION = 43, 2000, 100_000, 15
UTC = dt.UTC
WEEK_START = dt.datetime(2026, 11, 22, 16, tzinfo=UTC)  # Monday 00:00 Shanghai, 2026-W48
WEEK_END = WEEK_START + dt.timedelta(days=7)
PREV_START = WEEK_START - dt.timedelta(days=7)

PLAIN_INSPECTIONS = """
SELECT s.unit_id, count(*), avg(i.score_overall), avg(i.score_static), avg(i.score_dynamic)
FROM inspections i JOIN sites s ON s.id = i.site_id
WHERE i.status = 'submitted' AND i.submitted_at >= :start AND i.submitted_at < :end
GROUP BY s.unit_id
"""
PLAIN_ANSWERS = """
SELECT s.unit_id, count(DISTINCT i.id),
       avg(CASE a.verdict WHEN 'compliant' THEN 100.0 WHEN 'basic' THEN 60.0 ELSE 0.0 END)
FROM answers a JOIN inspections i ON i.id = a.inspection_id JOIN sites s ON s.id = i.site_id
WHERE i.status = 'submitted' AND i.submitted_at >= :start AND i.submitted_at < :end
  AND a.verdict IS NOT NULL AND a.verdict != 'na'
GROUP BY s.unit_id
"""


def _ts(value: dt.datetime, sqlite: bool) -> Any:
    return value.replace(tzinfo=None) if sqlite else value


async def seed(url: str) -> None:
    await upgrade_async(url)
    engine = create_engine(url)
    rnd = random.Random(48)
    async with engine.begin() as conn:
        unit_rows, site_rows = city_rows(UNITS, SITES)
        await conn.execute(insert(Unit), unit_rows)
        await conn.execute(insert(Site), site_rows)
        await conn.execute(insert(Person), [dict(id=9, first_name="督查", role="inspector",
                                                 blocked=False,
                                                 created_at=WEEK_START)])
        await conn.execute(insert(StandardVersion), [dict(
            content_hash="b" * 64, standard_id="community", body={},
            created_at=WEEK_START)])
        inspections, answers = [], []
        count = ANSWERS // PER_INSPECTION + 1
        for i in range(count):
            when = PREV_START + dt.timedelta(seconds=rnd.randrange(14 * 86400))
            unit_bias = (i % UNITS) / UNITS * 20
            score = min(100.0, rnd.uniform(60, 90) + unit_bias)
            inspections.append(dict(
                id=i + 1, site_id=rnd.randrange(SITES) + 1, inspector_id=9,
                standard_id="community", standard_hash="b" * 64, status="submitted",
                step=PER_INSPECTION, started_at=when, updated_at=when,
                submitted_at=when, score_overall=score,
                score_static=min(100.0, score + 5), score_dynamic=score - 5))
            for k in range(PER_INSPECTION):
                if len(answers) >= ANSWERS:
                    break
                answers.append(dict(inspection_id=i + 1, item_key=str(k + 1),
                                    verdict=rnd.choice(("compliant", "compliant", "basic",
                                                        "noncompliant")),
                                    skipped=False, answered_at=when))
        for start in range(0, len(inspections), 2000):
            await conn.execute(insert(Inspection), inspections[start:start + 2000])
        answers = answers[:ANSWERS]
        for start in range(0, len(answers), 5000):
            await conn.execute(insert(Answer), answers[start:start + 5000])
        tasks = []
        for k in range(3000):
            created = PREV_START + dt.timedelta(seconds=rnd.randrange(14 * 86400))
            due = created + dt.timedelta(days=rnd.choice((1, 3, 7)))
            closed = due + dt.timedelta(hours=rnd.uniform(-48, 48)) if rnd.random() < 0.7 \
                else None
            tasks.append(dict(source="inspection", unit_id=10 + k % UNITS, title=f"问题{k}",
                              description="", status="closed" if closed else "open",
                              version=0, priority=0, escalation_level=rnd.choice((0, 0, 1, 2)),
                              due_at=due, created_at=created,
                              closed_at=closed if closed else None,
                              reopen_count=rnd.choice((0, 0, 0, 1))))
        await conn.execute(insert(Task), tasks)
        await conn.execute(insert(Report), [dict(
            reporter_id=9, status="submitted", unit_id=10 + k % UNITS, priority=0,
            submitted_at=PREV_START + dt.timedelta(seconds=rnd.randrange(14 * 86400)),
            created_at=WEEK_START, updated_at=WEEK_START)
            for k in range(1000)])
    await engine.dispose()


async def time_ranking(url: str, repeats: int = 7) -> dict[str, float]:
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    sqlite = url.startswith("sqlite")
    params = {"start": _ts(WEEK_START, sqlite), "end": _ts(WEEK_END, sqlite)}

    async def ours() -> int:
        async with sessions() as s:
            stats = StatsRepository(s)
            tree = await stats.unit_tree()
            names = {u: n.name_zh for u, n in tree.nodes.items()}
            units = tree.subtree(1)
            cur = await stats.week_figures(WEEK_START, WEEK_END, 2, names, units)
            prev = await stats.week_figures(PREV_START, WEEK_START, 2, names, units)
            ranking = rank_units([cur[u] for u in units], [prev[u] for u in units],
                                 min_inspections=3, laggards=3)
            return len(ranking.ranked)

    async def plain(sql: str) -> int:
        async with sessions() as s:
            return len((await s.execute(text(sql), params)).all())

    async def measure(fn: Any, *args: Any) -> tuple[float, int]:
        await fn(*args)
        times = []
        result = 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            result = await fn(*args)
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1000, result

    ours_ms, ranked = await measure(ours)
    plain_ms, units = await measure(plain, PLAIN_INSPECTIONS)
    answers_ms, _ = await measure(plain, PLAIN_ANSWERS)
    async with sessions() as s:
        n_answers = len((await s.execute(select(Answer.id))).all())
    await engine.dispose()
    return {"ours_ms": ours_ms, "plain_ms": plain_ms, "answers_ms": answers_ms,
            "ranked": ranked, "units": units, "answers": n_answers}


async def run_broadcast(groups: int, photo: bytes | None, workdir: Path) -> dict[str, float]:
    from telegram.ext import ExtBot

    from bot.telegram.outbox import OutboxSender, broadcast_rate_limiter
    from db.types import utcnow
    from sandbox.client import SandboxClient
    from sandbox.server import SandboxServer
    from scheduler.runner import store_png

    token = "123456789:BENCHtokenForWenmingBulletin"
    url = await create_database("sqlite", workdir)
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    media = workdir / "media"
    rel = store_png(media, photo) if photo is not None else None
    async with SandboxServer(flood_control=False) as server, SandboxClient(server.url) as sb:
        admin = await sb.create_user("管理员", user_id=1)
        async with sessions() as s, s.begin():
            s.add(Unit(id=1, code="office", name_zh="区创文办", kind="office"))
            await s.flush()
            for g in range(groups):
                chat = -1003000000 - g
                await sb.create_group(f"群{g}", chat_id=chat)
                await sb.add_bot(chat, admin["id"])
                s.add(GroupBinding(chat_id=chat, unit_id=1, title=f"群{g}"))
                params: dict[str, object] = (
                    {"text": f"第48周通报 #{g}"} if rel is None else
                    {"file": rel, "file_param": "photo", "filename": "bulletin.png",
                     "caption": f"第48周通报 #{g}"})
                s.add(OutboxMessage(dedup_key=f"bench:{g}", chat_id=chat,
                                    method="sendMessage" if rel is None else "sendPhoto",
                                    params=params, purpose="bulletin"))
        await sb.set_flood_control(True)
        await asyncio.sleep(1.1)  # let the sandbox's buckets fill as they would at rest
        before = (await sb.stats())["errors"].get("429", 0)
        bot = ExtBot(token, base_url=server.api_base_url, base_file_url=server.file_base_url,
                     rate_limiter=broadcast_rate_limiter())
        await bot.initialize()
        sender = OutboxSender(bot, sessions, utcnow, media_dir=media, idle_interval=0.05)
        t0 = time.perf_counter()
        sender.start()
        while True:
            async with sessions() as s:
                left = (await s.execute(text(
                    "SELECT count(*) FROM outbox WHERE status = 'pending'"))).scalar_one()
            if left == 0:
                break
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - t0
        await sender.stop()
        await bot.shutdown()
        errors = (await sb.stats())["errors"].get("429", 0) - before
    await engine.dispose()
    bound = 1.1 * max(0, (groups - 30) / 30) + 2
    return {"seconds": elapsed, "bound": bound, "429s": errors}


def bulletin_png() -> bytes:
    from bot.domain.ranking import UnitFigures
    from bot.media.bulletin import render_png
    from bot.render.bulletin import BulletinView, PhaseInfo

    rnd = random.Random(1)
    figures = [UnitFigures(u, f"第{u + 1}街道", inspections=5, score=rnd.uniform(70, 98),
                           static=90.0, dynamic=80.0, tasks_due=4, closed_on_time=3)
               for u in range(12)]
    view = BulletinView("zh-hans", "2026-W48", dt.date(2026, 11, 23), dt.date(2026, 11, 29),
                        "区创文办工作群", PhaseInfo("巩固阶段", 32),
                        rank_units(figures, min_inspections=3), 3)
    return render_png(view)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--groups", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in [b for b in args.backends.split(",") if b]:
            url = await create_database(kind, Path(tmp))
            try:
                t0 = time.perf_counter()
                await seed(url)
                seeded = time.perf_counter() - t0
                r = await time_ranking(url)
            finally:
                await drop_database(url)
            print(f"ranking [{kind}] {UNITS} units, {SITES} sites, {r['answers']:.0f} answers "
                  f"(seeded in {seeded:.1f} s): bulletin figures + ranking "
                  f"{r['ours_ms']:.1f} ms (this and last week, 5 aggregates each); plain SQL "
                  f"inspection aggregate {r['plain_ms']:.1f} ms (one week); plain SQL over "
                  f"the answers {r['answers_ms']:.1f} ms; ranked {r['ranked']:.0f}")
        for label, photo in (("text", None), ("bulletin PNG", bulletin_png())):
            workdir = Path(tmp) / label.replace(" ", "_")
            workdir.mkdir()
            b = await run_broadcast(args.groups, photo, workdir)
            verdict = "within" if b["seconds"] <= b["bound"] else "OVER"
            print(f"broadcast [{label}] {args.groups} groups, flood control on: "
                  f"{b['seconds']:.2f} s (bound {b['bound']:.2f} s, {verdict}); "
                  f"429s: {b['429s']:.0f}")


if __name__ == "__main__":
    asyncio.run(main())
