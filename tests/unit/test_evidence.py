"""Evidence that can be trusted, with real JPEGs: capture times read before the metadata is
stripped, near-duplicates caught by perceptual hash, the flags a checker reads, and the stamp
drawn on the copy a group sees while the stored original stays bare."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import ExifTags, Image, ImageChops, ImageStat

from bot.domain.evidence import Match, after_photo_flags, capture_instant
from bot.media.capture import capture_time, parse_exif_datetime, parse_exif_offset
from bot.media.phash import DUPLICATE_MAX_DISTANCE, hamming
from bot.media.stamp import band_height, stamp
from bot.media.store import MediaStore
from bot.render import evidence as ev
from bot.render.i18n import t
from tests.unit.test_images import encode, scene

SHANGHAI = ZoneInfo("Asia/Shanghai")


def camera_jpeg(img: Image.Image, taken: str | None, offset: str | None = None,
                **params: object) -> bytes:
    """A JPEG as a phone writes it: DateTimeOriginal (and OffsetTimeOriginal) in the Exif IFD."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    if taken is not None:
        sub[ExifTags.Base.DateTimeOriginal] = taken
    if offset is not None:
        sub[ExifTags.Base.OffsetTimeOriginal] = offset
    return encode(img, "JPEG", exif=exif, quality=90, **params)


# ---- capture time ---------------------------------------------------------------------------


def test_capture_time_with_offset_survives_until_the_metadata_is_stripped(
        tmp_path: Path) -> None:
    raw = camera_jpeg(scene(), "2026:12:05 14:03:59", "+08:00")
    stored = MediaStore(tmp_path).put(raw)
    assert stored.captured is not None
    assert stored.captured.local == datetime(2026, 12, 5, 14, 3, 59)
    assert stored.captured.offset == timedelta(hours=8)
    # The stored copy carries no EXIF at all: the time lives only on the photo's row.
    on_disk = (tmp_path / stored.relpath).read_bytes()
    assert capture_time(on_disk) is None
    with Image.open(io.BytesIO(on_disk)) as img:
        assert not img.getexif()
    instant = capture_instant(stored.captured.local, stored.captured.offset, SHANGHAI)
    assert instant == datetime(2026, 12, 5, 6, 3, 59, tzinfo=UTC)


def test_capture_time_without_offset_is_read_in_the_bots_zone() -> None:
    got = capture_time(camera_jpeg(scene(), "2026:12:05 08:00:00"))
    assert got is not None and got.offset is None
    assert capture_instant(got.local, got.offset, SHANGHAI) == datetime(
        2026, 12, 5, 0, 0, tzinfo=UTC)


def test_photos_without_a_capture_time() -> None:
    # What Telegram delivers for a photo sent as a "photo": re-compressed, no EXIF.
    assert capture_time(encode(scene(), "JPEG", quality=80)) is None
    assert capture_time(camera_jpeg(scene(), None)) is None
    assert capture_time(camera_jpeg(scene(), "0000:00:00 00:00:00")) is None
    assert capture_time(encode(scene(), "PNG")) is None
    assert capture_time(b"not an image") is None
    assert parse_exif_datetime("yesterday") is None
    assert parse_exif_offset("+25:00") is None
    assert parse_exif_offset("-05:30") == -timedelta(hours=5, minutes=30)


# ---- near-duplicates ------------------------------------------------------------------------


def test_a_recompressed_resized_copy_is_caught_a_different_picture_is_not(
        tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    before = store.put(camera_jpeg(scene((1600, 1200), seed=7), "2026:12:01 09:00:00"))
    # The same picture, shrunk, re-compressed hard, and sent without EXIF.
    copy = scene((1600, 1200), seed=7).resize((800, 600))
    recycled = store.put(encode(copy, "JPEG", quality=40))
    other = store.put(camera_jpeg(scene((1600, 1200), seed=8), "2026:12:06 09:00:00"))
    assert hamming(before.phash, recycled.phash) <= DUPLICATE_MAX_DISTANCE
    assert hamming(before.phash, other.phash) > DUPLICATE_MAX_DISTANCE


# ---- the flags ------------------------------------------------------------------------------

CREATED = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


def test_an_old_photo_is_flagged_a_fresh_one_is_not() -> None:
    old = after_photo_flags(photo_id=5, captured_at=CREATED - timedelta(days=3),
                            task_created_at=CREATED, matches=[])
    assert [f["flag"] for f in old] == ["old"]
    fresh = after_photo_flags(photo_id=5, captured_at=CREATED + timedelta(hours=2),
                              task_created_at=CREATED, matches=[])
    assert fresh == []
    none = after_photo_flags(photo_id=5, captured_at=None, task_created_at=CREATED,
                             matches=[])
    assert [f["flag"] for f in none] == ["no_capture_time"]


def test_a_duplicate_names_the_closest_match_by_number_only() -> None:
    flags = after_photo_flags(
        photo_id=9, captured_at=CREATED + timedelta(hours=1), task_created_at=CREATED,
        matches=[Match(3, 5, inspection_id=44), Match(2, 1, task_id=17)])
    assert flags == [{"flag": "duplicate", "photo": 9, "distance": 1, "task": 17}]
    report = after_photo_flags(photo_id=9, captured_at=None, task_created_at=CREATED,
                               matches=[Match(4, 0, report_ticket="R-2026-000012")])
    for lang in ("zh-hans", "en"):
        lines = ev.card_lines(lang, {"evidence": report}, SHANGHAI)
        assert lines[0] == t(lang, "evidence.card.title")
        assert t(lang, "evidence.card.duplicate_report", ticket="R-2026-000012") in lines
        assert t(lang, "evidence.card.no_capture_time", count=1) == lines[-1]


def test_card_shows_the_old_photos_local_time() -> None:
    flags = after_photo_flags(photo_id=1, captured_at=datetime(2026, 11, 30, 2, 0, tzinfo=UTC),
                              task_created_at=CREATED, matches=[])
    lines = ev.card_lines("zh-hans", {"evidence": flags}, SHANGHAI)
    assert t("zh-hans", "evidence.card.old", at="2026-11-30 10:00") in lines
    assert ev.card_lines("zh-hans", {"photos": [1]}, SHANGHAI) == []
    assert ev.history_suffix("en", {"evidence": flags}) == t(
        "en", "evidence.history.flags", count=1)


# ---- the stamp ------------------------------------------------------------------------------


def test_the_stamp_is_drawn_on_the_sent_copy_and_the_original_is_unchanged(
        tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    stored = store.put(camera_jpeg(scene((1200, 900), seed=3), "2026:12:05 14:00:00"))
    path = tmp_path / stored.relpath
    original = path.read_bytes()
    digest = hashlib.sha256(original).hexdigest()
    lines = ev.stamp_lines("zh-hans", site="东岭皇冠假日酒店", tz=SHANGHAI,
                           received=datetime(2026, 12, 5, 6, 30, tzinfo=UTC), task_id=12,
                           after=True)
    assert lines == [t("zh-hans", "evidence.stamp.task", id=12) + " · 整改后", "东岭皇冠假日酒店",
                     t("zh-hans", "evidence.stamp.received", at="2026-12-05 14:30")]
    sent = stamp(original, lines)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest == stored.sha256

    with Image.open(io.BytesIO(original)) as a, Image.open(io.BytesIO(sent)) as b:
        assert a.size == b.size
        band = band_height(a.size, len(lines))
        w, h = a.size
        diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
        in_band = ImageStat.Stat(diff.crop((0, h - band, w, h))).mean
        above = ImageStat.Stat(diff.crop((0, 0, w, h - band - 8))).mean
        assert sum(in_band) / 3 > 20  # darkened and written on
        assert sum(above) / 3 < 3  # the picture itself is left alone (re-encoding noise only)
        # White text in the band: some pixels there are bright although the band is dark.
        grey = b.convert("L").crop((0, h - band, w, h))
        assert grey.getextrema()[1] > 200
    assert capture_time(sent) is None  # the sent copy carries no metadata either


def test_a_residents_photo_gets_a_neutral_stamp() -> None:
    received = datetime(2026, 12, 5, 6, 30, tzinfo=UTC)
    lines = ev.stamp_lines("en", site="Hotel", tz=SHANGHAI, received=received, task_id=3,
                           resident=True)
    text = "\n".join(lines)
    assert "14:30" not in text and "2026-12-05" not in text
    assert t("en", "evidence.stamp.report") in lines
    assert t("en", "evidence.stamp.before") in lines[0]
