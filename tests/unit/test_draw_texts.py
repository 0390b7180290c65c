"""The reveal told to the campaign office's group: the sites drawn, within Telegram's limit."""

from __future__ import annotations

import datetime as dt

from bot.render.draws import DrawnSite, commit_text, reveal_text
from bot.render.fit import TEXT_LIMIT, shown_length
from bot.render.i18n import t


def test_a_long_draw_is_listed_up_to_the_limit_then_counted() -> None:
    sites = [DrawnSite("spot", f"{'很长的点位名称' * 12}{i}", "", None) for i in range(300)]
    sites.insert(0, DrawnSite("recheck", "东岭皇冠假日酒店", "Crowne Plaza", 2))
    for lang in ("zh-hans", "en"):
        text = reveal_text(lang, "2026-12-14", "ab" * 32, "cd" * 32, None, "ef" * 32, sites)
        assert shown_length(text) <= TEXT_LIMIT
        assert t(lang, "draw.sites", count=301) in text
        shown = sum(1 for line in text.splitlines() if line.startswith("• "))
        assert 10 < shown < 301
        assert text.splitlines()[-1] == t(lang, "draw.more", more=301 - shown,
                                          day="2026-12-14")
    assert "Crowne Plaza (re-check of task #2)" in reveal_text(
        "en", "2026-12-14", "ab", "cd", None, "ef", sites)


def test_a_short_draw_is_listed_whole_and_the_reveal_time_is_the_day_after() -> None:
    sites = [DrawnSite("spot", "银泰城", "", None)]
    text = reveal_text("zh-hans", "2026-12-08", "ab", "cd", dt.datetime(2026, 12, 7, 20),
                       "ef", sites)
    assert text.endswith(t("zh-hans", "draw.site_spot", name="银泰城"))
    assert "2026-12-07 20:00" in text
    assert "2026-12-09 20:00" in commit_text("en", dt.date(2026, 12, 8), "cd",
                                             dt.datetime(2026, 12, 9, 20))
