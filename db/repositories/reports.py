"""Residents' reports: drafts, tickets, their photos and followers, and the ticket counter."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.reports import DRAFT, OPEN_STATUSES, SUBMITTED
from db.models import Counter, Photo, Report, ReportFollower, ReportPhoto
from db.repositories.rows import add_or_find


class ReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, report_id: int) -> Report | None:
        return await self.session.get(Report, report_id)

    async def by_ticket(self, ticket: str) -> Report | None:
        return await self.session.scalar(select(Report).where(Report.ticket == ticket))

    # ---- drafts ---------------------------------------------------------------------------

    async def draft_of(self, person_id: int) -> Report | None:
        return await self.session.scalar(
            select(Report).where(Report.reporter_id == person_id, Report.status == DRAFT))

    async def add_draft(self, report: Report) -> Report:
        """The new draft; or, when the same update ran twice at once, the one its twin added
        (one draft per resident: a unique index)."""
        found, _ = await add_or_find(self.session, report,
                                     lambda: self.draft_of(report.reporter_id))
        return found

    async def submitted_since(self, person_id: int, since: datetime) -> list[datetime]:
        """When this person's reports were submitted after `since`."""
        times = (await self.session.scalars(
            select(Report.submitted_at).where(
                Report.reporter_id == person_id, Report.submitted_at.is_not(None),
                Report.submitted_at > since))).all()
        return [t for t in times if t is not None]

    # ---- photos ---------------------------------------------------------------------------

    async def of_photo(self, photo_id: int) -> Report | None:
        """The report this photo was added to."""
        return await self.session.scalar(
            select(Report).join(ReportPhoto, ReportPhoto.report_id == Report.id)
            .where(ReportPhoto.photo_id == photo_id))

    async def add_photo(self, report_id: int, photo: Photo) -> None:
        self.session.add(photo)
        await self.session.flush()
        self.session.add(ReportPhoto(report_id=report_id, photo_id=photo.id))

    async def photo_count(self, report_id: int) -> int:
        return int(await self.session.scalar(
            select(func.count()).select_from(ReportPhoto)
            .where(ReportPhoto.report_id == report_id)) or 0)

    async def photos(self, report_id: int) -> list[Photo]:
        return list((await self.session.scalars(
            select(Photo).join(ReportPhoto, ReportPhoto.photo_id == Photo.id)
            .where(ReportPhoto.report_id == report_id).order_by(Photo.id))).all())

    async def phashes(self, report_ids: Sequence[int]) -> list[tuple[int, int]]:
        """(report id, the photo's perceptual hash as stored: signed) for these reports."""
        rows = (await self.session.execute(
            select(ReportPhoto.report_id, Photo.phash)
            .join(Photo, Photo.id == ReportPhoto.photo_id)
            .where(ReportPhoto.report_id.in_(report_ids)))).all()
        return [(rid, ph) for rid, ph in rows]

    # ---- a resident's list, followers -----------------------------------------------------

    async def own(self, person_id: int, limit: int) -> list[Report]:
        """The person's tickets (drafts have none), newest first."""
        return list((await self.session.scalars(
            select(Report).where(Report.reporter_id == person_id, Report.ticket.is_not(None))
            .order_by(Report.id.desc()).limit(limit))).all())

    async def followed(self, person_id: int, limit: int) -> list[Report]:
        """The reports the person follows ("me too"), newest first."""
        return list((await self.session.scalars(
            select(Report).join(ReportFollower, ReportFollower.report_id == Report.id)
            .where(ReportFollower.person_id == person_id)
            .order_by(Report.id.desc()).limit(limit))).all())

    async def follower_count(self, report_id: int) -> int:
        return int(await self.session.scalar(
            select(func.count()).select_from(ReportFollower)
            .where(ReportFollower.report_id == report_id)) or 0)

    async def follower_ids(self, report_id: int) -> list[int]:
        """The followers, in the order they followed."""
        return list((await self.session.scalars(
            select(ReportFollower.person_id).where(ReportFollower.report_id == report_id)
            .order_by(ReportFollower.created_at))).all())

    async def is_follower(self, report_id: int, person_id: int) -> bool:
        return await self.session.get(ReportFollower, (report_id, person_id)) is not None

    async def add_followers(self, report_id: int, person_ids: Iterable[int],
                            now: datetime) -> None:
        for pid in person_ids:
            self.session.add(ReportFollower(report_id=report_id, person_id=pid, created_at=now))
        await self.session.flush()

    # ---- open reports, decisions ----------------------------------------------------------

    async def open_since(self, since: datetime, *, excluding: int,
                         limit: int = 500) -> list[Report]:
        """Open reports submitted since `since` (but `excluding`), newest first."""
        return list((await self.session.scalars(
            select(Report).where(Report.status.in_(OPEN_STATUSES), Report.id != excluding,
                                 Report.submitted_at >= since)
            .order_by(Report.submitted_at.desc()).limit(limit))).all())

    async def change_submitted(self, report: Report, **values: object) -> bool:
        """Change a report only while it is still "submitted": one UPDATE … WHERE
        status='submitted'. True when this transaction won; either way `report` is re-read.
        On PostgreSQL a concurrent change waits for the first one's commit and then finds no
        row to change."""
        result = await self.session.execute(
            update(Report).where(Report.id == report.id, Report.status == SUBMITTED)
            .values(**values)
            .execution_options(synchronize_session=False))
        await self.session.refresh(report)
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def next_number(self, name: str) -> int:
        """Increment a named counter atomically (one UPDATE … RETURNING) and return it."""
        stmt = (update(Counter).where(Counter.name == name).values(value=Counter.value + 1)
                .returning(Counter.value))
        value = await self.session.scalar(stmt)
        if value is not None:
            return int(value)
        try:
            async with self.session.begin_nested():
                self.session.add(Counter(name=name, value=1))
            return 1
        except IntegrityError:
            # Another transaction created it first; its row is there now.
            value = await self.session.scalar(stmt)
            assert value is not None
            return int(value)
