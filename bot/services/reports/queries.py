"""Read-only lookups: a report by ticket, the resident's list, photos and followers."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from bot.domain import reports as dom
from bot.domain.errors import DomainError, NotFound
from bot.media.phash import unsigned64
from bot.services.reports.results import ReportLine
from db.models import Person, Photo, Report, ReportFollower, ReportPhoto
from db.uow import UnitOfWork


async def by_ref(uow: UnitOfWork, ref: int | str) -> Report:
    """A report by id, or by its ticket as typed."""
    if isinstance(ref, int):
        found = await uow.session.get(Report, ref)
    else:
        ticket = dom.parse_ticket(ref)
        if ticket is None:
            raise DomainError("reports.bad_ticket", ticket=ref)
        found = await uow.session.scalar(select(Report).where(Report.ticket == ticket))
    if found is None or found.ticket is None:
        raise NotFound("reports.no_such_ticket", ticket=str(ref))
    return found


async def mine(uow: UnitOfWork, person: Person, limit: int = 20) -> list[ReportLine]:
    own = (await uow.session.scalars(
        select(Report).where(Report.reporter_id == person.id, Report.ticket.is_not(None))
        .order_by(Report.id.desc()).limit(limit))).all()
    followed = (await uow.session.scalars(
        select(Report).join(ReportFollower, ReportFollower.report_id == Report.id)
        .where(ReportFollower.person_id == person.id)
        .order_by(Report.id.desc()).limit(limit))).all()
    lines = [ReportLine(r, False) for r in own] + [ReportLine(r, True) for r in followed]
    lines.sort(key=lambda line: line.report.id, reverse=True)
    return lines[:limit]


async def photo_count(uow: UnitOfWork, report_id: int) -> int:
    return int(await uow.session.scalar(
        select(func.count()).select_from(ReportPhoto)
        .where(ReportPhoto.report_id == report_id)) or 0)


async def photos(uow: UnitOfWork, report_id: int) -> list[Photo]:
    return list((await uow.session.scalars(
        select(Photo).join(ReportPhoto, ReportPhoto.photo_id == Photo.id)
        .where(ReportPhoto.report_id == report_id).order_by(Photo.id))).all())


async def phashes(
    uow: UnitOfWork, report_ids: Sequence[int]
) -> dict[int, tuple[int, ...]]:
    rows = (await uow.session.execute(
        select(ReportPhoto.report_id, Photo.phash)
        .join(Photo, Photo.id == ReportPhoto.photo_id)
        .where(ReportPhoto.report_id.in_(report_ids)))).all()
    out: dict[int, list[int]] = {}
    for rid, ph in rows:
        out.setdefault(rid, []).append(unsigned64(ph))
    return {k: tuple(v) for k, v in out.items()}


async def followers(uow: UnitOfWork, report_id: int) -> int:
    return int(await uow.session.scalar(
        select(func.count()).select_from(ReportFollower)
        .where(ReportFollower.report_id == report_id)) or 0)


async def follower_ids(uow: UnitOfWork, report_id: int) -> list[int]:
    return list((await uow.session.scalars(
        select(ReportFollower.person_id).where(ReportFollower.report_id == report_id)
        .order_by(ReportFollower.created_at))).all())


async def is_follower(uow: UnitOfWork, report_id: int, person_id: int) -> bool:
    return await uow.session.get(ReportFollower, (report_id, person_id)) is not None
