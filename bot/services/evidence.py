"""Evidence that can be trusted: checks on a fix's after-photos (issue 14).

Refuse or flag? A photo nearly identical to the task's own before-photo cannot show a fix:
it is refused at once, while the unit is still sending photos, with a localized answer; the
fix being written stays as it is (earlier photos and notes are kept, the pending input too),
so the unit simply sends another photo. Any other near-identical photo in the system (another
task's, an inspection's, a resident's report) may be honest (the same corner photographed
twice by two inspections, a re-check of a relapse) and a machine cannot tell: the fix goes
through, flagged for the checker on the card and in the history. An old capture time is
flagged the same way; a photo without one is noted, more weakly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.domain.errors import DomainError
from bot.domain.evidence import Match, after_photo_flags, capture_instant
from bot.media.phash import DUPLICATE_MAX_DISTANCE, hamming, unsigned64
from bot.media.store import StoredImage
from db.models import Photo, Task
from db.uow import UnitOfWork

# TaskPhoto kinds as bot/services/tasks/constants.py names them (not imported: the tasks
# package imports this module).
BEFORE, AFTER, DRAFT = "before", "after", "draft"
_KINDS = (BEFORE, AFTER, DRAFT)


def captured_at(image: StoredImage, tz: ZoneInfo) -> datetime | None:
    """The photo's capture time as an instant, for Photo.captured_at (None: it has none)."""
    if image.captured is None:
        return None
    return capture_instant(image.captured.local, image.captured.offset, tz)


async def refuse_same_as_before(uow: UnitOfWork, task_id: int, photo: Photo) -> None:
    """Raise DomainError("evidence.same_as_before") when `photo` is (nearly) the task's own
    before-photo."""
    for before in await uow.evidence.task_photos(task_id, (BEFORE,)):
        if hamming(unsigned64(before.phash), unsigned64(photo.phash)) <= DUPLICATE_MAX_DISTANCE:
            raise DomainError("evidence.same_as_before", id=task_id)


async def fix_flags(uow: UnitOfWork, task: Task, photo_ids: Sequence[int]
                    ) -> list[dict[str, object]]:
    """The flags of a fix's after-photos (kept in the fix's event data under "evidence")."""
    photos = await uow.evidence.photos(photo_ids)
    drafts = await uow.evidence.task_photos(task.id, (DRAFT,))
    exclude = {p.id for p in photos} | {p.id for p in drafts}
    flags: list[dict[str, object]] = []
    for photo in photos:
        near = await uow.evidence.near_photos(photo.phash, DUPLICATE_MAX_DISTANCE,
                                              exclude=exclude)
        places = await uow.evidence.places([pid for pid, _ in near], _KINDS)
        matches = [Match(pid, d, *places.get(pid, (None, None, None))) for pid, d in near]
        flags += after_photo_flags(photo_id=photo.id, captured_at=photo.captured_at,
                                   task_created_at=task.created_at, matches=matches)
    return flags
