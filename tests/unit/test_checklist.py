"""The checklist engine: one item at a time, what each answer needs, skip/back/goto, review."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.domain import checklist
from bot.domain.checklist import Awaiting, Gap, Progress
from bot.domain.errors import DomainError, StaleAction
from bot.domain.standards import Indicator, Item, Standard, Text, Verdict, load_standard

C, B, N, NA = Verdict.COMPLIANT, Verdict.BASIC, Verdict.NONCOMPLIANT, Verdict.NA
STANDARDS = Path(__file__).resolve().parents[2] / "standards"


def item(
    key: str,
    *,
    photo_on_fail: bool = False,
    na: bool = False,
    indicator: Indicator = Indicator.STATIC,
) -> Item:
    return Item(
        key=key,
        number=key,
        text=Text(zh=f"第{key}项", en=f"Item {key}"),
        parent_text=None,
        indicator=indicator,
        verdicts=(C, B, N, NA) if na else (C, B, N),
        rules={},
        hints=(),
        photo_on_fail=photo_on_fail,
        weight=1,
        deadline_days=7,
    )


def standard(*items: Item) -> Standard:
    return Standard(
        id="demo",
        name=Text(zh="示例", en="Demo"),
        source=Text(zh="示例", en="Demo"),
        source_lines="",
        scoring={C: 100, B: 60, N: 0},
        items=items,
    )


def plain(n: int) -> Progress:
    """Items 1..n, static, no photo needed, na not offered."""
    return Progress(standard(*(item(str(i)) for i in range(1, n + 1))))


def mixed() -> Progress:
    """1 plain; 2 needs a photo on failure; 3 offers na; 4 plain."""
    return Progress(
        standard(
            item("1"),
            item("2", photo_on_fail=True, indicator=Indicator.DYNAMIC),
            item("3", na=True),
            item("4"),
        )
    )


def verdict_of(p: Progress, key: str) -> Verdict | None:
    st = p.answers.get(key)
    return None if st is None else st.verdict


# ---- the normal walk ------------------------------------------------------------------------


def test_answering_every_item_walks_in_order_to_the_review() -> None:
    p = plain(3)
    assert (p.step, p.item.key, p.in_review) == (0, "1", False)
    checklist.choose(p, 0, C)
    assert p.item.key == "2"
    checklist.choose(p, 1, B)
    assert p.item.key == "3"
    checklist.choose(p, 2, N)  # no photo needed: moves straight on
    assert p.in_review and p.step == 3
    assert p.answered == 3
    assert checklist.gaps(p) == []
    checklist.require_submittable(p)
    assert [verdict_of(p, k) for k in "123"] == [C, B, N]


def test_item_in_review_raises_checklist_in_review() -> None:
    p = plain(1)
    checklist.choose(p, 0, C)
    with pytest.raises(DomainError) as exc:
        p.item  # noqa: B018
    assert exc.value.key == "checklist.in_review"


def test_choosing_a_verdict_in_review_is_refused() -> None:
    p = plain(1)
    checklist.choose(p, 0, C)
    with pytest.raises(DomainError) as exc:
        checklist.choose(p, 1, N)
    assert exc.value.key == "checklist.in_review"
    assert verdict_of(p, "1") is C


# ---- evidence photo for a failed dynamic item ----------------------------------------------


def test_noncompliant_photo_item_waits_for_a_photo_then_continues() -> None:
    p = mixed()
    checklist.choose(p, 0, C)
    checklist.choose(p, 1, N)
    assert p.step == 1 and p.awaiting is Awaiting.PHOTO
    assert checklist.gaps(p)[0] == (p.standard.items[1], Gap.NEEDS_PHOTO)

    with pytest.raises(DomainError) as exc:
        checklist.finish_photos(p, 1)
    assert exc.value.key == "checklist.photo_required"
    assert p.step == 1 and p.awaiting is Awaiting.PHOTO

    assert checklist.give_photo(p) is True
    assert checklist.give_photo(p) is True
    assert p.answers["2"].photos == 2
    assert p.step == 1  # still there: more photos may follow
    checklist.finish_photos(p, 1)
    assert p.step == 2 and p.awaiting is None
    assert verdict_of(p, "2") is N


def test_noncompliant_without_photo_rule_needs_no_photo() -> None:
    p = mixed()
    checklist.choose(p, 0, N)  # item 1 is static: photo_on_fail false
    assert p.step == 1 and p.awaiting is None


def test_compliant_on_a_photo_item_needs_no_photo() -> None:
    p = mixed()
    checklist.choose(p, 0, C)
    checklist.choose(p, 1, C)
    assert p.step == 2 and p.awaiting is None


def test_photo_not_wanted_when_nothing_is_awaited() -> None:
    p = mixed()
    assert checklist.give_photo(p) is False
    assert "1" not in p.answers or p.answers["1"].photos == 0


def test_photo_sent_before_the_failure_counts_as_evidence() -> None:
    p = mixed()
    checklist.choose(p, 0, C)
    checklist.ask_photo(p, 1)
    assert p.awaiting is Awaiting.EXTRA_PHOTO
    assert checklist.give_photo(p)
    checklist.finish_photos(p, 1)  # an optional photo: stays on the item
    assert p.step == 1 and p.awaiting is None
    checklist.choose(p, 1, N)
    assert p.step == 2 and p.awaiting is None


def test_ask_photo_while_evidence_is_awaited_keeps_it_required() -> None:
    p = mixed()
    checklist.choose(p, 0, C)
    checklist.choose(p, 1, N)
    checklist.ask_photo(p, 1)
    assert p.awaiting is Awaiting.PHOTO


# ---- not applicable needs a remark -------------------------------------------------------


def test_na_waits_for_a_remark_and_text_completes_it() -> None:
    p = mixed()
    checklist.choose(p, 0, C)
    checklist.choose(p, 1, C)
    checklist.choose(p, 2, NA)
    assert p.step == 2 and p.awaiting is Awaiting.REMARK
    assert (p.standard.items[2], Gap.NEEDS_REMARK) in checklist.gaps(p)

    assert checklist.give_text(p, "   ") is False  # blank text is no remark
    assert p.awaiting is Awaiting.REMARK

    assert checklist.give_text(p, "  no restaurant here  ") is True
    assert p.answers["3"].remark == "no restaurant here"
    assert verdict_of(p, "3") is NA
    assert p.step == 3 and p.awaiting is None
    assert all(key.key != "3" for key, _ in checklist.gaps(p))


def test_na_is_refused_where_the_item_does_not_offer_it() -> None:
    p = mixed()
    with pytest.raises(DomainError) as exc:
        checklist.choose(p, 0, NA)
    assert exc.value.key == "checklist.verdict_not_allowed"
    assert verdict_of(p, "1") is None
    assert p.step == 0 and p.awaiting is None


def test_hotel_na_only_on_items_that_offer_it() -> None:
    hotel = load_standard(STANDARDS / "hotel.yaml")
    p = Progress(hotel)
    with pytest.raises(DomainError, match=r"checklist\.verdict_not_allowed"):
        checklist.choose(p, 0, NA)  # hotel 1 has no na
    step4 = hotel.index("4")
    checklist.goto(p, 0, step4)
    checklist.choose(p, step4, NA)  # hotel 4 offers na
    assert p.awaiting is Awaiting.REMARK


# ---- notes --------------------------------------------------------------------------------


def test_note_appends_to_the_remark_without_changing_the_verdict() -> None:
    p = mixed()
    checklist.choose(p, 0, B)
    checklist.back(p, 1)
    assert p.step == 0
    checklist.ask_note(p, 0)
    assert p.awaiting is Awaiting.NOTE
    assert checklist.give_text(p, "first")
    assert p.awaiting is None and p.step == 0
    checklist.ask_note(p, 0)
    assert checklist.give_text(p, "second")
    assert p.answers["1"].remark == "first\nsecond"
    assert verdict_of(p, "1") is B
    assert p.step == 0


def test_text_is_not_taken_when_nothing_is_awaited() -> None:
    p = mixed()
    assert checklist.give_text(p, "hello") is False
    assert "1" not in p.answers or p.answers["1"].remark is None


def test_note_in_review_is_refused() -> None:
    p = plain(1)
    checklist.choose(p, 0, C)
    with pytest.raises(DomainError, match=r"checklist\.in_review"):
        checklist.ask_note(p, 1)
    assert checklist.give_text(p, "late") is False


# ---- skip ---------------------------------------------------------------------------------


def test_skipped_item_is_asked_after_the_last_unanswered_one_before_review() -> None:
    p = plain(4)
    checklist.skip(p, 0)
    assert p.step == 1 and p.answers["1"].skipped
    checklist.choose(p, 1, C)
    checklist.skip(p, 2)
    assert p.step == 3
    checklist.choose(p, 3, C)
    # 1 and 3 were put off: 1 comes first, then 3, then the review.
    assert p.step == 0 and not p.in_review
    checklist.choose(p, 0, C)
    assert p.step == 2
    assert not p.answers["1"].skipped
    checklist.choose(p, 2, B)
    assert p.in_review
    assert checklist.gaps(p) == []


def test_skip_of_an_answered_item_keeps_its_verdict() -> None:
    p = plain(3)
    checklist.choose(p, 0, C)
    checklist.back(p, 1)
    checklist.skip(p, 0)
    assert verdict_of(p, "1") is C and not p.answers["1"].skipped
    assert p.step == 1


def test_skipped_items_are_gaps_and_block_submission() -> None:
    p = plain(2)
    checklist.skip(p, 0)
    checklist.choose(p, 1, C)
    assert p.step == 0
    assert [(i.key, g) for i, g in checklist.gaps(p)] == [("1", Gap.UNANSWERED)]
    with pytest.raises(DomainError) as exc:
        checklist.require_submittable(p)
    assert exc.value.key == "checklist.incomplete"
    assert exc.value.values == {"count": 1}


def test_skipping_the_last_unanswered_item_reaches_the_review() -> None:
    p = plain(2)
    checklist.choose(p, 0, C)
    checklist.skip(p, 1)
    assert p.in_review


# ---- back ---------------------------------------------------------------------------------


def test_back_from_the_review_goes_to_the_last_item() -> None:
    p = plain(3)
    for step in range(3):
        checklist.choose(p, step, C)
    assert p.in_review
    checklist.back(p, 3)
    assert p.step == 2 and p.item.key == "3"
    assert verdict_of(p, "3") is C  # going back changes no answer


def test_back_from_the_first_item_is_refused() -> None:
    p = plain(3)
    with pytest.raises(DomainError) as exc:
        checklist.back(p, 0)
    assert exc.value.key == "checklist.at_first"
    assert not isinstance(exc.value, StaleAction)
    assert p.step == 0


def test_back_while_evidence_is_awaited_withdraws_the_verdict() -> None:
    p = mixed()
    checklist.choose(p, 0, C)
    checklist.choose(p, 1, N)
    checklist.back(p, 1)
    assert p.step == 0 and p.awaiting is None
    assert verdict_of(p, "2") is None


# ---- goto ---------------------------------------------------------------------------------


def test_goto_from_review_jumps_to_the_item_and_changing_it_returns_to_review() -> None:
    p = plain(4)
    for step in range(4):
        checklist.choose(p, step, C)
    checklist.goto(p, 4, 1)
    assert p.step == 1 and p.item.key == "2" and p.awaiting is None
    checklist.choose(p, 1, B)
    assert p.in_review  # nothing else is missing
    assert verdict_of(p, "2") is B


@pytest.mark.parametrize("target", [-1, 4, 99])
def test_goto_out_of_range_is_stale(target: int) -> None:
    p = plain(4)
    for step in range(4):
        checklist.choose(p, step, C)
    with pytest.raises(StaleAction):
        checklist.goto(p, 4, target)
    assert p.in_review


# ---- cancel_input -------------------------------------------------------------------------


def test_cancel_withdraws_a_failure_that_still_lacked_its_photo() -> None:
    p = mixed()
    checklist.choose(p, 0, C)
    checklist.choose(p, 1, N)
    checklist.cancel_input(p, 1)
    assert p.step == 1 and p.awaiting is None
    assert verdict_of(p, "2") is None
    assert (p.standard.items[1], Gap.UNANSWERED) in checklist.gaps(p)


def test_cancel_withdraws_na_that_still_lacked_its_remark() -> None:
    p = mixed()
    checklist.choose(p, 0, C)
    checklist.choose(p, 1, C)
    checklist.choose(p, 2, NA)
    checklist.cancel_input(p, 2)
    assert p.step == 2 and p.awaiting is None
    assert verdict_of(p, "3") is None


def test_cancel_keeps_a_failure_that_already_has_its_photo() -> None:
    p = mixed()
    checklist.choose(p, 0, C)
    checklist.choose(p, 1, N)
    checklist.give_photo(p)
    checklist.cancel_input(p, 1)
    assert verdict_of(p, "2") is N and p.answers["2"].photos == 1
    assert p.awaiting is None


def test_cancel_of_a_note_prompt_keeps_the_verdict() -> None:
    p = plain(2)
    checklist.choose(p, 0, C)
    checklist.back(p, 1)
    checklist.ask_note(p, 0)
    checklist.cancel_input(p, 0)
    assert p.awaiting is None and verdict_of(p, "1") is C


# ---- stale steps --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "press",
    [
        lambda p: checklist.choose(p, 0, C),
        lambda p: checklist.skip(p, 0),
        lambda p: checklist.back(p, 0),
        lambda p: checklist.ask_note(p, 0),
        lambda p: checklist.ask_photo(p, 0),
        lambda p: checklist.finish_photos(p, 0),
        lambda p: checklist.cancel_input(p, 0),
        lambda p: checklist.goto(p, 0, 0),
    ],
)
def test_a_button_from_an_earlier_step_is_stale(press: Callable[[Progress], None]) -> None:
    p = plain(3)
    checklist.choose(p, 0, C)
    assert p.step == 1
    with pytest.raises(StaleAction) as exc:
        press(p)
    assert exc.value.key == "checklist.stale_step"
    assert p.step == 1 and verdict_of(p, "1") is C


# ---- gaps ---------------------------------------------------------------------------------


def test_gaps_lists_each_kind_in_item_order() -> None:
    p = mixed()
    p.state("2").verdict = N  # failed, no photo
    p.state("3").verdict = NA  # na, no remark
    p.state("4").verdict = C
    assert [(i.key, g) for i, g in checklist.gaps(p)] == [
        ("1", Gap.UNANSWERED),
        ("2", Gap.NEEDS_PHOTO),
        ("3", Gap.NEEDS_REMARK),
    ]
    p.state("3").remark = "   "  # whitespace is not a remark
    assert checklist.gap(p, p.standard.items[2]) is Gap.NEEDS_REMARK
    p.state("1").verdict = B
    p.state("2").photos = 1
    p.state("3").remark = "closed for renovation"
    assert checklist.gaps(p) == []
    checklist.require_submittable(p)


def test_require_submittable_counts_every_gap() -> None:
    p = mixed()
    with pytest.raises(DomainError) as exc:
        checklist.require_submittable(p)
    assert exc.value.key == "checklist.incomplete"
    assert exc.value.values == {"count": 4}


# ---- community: sub-items are steps -------------------------------------------------------


def test_community_sub_items_are_separate_steps_with_parent_text() -> None:
    community = load_standard(STANDARDS / "community.yaml")
    subs = [i for i in community.items if i.key.startswith("12.")]
    assert [i.number for i in subs] == [f"12{c}" for c in "①②③④⑤⑥⑦"]
    assert [i.key for i in subs] == [f"12.{n}" for n in range(1, 8)]
    parent = subs[0].parent_text
    assert parent is not None and parent.zh
    assert all(i.parent_text == parent for i in subs)
    assert all(i.text != parent for i in subs)
    assert "12" not in {i.key for i in community.items}  # the heading is not itself a step

    p = Progress(community)
    first = community.index("12.1")
    checklist.goto(p, 0, first)
    for offset in range(7):
        assert p.item.number == subs[offset].number
        checklist.choose(p, first + offset, C)
    # After 12⑦ the engine returns to the first unanswered item (1), not to the review.
    assert p.step == 0
    assert p.answered == 7


def test_walking_all_of_hotel_reaches_the_review_and_is_submittable() -> None:
    hotel = load_standard(STANDARDS / "hotel.yaml")
    p = Progress(hotel)
    while not p.in_review:
        it = p.item
        if it.photo_on_fail:
            checklist.choose(p, p.step, N)
            assert p.awaiting is Awaiting.PHOTO
            checklist.give_photo(p)
            checklist.finish_photos(p, p.step)
        elif it.na_allowed:
            checklist.choose(p, p.step, NA)
            checklist.give_text(p, "不适用")
        else:
            checklist.choose(p, p.step, C)
    assert p.answered == len(hotel.items)
    checklist.require_submittable(p)
