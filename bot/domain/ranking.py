"""The weekly ranking (一周一排名): pure logic over per-unit figures.

Inputs are each unit's figures for the week and for the week before; outputs are the ranked
rows with their change since last week, the units listed apart because they had too few
inspections to be ranked fairly, and the laggards a bulletin names.

Units are ranked by their average inspection score for the week (every inspection counts once,
whatever its site type), ties broken by the share of tasks closed on time, then by the smaller
overdue backlog. Equal keys share a rank (1, 2, 2, 4).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class UnitFigures:
    """One unit's week. Scores are 0..100 averages over the week's submitted inspections."""

    unit_id: int
    name: str
    inspections: int = 0
    score: float | None = None
    static: float | None = None
    dynamic: float | None = None
    tasks_due: int = 0        # tasks whose deadline fell in the week
    closed_on_time: int = 0   # of those, closed by their deadline
    overdue: int = 0          # open past their deadline at the end of the week
    closed: int = 0           # tasks closed in the week
    reworked: int = 0         # of those, reopened at least once (返工)
    reports: int = 0          # residents' reports received in the week
    escalated: int = 0        # open tasks that reached the campaign office

    @property
    def on_time_rate(self) -> float | None:
        return self.closed_on_time / self.tasks_due if self.tasks_due else None

    @property
    def rework_rate(self) -> float | None:
        return self.reworked / self.closed if self.closed else None


@dataclass(frozen=True)
class RankedRow:
    figures: UnitFigures
    rank: int | None                 # None: too few inspections to rank
    rank_change: int | None = None   # places gained since last week (negative: lost)
    score_change: float | None = None


@dataclass(frozen=True)
class Laggard:
    figures: UnitFigures
    rank: int | None
    low_rank: bool    # among the lowest-ranked
    escalated: int    # open tasks that went up to the campaign office


@dataclass(frozen=True)
class Ranking:
    ranked: tuple[RankedRow, ...]
    unranked: tuple[RankedRow, ...]
    laggards: tuple[Laggard, ...] = field(default=())


def _key(f: UnitFigures) -> tuple[float, float, int]:
    score = round(f.score, 1) if f.score is not None else -1.0
    on_time = round(f.on_time_rate, 3) if f.on_time_rate is not None else -1.0
    return (-score, -on_time, f.overdue)


def _ranks(figures: Iterable[UnitFigures], min_inspections: int) -> dict[int, int]:
    eligible = sorted(
        (f for f in figures if f.inspections >= max(1, min_inspections) and f.score is not None),
        key=lambda f: (_key(f), f.name, f.unit_id),
    )
    ranks: dict[int, int] = {}
    previous_key: tuple[float, float, int] | None = None
    rank = 0
    for position, f in enumerate(eligible, start=1):
        key = _key(f)
        if key != previous_key:
            rank, previous_key = position, key
        ranks[f.unit_id] = rank
    return ranks


def laggard_count(ranked: int, wanted: int) -> int:
    """How many of the lowest-ranked to name: `wanted`, but never more than a third of the
    ranked units (naming 3 of 4 units is no ranking at all)."""
    return max(0, min(wanted, ranked // 3))


def rank_units(
    current: Sequence[UnitFigures],
    previous: Sequence[UnitFigures] = (),
    *,
    min_inspections: int = 1,
    laggards: int = 3,
) -> Ranking:
    """Rank this week's units, compare with last week, and pick the laggards to name."""
    ranks = _ranks(current, min_inspections)
    before = {f.unit_id: f for f in previous}
    before_ranks = _ranks(previous, min_inspections)
    ranked: list[RankedRow] = []
    unranked: list[RankedRow] = []
    for f in current:
        old = before.get(f.unit_id)
        score_change = (
            round(f.score - old.score, 1)
            if old is not None and f.score is not None and old.score is not None else None
        )
        rank = ranks.get(f.unit_id)
        old_rank = before_ranks.get(f.unit_id)
        change = old_rank - rank if rank is not None and old_rank is not None else None
        row = RankedRow(f, rank, change, score_change)
        (ranked if rank is not None else unranked).append(row)
    ranked.sort(key=lambda r: (r.rank or 0, r.figures.name, r.figures.unit_id))
    unranked.sort(key=lambda r: (-r.figures.inspections, r.figures.name, r.figures.unit_id))

    bottom = laggard_count(len(ranked), laggards)
    low = {r.figures.unit_id for r in ranked[len(ranked) - bottom:]} if bottom else set()
    named: list[Laggard] = []
    for row in [*reversed(ranked), *unranked]:
        f = row.figures
        if f.unit_id in low or f.escalated:
            named.append(Laggard(f, row.rank, f.unit_id in low, f.escalated))
    return Ranking(tuple(ranked), tuple(unranked), tuple(named))
