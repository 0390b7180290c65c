"""The weekly bulletin and the daily digest: figures from the database, views for the groups.

`build_bulletins` is shared by the scheduled job and `wenming bulletin` (offline), so both
render the same thing. Reading happens in one short session; rendering happens afterwards, off
the event loop; writing (JobRun + outbox rows) is the job's own single transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from bot.domain.escalation import overdue_span
from bot.domain.periods import Week, bulletin_issue_date, day_bounds
from bot.domain.ranking import UnitFigures, rank_units
from bot.domain.schedule import ScheduleConfig
from bot.render.bulletin import BulletinView, PhaseInfo
from bot.render.dates import format_date
from bot.render.fit import fit
from bot.render.i18n import t
from bot.services.assessment import AssessmentSetup, action_weeks, weekly_assessment
from bot.services.inspector_stats import figure_lines, inspector_figures
from bot.services.plans import missed_for_digest
from db.repositories.stats import UnitTree
from db.uow import UnitOfWork


@dataclass(frozen=True)
class GroupBulletin:
    chat_id: int
    unit_id: int
    view: BulletinView


def phase_info(cfg: ScheduleConfig, day: dt.date, lang: str) -> PhaseInfo | None:
    phase = cfg.phase_on(day)
    return PhaseInfo(phase.name.get(lang), phase.days_left(day)) if phase else None


def covered_units(tree: UnitTree, unit_id: int, site_counts: dict[int, int],
                  figures: dict[int, UnitFigures]) -> list[int]:
    """The group's unit and the units below it that have something to rank: sites of their
    own, or tasks, inspections or reports this week. (Departments with no sites and nothing
    happening would only fill the "not ranked" list.)"""
    out = []
    for uid in tree.subtree(unit_id):
        f = figures.get(uid)
        active = f is not None and (f.inspections or f.tasks_due or f.overdue or f.closed
                                    or f.reports)
        if site_counts.get(uid) or active:
            out.append(uid)
    return out


async def build_bulletins(
    uow: UnitOfWork, cfg: ScheduleConfig, tz: ZoneInfo, lang: str, week_key: str,
    *, chat_ids: list[int] | None = None, sent_on: dt.date | None = None,
    assessment: AssessmentSetup | None = None,
) -> list[GroupBulletin]:
    """One bulletin view per active bound group (or per chat in `chat_ids`).

    The phase's days left count from `sent_on` (the local day it goes out; the scheduler
    passes today), by default from the day the bulletin is scheduled to be issued."""
    week = Week.of(week_key, tz)
    before = week.previous(tz)
    stats = uow.stats
    tree = await stats.unit_tree()
    names = {uid: n.name(lang) for uid, n in tree.nodes.items()}
    level = cfg.office_level()
    current = await stats.week_figures(week.start, week.end, level, names)
    previous = await stats.week_figures(before.start, before.end, level, names)
    site_counts = await stats.site_counts()
    people = uow.people
    groups = (await people.active_groups() if chat_ids is None
              else await people.groups_by_chat(chat_ids))
    issue = sent_on or bulletin_issue_date(week.key, cfg.bulletin.weekday)
    phase = phase_info(cfg, issue, lang)
    # The combined assessment and the special actions: figured once, shown per group for the
    # units it covers.
    combined = actions = None
    if assessment is not None:
        combined = await weekly_assessment(uow, assessment.config, week, names, current,
                                           cfg.bulletin.min_inspections)
        actions = await action_weeks(uow, assessment, tree, week, tz, lang)
    completion = await uow.plans.completion_by_unit(week.first, week.last)  # plans (issue 14)
    office = tree.office(cfg.office_unit)
    out = []
    for g in groups:
        units = covered_units(tree, g.unit_id, site_counts, current)
        ranking = rank_units([current[u] for u in units], [previous[u] for u in units],
                             min_inspections=cfg.bulletin.min_inspections,
                             laggards=cfg.bulletin.laggards)
        audience = g.title or names.get(g.unit_id, "")
        unit_name = names.get(g.unit_id, "")
        if unit_name and unit_name not in audience:
            audience = f"{audience} · {unit_name}" if audience else unit_name
        view = BulletinView(lang, week.key, week.first, week.last, audience, phase, ranking,
                            cfg.bulletin.min_inspections,
                            plans={u: completion[u] for u in units if u in completion},
                            office=office is not None and g.unit_id == office.id)
        if combined is not None and actions is not None:
            mine = set(tree.subtree(g.unit_id))
            view = replace(view, assessment=replace(combined, units=tuple(
                u for u in combined.units if u.unit_id in units)),
                actions=tuple(a for a in actions if a.unit_ids & mine))
        out.append(GroupBulletin(g.chat_id, g.unit_id, view))
    return out


WEEKDAY_KEYS = ("scheduler.weekday.0", "scheduler.weekday.1", "scheduler.weekday.2",
                "scheduler.weekday.3", "scheduler.weekday.4", "scheduler.weekday.5",
                "scheduler.weekday.6")


async def office_chats(uow: UnitOfWork, office_unit: str | None) -> list[int]:
    """The campaign office's active bound groups (the digest's, the draw seeds', /actions')."""
    office = (await uow.stats.unit_tree()).office(office_unit)
    return [] if office is None else sorted(
        g.chat_id for g in await uow.people.active_groups_of_unit(office.id))


async def digest_text(
    uow: UnitOfWork, cfg: ScheduleConfig, tz: ZoneInfo, lang: str, issue: dt.date,
    now: dt.datetime, *, max_rows: int = 10, unreported_from: dt.date | None = None,
) -> str:
    """The morning digest for the office: the day before `issue` (the digest's period, the
    local day it is sent on: the scheduler sends it on no other day, so "yesterday" holds),
    and the overdue backlog as of `now`. The header's date comes from the period, never from
    `now`."""
    day = issue - dt.timedelta(days=1)
    start, end = day_bounds(day, tz)
    stats = uow.stats
    figures = await stats.day_figures(start, end)
    label = t(lang, "scheduler.digest.day", date=format_date(lang, day),
              weekday=t(lang, WEEKDAY_KEYS[day.weekday()]))
    lines = [t(lang, "scheduler.digest.title", day=label)]
    phase = phase_info(cfg, issue, lang)
    if phase is not None:
        lines.append(t(lang, "scheduler.digest.phase", phase=phase.name, days=phase.days_left))
    lines.append("")
    if figures.inspections:
        score = "—" if figures.average is None else f"{figures.average:.1f}"
        lines.append(t(lang, "scheduler.digest.inspections", count=figures.inspections,
                       score=score))
        for site, value in await stats.day_inspections(start, end, max_rows):
            lines.append(t(lang, "scheduler.digest.inspection_row", site=site,
                           score="—" if value is None else f"{value:.1f}"))
        if figures.inspections > max_rows:
            lines.append(t(lang, "scheduler.digest.inspection_more",
                           count=figures.inspections - max_rows))
    else:
        lines.append(t(lang, "scheduler.digest.inspections_none"))
    lines.append(t(lang, "scheduler.digest.new", tasks=figures.new_tasks,
                   reports=figures.new_reports))
    lines.append(t(lang, "scheduler.digest.closed", count=figures.closed))
    # Inspectors' own figures for the day, against their plan (bot/services/inspector_stats.py).
    inspectors, names = await inspector_figures(uow, start, end, tz=tz)
    if inspectors:
        lines.append(t(lang, "draw.stats.digest_title"))
        lines += figure_lines(lang, inspectors, names, limit=max_rows)
    overdue = await stats.overdue_by_unit(now)
    total = sum(n for _, n, _ in overdue)
    if total:
        tree = await stats.unit_tree()
        lines.append(t(lang, "scheduler.digest.overdue", count=total))
        for uid, n, oldest in overdue[:max_rows]:
            node = tree.nodes.get(uid)
            late, unit = overdue_span(oldest, now)
            key = ("scheduler.digest.overdue_row" if unit == "days"
                   else "scheduler.digest.overdue_row_hours")
            lines.append(t(lang, key,
                           unit=node.name(lang) if node else uid, count=n, days=late,
                           hours=late))
    else:
        lines.append(t(lang, "scheduler.digest.overdue_none"))
    # 一日一督查: rounds not done (and those of days no digest told of, see missed_for_digest).
    lines.extend(await missed_for_digest(uow, day, lang, tz, unreported_from))
    return fit("\n".join(lines))  # names (plans, people) shortened if it would pass 4,096
