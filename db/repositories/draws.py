"""The day's draws (draws, draw_entries) and the risk figures a draw is made from.

`site_risks` reads every site's figures with one GROUP BY per figure family (no query per
site); `bench/draw.py` times it with the draw for 2,000 sites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Answer, Draw, DrawEntry, Inspection, Report, Site, Task
from db.repositories.rows import add_or_find
from db.repositories.stats import DONE_STATUSES, SUBMITTED, WAITING_STATUSES

NONCOMPLIANT = "noncompliant"


@dataclass
class SiteRisk:
    """A site and its raw risk figures (the service turns them into the domain's features)."""

    site_id: int
    code: str
    site_type: str
    unit_id: int
    latitude: float | None
    longitude: float | None
    failed_items: int = 0
    relapses: int = 0
    open_tasks: int = 0
    overdue_tasks: int = 0
    last_inspected: datetime | None = None
    reports: int = 0  # with this site named; reports nearby are counted by the service


@dataclass(frozen=True)
class ClosedTask:
    task_id: int
    site_id: int
    item_key: str | None


@dataclass
class Risks:
    sites: list[SiteRisk]
    # Recent residents' reports with a place and no site: (latitude, longitude).
    report_points: list[tuple[float, float]] = field(default_factory=list)


class DrawRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, day: str) -> Draw | None:
        return await self.session.get(Draw, day)

    async def add_seed(self, day: str, seed_hex: str, seed_hash: str, now: datetime) -> Draw:
        """The day's draw row with this seed, or the one a concurrent runner stored first."""
        row, _ = await add_or_find(
            self.session, Draw(day=day, seed=seed_hex, seed_hash=seed_hash, created_at=now),
            lambda: self.session.get(Draw, day))
        return row

    async def claim_drawing(self, day: str, now: datetime) -> bool:
        """Mark the draw as drawn (guarded: one runner only); False when it was already."""
        result = await self.session.execute(
            update(Draw).where(Draw.day == day, Draw.drawn_at.is_(None))
            .values(drawn_at=now).execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def entries(self, day: str) -> list[tuple[DrawEntry, str]]:
        """The day's sites drawn, in the draw's order, with each site's code."""
        rows = await self.session.execute(
            select(DrawEntry, Site.code).join(Site, Site.id == DrawEntry.site_id)
            .where(DrawEntry.day == day).order_by(DrawEntry.rank))
        return [(entry, code) for entry, code in rows.all()]

    async def unrevealed_before(self, day: str) -> list[Draw]:
        """Draws of the days before `day` whose seed is not revealed yet, oldest first."""
        return list((await self.session.scalars(
            select(Draw).where(Draw.day < day, Draw.revealed_at.is_(None))
            .order_by(Draw.day))).all())

    async def drawn_sites(self, day: str) -> list[tuple[str, str, str, int | None]]:
        """The day's sites drawn, in the draw's order: (kind, name, English name, task id)."""
        rows = await self.session.execute(
            select(DrawEntry.kind, Site.name, Site.name_en, DrawEntry.task_id)
            .join(Site, Site.id == DrawEntry.site_id)
            .where(DrawEntry.day == day).order_by(DrawEntry.rank))
        return [(kind, name, name_en or "", task) for kind, name, name_en, task in rows.all()]

    async def mark(self, day: str, column: str, now: datetime) -> bool:
        """Set announced_at or revealed_at once; False when it was set already."""
        col = getattr(Draw, column)
        result = await self.session.execute(
            update(Draw).where(Draw.day == day, col.is_(None)).values({column: now})
            .execution_options(synchronize_session=False))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def open_rechecks(self, site_id: int, first_day: str, last_day: str
                            ) -> list[tuple[DrawEntry, str | None]]:
        """Re-checks drawn for the site between the days (inclusive) and not yet done, with
        the item of the closed task each is for."""
        rows = await self.session.execute(
            select(DrawEntry, Task.item_key).join(Task, Task.id == DrawEntry.task_id)
            .where(DrawEntry.site_id == site_id, DrawEntry.kind == "recheck",
                   DrawEntry.inspection_id.is_(None), DrawEntry.day >= first_day,
                   DrawEntry.day <= last_day)
            .order_by(DrawEntry.day, DrawEntry.rank))
        return [(entry, key) for entry, key in rows.all()]

    async def undone_entries(self, site_id: int, first_day: str, last_day: str
                             ) -> list[DrawEntry]:
        return list((await self.session.scalars(
            select(DrawEntry).where(DrawEntry.site_id == site_id,
                                    DrawEntry.inspection_id.is_(None),
                                    DrawEntry.day >= first_day, DrawEntry.day <= last_day)
        )).all())

    # ---- what a draw is made from -----------------------------------------------------------

    async def site_risks(self, now: datetime, since: datetime) -> Risks:
        """Every site's figures: failed items and relapses since `since`, open and overdue
        tasks now, the last inspection, residents' reports since `since`."""
        by_id: dict[int, SiteRisk] = {}
        for sid, code, stype, uid, lat, lon in (await self.session.execute(
                select(Site.id, Site.code, Site.site_type, Site.unit_id, Site.latitude,
                       Site.longitude))).all():
            by_id[sid] = SiteRisk(sid, code, stype, uid, lat, lon)
        failed = await self.session.execute(
            select(Inspection.site_id, func.count())
            .join(Answer, Answer.inspection_id == Inspection.id)
            .where(Inspection.status.in_(SUBMITTED), Inspection.submitted_at >= since,
                   Answer.verdict == NONCOMPLIANT)
            .group_by(Inspection.site_id))
        for sid, n in failed.all():
            if sid in by_id:
                by_id[sid].failed_items = n
        relapses = await self.session.execute(
            select(Task.site_id, func.count())
            .where(Task.relapse_of_id.is_not(None), Task.created_at >= since,
                   Task.site_id.is_not(None))
            .group_by(Task.site_id))
        for rsid, n in relapses.all():
            if rsid is not None and rsid in by_id:
                by_id[rsid].relapses = n
        overdue = ((Task.due_at < now) & Task.status.not_in(WAITING_STATUSES))
        open_rows = await self.session.execute(
            select(Task.site_id, func.count(), func.sum(case((overdue, 1), else_=0)))
            .where(Task.status.not_in(DONE_STATUSES), Task.closed_at.is_(None),
                   Task.site_id.is_not(None))
            .group_by(Task.site_id))
        for osid, n, late in open_rows.all():
            if osid is not None and osid in by_id:
                by_id[osid].open_tasks = n
                by_id[osid].overdue_tasks = int(late or 0)
        last = await self.session.execute(
            select(Inspection.site_id, func.max(Inspection.submitted_at))
            .where(Inspection.status.in_(SUBMITTED)).group_by(Inspection.site_id))
        for sid, at in last.all():
            if sid in by_id:
                by_id[sid].last_inspected = at
        points: list[tuple[float, float]] = []
        for psid, lat, lon in (await self.session.execute(
                select(Report.site_id, Report.latitude, Report.longitude)
                .where(Report.status != "draft", Report.submitted_at >= since))).all():
            if psid is not None and psid in by_id:
                by_id[psid].reports += 1
            elif lat is not None and lon is not None:
                points.append((lat, lon))
        return Risks(sorted(by_id.values(), key=lambda s: s.code), points)

    async def closed_since(self, since: datetime) -> list[ClosedTask]:
        """Tasks at a site closed (销号) since `since` and never drawn for a re-check yet:
        re-check candidates. A task is drawn for a re-check once: a re-check drawn and not
        done within its grace days is not drawn again (else the same closed task came back
        every day; its inspection, if late, still counts within the grace days)."""
        drawn = select(DrawEntry.task_id).where(DrawEntry.task_id.is_not(None))
        rows = await self.session.execute(
            select(Task.id, Task.site_id, Task.item_key)
            .where(Task.status == "closed", Task.closed_at >= since,
                   Task.site_id.is_not(None), Task.id.not_in(drawn))
            .order_by(Task.id))
        return [ClosedTask(tid, sid, key) for tid, sid, key in rows.all() if sid is not None]
