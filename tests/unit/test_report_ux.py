"""The reporting rules' "outside the city" distance, and the texts the UX review asked for."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.domain import reports as dom
from bot.domain.reports import ReportConfigError, parse_reporting
from bot.render.i18n import t
from bot.render.reports import place_text, push_fixed
from db.models import Report, Site
from tests.unit.test_reports_domain import BASE


def test_outside_radius_defaults_to_ten_area_radii_and_can_be_set() -> None:
    assert parse_reporting(BASE).outside_radius_m == 15000
    assert parse_reporting(BASE + "area_radius_m: 800\n").outside_radius_m == 8000
    assert parse_reporting(BASE + "outside_radius_m: 30000\n").outside_radius_m == 30000
    with pytest.raises(ReportConfigError) as err:
        parse_reporting(BASE + "outside_radius_m: 0\n", "r.yaml")
    assert "outside_radius_m must be at least 1" in str(err.value)
    shipped = dom.load_reporting(Settings().reporting_file)  # Settings' default: the shipped file
    assert shipped.outside_radius_m == 15000


def test_a_point_is_named_by_its_area_with_the_map_link() -> None:
    report = Report(latitude=34.3661, longitude=107.1951)
    near = Site(name="后祁街社区")
    shown = place_text("zh-hans", report, None, near)
    assert shown.startswith("后祁街社区附近 · <a href=\"https://uri.amap.com/marker?")
    assert shown.endswith('">地图</a>')  # the coordinates only in the link
    assert "地图 34.36610, 107.19510" in place_text("zh-hans", report, None)  # nothing nearby


def test_the_fix_notice_carries_the_units_note() -> None:
    report = Report(ticket="R-2026-000001", category="litter")
    text = push_fixed("zh-hans", report, None, note="已清理 <垃圾>")
    assert text.endswith("整改说明：已清理 &lt;垃圾&gt;")
    assert "整改说明" not in push_fixed("zh-hans", report, None)
    assert "个人信息" in t("zh-hans", "reports.ask_description", max=500)
    assert "personal details" in t("en", "reports.ask_description", max=500)
