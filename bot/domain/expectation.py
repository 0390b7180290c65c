"""What a person is expected to send next in their private chat, and which feature takes it.

Four stored facts say it, each owned by its feature:

* ``Person.pending``: a button asked for one input (a task's reason or after-photos, the reason
  for a disputed fix, the photos of a /task finding, a site's name, a location). `Pending` is its
  typed value (one small class per kind); `encode_pending` / `decode_pending` are the one codec
  of the column.
* ``Person.active_inspection_id`` and ``Inspection.awaiting``: the open inspection and what its
  current item waits for (evidence, a remark, a note).
* ``Report.step``: the resident's report being written and the step it is at.

`Expectation` puts them together; `Expectation.taker` says, for a text, a photo or a location,
who takes it. The precedence is the product's, written once here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.domain import reports
from bot.domain.checklist import TAKES_PHOTOS, Awaiting
from bot.domain.tasks import Action

# ---- Person.pending: what a button asked for -------------------------------------------------


@dataclass(frozen=True)
class TaskInput:
    """A reason, a unit or after-photos for a task action (asked at the task's version)."""

    task_id: int
    action: Action
    version: int


@dataclass(frozen=True)
class DisputeReason:
    """Why the reporter says the fixed problem is still there."""

    report_id: int


@dataclass(frozen=True)
class Finding:
    """Photos, then a line, for a finding filed with /task: photos sent after `since` (the
    bare /task's message) belong to it."""

    since: int


@dataclass(frozen=True)
class SiteSearch:
    """A site's name to search for."""


@dataclass(frozen=True)
class SiteNear:
    """A location: the sites nearest to it."""


Pending = TaskInput | DisputeReason | Finding | SiteSearch | SiteNear

_DISPUTE_WORD = "still"  # report:<id>:still
_ACTIONS = frozenset(action.value for action in Action)


def encode_pending(pending: Pending | None) -> str | None:
    """The column's text (the formats from before, so stored values still read)."""
    match pending:
        case TaskInput(task_id, action, version):
            return f"task:{task_id}:{action.value}:{version}"
        case DisputeReason(report_id):
            return f"report:{report_id}:{_DISPUTE_WORD}"
        case Finding(since):
            return f"finding:{since}"
        case SiteSearch():
            return "site_search"
        case SiteNear():
            return "site_near"
    return None


def decode_pending(text: str | None) -> Pending | None:
    """The typed value of the column; None for nothing, or for text it cannot read."""
    head, *rest = (text or "").split(":")
    numbers = [int(part) if part.isascii() and part.isdigit() else None for part in rest]
    match head, rest, numbers:
        case "task", [_, action, _], [int(task_id), _, int(version)] if action in _ACTIONS:
            return TaskInput(task_id, Action(action), version)
        case "report", [_, word], [int(report_id), _] if word == _DISPUTE_WORD:
            return DisputeReason(report_id)
        case "finding", [_], [int(since)]:
            return Finding(since)
        case "site_search", [], []:
            return SiteSearch()
        case "site_near", [], []:
            return SiteNear()
    return None


# ---- who takes the next message -------------------------------------------------------------


class Input(StrEnum):
    """What kind of message arrived."""

    TEXT = "text"
    PHOTO = "photo"  # a photo, or any file (an image sent as a file)
    LOCATION = "location"


class Taker(StrEnum):
    """Who takes the message."""

    INSPECTION = "inspection"  # the open inspection's current item asked for it
    INSPECTION_EXTRA = "inspection_extra"  # a photo not asked for: more evidence for the item
    TASK_INPUT = "task_input"  # the input a task button asked for
    FINDING = "finding"  # a /task finding's photos or its line
    SITE_SEARCH = "site_search"
    SITE_NEAR = "site_near"
    NEAREST = "nearest"  # an inspector's location nobody asked for: the sites near it
    DISPUTE_REASON = "dispute_reason"
    REPORT = "report"  # the report being written (a photo starts one)
    NOBODY = "nobody"  # a hint answers it


_PLACE_STEPS = (reports.STEP_PLACE, reports.STEP_PLACE_PICK, reports.STEP_CONFIRM)


@dataclass(frozen=True)
class Expectation:
    """Everything that says what this person's next message is for."""

    pending: Pending | None = None
    inspection_id: int | None = None  # their open inspection, if any
    awaiting: Awaiting | None = None  # what its current item waits for
    draft_id: int | None = None  # the report they are writing, if any
    draft_step: str | None = None  # and its step
    inspector: bool = False

    def taker(self, kind: Input) -> Taker:
        """Who takes a message of this kind, by the product's precedence."""
        pending, inspecting = self.pending, self.inspection_id is not None
        if kind is Input.LOCATION:
            if isinstance(pending, SiteNear):
                return Taker.SITE_NEAR
            if self.draft_id is not None and self.draft_step in _PLACE_STEPS:
                return Taker.REPORT
            return Taker.NEAREST if self.inspector else Taker.NOBODY
        if kind is Input.PHOTO:
            if inspecting and self.awaiting in TAKES_PHOTOS:
                return Taker.INSPECTION
            if isinstance(pending, Finding):
                return Taker.FINDING
            if isinstance(pending, TaskInput) and pending.action is Action.SUBMIT_FIX:
                return Taker.TASK_INPUT
            # Inside an open inspection a photo belongs to it, asked for or not: never a report.
            return Taker.INSPECTION_EXTRA if inspecting else Taker.REPORT
        if inspecting and self.awaiting is not None:  # every wait takes text
            return Taker.INSPECTION
        if isinstance(pending, Finding):
            return Taker.FINDING
        if isinstance(pending, TaskInput):
            return Taker.TASK_INPUT
        # A search just asked for wins over a report draft left open in the background.
        if isinstance(pending, SiteSearch):
            return Taker.SITE_SEARCH
        if isinstance(pending, DisputeReason):
            return Taker.DISPUTE_REASON
        return Taker.REPORT if self.draft_id is not None else Taker.NOBODY

    def needs_draft(self, kind: Input) -> bool:
        """Whether the report being written could change `taker(kind)`: it is looked up
        only then (a photo outside everything else goes to the report service anyway)."""
        return kind is not Input.PHOTO and self.taker(kind) in (Taker.NEAREST, Taker.NOBODY)
