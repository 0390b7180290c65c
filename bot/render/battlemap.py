"""The special actions' battle map (挂图作战, `/actions`): its view model, the words the
picture shows beside each bar, and the caption that names the lagging actions and their leads
(catalogue: locales/*/assessment.yaml, `assessment.map.*`; `bot.media.battlemap` draws the
picture).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from bot.domain.special_actions import ActionState, ActionStatus, LagRule
from bot.render.bulletin import pct
from bot.render.dates import format_date
from bot.render.fit import CAPTION_LIMIT, fit, shown_length, user
from bot.render.i18n import Html, t


@dataclass(frozen=True)
class MapRow:
    state: ActionState
    lead: str  # the lead unit's name


@dataclass(frozen=True)
class BattleMapView:
    lang: str
    day: dt.date
    rows: tuple[MapRow, ...]
    rule: LagRule = field(default_factory=LagRule)

    def count(self, status: ActionStatus) -> int:
        return sum(1 for r in self.rows if r.state.status is status)

    @property
    def lagging(self) -> list[MapRow]:
        """The lagging actions, furthest behind first: the most overdue share of open
        problems, then the widest gap between time gone by and share closed."""
        def behind(row: MapRow) -> tuple[float, float, str]:
            s, f = row.state, row.state.figures
            overdue = f.overdue / f.open if f.open else 0.0
            gap = s.elapsed - (s.closed_share if s.closed_share is not None else 1.0)
            return -overdue, -gap, s.action.code
        return sorted((r for r in self.rows if r.state.status is ActionStatus.LAGGING),
                      key=behind)


def status_label(lang: str, status: ActionStatus) -> str:
    return t(lang, f"assessment.map.status.{status.value}")


def figures_text(lang: str, state: ActionState) -> str:
    """Beside a bar: '发现 12 · 办结 8 (67%) · 超期 3'."""
    f = state.figures
    text = t(lang, "assessment.map.figures", found=f.found, closed=f.closed,
             share=pct(lang, state.closed_share))
    if f.overdue:
        text += t(lang, "assessment.map.figures_overdue", overdue=f.overdue)
    return text


def time_text(lang: str, state: ActionState) -> str:
    """At a bar's end: the days left (倒排时序), when it starts, or its final closure rate."""
    a = state.action
    if state.status is ActionStatus.NOT_STARTED:
        return t(lang, "assessment.map.starts", date=format_date(lang, a.start))
    if state.status is ActionStatus.ENDED:
        return t(lang, "assessment.map.ended", share=pct(lang, state.closed_share))
    if state.days_left == 0:
        return t(lang, "assessment.map.last_day")
    return t(lang, "assessment.map.days_left", days=state.days_left)


def lagging_line(lang: str, row: MapRow) -> str:
    """'「停车秩序…」牵头 综合行政执法局：办结 1/6（17%），时间已过 62%；超期 3/5'."""
    s, f = row.state, row.state.figures
    reasons = []
    if s.behind_time:
        reasons.append(t(lang, "assessment.map.reason_behind", closed=f.closed, found=f.found,
                         share=pct(lang, s.closed_share), elapsed=pct(lang, s.elapsed)))
    if s.overdue_lag:
        reasons.append(t(lang, "assessment.map.reason_overdue", overdue=f.overdue,
                         open=f.open))
    return "• " + t(lang, "assessment.map.lagging", action=user(s.action.name(lang)),
                    lead=user(row.lead),
                    reasons=Html(t(lang, "assessment.map.reason_separator").join(reasons)),
                    left=Html(time_text(lang, s)))


def caption(view: BattleMapView) -> str:
    """The text sent with the picture: the day, how many actions stand where, and each
    lagging action with its lead (as many as 1,024 characters hold, then "and N more")."""
    lang = view.lang
    head = [t(lang, "assessment.map.title", date=format_date(lang, view.day)),
            t(lang, "assessment.map.summary", count=len(view.rows),
              running=view.count(ActionStatus.ON_TRACK) + view.count(ActionStatus.LAGGING),
              lagging=view.count(ActionStatus.LAGGING),
              not_started=view.count(ActionStatus.NOT_STARTED),
              ended=view.count(ActionStatus.ENDED))]
    if not view.rows:
        return "\n".join([head[0], t(lang, "assessment.map.none")])
    behind = view.lagging
    if not behind:
        head.append(t(lang, "assessment.map.none_lagging"))
        return fit("\n".join(head), CAPTION_LIMIT)
    head.append(t(lang, "assessment.map.lagging_title"))
    lines = [lagging_line(lang, r) for r in behind]
    for shown in range(len(lines), -1, -1):
        more = [t(lang, "assessment.map.more", count=len(lines) - shown)] \
            if shown < len(lines) else []
        text = "\n".join([*head, *lines[:shown], *more])
        if shown_length(text) <= CAPTION_LIMIT or shown <= 1:
            return fit(text, CAPTION_LIMIT)
    return fit("\n".join(head), CAPTION_LIMIT)
