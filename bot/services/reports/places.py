"""Where a report is: the site or area routing finds there, and the far-away check."""

from __future__ import annotations

from bot.services.reports.context import ReportContext
from db.models import Report, Site
from db.uow import UnitOfWork


async def landmark(ctx: ReportContext, uow: UnitOfWork, report: Report) -> Site | None:
    """What routing finds at a shared location, to name it: the nearest site within the
    category's site radius (or at_site_radius_m), else the community or sub-district site
    whose area holds it."""
    if report.latitude is None or report.longitude is None:
        return None
    cat = ctx.category(report)
    at_site = max(ctx.config.at_site_radius_m, cat.site_radius_m if cat else 0.0)
    reach = max(ctx.config.area_radius_m, at_site)
    pairs = await uow.sites.nearest(
        report.latitude, report.longitude, limit=50, within_m=reach)
    for site, dist in pairs:
        if dist <= at_site:
            return site
    for site, dist in pairs:
        if site.site_type in ctx.config.area_site_types and (
                dist <= ctx.config.area_radius_m):
            return site
    return None


async def outside(ctx: ReportContext, uow: UnitOfWork, lat: float, lon: float) -> bool:
    """Whether a point is farther than outside_radius_m from every known site (a city with
    no sites yet warns nobody)."""
    repo = uow.sites
    if await repo.nearest(lat, lon, limit=1, within_m=ctx.config.outside_radius_m):
        return False
    return await repo.any_located()
