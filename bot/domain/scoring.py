"""Scoring an inspection's answers against its standard. Pure: no I/O, no Telegram, no database."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from bot.domain.standards import Indicator, Item, Standard, Verdict

__all__ = ["Score", "compute_score"]


@dataclass(frozen=True)
class Score:
    """Weighted percentages 0..100, or None when nothing in that part could be scored."""

    overall: float | None
    static: float | None  # 静态指标 only
    dynamic: float | None  # 动态指标 only
    counts: Mapping[Verdict, int]  # every Verdict is a key, zero when unused
    # Not a verdict, but a bulletin needs it ("9 of 12 answered") and it cannot be derived from
    # counts without the standard.
    unanswered: int = 0


def compute_score(standard: Standard, answers: Mapping[str, Verdict | str]) -> Score:
    """Score answers (item key -> verdict; a missing key is unanswered) against a standard.

    For a set S of leaf steps (all of them, the static ones, or the dynamic ones)::

        score(S) = Σ w_i · v(a_i) / Σ w_i      over the i in S whose answer a_i is scored

    where ``w_i`` is the step's weight and ``v`` the standard's ``scoring`` value of the verdict
    (by default compliant 100, basic 60, noncompliant 0). ``na`` and unanswered steps are left
    out of both sums, so they neither help nor hurt; when no step of S is scored the result is
    None (not 0: "nothing to judge" must not read as "failed everything").

    The arithmetic is exact (fractions) and converted to float once at the end: sub-items
    weigh 1/7 or 1/4 of a heading, and summing such floats could put an all-compliant
    inspection at 99.99999999999999 or 100.00000000000001. Rounding for display is the
    caller's business.

    Raises ValueError for a key the standard does not have, or a verdict the step does not
    offer: both mean the answers belong to another version of the standard.
    """
    counts = dict.fromkeys(Verdict, 0)
    resolved: dict[str, Verdict] = {}
    for key, raw in answers.items():
        try:
            item = standard.item(key)
        except KeyError:
            raise ValueError(
                f"no item {key!r} in standard {standard.id} ({standard.content_hash[:12]})"
            ) from None
        verdict = Verdict(raw)
        if verdict not in item.verdicts:
            raise ValueError(f"item {item.number} of {standard.id} does not offer {verdict}")
        resolved[key] = verdict
        counts[verdict] += 1

    def part(items: Iterable[Item]) -> float | None:
        total = Fraction(0)
        weights = Fraction(0)
        for item in items:
            verdict = resolved.get(item.key)
            if verdict is None or verdict is Verdict.NA:
                continue
            weight = Fraction(item.weight)
            total += weight * Fraction(standard.scoring[verdict])
            weights += weight
        return None if weights == 0 else float(total / weights)

    return Score(
        overall=part(standard.items),
        static=part(i for i in standard.items if i.indicator is Indicator.STATIC),
        dynamic=part(i for i in standard.items if i.indicator is Indicator.DYNAMIC),
        counts=counts,
        unanswered=len(standard.items) - len(resolved),
    )
