"""The assessment's words: the formula ("综合 = 督查 50% + 国测 20% …"), the answer to an
import (rows imported, or the problems by row and column), the annual table, and the lines the
weekly bulletin adds (combined assessment, special actions). Catalogue: locales/*/assessment.yaml.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bot.domain.assessment import COMPONENTS, Combined, ReplacedPeriod, RowProblem
from bot.domain.special_actions import ActionWeek
from bot.render.i18n import t

# An answer lists at most this many problems (a wrong column makes every row wrong).
MAX_PROBLEMS = 20


def plain(text: str) -> str:
    """A message's text without its HTML (for a terminal)."""
    return html.unescape(re.sub(r"</?[a-z]+>", "", text))


def component(lang: str, name: str) -> str:
    return t(lang, f"assessment.component.{name}")


def formula(lang: str, weights: Mapping[str, float],
            periods: Mapping[str, Sequence[str]] | None = None) -> str:
    """'考评 = 督查 50% + 国测 20% + 省测 15% + 市测 15%' (the configured weights, normalised);
    with `periods`, each external test names the periods its figures come from ('国测 20%
    (2026)', '市测 15% (2026-Q3)'), so a weekly total says which tests it folds in."""
    total = sum(w for w in weights.values() if w > 0)
    parts = []
    for c in COMPONENTS:
        if weights.get(c, 0) <= 0 or total <= 0:
            continue
        part = t(lang, "assessment.formula_part", name=component(lang, c),
                 weight=f"{weights[c] / total * 100:.0f}")
        if periods and periods.get(c):
            part = t(lang, "assessment.formula_period", part=part,
                     periods=t(lang, "assessment.period_sep").join(periods[c]))
        parts.append(part)
    return t(lang, "assessment.formula", parts=" + ".join(parts))


def score(lang: str, value: float | None) -> str:
    return t(lang, "assessment.na") if value is None else f"{value:.1f}"


def made_of(lang: str, combined: Combined) -> str:
    """How one unit's total was made: '督查 90.0×50% + 国测 80.0×50%'."""
    return " + ".join(t(lang, "assessment.made_of_part", name=component(lang, c),
                        score=f"{s:.1f}", weight=f"{w * 100:.0f}")
                      for c, s, w in combined.parts)


def problem_line(lang: str, p: RowProblem) -> str:
    text = t(lang, f"assessment.problem.{p.code}", value=p.value,
             column=t(lang, f"assessment.column.{p.column}") if p.column else "")
    if p.row == 0:
        return text
    return t(lang, "assessment.problem_at", row=p.row,
             column=t(lang, f"assessment.column.{p.column}"), problem=text)


def import_answer(lang: str, imported: int, periods: Sequence[tuple[str, str]],
                  problems: Sequence[RowProblem],
                  replaced: Sequence[ReplacedPeriod] = ()) -> str:
    """The answer to an import: how many scores of which periods, and what each period held
    before that is now gone (an import replaces its periods whole); or the problems."""
    if problems:
        lines = [t(lang, "assessment.import.refused", count=len(problems))]
        lines += ["• " + problem_line(lang, p) for p in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            lines.append(t(lang, "assessment.import.more", count=len(problems) - MAX_PROBLEMS))
        lines.append(t(lang, "assessment.import.layout"))
        return "\n".join(lines)
    lines = [t(lang, "assessment.import.done", count=imported,
               periods=t(lang, "list_separator").join(f"{component(lang, level)} {period}"
                                                      for level, period in periods))]
    for r in replaced:
        name = f"{component(lang, r.level)} {r.period}"
        lines.append(t(lang, "assessment.import.replaced_dropped", period=name,
                       count=r.removed, dropped=r.dropped_units) if r.dropped_units
                     else t(lang, "assessment.import.replaced", period=name, count=r.removed))
    return "\n".join(lines)


@dataclass(frozen=True)
class UnitAssessment:
    unit_id: int
    name: str
    combined: Combined


@dataclass(frozen=True)
class AssessmentBlock:
    """What the bulletin adds about the assessment: the weights and each unit's total."""

    weights: Mapping[str, float]
    units: tuple[UnitAssessment, ...]  # best first; units with no figure left out
    # The weekly assessment's external periods by level (the newest begun by the week's end).
    periods: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def of(self, unit_id: int) -> Combined | None:
        return next((u.combined for u in self.units if u.unit_id == unit_id), None)


@dataclass(frozen=True)
class ActionLine:
    week: ActionWeek
    lead: str       # the lead unit's name
    lagging: bool
    unit_ids: frozenset[int] = frozenset()  # the lead's and responsible units' ids


def annual_table(lang: str, year: int, block: AssessmentBlock) -> str:
    """/assessment YEAR: every unit's annual assessment, best first, and how it was made."""
    lines = [t(lang, "assessment.annual.title", year=year), formula(lang, block.weights), ""]
    if not block.units:
        lines.append(t(lang, "assessment.annual.none"))
    for rank, u in enumerate(block.units, start=1):
        lines.append(t(lang, "assessment.annual.row", rank=rank, unit=u.name,
                       total=score(lang, u.combined.total)))
        lines.append("   " + made_of(lang, u.combined))
    return "\n".join(lines)


def bulletin_lines(lang: str, block: AssessmentBlock | None,
                   actions: Sequence[ActionLine], *, max_units: int = 3,
                   max_lagging: int = 4) -> list[str]:
    """The caption's assessment lines: the formula, the leaders by combined assessment
    beside their supervision score, and the special actions (lagging ones with their lead,
    at most `max_lagging` of them: a caption holds 1,024 characters)."""
    lines: list[str] = []
    if block is not None and block.units:
        lines.append(formula(lang, block.weights, block.periods))
        for u in block.units[:max_units]:
            # How the total was made, with the weights as renormalised for this unit: a
            # supervision score left out (too few inspections in the week) shows by its
            # absence and is said, rather than as a bare "督查 —".
            key = ("assessment.bulletin.unit" if u.combined.part("supervision") is not None
                   else "assessment.bulletin.unit_without_supervision")
            lines.append("• " + t(lang, key, unit=u.name, total=score(lang, u.combined.total),
                                  made_of=made_of(lang, u.combined)))
    if actions:
        found = sum(a.week.found for a in actions)
        closed = sum(a.week.closed for a in actions)
        overdue = sum(a.week.overdue for a in actions)
        lines.append(t(lang, "assessment.actions.summary", count=len(actions), found=found,
                       closed=closed, overdue=overdue))
        behind = sorted((a for a in actions if a.lagging),
                        key=lambda a: -(a.week.overdue_share or 0))
        for a in behind[:max_lagging]:
            w = a.week
            lines.append("• " + t(lang, "assessment.actions.lagging",
                                  action=w.action.name(lang), lead=a.lead,
                                  overdue=w.overdue, open=w.open))
        if len(behind) > max_lagging:
            lines.append(t(lang, "assessment.actions.more", count=len(behind) - max_lagging))
    return lines
