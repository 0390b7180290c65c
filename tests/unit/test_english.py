"""Issue 11 item 12: English is complete and written with ASCII punctuation: no full-width
（）：，。；！？「」、 inside English text, neither in the catalogues nor where code joins them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.errors import DomainError
from bot.domain.tasks import TaskState, parse_filter
from bot.render import tasks as tv
from bot.render.i18n import catalogue, t
from bot.render.refusals import explain

FULL_WIDTH = re.compile("[（）：，。；！？「」『』、【】《》　]")
EN = "en"


def test_no_english_message_has_full_width_punctuation() -> None:
    bad = {key: text for key, text in catalogue(EN).items() if FULL_WIDTH.search(text)}
    assert bad == {}


def _task(events: tuple[tv.EventLine, ...]) -> tv.TaskData:
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    return tv.TaskData(
        id=7, version=3, state=TaskState.CLOSED, source="inspection", title="1 在显著位置",
        title_en="1 Prominently display", description="", unit_name="第1网络包抓联络小组",
        unit_name_en="Liaison group 1", unit_id=1, site_name="东岭皇冠假日酒店",
        site_name_en="Dongling Crowne Plaza Hotel", due_at=now + timedelta(days=2),
        extension_until=None, escalation_level=0, escalation_unit=None, reopen_count=0,
        relapse_of_id=None, relapse_closed_at=None, inspector="Zhang", before_file_ids=(),
        after_file_ids=(), before_shas=(), after_shas=(), reroute_claim=None, events=events)


def test_an_english_task_history_joins_its_parts_with_ascii_punctuation() -> None:
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    events = (
        tv.EventLine(now, "Li", 2, "verified", "all clean", {"verdict": "noncompliant",
                                                           "photos": [1, 2]}),
        tv.EventLine(now, "Li", 2, "returned", "east side", {}),
    )
    text = tv.history_text(EN, _task(events), now, tv.default_tz())
    assert t(EN, "task.card.verdict", verdict=t(EN, "verdict.noncompliant")) in text
    assert "Liaison group 1" in text and "Dongling Crowne Plaza Hotel" in text
    assert "1 Prominently display" in text
    assert not FULL_WIDTH.search(text), text


def test_a_refusal_lists_states_in_the_readers_language() -> None:
    with pytest.raises(DomainError) as exc:
        parse_filter(["state", "nosuch"])
    text = explain(EN, exc.value)
    assert t(EN, "task.state.fix_submitted") in text and not FULL_WIDTH.search(text)
    assert "待复核" in explain("zh-hans", exc.value)


def test_names_and_titles_fall_back_to_chinese_only_when_there_is_no_english() -> None:
    task = _task(())
    assert task.title_in(EN) == "1 Prominently display" and task.title_in("zh-hans") == \
        "1 在显著位置"
    assert task.item_in(EN) == "1 Prominently display"  # no item text: the title
    assert tv.TaskData(**{**task.__dict__, "item_text": "1 在显著位置展示",
                          "item_text_en": "1 Display"}).item_in(EN) == "1 Display"
    untranslated = tv.TaskData(**{**task.__dict__, "title_en": None, "unit_name_en": ""})
    assert untranslated.title_in(EN) == "1 在显著位置"
    assert untranslated.unit_in(EN) == "第1网络包抓联络小组"


def test_an_escalated_task_names_the_unit_above_in_english() -> None:
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    task = tv.TaskData(**{**_task(()).__dict__, "state": TaskState.OPEN, "escalation_level": 1,
                          "escalation_unit": "区商务局",
                          "escalation_unit_en": "District commerce bureau"})
    lines = tv.card_header(EN, task, now, tv.default_tz())
    assert t(EN, "task.card.escalated", level=1, unit="District commerce bureau") in lines


def test_english_dates_name_the_month_in_bulletins_digests_and_reminders() -> None:
    """Issue 14 tryout: the bulletin and the digest wrote "7/12", which a reader in most of
    the world takes for 12 July; every date now names its month ("7 Dec"), one formatter for
    lists, plans, bulletins, digests and reminders."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from bot.domain.ranking import rank_units
    from bot.render.bulletin import BulletinView, caption
    from bot.render.dates import format_date, format_datetime

    view = BulletinView(EN, "2026-W48", dt.date(2026, 11, 23), dt.date(2026, 11, 29), "Office",
                        None, rank_units([]), 2)
    assert "(23 Nov – 29 Nov)" in caption(view).splitlines()[0]
    assert format_date("zh-hans", dt.date(2026, 12, 7)) == "12月7日"
    at = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)
    assert format_datetime(EN, at, ZoneInfo("Asia/Shanghai")) == "7 Dec 09:30"
    assert format_datetime("zh-hans", at, ZoneInfo("Asia/Shanghai")) == "12月7日 09:30"
