"""Scoring: weighted percentages, na and unanswered left out, static/dynamic split."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from bot.domain.scoring import Score, compute_score
from bot.domain.standards import (
    Indicator,
    Item,
    Standard,
    Text,
    Verdict,
    load_standard,
)

C, B, N, NA = Verdict.COMPLIANT, Verdict.BASIC, Verdict.NONCOMPLIANT, Verdict.NA
ALL = (C, B, N, NA)
STANDARDS = Path(__file__).resolve().parents[2] / "standards"


def item(key: str, indicator: Indicator, weight: float = 1.0) -> Item:
    return Item(
        key=key,
        number=key,
        text=Text(zh=f"第{key}项", en=f"Item {key}"),
        parent_text=None,
        indicator=indicator,
        verdicts=ALL,
        rules={},
        hints=(),
        photo_on_fail=indicator is Indicator.DYNAMIC,
        weight=weight,
        deadline_days=7,
    )


def standard(*items: Item, scoring: Mapping[Verdict, float] | None = None) -> Standard:
    return Standard(
        id="demo",
        name=Text(zh="示例", en="Demo"),
        source=Text(zh="示例", en="Demo"),
        source_lines="",
        scoring=scoring or {C: 100, B: 60, N: 0},
        items=items,
    )


S, D = Indicator.STATIC, Indicator.DYNAMIC
DEMO = standard(item("1", S), item("2", S), item("3", D, weight=3), item("4", D))


def test_all_compliant_is_100() -> None:
    score = compute_score(DEMO, {"1": C, "2": C, "3": C, "4": C})
    assert (score.overall, score.static, score.dynamic) == (100.0, 100.0, 100.0)
    assert score.counts == {C: 4, B: 0, N: 0, NA: 0}
    assert score.unanswered == 0


def test_weights_and_the_static_dynamic_split() -> None:
    # static: 1 and 2 at weight 1 -> (100 + 60) / 2 = 80
    # dynamic: 3 at weight 3 fails, 4 at weight 1 passes -> (0*3 + 100) / 4 = 25
    # overall: (100 + 60 + 0*3 + 100) / (1 + 1 + 3 + 1) = 260 / 6
    score = compute_score(DEMO, {"1": C, "2": B, "3": N, "4": C})
    assert score.static == 80.0
    assert score.dynamic == 25.0
    assert score.overall == pytest.approx(260 / 6)
    assert score.counts == {C: 2, B: 1, N: 1, NA: 0}


def test_na_and_unanswered_are_left_out() -> None:
    score = compute_score(DEMO, {"1": C, "2": NA, "3": NA})
    assert score.static == 100.0  # 2 is na: only 1 counts
    assert score.dynamic is None  # 3 is na and 4 unanswered: nothing to judge
    assert score.overall == 100.0
    assert score.counts[NA] == 2 and score.unanswered == 1


def test_nothing_scorable_is_none_not_zero() -> None:
    assert compute_score(DEMO, {}) == Score(
        overall=None,
        static=None,
        dynamic=None,
        counts={C: 0, B: 0, N: 0, NA: 0},
        unanswered=4,
    )
    only_na = compute_score(DEMO, dict.fromkeys("1234", NA))
    assert (only_na.overall, only_na.static, only_na.dynamic) == (None, None, None)


def test_the_standards_own_scoring_values_are_used() -> None:
    strict = standard(item("1", S), item("2", D), scoring={C: 100, B: 50, N: 10})
    score = compute_score(strict, {"1": B, "2": N})
    assert (score.static, score.dynamic, score.overall) == (50.0, 10.0, 30.0)


def test_sub_items_share_their_headings_weight_exactly() -> None:
    community = load_standard(STANDARDS / "community.yaml")
    all_compliant = compute_score(community, {i.key: C for i in community.items})
    # Seven weights of 1/7 each: exact arithmetic keeps this at 100, not 99.99999999999999.
    assert all_compliant.overall == 100.0 and all_compliant.static == 100.0
    # Failing one of the seven sub-items of item 12 costs 1/7 of one item out of 12.
    answers = {i.key: C for i in community.items} | {"12.1": N}
    assert compute_score(community, answers).overall == pytest.approx(100 - 100 / 7 / 12)


def test_plain_strings_are_accepted() -> None:
    assert compute_score(DEMO, {"1": "compliant", "2": "noncompliant"}).static == 50.0


def test_answers_from_another_version_are_refused() -> None:
    with pytest.raises(ValueError, match="no item '9'"):
        compute_score(DEMO, {"9": C})
    station = load_standard(STANDARDS / "cultural_station.yaml")
    with pytest.raises(ValueError, match="does not offer basic"):
        compute_score(station, {"2": B})  # item 2 knows only 符合 / 不符合
    with pytest.raises(ValueError):
        compute_score(DEMO, {"1": "maybe"})


def test_scores_stay_within_0_and_100() -> None:
    community = load_standard(STANDARDS / "community.yaml")
    for verdict in (C, B, N):
        score = compute_score(
            community, {i.key: verdict for i in community.items if i.key != "12.6"}
        )
        assert score.overall is not None and 0.0 <= score.overall <= 100.0
        assert score.overall == {C: 100.0, B: 60.0, N: 0.0}[verdict]
