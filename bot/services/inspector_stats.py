"""Inspectors' own figures for admins: `/stats` (handlers/stats.py) and the daily digest.

Done against plan: given the bot's time zone, each inspector's supervision-plan occurrences
in the period's local days (uow.plans.per_inspector: done, assigned) are counted beside the
inspections, and an inspector with rounds assigned and nothing done is listed too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from bot.domain.inspector_stats import InspectorFigures, figures
from bot.render.i18n import t
from db.uow import UnitOfWork

# A later inspection of the same site and item within this many days is the re-check that
# may disagree with an inspector's "passed".
RECHECK_DAYS = 14
STATS_DAYS, MAX_STATS_DAYS = 7, 90


async def inspector_figures(uow: UnitOfWork, start: dt.datetime, end: dt.datetime, *,
                            recheck_days: int = RECHECK_DAYS,
                            planned: Mapping[int, tuple[int, int]] | None = None,
                            tz: ZoneInfo | None = None,
                            ) -> tuple[list[InspectorFigures], dict[int, str]]:
    """Every inspector with an inspection submitted in [start, end), or (given `tz`) with
    plan occurrences on its local days, and their names."""
    if planned is None and tz is not None:
        planned = await uow.plans.per_inspector(
            start.astimezone(tz).date(),
            (end - dt.timedelta(microseconds=1)).astimezone(tz).date())
    repo = uow.inspector_stats
    rows = await repo.answers(start, end + dt.timedelta(days=recheck_days))
    found = figures([r for r in rows if r.submitted_at < end], rows, recheck_days, planned)
    return found, await repo.names(f.inspector_id for f in found)


def figure_lines(lang: str, found: list[InspectorFigures], names: Mapping[int, str],
                 limit: int | None = None) -> list[str]:
    lines = []
    for f in found[:limit]:
        if f.planned is not None and f.planned[1]:  # rounds were assigned to them
            done = t(lang, "draw.stats.done_of_plan", done=f.inspections,
                     plan_done=f.planned[0], planned=f.planned[1])
        else:
            done = t(lang, "draw.stats.done", done=f.inspections)
        seconds = ("—" if f.median_item_seconds is None
                   else t(lang, "draw.stats.seconds", seconds=f"{f.median_item_seconds:.0f}"))
        failed = "—" if f.failed_share is None else f"{100 * f.failed_share:.0f}%"
        lines.append(t(lang, "draw.stats.row", name=names.get(f.inspector_id, f.inspector_id),
                       done=done, seconds=seconds, failed=failed, disagreed=f.disagreed,
                       rechecked=f.rechecked))
    return lines


async def stats_text(uow: UnitOfWork, lang: str, now: dt.datetime, days: int = STATS_DAYS,
                     *, planned: Mapping[int, tuple[int, int]] | None = None,
                     tz: ZoneInfo | None = None) -> str:
    """/stats: the last `days` days up to now."""
    found, names = await inspector_figures(uow, now - dt.timedelta(days=days), now,
                                           planned=planned, tz=tz)
    lines = [t(lang, "draw.stats.title", days=days, recheck_days=RECHECK_DAYS)]
    lines += figure_lines(lang, found, names) or [t(lang, "draw.stats.none")]
    return "\n".join(lines)
