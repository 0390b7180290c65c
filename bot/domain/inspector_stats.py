"""Inspectors' own figures (督查员工作量与质量), for admins: pure arithmetic over plain rows.

Per inspector, over a period:

* inspections done (submitted in the period);
* done against plan: the planned occurrences come from the supervision plans (issue 14,
  another branch); `planned` stays None until the integrator passes them in (see
  `InspectorFigures.planned` and bot/services/inspector_stats.py's `planned` argument);
* median time per item: the gaps between consecutive answers' answered_at within one
  inspection (the first item is timed from the inspection's start);
* share of items failed: noncompliant answers / answers with a verdict other than na;
* re-checks that disagreed: of the items the inspector passed (compliant or basic) that another
  inspector inspected again at the same site within `recheck_days`, how many were then failed.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PASSED = ("compliant", "basic")
FAILED = "noncompliant"
NA = "na"


@dataclass(frozen=True)
class AnswerRow:
    inspection_id: int
    inspector_id: int
    site_id: int
    started_at: dt.datetime
    submitted_at: dt.datetime
    item_key: str
    verdict: str | None
    answered_at: dt.datetime


@dataclass(frozen=True)
class InspectorFigures:
    inspector_id: int
    inspections: int
    median_item_seconds: float | None
    items: int  # answers with a verdict other than na
    failed: int
    rechecked: int  # passed items inspected again by someone else within the window
    disagreed: int  # of those, failed by the later inspection
    # Their supervision-plan occurrences in the period (rounds, spot checks, re-checks):
    # (done, on time or late; assigned). None: no plans to count against.
    planned: tuple[int, int] | None = None

    @property
    def failed_share(self) -> float | None:
        return self.failed / self.items if self.items else None

    @property
    def disagreed_share(self) -> float | None:
        return self.disagreed / self.rechecked if self.rechecked else None


@dataclass
class _Acc:
    inspections: int = 0
    gaps: list[float] = field(default_factory=list)
    items: int = 0
    failed: int = 0
    rechecked: int = 0
    disagreed: int = 0


def figures(in_period: Iterable[AnswerRow], later: Iterable[AnswerRow], recheck_days: int,
            planned: Mapping[int, tuple[int, int]] | None = None) -> list[InspectorFigures]:
    """The figures of every inspector with an inspection in `in_period` (its rows), checked
    against `later` (rows of inspections submitted after the period's start, up to
    `recheck_days` after its end), most inspections first. An inspector with occurrences
    planned (`planned`: id -> (done, assigned)) and no inspection is listed too, at 0."""
    rows = sorted(in_period, key=lambda r: (r.inspection_id, r.answered_at, r.item_key))
    by_inspection: dict[int, list[AnswerRow]] = defaultdict(list)
    for r in rows:
        by_inspection[r.inspection_id].append(r)
    window = dt.timedelta(days=recheck_days)
    # (site, item) -> later verdicts: (submitted_at, inspector, verdict), earliest first
    again: dict[tuple[int, str], list[tuple[dt.datetime, int, str]]] = defaultdict(list)
    for r in later:
        if r.verdict in (*PASSED, FAILED):
            again[(r.site_id, r.item_key)].append((r.submitted_at, r.inspector_id, r.verdict))
    for verdicts in again.values():
        verdicts.sort()
    per: dict[int, _Acc] = defaultdict(_Acc)
    for answers in by_inspection.values():
        acc = per[answers[0].inspector_id]
        acc.inspections += 1
        previous = answers[0].started_at
        for r in answers:
            acc.gaps.append(max(0.0, (r.answered_at - previous).total_seconds()))
            previous = r.answered_at
            if r.verdict is None or r.verdict == NA:
                continue
            acc.items += 1
            if r.verdict == FAILED:
                acc.failed += 1
            elif r.verdict in PASSED:
                after = [v for at, who, v in again.get((r.site_id, r.item_key), [])
                         if who != r.inspector_id
                         and r.submitted_at < at <= r.submitted_at + window]
                if after:
                    acc.rechecked += 1
                    acc.disagreed += after[0] == FAILED
    for pid, (_done, assigned) in (planned or {}).items():
        if assigned:
            per.setdefault(pid, _Acc())  # listed with nothing done: the plan's figure counts
    out = [InspectorFigures(pid, a.inspections,
                            statistics.median(a.gaps) if a.gaps else None, a.items, a.failed,
                            a.rechecked, a.disagreed,
                            None if planned is None else planned.get(pid, (0, 0)))
           for pid, a in per.items()]
    return sorted(out, key=lambda f: (-f.inspections, f.inspector_id))
