"""The weekly bulletin's words: its view model, the caption sent with the picture, and the
figures and lines the picture shows (catalogue text; `bot.media.bulletin` draws the picture).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from bot.domain.ranking import Ranking
from bot.render.assessment import ActionLine, AssessmentBlock, bulletin_lines
from bot.render.dates import format_date
from bot.render.i18n import Html, t

CAPTION_LIMIT = 1024


@dataclass(frozen=True)
class PhaseInfo:
    name: str
    days_left: int


@dataclass(frozen=True)
class BulletinView:
    lang: str
    week: str          # 2026-W48
    first: dt.date     # Monday
    last: dt.date      # Sunday
    audience: str      # the group's unit, shown under the title
    phase: PhaseInfo | None
    ranking: Ranking
    min_inspections: int
    # The combined assessment (考评) and the special actions' week (bot/render/assessment.py).
    assessment: AssessmentBlock | None = None
    actions: tuple[ActionLine, ...] = ()
    # Supervision plans (issue 14): per unit id, (rounds done on their day, rounds due).
    plans: dict[int, tuple[int, int]] = field(default_factory=dict)
    # The campaign office's group: its caption points to /actions (the battle map).
    office: bool = False

    @property
    def year_and_number(self) -> tuple[int, int]:
        year, number = self.week.split("-W")
        return int(year), int(number)


def num(lang: str, value: float | None) -> str:
    return t(lang, "scheduler.bulletin.na") if value is None else f"{value:.1f}"


def pct(lang: str, value: float | None) -> str:
    return t(lang, "scheduler.bulletin.na") if value is None else f"{value * 100:.0f}%"


def caption(view: BulletinView, *, max_named: int = 8) -> str:
    """The short text sent with the picture: title, phase, the leader, the units named."""
    lang = view.lang
    year, number = view.year_and_number
    lines = [t(lang, "scheduler.bulletin.caption_title", year=year, week=number,
               first=format_date(lang, view.first), last=format_date(lang, view.last))]
    lines.append(phase_line(view))
    ranked, unranked = view.ranking.ranked, view.ranking.unranked
    if not ranked and not unranked:
        lines.append(t(lang, "scheduler.bulletin.no_units"))
        return "\n".join(lines)
    if ranked:
        top = ranked[0].figures
        lines.append(t(lang, "scheduler.bulletin.ranked_count", count=len(ranked),
                       unit=top.name, score=num(lang, top.score)))
    else:
        lines.append(t(lang, "scheduler.bulletin.none_ranked"))
    named = view.ranking.laggards
    if named:
        lines.append(t(lang, "scheduler.bulletin.laggards"))
        for lag in named[:max_named]:
            f = lag.figures
            if lag.low_rank and lag.escalated:
                text = t(lang, "scheduler.bulletin.laggard_both", unit=f.name, rank=lag.rank,
                         score=num(lang, f.score), count=lag.escalated)
            elif lag.low_rank:
                text = t(lang, "scheduler.bulletin.laggard_rank", unit=f.name, rank=lag.rank,
                         score=num(lang, f.score))
            else:
                text = t(lang, "scheduler.bulletin.laggard_escalated", unit=f.name,
                         count=lag.escalated)
            lines.append("• " + text)
        if len(named) > max_named:
            lines.append(t(lang, "scheduler.bulletin.more", count=len(named) - max_named))
    if unranked:
        lines.append(t(lang, "scheduler.bulletin.unranked_note", min=view.min_inspections,
                       count=len(unranked)))
    lines += bulletin_lines(lang, view.assessment, view.actions,
                            max_units=min(3, max_named), max_lagging=max_named // 2)
    if view.office and view.actions:
        lines.append(t(lang, "assessment.map.bulletin_hint"))
    text = "\n".join(lines)
    completion = plans_line(view, CAPTION_LIMIT - len(text) - 1)
    if completion is None and max_named > 0:  # no room for a single unit: name fewer
        return caption(view, max_named=max_named - 2 if max_named > 2 else 0)
    if completion:
        text += "\n" + completion
    if len(text) > CAPTION_LIMIT and max_named > 0:
        return caption(view, max_named=max_named - 2 if max_named > 2 else 0)
    return text


def plan_tag(view: BulletinView, unit_id: int) -> str:
    """A unit's plan rounds done on time / due this week ("" when none were due)."""
    done, due = view.plans.get(unit_id, (0, 0))
    return t(view.lang, "plans.bulletin.completion_row", unit="", done=done, due=due).strip() \
        if due else ""


def plans_line(view: BulletinView, budget: int | None = None) -> str | None:
    """The caption's line on plan completion: every unit with rounds due, weakest first (the
    share done, then the most due), as many as fit in `budget` characters with "and N more"
    for the rest. "" when no round was due; None when not even one unit fits."""
    names = {r.figures.unit_id: r.figures.name
             for r in (*view.ranking.ranked, *view.ranking.unranked)}
    rows = sorted(((names[u], done, due) for u, (done, due) in view.plans.items()
                   if due and u in names), key=lambda r: (r[1] / r[2], -r[2], r[0]))
    if not rows:
        return ""
    parts = [t(view.lang, "plans.bulletin.completion_row", unit=unit, done=done, due=due)
             for unit, done, due in rows]
    for shown in range(len(parts), 0, -1):
        listed = t(view.lang, "plans.bulletin.separator").join(parts[:shown])
        if shown < len(parts):
            listed += t(view.lang, "plans.bulletin.more", count=len(parts) - shown)
        line = t(view.lang, "plans.bulletin.completion", rows=Html(listed))
        if budget is None or len(line) <= budget:
            return line
    return None


def phase_line(view: BulletinView) -> str:
    if view.phase is None:
        return t(view.lang, "scheduler.bulletin.no_phase")
    return t(view.lang, "scheduler.bulletin.phase", phase=view.phase.name,
             days=view.phase.days_left)
