"""Callback data: every packed press fits Telegram's 64 bytes and garbage is a stale button."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.domain.errors import DomainError, StaleAction
from bot.domain.standards import Verdict
from bot.domain.tasks import Action
from bot.render import callbacks as cb
from bot.services.inspections import ACTIONS

BIG_ID = 999_999_999  # the largest id a button carries (a 32-bit column holds it)
BIG_STEP = 999


def fits(data: str) -> bool:
    return len(data.encode("utf-8")) <= 64


@pytest.mark.parametrize("verdict", list(Verdict))
def test_verdict_press_fits_and_round_trips(verdict: Verdict) -> None:
    data = cb.verdict(BIG_ID, BIG_STEP, verdict)
    assert fits(data)
    press = cb.parse_step(data)
    assert press == cb.StepPress(BIG_ID, BIG_STEP, "verdict", verdict, None)


@pytest.mark.parametrize("action", ACTIONS)
def test_step_action_fits_and_round_trips(action: str) -> None:
    data = cb.step_action(BIG_ID, BIG_STEP, action)
    assert fits(data)
    assert cb.parse_step(data) == cb.StepPress(BIG_ID, BIG_STEP, action, None, None)


def test_goto_with_a_target_fits_and_round_trips() -> None:
    data = cb.step_action(BIG_ID, BIG_STEP, "goto", BIG_STEP - 1)
    assert fits(data)
    assert cb.parse_step(data) == cb.StepPress(BIG_ID, BIG_STEP, "goto", None, BIG_STEP - 1)


@pytest.mark.parametrize("prefix", [cb.SITE, cb.RESUME])
def test_id_presses_fit_and_round_trip(prefix: str) -> None:
    data = cb.pack(prefix, BIG_ID)
    assert fits(data)
    assert cb.parse_int(data, prefix) == BIG_ID


def test_other_packed_presses_fit() -> None:
    for data in (
        cb.pack(cb.FIND, "search"),
        cb.pack(cb.FIND, "near"),
        cb.pack(cb.FIND, "new"),
        cb.pack(cb.LANG, "zh-hans"),
        cb.pack(cb.LANG, "en"),
    ):
        assert fits(data)


def test_verdict_codes_are_distinct_and_cover_every_verdict() -> None:
    assert set(cb.VERDICT_CODES) == set(Verdict)
    assert len(set(cb.VERDICT_CODES.values())) == len(Verdict)


def test_pack_refuses_data_over_64_bytes() -> None:
    with pytest.raises(ValueError):
        cb.pack(cb.STEP, "x" * 70)
    with pytest.raises(ValueError):
        cb.pack(cb.STEP, "文" * 22)  # 66 bytes in UTF-8, 24 characters


@pytest.mark.parametrize(
    "data",
    [
        "v:x:1:c",
        "v:1:2:z",
        "i:1",
        "",
        "s:abc",
        "v:1:2",
        "v:1:2:c:extra",
        "i:1:2:goto:x",
        "i:1:2:goto:3:4",
        "i:a:2:skip",
        "x:1:2:skip",
        ":::",
        "v:1.5:2:c",
    ],
)
def test_garbage_is_a_stale_button(data: str) -> None:
    with pytest.raises(StaleAction) as exc:
        cb.parse_step(data)
    assert exc.value.key == "error.stale_button"


@pytest.mark.parametrize(
    ("data", "prefix"),
    [("s:abc", cb.SITE), ("s:", cb.SITE), ("s:1:2", cb.SITE), ("r:1", cb.SITE), ("", cb.RESUME)],
)
def test_parse_int_garbage_is_a_stale_button(data: str, prefix: str) -> None:
    with pytest.raises(StaleAction):
        cb.parse_int(data, prefix)


def test_stale_button_is_a_domain_error_the_user_can_read() -> None:
    with pytest.raises(DomainError):
        cb.parse_step("garbage")


# ---- one codec: every builder's output is the format old buttons in chats carry -------------


@pytest.mark.parametrize(
    ("built", "old"),
    [
        (cb.verdict(12, 3, Verdict.BASIC), "v:12:3:b"),
        (cb.step_action(12, 3, "goto", 7), "i:12:3:goto:7"),
        (cb.site(5), "s:5"),
        (cb.site(5, anyway=True), "s:5:go"),
        (cb.resume(12), "r:12"),
        (cb.find("near"), "f:near"),
        (cb.language("en"), "l:en"),
        (cb.discard(12), "d:12"),
        (cb.discard(12, "yes"), "d:12:yes"),
        (cb.resident(40, cb.ReportPress.CATEGORY, "litter"), "rp:40:c:litter"),
        (cb.resident(40, cb.ReportPress.FIX_STILL, "now"), "rp:40:still:now"),
        (cb.group(40, cb.GroupPress.ACCEPT), "rg:40:acc"),
        (cb.group(40, cb.GroupPress.DUPLICATE_OF, 39), "rg:40:of:39"),
        (cb.task(9, 4, cb.TASK_DONE), "t:9:4:done"),
        (cb.task_action(9, 4, Action.REQUEST_EXTENSION), "t:9:4:x"),
    ],
)
def test_builders_keep_the_formats_of_buttons_already_in_chats(built: str, old: str) -> None:
    assert built == old


def test_every_prefix_round_trips() -> None:
    assert cb.parse_site(cb.site(BIG_ID, anyway=True)) == (BIG_ID, True)
    assert cb.parse_int(cb.resume(BIG_ID), cb.RESUME) == BIG_ID
    assert cb.parse_find(cb.find("search")) == "search"
    assert cb.parse_language(cb.language("zh-hans")) == "zh-hans"
    assert cb.parse_discard(cb.discard(BIG_ID, "no")) == (BIG_ID, "no")
    assert fits(cb.planned(BIG_ID, again=True))
    assert cb.parse_planned(cb.planned(BIG_ID)) == (BIG_ID, False)
    assert cb.parse_planned(cb.planned(BIG_ID, again=True)) == (BIG_ID, True)
    for press in cb.ReportPress:
        data = cb.resident(BIG_ID, press, BIG_ID)
        assert cb.parse_resident(data) == (BIG_ID, press, str(BIG_ID))
    for gp in cb.GroupPress:
        assert cb.parse_group(cb.group(BIG_ID, gp)) == (BIG_ID, gp, None)
    for action in cb.TASK_ACTION_CODES:
        data = cb.task_action(123456789, BIG_STEP, action)  # task ids: up to 9 digits
        assert fits(data)
        assert cb.parse_task(data).action is action


@pytest.mark.parametrize(
    ("parse", "data", "key"),
    [
        (cb.parse_find, "f:elsewhere", "error.stale_button"),
        (cb.parse_find, "s:search", "error.stale_button"),
        (cb.parse_language, "s:en", "error.stale_button"),
        (cb.parse_discard, "d:1:maybe", "error.stale_button"),
        (cb.parse_resident, "rp:1:nonsense", "error.stale_button"),
        (cb.parse_resident, "rg:1:acc", "error.stale_button"),
        (cb.parse_group, "rg:1:nonsense", "error.stale_button"),
        (cb.parse_group, "rg:③:acc", "error.stale_button"),
        (cb.parse_task, "t:1:2:zz", "task.stale"),
        (cb.parse_task, "rp:1:2:a", "task.stale"),
        (cb.parse_planned, "pg:③", "plans.press.expired"),
        (cb.parse_planned, "pg:1:again", "plans.press.expired"),
        (cb.parse_planned, "s:1", "plans.press.expired"),
    ],
)
def test_foreign_or_unknown_data_is_stale(parse: Callable[[str], object], data: str,
                                          key: str) -> None:
    with pytest.raises(StaleAction) as exc:
        parse(data)
    assert exc.value.key == key


@pytest.mark.parametrize("data", [
    "s:9999999999", "v:12345678901:1:c", "v:1:99999999999:c", "i:1:2:goto:12345678901",
    "r:99999999999", "d:99999999999:yes", "pg:9999999999999999", "rp:99999999999:c",
    "s:٣", "r:٣", "v:٣:1:c", "pg:+5", "r: 5",
])
def test_ids_that_no_database_column_can_hold_are_stale_buttons(data: str) -> None:
    """Review of issue 14: a forged `pg:9999999999999999` (16 digits passed) reached
    PostgreSQL's 32-bit id column and failed there as an unhandled error instead of "button
    expired"; int() also took other scripts' digits and signs. Every id in a button is now
    one to nine ASCII digits."""
    parsers: dict[str, Callable[[str], object]] = {
        "s": cb.parse_site, "v": cb.parse_step, "i": cb.parse_step,
        "r": lambda d: cb.parse_int(d, cb.RESUME), "d": cb.parse_discard,
        "pg": cb.parse_planned, "rp": lambda d: cb.parse_report(d, "rp"),
    }
    with pytest.raises(StaleAction):
        parsers[data.split(":")[0]](data)
