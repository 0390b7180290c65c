"""Photos as evidence: near-identical pictures anywhere in the system, and where they are used.

The near-duplicate lookup is a bounded Hamming-distance scan over photos.phash (a signed
BIGINT holding a 64-bit dHash). PostgreSQL does it in SQL (bit_count of the XOR, PostgreSQL
14+), reading the phash index only; SQLite has no popcount, so the (id, phash) pairs are
streamed in chunks and compared in Python. Both are linear in the number of photos: for
20,000 photos about 4 ms on PostgreSQL and 30-100 ms on SQLite (tests/db/test_evidence.py
prints it). A metric index (BK-tree, multi-index hashing) would pay off only far beyond what
one city collects.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import BigInteger, cast, func, literal, select
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Evidence, Photo, Report, ReportPhoto, TaskPhoto

_MASK = (1 << 64) - 1
_CHUNK = 5000


class EvidenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def near_photos(self, phash: int, max_distance: int, *,
                          exclude: Collection[int] = (), limit: int = 20
                          ) -> list[tuple[int, int]]:
        """(photo id, Hamming distance) of the photos whose hash is within `max_distance` of
        `phash` (signed, as stored), closest first, at most `limit`."""
        if self.session.get_bind().dialect.name == "postgresql":
            distance = func.bit_count(
                cast(Photo.phash.op("#")(cast(literal(phash), BigInteger)), BIT(64)))
            stmt = (select(Photo.id, distance.label("d"))
                    .where(distance <= max_distance)
                    .order_by(distance, Photo.id).limit(limit))
            if exclude:
                stmt = stmt.where(Photo.id.not_in(list(exclude)))
            return [(pid, int(d)) for pid, d in (await self.session.execute(stmt)).all()]
        found: list[tuple[int, int]] = []
        skip = set(exclude)
        target = phash & _MASK
        result = await self.session.stream(
            select(Photo.id, Photo.phash).execution_options(yield_per=_CHUNK))
        async for part in result.partitions(_CHUNK):
            for pid, value in part:
                d = ((value & _MASK) ^ target).bit_count()
                if d <= max_distance and pid not in skip:
                    found.append((pid, d))
        found.sort(key=lambda row: (row[1], row[0]))
        return found[:limit]

    async def task_photos(self, task_id: int, kinds: Collection[str]) -> list[Photo]:
        """The task's photos of these kinds, oldest first."""
        rows = await self.session.scalars(
            select(Photo).join(TaskPhoto, TaskPhoto.photo_id == Photo.id)
            .where(TaskPhoto.task_id == task_id, TaskPhoto.kind.in_(list(kinds)))
            .order_by(Photo.id))
        return list(rows)

    async def photos(self, photo_ids: Sequence[int]) -> list[Photo]:
        if not photo_ids:
            return []
        rows = await self.session.scalars(
            select(Photo).where(Photo.id.in_(list(photo_ids))).order_by(Photo.id))
        return list(rows)

    async def places(self, photo_ids: Sequence[int], kinds: Collection[str]
                     ) -> dict[int, tuple[int | None, int | None, str | None]]:
        """Where each photo is used as evidence: (task id, inspection id, report ticket), the
        first of each found (task photos of `kinds` only; a report once submitted)."""
        ids = list(photo_ids)
        tasks: dict[int, int] = {}
        inspections: dict[int, int] = {}
        tickets: dict[int, str | None] = {}
        if not ids:
            return {}
        for pid, task_id in await self.session.execute(
                select(TaskPhoto.photo_id, func.min(TaskPhoto.task_id))
                .where(TaskPhoto.photo_id.in_(ids), TaskPhoto.kind.in_(list(kinds)))
                .group_by(TaskPhoto.photo_id)):
            tasks[pid] = task_id
        for pid, inspection_id in await self.session.execute(
                select(Evidence.photo_id, func.min(Evidence.inspection_id))
                .where(Evidence.photo_id.in_(ids)).group_by(Evidence.photo_id)):
            inspections[pid] = inspection_id
        for pid, ticket in await self.session.execute(
                select(ReportPhoto.photo_id, func.min(Report.ticket))
                .join(Report, Report.id == ReportPhoto.report_id)
                .where(ReportPhoto.photo_id.in_(ids), Report.ticket.is_not(None))
                .group_by(ReportPhoto.photo_id)):
            tickets[pid] = ticket
        return {pid: (tasks.get(pid), inspections.get(pid), tickets.get(pid)) for pid in ids}

    async def received_times(self, task_id: int, kinds: Collection[str]
                             ) -> dict[str, datetime]:
        """When the bot received each of the task's photos (by stored sha256; the earliest
        upload of that picture)."""
        rows = await self.session.execute(
            select(Photo.sha256, func.min(Photo.created_at))
            .join(TaskPhoto, TaskPhoto.photo_id == Photo.id)
            .where(TaskPhoto.task_id == task_id, TaskPhoto.kind.in_(list(kinds)))
            .group_by(Photo.sha256))
        return {sha: at for sha, at in rows.all()}
