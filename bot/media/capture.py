"""When a photo was taken, read from its EXIF before sanitize.py strips every tag.

The stored copy keeps no metadata (sanitize.py); only this one fact survives, on the photo's
row. Telegram drops EXIF from what is sent as a "photo" (it re-compresses it), and keeps it in
what is sent as a file; both arrive here through MediaStore.put, so both get the same check.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from PIL import ExifTags, Image, UnidentifiedImageError

log = logging.getLogger(__name__)

_EXIF_DATETIME: Final = re.compile(r"(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET: Final = re.compile(r"([+-])(\d{2}):(\d{2})")


@dataclass(frozen=True)
class CaptureTime:
    """The camera's clock when the shutter fired: local wall time, and its UTC offset when the
    camera wrote one (EXIF 2.31 OffsetTimeOriginal); without it the zone is unknown."""

    local: datetime  # naive
    offset: timedelta | None = None


def _ascii(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip() if isinstance(value, str) else None


def parse_exif_datetime(value: object) -> datetime | None:
    """"2026:12:05 14:03:59" (EXIF's format) as a naive datetime; None when unreadable or a
    placeholder such as "0000:00:00 00:00:00"."""
    text = _ascii(value)
    match = _EXIF_DATETIME.match(text) if text is not None else None
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def parse_exif_offset(value: object) -> timedelta | None:
    """"+08:00" as a timedelta; None when absent or unreadable."""
    text = _ascii(value)
    match = _EXIF_OFFSET.fullmatch(text) if text is not None else None
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > timedelta(hours=14):
        return None
    return -delta if sign == "-" else delta


def capture_time(raw: bytes) -> CaptureTime | None:
    """DateTimeOriginal (and OffsetTimeOriginal) of an upload, or None when it has none.

    Reads the header only (no pixels are decoded); never raises: a photo whose metadata cannot
    be read simply has no capture time."""
    try:
        with Image.open(io.BytesIO(raw)) as img:
            exif = img.getexif()
            sub = exif.get_ifd(ExifTags.IFD.Exif)
            taken = parse_exif_datetime(sub.get(ExifTags.Base.DateTimeOriginal))
            if taken is None:
                # Some cameras write only DateTimeDigitized.
                taken = parse_exif_datetime(sub.get(ExifTags.Base.DateTimeDigitized))
            if taken is None:
                return None
            return CaptureTime(taken, parse_exif_offset(sub.get(ExifTags.Base.OffsetTimeOriginal)))
    except (OSError, SyntaxError, ValueError, EOFError, UnidentifiedImageError,
            Image.DecompressionBombError, KeyError, TypeError) as exc:
        log.info("no readable capture time: %r", exc)
        return None
