"""Routing: which unit a report goes to, and an admin's reroute to another unit."""

from __future__ import annotations

from datetime import datetime

from bot.domain import reports as dom
from bot.domain.errors import DomainError, StaleAction
from bot.domain.reports import Place
from bot.services.people import find_one_unit
from bot.services.reports import decisions, queries, submitting
from bot.services.reports.context import ReportContext
from db.models import Person, Report, Site, Unit
from db.uow import UnitOfWork


async def route(ctx: ReportContext, uow: UnitOfWork, report: Report) -> Unit:
    cat = ctx.config.category(report.category)
    assert cat is not None
    units = await uow.people.units()
    by_code = {u.code: u.id for u in units.values()}
    with_group = {g.unit_id for g in await uow.people.active_groups()}
    site = await where(ctx, uow, report)
    site_unit = site.unit_id if site is not None else None
    lat, lon = report.latitude, report.longitude
    if (lat is None or lon is None) and site is not None:
        lat, lon = site.latitude, site.longitude  # a named site: its point, for the area
    near: list[tuple[int, float]] = []
    areas: list[tuple[tuple[int, ...], float]] = []
    if lat is not None and lon is not None:
        reach = max(ctx.config.area_radius_m, max(c.site_radius_m
                                                  for c in ctx.config.categories))
        pairs = await uow.sites.nearest(lat, lon, limit=50, within_m=reach)
        for near_site, dist in pairs:
            near.append((near_site.unit_id, dist))
            if near_site.site_type in ctx.config.area_site_types:
                areas.append((_chain(units, near_site.unit_id), dist))
    fallback = by_code.get(ctx.config.fallback_unit)
    if fallback is None:
        # The office must exist; a city without it has no one to send reports to.
        roots = [u.id for u in units.values() if u.parent_id is None]
        if not roots:
            raise DomainError("reports.no_units")
        fallback = roots[0]
    decision = dom.route(cat, Place(site_unit, tuple(near), tuple(areas)),
                         units_by_code=by_code, has_group=with_group.__contains__,
                         fallback_unit=fallback, area_radius_m=ctx.config.area_radius_m)
    return units[decision.unit_id]


async def where(ctx: ReportContext, uow: UnitOfWork, report: Report) -> Site | None:
    """The known site the report is at: picked from a list, named in the typed address, or
    within at_site_radius_m of the shared location."""
    if report.site_id is not None:
        return await uow.sites.get(report.site_id)
    if report.latitude is not None and report.longitude is not None:
        pairs = await uow.sites.nearest(
            report.latitude, report.longitude, limit=1, within_m=ctx.config.at_site_radius_m)
        return pairs[0][0] if pairs else None
    if report.address:
        named = dom.named_site(report.address, await uow.sites.names())
        return await uow.sites.get(named) if named is not None else None
    return None


async def reroute(
    ctx: ReportContext, uow: UnitOfWork, actor: Person, report_ref: int | str, unit_ref: int | str,
    now: datetime,
) -> tuple[Report, Unit, Unit | None]:
    """An admin sends the report to another unit: its group gets the post anew."""
    report = await queries.by_ref(uow, report_ref)
    report = await decisions.decidable(uow, actor, report.id, admin_only=True)
    if report.status != dom.SUBMITTED:
        raise StaleAction("reports.already_decided", ticket=report.ticket or "")
    unit = (await uow.people.unit(unit_ref) if isinstance(unit_ref, int)
            else await find_one_unit(uow, unit_ref))
    if unit is None:
        raise StaleAction("error.stale_button")
    if not await uow.people.active_groups_of_unit(unit.id):
        raise DomainError("reports.unit_has_no_group", unit=unit.name_zh)
    old = await uow.people.unit(report.unit_id) if report.unit_id else None
    if old is not None and old.id == unit.id:
        return report, unit, old
    # Guarded like a decision: a report accepted meanwhile is not posted anew elsewhere.
    if not await uow.reports.change_submitted(report, unit_id=unit.id, updated_at=now):
        raise await decisions.decided_by(uow, report)
    await submitting.post_to_groups(ctx, uow, report, unit,
                                    "report_reroute", int(now.timestamp()))
    return report, unit, old


async def reroute_choices(
    ctx: ReportContext, uow: UnitOfWork, actor: Person, report_id: int
) -> tuple[Report, list[Unit]]:
    report = await decisions.decidable(uow, actor, report_id, admin_only=True)
    with_group = {g.unit_id for g in await uow.people.active_groups()}
    units = await uow.people.units()
    return report, [units[uid] for uid in sorted(with_group)
                    if uid in units and uid != report.unit_id]


def _chain(units: dict[int, Unit], unit_id: int) -> tuple[int, ...]:
    """The unit and its ancestors, nearest first (a cycle-safe walk up the tree)."""
    out: list[int] = []
    current: int | None = unit_id
    while current is not None and current in units and current not in out:
        out.append(current)
        current = units[current].parent_id
    return tuple(out)
