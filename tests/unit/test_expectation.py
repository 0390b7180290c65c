"""What a person is expected to send next: the Person.pending codec and who takes a message."""

from __future__ import annotations

import pytest

from bot.domain import reports
from bot.domain.checklist import Awaiting
from bot.domain.expectation import (
    DisputeReason,
    Expectation,
    Finding,
    Input,
    Pending,
    SiteNear,
    SiteSearch,
    Taker,
    TaskInput,
    decode_pending,
    encode_pending,
)
from bot.domain.tasks import Action

FIX = TaskInput(7, Action.SUBMIT_FIX, 3)
REASON = TaskInput(7, Action.REQUEST_EXTENSION, 3)


@pytest.mark.parametrize(("pending", "stored"), [
    (FIX, "task:7:submit_fix:3"),
    (DisputeReason(12), "report:12:still"),
    (Finding(4051), "finding:4051"),
    (SiteSearch(), "site_search"),
    (SiteNear(), "site_near"),
    (None, None),
])
def test_the_codec_keeps_the_stored_formats(pending: Pending | None, stored: str | None) -> None:
    assert encode_pending(pending) == stored
    assert decode_pending(stored) == pending


@pytest.mark.parametrize("action", list(Action))
def test_every_task_action_reads_back(action: Action) -> None:
    pending = TaskInput(1, action, 0)
    assert decode_pending(encode_pending(pending)) == pending


@pytest.mark.parametrize("stored", [
    "", "task", "task:7:submit_fix", "task:x:submit_fix:3", "task:7:fly:3", "task:7:submit_fix:-1",
    "report:12", "report:12:solved", "report:١٢:still", "finding:", "finding:1:2",
    "site_search:1", "report_photo", "never committed",
])
def test_text_it_cannot_read_expects_nothing(stored: str) -> None:
    assert decode_pending(stored) is None


def test_nothing_stored_expects_nothing() -> None:
    nothing = Expectation()
    assert [nothing.taker(kind) for kind in Input] == [Taker.NOBODY, Taker.REPORT, Taker.NOBODY]
    assert Expectation(inspector=True).taker(Input.LOCATION) is Taker.NEAREST


def test_an_item_waiting_for_input_comes_first() -> None:
    for pending in (FIX, Finding(1), SiteSearch(), DisputeReason(2)):
        photo = Expectation(pending, inspection_id=5, awaiting=Awaiting.PHOTO, draft_id=9)
        assert photo.taker(Input.TEXT) is Taker.INSPECTION  # a note on the evidence
        assert photo.taker(Input.PHOTO) is Taker.INSPECTION
        remark = Expectation(pending, inspection_id=5, awaiting=Awaiting.REMARK)
        assert remark.taker(Input.TEXT) is Taker.INSPECTION


def test_a_task_input_beats_an_open_inspection_that_waits_for_nothing() -> None:
    open_one = Expectation(FIX, inspection_id=5)
    assert open_one.taker(Input.PHOTO) is Taker.TASK_INPUT
    assert open_one.taker(Input.TEXT) is Taker.TASK_INPUT
    # A reason is typed, never photographed: the photo stays the inspection's.
    assert Expectation(REASON, inspection_id=5).taker(Input.PHOTO) is Taker.INSPECTION_EXTRA
    assert Expectation(REASON).taker(Input.PHOTO) is Taker.REPORT


def test_a_photo_inside_an_inspection_never_starts_a_report() -> None:
    inside = Expectation(inspection_id=5, awaiting=Awaiting.NOTE, draft_id=9)
    assert inside.taker(Input.PHOTO) is Taker.INSPECTION_EXTRA
    assert inside.taker(Input.TEXT) is Taker.INSPECTION


def test_a_finding_takes_photos_and_its_line() -> None:
    finding = Expectation(Finding(40), inspection_id=5)
    assert finding.taker(Input.PHOTO) is Taker.FINDING
    assert finding.taker(Input.TEXT) is Taker.FINDING


def test_a_search_beats_a_draft_and_a_dispute_beats_it_too() -> None:
    draft = dict(draft_id=9, draft_step=reports.STEP_DESCRIPTION)
    assert Expectation(SiteSearch(), **draft).taker(Input.TEXT) is Taker.SITE_SEARCH
    assert Expectation(DisputeReason(3), **draft).taker(Input.TEXT) is Taker.DISPUTE_REASON
    assert Expectation(**draft).taker(Input.TEXT) is Taker.REPORT


@pytest.mark.parametrize(("step", "taker"), [
    (reports.STEP_PHOTOS, Taker.NEAREST),
    (reports.STEP_PLACE, Taker.REPORT),
    (reports.STEP_PLACE_PICK, Taker.REPORT),
    (reports.STEP_DESCRIPTION, Taker.NEAREST),
    (reports.STEP_CONFIRM, Taker.REPORT),
])
def test_a_location_goes_to_a_draft_that_asks_for_its_place(step: str, taker: Taker) -> None:
    asked = Expectation(draft_id=9, draft_step=step, inspector=True)
    assert asked.taker(Input.LOCATION) is taker
    assert Expectation(SiteNear(), draft_id=9, draft_step=step).taker(
        Input.LOCATION) is Taker.SITE_NEAR


def test_the_draft_is_looked_up_only_when_it_could_matter() -> None:
    assert not Expectation().needs_draft(Input.PHOTO)
    assert Expectation().needs_draft(Input.TEXT)
    assert not Expectation(SiteSearch()).needs_draft(Input.TEXT)
    assert Expectation(inspector=True).needs_draft(Input.LOCATION)
    assert not Expectation(SiteNear()).needs_draft(Input.LOCATION)
