"""The day's draw: reproducible from its seed, stratified, weighted by risk, no site twice."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from pathlib import Path

import pytest

from bot.domain.draw import (
    RECHECK,
    SPOT,
    Candidate,
    DrawParams,
    RecheckCandidate,
    RiskFeatures,
    RiskWeights,
    allocate,
    draw,
    from_snapshot,
    risk_weight,
    seed_digest,
    snapshot,
)
from bot.domain.draws_config import DrawConfigError, parse_draws

DAY = dt.date(2026, 12, 7)
TYPES = ("hotel", "mall", "restaurant")


def city(subdistricts: int = 4, per_type: int = 5) -> list[Candidate]:
    out = []
    n = 0
    for s in range(subdistricts):
        for t in TYPES:
            for _ in range(per_type):
                n += 1
                out.append(Candidate(n, f"site{n:04d}", f"sub{s}", t, 1.0 + n % 3))
    return out


def closed_tasks(sites: list[Candidate], count: int) -> list[RecheckCandidate]:
    return [RecheckCandidate(1000 + i, c.site_id, c.code, c.subdistrict, c.site_type)
            for i, c in enumerate(sites[:count])]


def seed(i: int) -> bytes:
    return i.to_bytes(32, "big")


def test_the_same_seed_and_candidates_give_the_same_sites_in_any_order() -> None:
    sites, closed = city(), closed_tasks(city(), 10)
    first = draw(seed(1), DAY, sites, closed, DrawParams(3, 0.3))
    shuffled, shuffled_closed = sites[:], closed[:]
    for i in range(20):
        random.Random(i).shuffle(shuffled)
        random.Random(i).shuffle(shuffled_closed)
        assert draw(seed(1), DAY, shuffled, shuffled_closed, DrawParams(3, 0.3)) == first
    # Another seed, or another day, draws otherwise.
    assert draw(seed(2), DAY, sites, closed, DrawParams(3, 0.3)) != first
    assert draw(seed(1), DAY + dt.timedelta(days=1), sites, closed,
                DrawParams(3, 0.3)) != first


def test_n_per_subdistrict_shared_among_site_types_and_no_site_twice() -> None:
    sites = city(subdistricts=5, per_type=4)
    for i in range(50):
        drawn = draw(seed(i), DAY, sites, [], DrawParams(3, 0))
        per_sub = Counter(d.stratum.split("/")[0] for d in drawn)
        assert per_sub == {f"sub{s}": 3 for s in range(5)}
        # 3 sites among 3 types of equal size: one of each type.
        assert Counter(d.stratum for d in drawn) == {f"sub{s}/{t}": 1 for s in range(5)
                                                      for t in TYPES}
        assert len({d.site_id for d in drawn}) == len(drawn)
        assert all(d.kind == SPOT for d in drawn)


def test_types_in_proportion_to_their_sites_and_a_small_stratum_gives_all() -> None:
    sites = [Candidate(i, f"m{i:02d}", "sub", "mall", 1.0) for i in range(6)] + \
        [Candidate(100 + i, f"h{i:02d}", "sub", "hotel", 1.0) for i in range(2)] + \
        [Candidate(200, "tiny", "small", "hotel", 1.0)]
    drawn = draw(seed(7), DAY, sites, [], DrawParams(4, 0))
    assert Counter(d.stratum for d in drawn) == {"sub/mall": 3, "sub/hotel": 1, "small/hotel": 1}


def test_ties_in_the_allocation_do_not_always_favour_the_same_type() -> None:
    sites = city(subdistricts=1, per_type=3)
    chosen: Counter[str] = Counter()
    for i in range(300):
        for d in draw(seed(i), DAY, sites, [], DrawParams(1, 0)):
            chosen[d.stratum] += 1
    assert set(chosen) == {f"sub0/{t}" for t in TYPES}
    assert min(chosen.values()) > 60


def test_allocation_never_exceeds_a_type_and_spends_all() -> None:
    assert allocate(6, {"a": 1, "b": 10}, {"a": 0.1, "b": 0.9}) == {"a": 1, "b": 5}
    assert allocate(5, {"a": 1, "b": 10}, {"a": 0.9, "b": 0.1}) == {"a": 0, "b": 5}
    assert allocate(20, {"a": 1, "b": 2}, {"a": 0.9, "b": 0.1}) == {"a": 1, "b": 2}


def test_risk_shifts_the_draw_a_site_with_a_bad_history_is_drawn_far_more_often() -> None:
    w = RiskWeights()
    clean = RiskFeatures(idle_days=1)
    risky = RiskFeatures(failed_items=4, relapses=2, open_tasks=2, overdue_tasks=1,
                         idle_days=40, reports=3)
    assert risk_weight(risky, w) > 10 * risk_weight(clean, w)
    sites = [Candidate(1, "risky", "sub", "mall", risk_weight(risky, w), risky)] + [
        Candidate(i, f"clean{i:02d}", "sub", "mall", risk_weight(clean, w), clean)
        for i in range(2, 12)]
    drawn: Counter[str] = Counter()
    for i in range(500):
        for d in draw(seed(i), DAY, sites, [], DrawParams(1, 0)):
            drawn[d.site_code] += 1
    # 11 sites, 1 drawn a day: uniform would be ~45 each.
    assert drawn["risky"] > 300
    assert all(drawn[f"clean{i:02d}"] < 40 for i in range(2, 12))


def test_the_recheck_share_is_honoured_and_a_recheck_site_is_not_spot_checked() -> None:
    sites = city(subdistricts=2, per_type=5)
    closed = closed_tasks(sites, 20)
    for i in range(30):
        drawn = draw(seed(i), DAY, sites, closed, DrawParams(2, 0.25))
        rechecks = [d for d in drawn if d.kind == RECHECK]
        assert len(rechecks) == 5  # ceil(0.25 x 20)
        assert all(d.task_id is not None for d in rechecks)
        assert len({d.site_id for d in drawn}) == len(drawn)
        assert Counter(d.stratum.split("/")[0] for d in drawn if d.kind == SPOT) == {
            "sub0": 2, "sub1": 2}


def test_two_closed_tasks_at_one_site_draw_the_site_once() -> None:
    sites = city(subdistricts=1, per_type=1)
    c = sites[0]
    closed = [RecheckCandidate(t, c.site_id, c.code, c.subdistrict, c.site_type)
              for t in (1, 2, 3)]
    drawn = draw(seed(3), DAY, sites, closed, DrawParams(0, 1.0))
    assert [(d.site_id, d.kind) for d in drawn] == [(c.site_id, RECHECK)]


def test_the_snapshot_round_trips_and_reruns_the_same_draw() -> None:
    sites, closed = city(), closed_tasks(city(), 6)
    params = DrawParams(2, 0.5)
    stored = snapshot(sites, closed, params)
    again = from_snapshot(stored)
    assert draw(seed(9), DAY, *again) == draw(seed(9), DAY, sites, closed, params)
    assert len(seed_digest(seed(9))) == 64
    with pytest.raises(ValueError):
        from_snapshot({"sites": []})


def test_draws_yaml_defaults_and_errors_name_line_and_field() -> None:
    from bot.config import DEFAULTS_DIR
    from bot.domain.draws_config import load_draws

    shipped = load_draws(DEFAULTS_DIR / "draws.yaml")
    assert shipped.per_subdistrict == 2 and shipped.announce_time == dt.time(20, 0)
    assert parse_draws("").per_subdistrict == 2
    with pytest.raises(DrawConfigError) as exc:
        parse_draws("schema: 1\nweights:\n  relapse: lots\n")
    assert str(exc.value).startswith("draws.yaml:3: relapse: ")
    with pytest.raises(DrawConfigError) as exc:
        parse_draws("recheck:\n  share: 1.5\n")
    assert str(exc.value).startswith("draws.yaml:2: share: must be at least 0")
    with pytest.raises(DrawConfigError) as exc:
        parse_draws("per_subdistrict: 2\nannounce_time: noon\n")
    assert "draws.yaml:2: announce_time:" in str(exc.value)
    with pytest.raises(DrawConfigError) as exc:
        parse_draws("per_subdistrct: 2\n")
    assert "did you mean" in str(exc.value)


def test_a_bad_draws_yaml_stops_the_bot_naming_line_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    (tmp_path / "draws.yaml").write_text("schema: 1\nper_subdistrict: many\n", encoding="utf-8")
    monkeypatch.setenv("WENMING_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:not-a-real-token")
    assert main(["draw", "--check-config"]) == 2
    assert f"{tmp_path / 'draws.yaml'}:2: per_subdistrict:" in capsys.readouterr().err
    assert main(["run"]) == 2
    assert "refusing to start with an invalid draws.yaml" in capsys.readouterr().err
    (tmp_path / "draws.yaml").write_text("per_subdistrict: 3\n", encoding="utf-8")
    assert main(["draw", "--check-config"]) == 0


def test_a_stratum_under_no_subdistrict_is_printed_without_the_stored_dash() -> None:
    from bot.domain.draw import stratum_label

    assert stratum_label("-district_commerce/hotel") == "district_commerce (no sub-district)/hotel"
    assert stratum_label("wolongsi/community") == "wolongsi/community"
