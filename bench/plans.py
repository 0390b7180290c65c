"""Plans benchmark: one morning's supervision lists for a city-sized database.

    .venv/bin/python -m bench.plans [--backends sqlite,postgresql] [--runs 5]

43 sub-districts under a campaign office, 2,000 sites (communities, malls, hotels, service
windows), 200 inspectors (four per sub-district, the rest in the office), and 45 plans: each
sub-district's daily patrol of its own sites by its own inspectors (划片包干, seed line 194),
the weekly door-to-door round of every mall and hotel by the office (seed line 169), and a
monthly round of every community. The day is a Monday and the first of a month, so every plan
is due: about 2,000 occurrences.

Times bot.services.plans.run_morning (what the scheduler runs each morning in one
transaction: earlier days' rounds marked missed, the day's rounds expanded with dateutil's
rrule, shared out among the inspectors available, and each inspector's list queued in the
outbox) and its peak Python memory (tracemalloc), beside a baseline measured in the same run:
a plain ORM SELECT of all 2,000 sites. Times are the median of `--runs` after one warm-up
(between runs the day's occurrences and lists are deleted); peak memory is measured in a
separate run of each, as tracemalloc slows Python several times over. The second run on the
same day (another replica, or a restart: nothing to add, nothing to send) is timed too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select

from bench.common import (
    backends_parser,
    city_rows,
    create_database,
    drop_database,
    inspector_ids,
)
from bot.domain.plans import Crew, Plan, PlansConfig, Target, Text
from bot.services.plans import import_plans, run_morning
from db.migrate import upgrade_async
from db.models import OutboxMessage, Person, PlanOccurrence, Site, Unit
from db.session import create_engine, create_sessionmaker
from db.uow import UnitOfWorkFactory

UNITS, SITES, INSPECTORS = 43, 2000, 200
TZ = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 6, 1)  # a Monday, the first of the month
START = dt.date(2026, 4, 13)
NOW = dt.datetime.combine(DAY, dt.time(7, 30), TZ).astimezone(dt.UTC)
TYPES = ("community", "community", "mall", "hotel", "dining_window")


def plans() -> PlansConfig:
    out = [Plan(f"patrol_sd{u}", Text(f"第{u + 1}街道巡查", f"Sub-district {u + 1} patrol"),
                "FREQ=DAILY", START, Target(units=(f"sd{u}",)), Crew(units=(f"sd{u}",)))
           for u in range(UNITS)]
    out.append(Plan("commerce_weekly", Text("商场宾馆每周排查", "Weekly commerce round"),
                    "FREQ=WEEKLY;BYDAY=MO", START, Target(site_types=("mall", "hotel")),
                    Crew(units=("office",))))
    out.append(Plan("community_monthly", Text("社区每月巡查", "Monthly community round"),
                    "FREQ=MONTHLY;BYMONTHDAY=1", START, Target(site_types=("community",)),
                    Crew(units=("office",))))
    return PlansConfig(plans=tuple(out))


async def seed(url: str) -> None:
    await upgrade_async(url)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            unit_rows, site_rows = city_rows(UNITS, SITES, TYPES)
            await conn.execute(insert(Unit), unit_rows)
            await conn.execute(insert(Site), site_rows)
            ids = inspector_ids(INSPECTORS)
            await conn.execute(insert(Person), [dict(
                id=pid, first_name=f"督查{k}", role="inspector", blocked=False,
                telegram_language="zh-hans",
                unit_id=10 + k % UNITS if k < 4 * UNITS else 1, created_at=NOW)
                for k, pid in enumerate(ids)])
        uow = UnitOfWorkFactory(create_sessionmaker(engine))
        async with uow() as u:
            await import_plans(u, plans(), NOW)
            await u.commit(mark_update_handled=False)
    finally:
        await engine.dispose()


async def timed(call: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    """(seconds, result), without tracemalloc (it slows Python several times over)."""
    t0 = time.perf_counter()
    result = await call()
    return time.perf_counter() - t0, result


async def peak_mib(call: Callable[[], Awaitable[object]]) -> float:
    """The peak of Python allocations during the call (tracemalloc), in MiB."""
    tracemalloc.start()
    try:
        await call()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


async def bench(url: str, runs: int) -> dict[str, float]:
    engine = create_engine(url)
    uow = UnitOfWorkFactory(create_sessionmaker(engine),
                            serialize_writes=engine.dialect.name == "sqlite")

    async def baseline() -> object:
        async with uow.read() as u:
            return len((await u.session.scalars(select(Site))).all())

    async def morning() -> object:
        async with uow() as u:
            result = await run_morning(u, DAY, TZ, NOW, "zh-hans")
            await u.commit(mark_update_handled=False)
        return result

    async def reset() -> None:
        async with uow() as u:
            await u.session.execute(delete(OutboxMessage))
            await u.session.execute(delete(PlanOccurrence))
            await u.commit(mark_update_handled=False)

    try:
        base, ours, again, result = [], [], [], None
        for k in range(runs + 1):
            await reset()
            b, _ = await timed(baseline)
            m, result = await timed(morning)
            a, _ = await timed(morning)
            if k:  # the first is a warm-up
                base.append(b)
                ours.append(m)
                again.append(a)
        base_mib = await peak_mib(baseline)
        await reset()
        ours_mib = await peak_mib(morning)
        async with uow.read() as u:
            occurrences = await u.session.scalar(
                select(func.count()).select_from(PlanOccurrence))
            assigned = await u.session.scalar(select(
                func.count(func.distinct(PlanOccurrence.inspector_id))))
        return {
            "base_ms": statistics.median(base) * 1000, "base_mib": base_mib,
            "ours_ms": statistics.median(ours) * 1000, "ours_mib": ours_mib,
            "again_ms": statistics.median(again) * 1000,
            "occurrences": float(occurrences or 0), "inspectors": float(assigned or 0),
            "lists": float(getattr(result, "lists", 0)),
            "unassigned": float(getattr(result, "unassigned", 0)),
        }
    finally:
        await engine.dispose()


async def one_backend(kind: str, workdir: Path, runs: int) -> dict[str, float]:
    """Seed a fresh database of `kind`, measure, drop it."""
    url = await create_database(kind, workdir)
    try:
        await seed(url)
        return await bench(url, runs)
    finally:
        await drop_database(url)


async def main() -> None:
    parser = backends_parser(__doc__)
    parser.add_argument("--runs", type=int, default=5, help="measured runs per backend")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in filter(None, args.backends.split(",")):
            r = await one_backend(kind, Path(tmp), args.runs)
            print(f"plans [{kind}] {UNITS} sub-districts, {SITES} sites, {INSPECTORS} "
                  f"inspectors, {len(plans().plans)} plans: one morning "
                  f"({r['occurrences']:.0f} occurrences to {r['inspectors']:.0f} inspectors, "
                  f"{r['lists']:.0f} lists, {r['unassigned']:.0f} with nobody) "
                  f"{r['ours_ms']:.0f} ms, peak {r['ours_mib']:.1f} MiB; the same morning "
                  f"again {r['again_ms']:.0f} ms; baseline SELECT of all sites "
                  f"{r['base_ms']:.1f} ms, peak {r['base_mib']:.1f} MiB")

if __name__ == "__main__":
    asyncio.run(main())
