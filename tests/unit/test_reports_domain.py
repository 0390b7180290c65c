"""Residents' reports, pure rules: the shipped config, its validation, routing, tickets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Settings
from bot.domain import reports as dom
from bot.domain.reports import Place, ReportConfigError, parse_reporting
from bot.media.phash import hamming, signed64, unsigned64
from bot.render.i18n import catalogue
from bot.render.reports import REJECT_KEYS, STATUS_KEYS
from db.repositories.sites import distance_m

CATEGORY_CODES = {"parking", "posters", "litter", "facilities", "construction", "vending",
                  "dogs", "charging", "stairwell", "traffic", "window", "other"}


def test_the_shipped_config_has_every_category_of_the_seed() -> None:
    config = dom.load_reporting(Settings().reporting_file)
    assert {c.code for c in config.categories} == CATEGORY_CODES
    parking = config.category("parking")
    assert parking is not None and parking.name_zh == "乱停车"
    assert parking.route[:2] == ("site", "law_enforcement")
    # Every unit the rules name exists in the demo city (examples/demo-city.yaml).
    assert config.unit_codes() <= {
        "district_office", "law_enforcement", "traffic_police", "market_supervision",
        "wolongsi_sanitation", "wolongsi_construction", "wolongsi_politics_law"}
    assert config.max_photos == 5 and config.reports_per_hour == 10


def test_every_reject_reason_and_status_has_words_in_both_languages() -> None:
    for lang in ("zh-hans", "en"):
        cat = catalogue(lang)
        for code in dom.REJECT_REASONS:
            assert cat[REJECT_KEYS[code]]
        for status in dom.STATUSES:
            assert cat[STATUS_KEYS[status]]


BASE = """\
schema: 1
fallback_unit: office
categories:
  - code: parking
    name: {zh: 乱停车, en: Parking}
    deadline_days: 1
    duplicate_radius_m: 50
    route: [site, area]
  - code: other
    name: {zh: 其他, en: Other}
    deadline_days: 7
    duplicate_radius_m: 30
    route: [area]
"""


def test_a_bad_config_names_line_category_and_problem() -> None:
    bad = BASE.replace("deadline_days: 1", "deadline_days: 0")
    with pytest.raises(ReportConfigError) as err:
        parse_reporting(bad, "reporting.yaml")
    assert str(err.value) == (
        "reporting.yaml:6: category parking: deadline_days must be at least 1, not 0")
    problems = dom.check_reporting(
        BASE.replace("route: [site, area]", "route: [site, Area!]").replace(
            "name: {zh: 其他, en: Other}", "name: {zh: 其他}"), "r.yaml")
    assert [str(p) for p in problems] == [
        "r.yaml:8: category parking: 'Area!' in route is not a code ([a-z][a-z0-9_]*)",
        'r.yaml:10: category other: name needs "en"',
    ]
    assert 'unknown key "colour"' in str(dom.check_reporting(BASE + "colour: red\n")[0])
    assert dom.check_reporting("schema: 1\n")[0].problem == 'missing "fallback_unit"'


def test_the_old_name_confirm_days_is_still_read_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 11 item 14 (operators): a customised reporting.yaml with limits.confirm_days (the
    name before issue 11 item 6 renamed it dispute_days) stopped the bot with "unknown key".
    It is read as dispute_days, with a warning; giving both is an error that says why."""
    with caplog.at_level("WARNING", logger="bot.domain.reports"):
        config = parse_reporting(BASE + "limits:\n  confirm_days: 3\n", "reporting.yaml")
    assert config.dispute_days == 3
    assert [r.getMessage() for r in caplog.records] == [
        "reporting.yaml:15: limits.confirm_days is deprecated, it is now called "
        "limits.dispute_days"]
    both = dom.check_reporting(BASE + "limits:\n  confirm_days: 3\n  dispute_days: 5\n")
    assert [p.problem for p in both] == [
        "limits.confirm_days is the old name of limits.dispute_days: give only one"]


def test_routing_takes_the_first_rule_that_names_a_unit_with_a_group() -> None:
    config = parse_reporting(BASE)
    cat = config.category("parking")
    assert cat is not None
    groups = {10, 20, 99}
    kwargs = dict(units_by_code={"office": 99}, has_group=groups.__contains__,
                  fallback_unit=99, area_radius_m=1500)
    # A picked site: its unit.
    assert dom.route(cat, Place(site_unit=10), **kwargs) == dom.Route(10, "site")
    # Near a site, but beyond the category's site radius (0 by default): the area holds it.
    near = Place(near_sites=((10, 30.0),), areas=(((30, 20), 400.0),))
    assert dom.route(cat, near, **kwargs) == dom.Route(20, "area")  # 30 has no group: its parent
    # Nothing near: the campaign office.
    assert dom.route(cat, Place(areas=(((20,), 2000.0),)), **kwargs) == dom.Route(99, "fallback")
    wide = dom.Category("parking", "乱停车", "Parking", 1, 50, 50, ("site", "area"))
    assert dom.route(wide, near, **kwargs) == dom.Route(10, "site")


def test_tickets() -> None:
    assert dom.ticket_number(2026, 123) == "R-2026-000123"
    assert dom.parse_ticket(" r-2026-000123 ") == "R-2026-000123"
    assert dom.parse_ticket("2026-123") is None


def test_the_same_problem_is_nearby_in_the_same_category_or_the_same_photo() -> None:
    a = dom.DupFacts("parking", 34.3660, 107.1950, (0x0F0F,))
    near = dom.DupFacts("parking", 34.3662, 107.1950, (0xFFFF_0000_0000_0000,))  # ~22 m
    other_cat = dom.DupFacts("litter", 34.3660, 107.1950, (0xFFFF_0000_0000_0000,))
    same_photo = dom.DupFacts("litter", None, None, (0x0F0E,))
    kw = dict(radius_m=50, max_distance=6, distance=distance_m, hamming=hamming)
    assert dom.same_problem(a, near, **kw)
    assert not dom.same_problem(a, other_cat, **kw)
    assert dom.same_problem(a, same_photo, **kw)
    assert not dom.same_problem(a, near, **{**kw, "radius_m": 10})


def test_rate_limit_says_when_the_next_report_is_allowed() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    times = [now - timedelta(minutes=m) for m in (50, 40, 30)]
    assert dom.next_allowed(times, now, 4) is None
    assert dom.next_allowed(times, now, 3) == now + timedelta(minutes=10)
    assert dom.next_allowed([*times, now - timedelta(hours=2)], now, 4) is None


def test_phash_sign_round_trip() -> None:
    for h in (0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1):
        s = signed64(h)
        assert -(1 << 63) <= s < (1 << 63)
        assert unsigned64(s) == h


def test_a_typed_address_names_the_site_whose_name_it_contains() -> None:
    """Issue 11 item 3: "银泰城北门" names 银泰城; the longest name wins; a tie names none."""
    sites = [(1, "银泰城"), (2, "后祁街社区"), (3, "后祁街社区综合文化服务中心"), (4, "大润发"),
             (5, "X"), (6, "建国饭店"), (7, "建国饭店")]
    assert dom.named_site("银泰城北门", sites) == 1
    assert dom.named_site("XX大道 银泰 城门口", sites) == 1  # spaces typed inside a name
    assert dom.named_site("后祁街社区综合文化服务中心 二楼", sites) == 3
    assert dom.named_site("后祁街社区18号楼", sites) == 2
    assert dom.named_site("某某路100号 X", sites) is None  # one letter names nothing
    assert dom.named_site("建国饭店门口", sites) is None  # two sites of that name


def test_a_report_at_a_site_goes_to_its_unit_whatever_the_category() -> None:
    """Issue 11 item 3: the site's unit comes before the category's own rules."""
    cat = dom.Category("traffic", "闯红灯", "Traffic", 3, 100, 0, ("traffic_police", "area"))
    kwargs = dict(units_by_code={"traffic_police": 7}, has_group=lambda u: u in (7, 10),
                  fallback_unit=99, area_radius_m=1500)
    assert dom.route(cat, Place(site_unit=10), **kwargs) == dom.Route(10, "site")
    # A site whose unit has no group: the category's rules.
    assert dom.route(cat, Place(site_unit=11), **kwargs) == dom.Route(7, "unit")
