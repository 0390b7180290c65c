"""The weekly ranking: order, ties, change since last week, unranked units, laggards."""

from __future__ import annotations

from bot.domain.ranking import UnitFigures, laggard_count, rank_units


def unit(uid: int, score: float | None, inspections: int = 3, **more: int) -> UnitFigures:
    return UnitFigures(uid, f"单位{uid}", inspections=inspections, score=score, **more)


def test_ranked_by_score_with_ties_sharing_a_rank() -> None:
    ranking = rank_units([unit(1, 80), unit(2, 95), unit(3, 80), unit(4, 70)])
    assert [(r.figures.unit_id, r.rank) for r in ranking.ranked] == [
        (2, 1), (1, 2), (3, 2), (4, 4)]


def test_equal_scores_are_separated_by_on_time_share_then_overdue() -> None:
    a = unit(1, 90, tasks_due=4, closed_on_time=2)
    b = unit(2, 90, tasks_due=4, closed_on_time=4)
    c = unit(3, 90, tasks_due=4, closed_on_time=4, overdue=3)
    ranking = rank_units([a, b, c])
    assert [r.figures.unit_id for r in ranking.ranked] == [2, 3, 1]
    assert [r.rank for r in ranking.ranked] == [1, 2, 3]


def test_too_few_inspections_are_listed_apart_not_ranked() -> None:
    ranking = rank_units([unit(1, 99, inspections=1), unit(2, 70), unit(3, None, 0)],
                         min_inspections=2)
    assert [r.figures.unit_id for r in ranking.ranked] == [2]
    assert [r.figures.unit_id for r in ranking.unranked] == [1, 3]
    assert all(r.rank is None for r in ranking.unranked)


def test_change_since_last_week_in_places_and_points() -> None:
    before = [unit(1, 90), unit(2, 80), unit(3, 70)]
    now = [unit(1, 75), unit(2, 85), unit(3, 72), unit(4, 99)]
    rows = {r.figures.unit_id: r for r in rank_units(now, before).ranked}
    assert rows[2].rank == 2 and rows[2].rank_change == 0
    assert rows[1].rank == 3 and rows[1].rank_change == -2 and rows[1].score_change == -15.0
    assert rows[4].rank_change is None and rows[4].score_change is None  # new this week


def test_laggards_are_the_bottom_third_at_most_plus_escalated_units() -> None:
    units = [unit(i, 100 - i) for i in range(1, 10)]
    units.append(unit(20, None, 0, escalated=2))
    units[0] = unit(1, 99, escalated=1)
    ranking = rank_units(units, laggards=3)
    named = [(lag.figures.unit_id, lag.low_rank, lag.escalated) for lag in ranking.laggards]
    assert named == [(9, True, 0), (8, True, 0), (7, True, 0), (1, False, 1), (20, False, 2)]


def test_a_small_ranking_names_nobody_for_rank_alone() -> None:
    assert laggard_count(2, 3) == 0
    assert laggard_count(4, 3) == 1
    assert laggard_count(43, 3) == 3
    assert rank_units([unit(1, 50), unit(2, 90)]).laggards == ()


def test_rates() -> None:
    f = unit(1, 80, tasks_due=4, closed_on_time=3, closed=5, reworked=1)
    assert f.on_time_rate == 0.75 and f.rework_rate == 0.2
    assert unit(2, 80).on_time_rate is None and unit(2, 80).rework_rate is None
