"""Read-only lookups: a report by ticket as typed, the resident's list, photos' hashes."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain import reports as dom
from bot.domain.errors import DomainError, NotFound
from bot.media.phash import unsigned64
from bot.services.reports.results import ReportLine
from db.models import Person, Report
from db.uow import UnitOfWork


async def by_ref(uow: UnitOfWork, ref: int | str) -> Report:
    """A report by id, or by its ticket as typed."""
    if isinstance(ref, int):
        found = await uow.reports.get(ref)
    else:
        ticket = dom.parse_ticket(ref)
        if ticket is None:
            raise DomainError("reports.bad_ticket", ticket=ref)
        found = await uow.reports.by_ticket(ticket)
    if found is None or found.ticket is None:
        raise NotFound("reports.no_such_ticket", ticket=str(ref))
    return found


async def mine(uow: UnitOfWork, person: Person, limit: int = 20) -> list[ReportLine]:
    """The resident's own tickets and those they follow, newest first."""
    own = await uow.reports.own(person.id, limit)
    followed = await uow.reports.followed(person.id, limit)
    lines = [ReportLine(r, False) for r in own] + [ReportLine(r, True) for r in followed]
    lines.sort(key=lambda line: line.report.id, reverse=True)
    return lines[:limit]


async def phashes(
    uow: UnitOfWork, report_ids: Sequence[int]
) -> dict[int, tuple[int, ...]]:
    """The reports' photos' perceptual hashes, by report."""
    out: dict[int, list[int]] = {}
    for rid, ph in await uow.reports.phashes(report_ids):
        out.setdefault(rid, []).append(unsigned64(ph))
    return {k: tuple(v) for k, v in out.items()}
