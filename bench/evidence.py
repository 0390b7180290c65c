"""Time the near-duplicate photo lookup (db/repositories/evidence.py) over many photos.

    .venv/bin/python bench/evidence.py                        # SQLite and PostgreSQL, 50,000
    .venv/bin/python bench/evidence.py --photos 200000 --db sqlite

Each after-photo of a submitted fix is compared with every photo in the system (a Hamming
scan in SQL: bit_count on PostgreSQL, a function registered on the connection on SQLite).
This seeds a migrated database with random 64-bit hashes and times lookups of hashes near a
stored one, beside a baseline measured in the same run: a plain full scan of the same table
(`SELECT count(*) FROM photos WHERE size > 0`, no index), the floor any scan of every photo
costs. Output goes to stdout: this is a command-line tool.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select

from bench.common import create_database, drop_database
from bot.media.phash import DUPLICATE_MAX_DISTANCE, signed64
from db.migrate import upgrade_async
from db.models import Photo
from db.session import create_engine, create_sessionmaker
from db.types import utcnow
from db.uow import UnitOfWork


async def run(kind: str, photos: int, lookups: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = await create_database(kind, Path(tmp))
        try:
            await upgrade_async(url)
            engine = create_engine(url)
            sessions = create_sessionmaker(engine)
            rng = random.Random(0)
            hashes = [rng.getrandbits(64) for _ in range(photos)]
            now = utcnow()
            async with sessions() as s, s.begin():
                for start in range(0, photos, 5000):
                    await s.execute(insert(Photo), [
                        dict(sha256=f"{i:064x}", width=10, height=10, size=10,
                             phash=signed64(hashes[i]), chat_id=1, message_id=i,
                             uploaded_by=1, created_at=now)
                        for i in range(start, min(photos, start + 5000))])
            took, floor = [], []
            for n in range(lookups):
                target = hashes[rng.randrange(photos)] ^ (1 << (n % 64))
                async with UnitOfWork(sessions) as uow:
                    t0 = time.perf_counter()
                    found = await uow.evidence.near_photos(signed64(target),
                                                           DUPLICATE_MAX_DISTANCE)
                    took.append(time.perf_counter() - t0)
                assert found and found[0][1] == 1
                async with sessions() as s:
                    t0 = time.perf_counter()
                    await s.scalar(select(func.count()).select_from(Photo)
                                   .where(Photo.size > 0))
                    floor.append(time.perf_counter() - t0)
            took.sort()
            print(f"{kind:10} {photos:>8} photos: median {statistics.median(took) * 1000:7.1f}"
                  f" ms, max {took[-1] * 1000:7.1f} ms over {lookups} lookups; baseline full"
                  f" scan (count) median {statistics.median(floor) * 1000:7.1f} ms")
            await engine.dispose()
        finally:
            await drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=50_000)
    parser.add_argument("--lookups", type=int, default=20)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    for kind in kinds:
        asyncio.run(run(kind, args.photos, args.lookups))


if __name__ == "__main__":
    main()
