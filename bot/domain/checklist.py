"""The checklist engine: which item is asked, what an answer needs, when a run can be submitted.

Pure: it works on a `Progress` snapshot that the service loads from the database and writes
back. Steps are indexes into `Standard.items`; `len(items)` is the review screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from bot.domain.errors import DomainError, StaleAction
from bot.domain.standards import Item, Standard, Verdict


class Awaiting(StrEnum):
    """Free input the current step waits for."""

    PHOTO = "photo"  # evidence for a non-compliant item
    REMARK = "remark"  # the reason for a not-applicable answer
    NOTE = "note"  # an optional note on any item
    EXTRA_PHOTO = "extra_photo"  # an optional photo on any item


# The waits a photo answers (any wait takes text: a remark, a note, or a note on the evidence).
TAKES_PHOTOS: Final = frozenset({Awaiting.PHOTO, Awaiting.EXTRA_PHOTO})


class Gap(StrEnum):
    UNANSWERED = "unanswered"
    NEEDS_PHOTO = "needs_photo"
    NEEDS_REMARK = "needs_remark"


@dataclass
class ItemState:
    verdict: Verdict | None = None
    skipped: bool = False
    remark: str | None = None
    photos: int = 0


@dataclass
class Progress:
    standard: Standard
    step: int = 0
    awaiting: Awaiting | None = None
    answers: dict[str, ItemState] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.standard.items)

    @property
    def in_review(self) -> bool:
        return self.step >= self.total

    @property
    def item(self) -> Item:
        if self.in_review:
            raise DomainError("checklist.in_review")
        return self.standard.items[self.step]

    def state(self, key: str) -> ItemState:
        return self.answers.setdefault(key, ItemState())

    @property
    def answered(self) -> int:
        return sum(1 for it in self.standard.items if self._done(it))

    def _done(self, item: Item) -> bool:
        st = self.answers.get(item.key)
        return st is not None and st.verdict is not None


def gap(progress: Progress, item: Item) -> Gap | None:
    """What still keeps this item from counting as answered, if anything."""
    st = progress.answers.get(item.key)
    if st is None or st.verdict is None:
        return Gap.UNANSWERED
    if st.verdict is Verdict.NA and not (st.remark or "").strip():
        return Gap.NEEDS_REMARK
    if st.verdict is Verdict.NONCOMPLIANT and item.photo_on_fail and st.photos == 0:
        return Gap.NEEDS_PHOTO
    return None


def gaps(progress: Progress) -> list[tuple[Item, Gap]]:
    out = []
    for item in progress.standard.items:
        g = gap(progress, item)
        if g is not None:
            out.append((item, g))
    return out


def expect_step(progress: Progress, step: int) -> None:
    """A button carries the step it was shown for; an older one is stale."""
    if step != progress.step:
        raise StaleAction("checklist.stale_step")


def choose(progress: Progress, step: int, verdict: Verdict) -> None:
    """Record a verdict for the current item; ask for what it needs, or move on."""
    expect_step(progress, step)
    item = progress.item
    if verdict not in item.verdicts:
        raise DomainError("checklist.verdict_not_allowed")
    st = progress.state(item.key)
    st.verdict = verdict
    st.skipped = False
    progress.awaiting = None
    needed = gap(progress, item)
    if needed is Gap.NEEDS_REMARK:
        progress.awaiting = Awaiting.REMARK
    elif needed is Gap.NEEDS_PHOTO:
        progress.awaiting = Awaiting.PHOTO
    else:
        advance(progress)


def give_text(progress: Progress, text: str) -> bool:
    """Text typed while a step waits for a remark or a note. Returns True if it was used."""
    text = text.strip()
    if not text or progress.in_review:
        return False
    st = progress.state(progress.item.key)
    if progress.awaiting is Awaiting.REMARK:
        st.remark = text
        progress.awaiting = None
        if gap(progress, progress.item) is None:
            advance(progress)
        else:
            progress.awaiting = Awaiting.PHOTO
        return True
    if progress.awaiting in (Awaiting.NOTE, Awaiting.PHOTO, Awaiting.EXTRA_PHOTO):
        # A caption-less note after evidence photos is welcome too.
        add_note(progress, text)
        if progress.awaiting is Awaiting.NOTE:
            progress.awaiting = None
        return True
    return False


def add_note(progress: Progress, text: str) -> None:
    """Add a note to the current item's record (below any earlier one)."""
    text = text.strip()
    if text and not progress.in_review:
        st = progress.state(progress.item.key)
        st.remark = f"{st.remark}\n{text}" if st.remark else text


def give_photo(progress: Progress) -> bool:
    """A photo arrived for the current item. Returns True if this step takes photos now."""
    if progress.in_review or progress.awaiting not in TAKES_PHOTOS:
        return False
    progress.state(progress.item.key).photos += 1
    return True


def add_photo(progress: Progress) -> bool:
    """A photo nobody asked for, sent during the inspection: extra evidence for the current
    item (what the inspector is looking at). False in the review, which has no current item."""
    if progress.in_review:
        return False
    progress.state(progress.item.key).photos += 1
    return True


def finish_photos(progress: Progress, step: int) -> None:
    """The inspector is done sending photos for this item."""
    expect_step(progress, step)
    if progress.awaiting is Awaiting.PHOTO and gap(progress, progress.item) is Gap.NEEDS_PHOTO:
        raise DomainError("checklist.photo_required")
    was_evidence = progress.awaiting is Awaiting.PHOTO
    progress.awaiting = None
    if was_evidence:
        advance(progress)


def ask_note(progress: Progress, step: int) -> None:
    expect_step(progress, step)
    progress.item  # noqa: B018 - raises in review
    progress.awaiting = Awaiting.NOTE


def ask_photo(progress: Progress, step: int) -> None:
    expect_step(progress, step)
    progress.item  # noqa: B018 - raises in review
    if progress.awaiting is not Awaiting.PHOTO:
        progress.awaiting = Awaiting.EXTRA_PHOTO


def cancel_input(progress: Progress, step: int) -> None:
    """Leave a remark/photo prompt; a verdict that needed it is withdrawn."""
    expect_step(progress, step)
    if progress.awaiting in (Awaiting.PHOTO, Awaiting.REMARK):
        st = progress.state(progress.item.key)
        if gap(progress, progress.item) is not None:
            st.verdict = None
    progress.awaiting = None


def skip(progress: Progress, step: int) -> None:
    """Put the current item off; it is asked again before review."""
    expect_step(progress, step)
    st = progress.state(progress.item.key)
    if st.verdict is None:
        st.skipped = True
    progress.awaiting = None
    advance(progress, after_skip=True)


def back(progress: Progress, step: int) -> None:
    expect_step(progress, step)
    if progress.step == 0:
        raise DomainError("checklist.at_first")
    if not progress.in_review and progress.awaiting in (Awaiting.PHOTO, Awaiting.REMARK):
        cancel_input(progress, step)
    progress.awaiting = None
    progress.step -= 1


def goto(progress: Progress, step: int, target: int) -> None:
    """From the review screen, jump to an item to change it."""
    expect_step(progress, step)
    if not 0 <= target < progress.total:
        raise StaleAction("checklist.stale_step")
    progress.awaiting = None
    progress.step = target


def advance(progress: Progress, *, after_skip: bool = False) -> None:
    """Next unanswered item after this one; then skipped or unfinished ones; then review.

    Skipped items come round once more at the end. Skipping one of them again moves on to the
    review, where every item still open is listed with a button to go back to it.
    """
    items = progress.standard.items
    if after_skip:
        for i in range(progress.step + 1, len(items)):
            if gap(progress, items[i]) is not None:
                progress.step = i
                return
        progress.step = len(items)
        return
    for i in range(progress.step + 1, len(items)):
        if gap(progress, items[i]) is not None and not progress.state(items[i].key).skipped:
            progress.step = i
            return
    for i, item in enumerate(items):
        if gap(progress, item) is not None:
            progress.step = i
            return
    progress.step = len(items)


def require_submittable(progress: Progress) -> None:
    missing = gaps(progress)
    if missing:
        raise DomainError("checklist.incomplete", count=len(missing))


def apply_press(
    progress: Progress, step: int, action: str, verdict: Verdict | None, target: int | None
) -> bool:
    """Apply a button press to `progress`; False if it is a repeat that changes nothing.

    `step` is the step the pressed message showed: a press from an older screen is refused
    (StaleAction), except a verdict already recorded for that item (Telegram re-sent it).
    """
    if verdict is not None:
        if step != progress.step and 0 <= step < progress.total:
            st = progress.answers.get(progress.standard.items[step].key)
            if st is not None and st.verdict is verdict:
                return False
        choose(progress, step, verdict)
    elif action == "goto" and target is not None:
        goto(progress, step, target)
    elif action in STEP_ACTIONS:
        STEP_ACTIONS[action](progress, step)
    else:
        raise StaleAction("error.stale_button")
    return True


# The presses that act on the shown step alone, by their callback action.
STEP_ACTIONS: Final[dict[str, Callable[[Progress, int], object]]] = {
    "back": back, "skip": skip, "note": ask_note, "photo": ask_photo, "done": finish_photos,
    "cancel": cancel_input, "pause": expect_step,
}
