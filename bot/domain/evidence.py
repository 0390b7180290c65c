"""Evidence that can be trusted (issue 14): rules for a fix's "after" photos.

The seed asks that fraud be prevented ("坚决防止出现弄虚作假"). Three things betray a recycled
after-photo: it is the task's own before-photo again (refused: it cannot show a fix), it is
nearly the same picture as one already in the system (flagged for the checker: a same-spot
photo from another task can be honest, a second look decides), or the camera says it was taken
before the task existed (flagged: an old photo). A photo without a capture time is noted, more
weakly: Telegram strips EXIF from every photo not sent as a file, so most have none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, Literal
from zoneinfo import ZoneInfo

FlagKind = Literal["duplicate", "old", "no_capture_time"]
DUPLICATE: Final = "duplicate"
OLD: Final = "old"
NO_CAPTURE_TIME: Final = "no_capture_time"
# The strong flags, shown first on the card; "no capture time" is only a note.
STRONG: Final = (DUPLICATE, OLD)


@dataclass(frozen=True)
class Match:
    """Where a near-identical photo already is: a task, an inspection or a resident's report
    (by its number, never by who took it); `distance` is the Hamming distance of the hashes."""

    photo_id: int
    distance: int
    task_id: int | None = None
    inspection_id: int | None = None
    report_ticket: str | None = None


def capture_instant(local: datetime, offset: timedelta | None, tz: ZoneInfo) -> datetime:
    """The camera's wall time as an instant (UTC). Without an EXIF offset the photo is taken
    to be in the bot's zone (Settings.tz): the campaign's phones are in the city."""
    if offset is not None:
        return local.replace(tzinfo=timezone(offset)).astimezone(UTC)
    return local.replace(tzinfo=tz).astimezone(UTC)


def after_photo_flags(*, photo_id: int, captured_at: datetime | None, task_created_at: datetime,
                      matches: list[Match]) -> list[dict[str, object]]:
    """What the checker should know about one after-photo, as plain data kept in the fix's
    event (so the task's history shows it too). The closest match is the one named."""
    flags: list[dict[str, object]] = []
    if matches:
        best = min(matches, key=lambda m: (m.distance, m.photo_id))
        flag: dict[str, object] = {"flag": DUPLICATE, "photo": photo_id,
                                   "distance": best.distance}
        if best.task_id is not None:
            flag["task"] = best.task_id
        elif best.inspection_id is not None:
            flag["inspection"] = best.inspection_id
        elif best.report_ticket is not None:
            flag["report"] = best.report_ticket
        flags.append(flag)
    if captured_at is None:
        flags.append({"flag": NO_CAPTURE_TIME, "photo": photo_id})
    elif captured_at < task_created_at:
        flags.append({"flag": OLD, "photo": photo_id, "captured": captured_at.isoformat()})
    return flags


def is_strong(flag: dict[str, object]) -> bool:
    return flag.get("flag") in STRONG
