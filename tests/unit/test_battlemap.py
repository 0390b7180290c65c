"""The special actions' battle map (挂图作战): where each action stands on a day (checked
against a hand-worked example), the caption naming the lagging actions' leads within
Telegram's 1,024 characters, and the Gantt picture (a real PNG: its size, and the lagging
colour in the lagging action's row and not in the others)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io

import pytest
from PIL import Image

from bot.config import DEFAULTS_DIR
from bot.domain.assessment import AssessmentConfigError, load_assessment, parse_assessment
from bot.domain.special_actions import (
    ActionFigures,
    ActionState,
    ActionStatus,
    LagRule,
    SpecialAction,
    action_state,
    battle_map,
    load_special_actions,
)
from bot.media.battlemap import COLOURS, WIDTH, render_png, row_box
from bot.media.bulletin import MAX_PHOTO_HEIGHT
from bot.render.battlemap import BattleMapView, MapRow, caption
from bot.render.fit import CAPTION_LIMIT, shown_length
from bot.render.i18n import t

ZH, EN = "zh-hans", "en"
# 篇4's actions: 2026-10-08 to 2027-01-07, 92 days (24 + 30 + 31 + 7).
PARKING = SpecialAction("p4_01", "停车秩序专项整治行动", "Parking order", "law_enforcement",
                        ("law_enforcement",), ("parking",), dt.date(2026, 10, 8),
                        dt.date(2027, 1, 7))
DAY = dt.date(2026, 11, 23)  # the 47th day of 92: 47/92 = 51.1% of its time gone, 45 left


def state(found: int, closed: int, still_open: int, overdue: int,
          day: dt.date = DAY) -> ActionState:
    return action_state(PARKING, day, ActionFigures(found, closed, still_open, overdue))


def test_time_gone_and_days_left_are_counted_from_the_actions_dates() -> None:
    s = state(0, 0, 0, 0)
    assert s.days == 92
    assert s.elapsed == pytest.approx(47 / 92)
    assert s.days_left == 45
    first = state(0, 0, 0, 0, dt.date(2026, 10, 8))
    assert (first.elapsed, first.days_left) == (pytest.approx(1 / 92), 91)
    last = state(0, 0, 0, 0, dt.date(2027, 1, 7))
    assert (last.elapsed, last.days_left, last.status) == (1.0, 0, ActionStatus.ON_TRACK)


def test_a_running_action_lags_by_overdue_problems_or_by_closing_behind_its_time() -> None:
    # By hand, with the defaults (30% overdue of at least 3 open; 25 points behind time):
    # 51.1% of the time is gone, so it must have closed at least 26.1% of what it found.
    #   found 8, closed 1 (12.5%), 7 open of which 1 overdue (14%): behind time -> lagging
    s = state(8, 1, 7, 1)
    assert (s.status, s.behind_time, s.overdue_lag) == (ActionStatus.LAGGING, True, False)
    assert s.closed_share == 0.125
    #   found 6, closed 2 (33%), 4 open of which 2 overdue (50% > 30%): overdue -> lagging
    s = state(6, 2, 4, 2)
    assert (s.status, s.behind_time, s.overdue_lag) == (ActionStatus.LAGGING, False, True)
    #   found 8, closed 4 (50%), 4 open of which 1 overdue (25%): on track
    assert state(8, 4, 4, 1).status is ActionStatus.ON_TRACK
    #   found 4, closed 3, the 1 open is overdue: fewer than 3 open, not judged on it
    assert state(4, 3, 1, 1).status is ActionStatus.ON_TRACK
    #   found 2, none closed: too few found to be behind
    assert state(2, 0, 2, 0).status is ActionStatus.ON_TRACK
    # The thresholds are the configuration's.
    strict = action_state(PARKING, DAY, ActionFigures(8, 4, 4, 1),
                          LagRule(overdue_share=0.2, min_open=3, behind_time=0.25))
    assert strict.status is ActionStatus.LAGGING and strict.overdue_lag


def test_before_its_start_it_has_not_started_and_after_its_end_its_closure_rate_is_final() -> None:
    early = state(0, 0, 0, 0, dt.date(2026, 10, 1))
    assert (early.status, early.elapsed, early.days_left) == (ActionStatus.NOT_STARTED, 0.0, 98)
    # Ended: judged no more, however far behind; its share closed is the final rate.
    ended = state(10, 4, 6, 6, dt.date(2027, 2, 1))
    assert (ended.status, ended.elapsed, ended.days_left) == (ActionStatus.ENDED, 1.0, 0)
    assert ended.closed_share == 0.4
    assert state(0, 0, 0, 0, dt.date(2027, 2, 1)).closed_share is None


def test_the_map_keeps_the_files_order_and_an_action_without_figures_found_nothing() -> None:
    other = dataclasses.replace(PARKING, code="p4_02", start=dt.date(2026, 12, 1))
    states = battle_map((other, PARKING), DAY, {"p4_01": ActionFigures(8, 1, 7, 1)})
    assert [(s.action.code, s.status) for s in states] == [
        ("p4_02", ActionStatus.NOT_STARTED), ("p4_01", ActionStatus.LAGGING)]
    assert states[0].figures == ActionFigures()


def test_the_behind_time_threshold_is_read_from_assessment_yaml() -> None:
    assert load_assessment(DEFAULTS_DIR / "assessment.yaml").lag_rule == LagRule(0.3, 3, 0.25)
    config = parse_assessment("special_actions:\n  lagging_behind_time: 0.1\n")
    assert config.lag_rule.behind_time == 0.1
    with pytest.raises(AssessmentConfigError, match="lagging_behind_time"):
        parse_assessment("special_actions:\n  lagging_behind_time: 2\n")


# ---- the caption and the picture ---------------------------------------------------------------


def view_of(lang: str, rows: list[tuple[SpecialAction, ActionFigures, str]],
            day: dt.date = DAY) -> BattleMapView:
    return BattleMapView(lang, day, tuple(MapRow(action_state(a, day, f), lead)
                                          for a, f, lead in rows))


def test_the_caption_names_each_lagging_action_and_its_lead() -> None:
    traffic = dataclasses.replace(PARKING, code="p4_02", name_zh="交通秩序专项整治行动")
    view = view_of(ZH, [(PARKING, ActionFigures(6, 2, 4, 2), "综合行政执法局"),
                        (traffic, ActionFigures(8, 4, 4, 1), "交警大队")])
    text = caption(view)
    assert t(ZH, "assessment.map.summary", count=2, running=2, lagging=1, not_started=0,
             ended=0) in text
    assert ("「停车秩序专项整治行动」牵头单位 <b>综合行政执法局</b>："
            "4 件未整改中 2 件逾期；剩 45 天") in text
    assert "交警大队" not in text  # on track: not named
    calm = caption(view_of(EN, [(traffic, ActionFigures(8, 4, 4, 1), "Traffic police")]))
    assert t(EN, "assessment.map.none_lagging") in calm


def test_a_caption_with_many_lagging_actions_fits_telegrams_limit() -> None:
    long_name = "个名字很长的专项整治提升行动" * 2
    rows = [(dataclasses.replace(PARKING, code=f"a{i}", name_zh=f"第{i}{long_name}"),
             ActionFigures(10, 1, 9, 9), f"第{i}牵头单位") for i in range(30)]
    text = caption(view_of(ZH, rows))
    assert shown_length(text) <= CAPTION_LIMIT
    assert "第0牵头单位" in text  # the first named
    assert "……另有" in text and "项专项行动滞后" in text  # the rest counted


def pixels(png: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(png))
    img.load()
    return img.convert("RGB")


def has_colour(img: Image.Image, box: tuple[int, int], colour: tuple[int, int, int]) -> bool:
    top, bottom = box
    crop = img.crop((0, top, img.width, bottom))
    return colour in {c for _, c in crop.getcolors(maxcolors=1 << 20) or []}


@pytest.mark.parametrize("lang", [ZH, EN])
def test_the_picture_shows_all_23_actions_with_the_lagging_one_in_the_lagging_colour(
    lang: str,
) -> None:
    actions = load_special_actions(DEFAULTS_DIR / "special_actions.yaml")
    assert len(actions) == 23
    figures = {a.code: ActionFigures(8, 4, 4, 1) for a in actions}  # on track (or ended)
    figures["p4_01"] = ActionFigures(6, 2, 4, 2)  # lagging: half its open work overdue
    states = battle_map(actions, DAY, figures)
    view = BattleMapView(lang, DAY, tuple(MapRow(s, "综合行政执法局") for s in states))
    img = pixels(render_png(view))
    assert img.width == WIDTH
    assert row_box(22)[1] < img.height <= MAX_PHOTO_HEIGHT  # 23 rows, shown as a photo
    lagging = [i for i, s in enumerate(states) if s.status is ActionStatus.LAGGING]
    assert [states[i].action.code for i in lagging] == ["p4_01"]
    red = COLOURS[ActionStatus.LAGGING]
    assert has_colour(img, row_box(lagging[0]), red)
    # Every other row is in its own status's colour, never the lagging one.
    for i, s in enumerate(states):
        if i != lagging[0]:
            assert not has_colour(img, row_box(i), red), s.action.code
            assert has_colour(img, row_box(i), COLOURS[s.status]), s.action.code
