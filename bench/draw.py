"""Draw benchmark: the day's random spot checks for 43 sub-districts and 2,000 sites.

    .venv/bin/python -m bench.draw [--backends sqlite,postgresql] [--repeats 7]

The database is bench/bulletin.py's (43 sub-districts under a campaign office, 2,000 sites,
100,000 answers in 6,668 submitted inspections, 3,000 tasks, 1,000 reports), plus 2,000 tasks
at sites (open, overdue, closed in the last two weeks, relapses) and 500 residents' reports
with a place near the sites, so that every risk figure has rows to count.

Measured, median of `--repeats` runs after one warm-up, with the peak of Python's allocations
(tracemalloc) of one run:

* ours, candidates: bot/services/draws.candidates (db/repositories/draws.py's six statements,
  strata from the unit tree, reports nearby, the weights);
* ours, draw: bot/domain/draw.draw over those candidates (HMAC-SHA256 per site, the
  allocation, the weighted sampling), N = 2 per sub-district and a 20% re-check share;
* ours, day_draw: the whole use case for a new day (seed, candidates, draw, snapshot and
  entries stored, committed);
* baseline, in the same run: one hand-written GROUP BY over the answers (failed items per
  site, the heaviest figure) and `random.sample` of 2 sites per sub-district: what a draw
  with no risk, no strata by type and no record would cost.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import tempfile
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text, update

from bench.bulletin import SITES, UNITS, WEEK_END, WEEK_START, seed
from bench.common import create_database, drop_database
from bot.domain.draw import draw
from bot.domain.draws_config import DrawConfig
from bot.services.draws import candidates, day_draw
from db.models import Report, Site, Task
from db.session import create_engine, create_sessionmaker
from db.uow import UnitOfWorkFactory

NOW = WEEK_END  # the day after bench/bulletin.py's week
CONFIG = DrawConfig(per_subdistrict=2, recheck_share=0.2)
PLAIN_FAILED = """
SELECT i.site_id, count(*) FROM answers a JOIN inspections i ON i.id = a.inspection_id
WHERE i.status = 'submitted' AND i.submitted_at >= :since AND a.verdict = 'noncompliant'
GROUP BY i.site_id
"""


async def seed_more(url: str) -> None:
    """Places for the sites, tasks at sites, reports with a place."""
    engine = create_engine(url)
    rnd = random.Random(14)
    async with engine.begin() as conn:
        for s in range(SITES):
            await conn.execute(update(Site).where(Site.id == s + 1).values(
                latitude=34.30 + rnd.random() * 0.12, longitude=107.15 + rnd.random() * 0.18))
        tasks = []
        for k in range(2000):
            created = WEEK_START - dt.timedelta(seconds=rnd.randrange(14 * 86400))
            state = rnd.choice(("open", "open", "closed", "closed", "closed"))
            closed = created + dt.timedelta(days=rnd.uniform(1, 5)) if state == "closed" \
                else None
            tasks.append(dict(
                source="inspection", unit_id=10 + k % UNITS, site_id=rnd.randrange(SITES) + 1,
                item_key=str(rnd.randrange(15) + 1), title=f"点位问题{k}", description="",
                status=state, version=0, priority=0, escalation_level=0,
                due_at=created + dt.timedelta(days=rnd.choice((1, 3, 7))),
                created_at=created, closed_at=closed, reopen_count=0))
        await conn.execute(insert(Task), tasks)
        await conn.execute(text("UPDATE tasks SET relapse_of_id = id - 1 "
                                "WHERE site_id IS NOT NULL AND id % 10 = 0"))
        await conn.execute(insert(Report), [dict(
            reporter_id=9, status="submitted", unit_id=10 + k % UNITS, priority=0,
            latitude=34.30 + rnd.random() * 0.12, longitude=107.15 + rnd.random() * 0.18,
            submitted_at=WEEK_START + dt.timedelta(seconds=rnd.randrange(6 * 86400)),
            created_at=WEEK_START, updated_at=WEEK_START) for k in range(500)])
    await engine.dispose()


async def measure(fn: Callable[[], Awaitable[Any]], repeats: int) -> tuple[float, float, Any]:
    """(median ms, peak allocated MB of one run, the last result)."""
    await fn()
    tracemalloc.start()
    result = await fn()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, peak, result


async def run(url: str, repeats: int) -> dict[str, Any]:
    await seed(url)
    await seed_more(url)
    engine = create_engine(url)
    if url.startswith("postgresql"):  # fresh statistics after the bulk load, as autovacuum would
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
    factory = UnitOfWorkFactory(create_sessionmaker(engine),
                                serialize_writes=url.startswith("sqlite"))
    sqlite = url.startswith("sqlite")
    found: dict[str, Any] = {}

    async def features() -> int:
        async with factory.read() as uow:
            found["c"] = await candidates(uow, CONFIG, NOW)
        return len(found["c"][0])

    async def pure() -> int:
        sites, rechecks = found["c"]
        return len(draw(b"\x07" * 32, NOW.date(), sites, rechecks, CONFIG.params))

    day = [NOW.date()]

    async def whole() -> int:
        day[0] += dt.timedelta(days=1)
        async with factory() as uow:
            drawn = await day_draw(uow, day[0], CONFIG, NOW)
            await uow.commit()
        return len(drawn)

    since = NOW - dt.timedelta(days=CONFIG.window_days)

    async def baseline() -> int:
        async with factory.read() as uow:
            rows = (await uow.session.execute(
                text(PLAIN_FAILED), {"since": since.replace(tzinfo=None) if sqlite else since}
            )).all()
            sites = (await uow.session.execute(text("SELECT id, unit_id FROM sites"))).all()
        failed = dict(rows)  # noqa: F841 (what a draw would weigh with; unused by sample)
        by_unit: dict[int, list[int]] = defaultdict(list)
        for sid, uid in sites:
            by_unit[uid].append(sid)
        rnd = random.Random(7)
        return sum(len(rnd.sample(v, min(2, len(v)))) for v in by_unit.values())

    out: dict[str, Any] = {}
    out["candidates"] = await measure(features, repeats)
    out["draw"] = await measure(pure, repeats)
    out["day_draw"] = await measure(whole, repeats)
    out["baseline"] = await measure(baseline, repeats)
    await engine.dispose()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in [b for b in args.backends.split(",") if b]:
            url = await create_database(kind, Path(tmp))
            try:
                r = await run(url, args.repeats)
            finally:
                await drop_database(url)
            print(f"draw [{kind}] {UNITS} sub-districts, {SITES} sites, N=2, re-checks 20%:")
            for name in ("candidates", "draw", "day_draw", "baseline"):
                ms, peak, result = r[name]
                print(f"  {name:10} {ms:8.1f} ms  peak {peak:6.1f} MB  ({result} sites)")


if __name__ == "__main__":
    asyncio.run(main())
