"""Tests for the image modules in bot/media/. All images are generated here; no binary fixtures."""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import resource
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageDraw, ImageFont

from bot.media import fonts, jobs
from bot.media.collage import side_by_side
from bot.media.fonts import find_cjk_font, load_font
from bot.media.jobs import run_image_job
from bot.media.phash import DUPLICATE_MAX_DISTANCE, hamming, perceptual_hash
from bot.media.sanitize import ImageLimits, ImageRejected, normalize
from bot.media.store import MediaStore, StoredImage

# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------

SERIAL = "SN-4242-SECRET"
MAKE, MODEL = "WenmingCam", "Inspector 9000"
COMMENT = b"COMMENT-LEAK-CHECK"
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>XMP-LEAK-CHECK</rdf:RDF></x:xmpmeta>'


def scene(size: tuple[int, int] = (640, 480), seed: int = 1) -> Image.Image:
    """A deterministic 'photo': gradient background plus random shapes."""
    rng = random.Random(seed)
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(12):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randrange(w // 8, w // 2), y0 + rng.randrange(h // 8, h // 2)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
    return img


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def gps_exif(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = MAKE
    exif[ExifTags.Base.Model] = MODEL
    exif[ExifTags.Base.Orientation] = orientation
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.BodySerialNumber] = SERIAL
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (39.0, 54.0, 26.88)  # Tiananmen, roughly
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (116.0, 23.0, 29.5)
    return exif


def jpeg_segments(data: bytes) -> list[int]:
    """Marker codes of a JPEG's header segments up to Start Of Scan."""
    assert data[:2] == b"\xff\xd8"
    markers, pos = [], 2
    while pos < len(data):
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:  # SOS: entropy-coded data follows
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        pos += 2 + length
    return markers


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG of all-black pixels: a few hundred KB on disk for
    ``width * height`` pixels. Rows are compressed one at a time so building it does
    not allocate the full image either."""
    row = b"\x00" * (1 + -(-width // 8))  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims a size its (empty) data does not back up."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def open_bytes(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def reject_reason(raw: bytes, limits: ImageLimits | None = None) -> str:
    with pytest.raises(ImageRejected) as info:
        normalize(raw, limits or ImageLimits())
    assert info.value.message_key == f"image.{info.value.reason}"
    assert info.value.detail
    return info.value.reason


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ---------------------------------------------------------------------------------------
# normalize(): metadata, orientation, size
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phone_jpeg() -> bytes:
    """3000x2000 sensor image with orientation 6 (camera held upright), GPS, serials,
    XMP, an ICC profile and a JPEG comment. The top-left corner of the stored pixels is
    pure red so the rotation can be checked."""
    img = scene((3000, 2000))
    ImageDraw.Draw(img).rectangle((0, 0, 199, 199), fill=(255, 0, 0))
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    raw = encode(
        img, "JPEG", quality=90, exif=gps_exif(6), xmp=XMP, icc_profile=icc, comment=COMMENT
    )
    # Make sure the input really carries what we expect to be stripped.
    src = Image.open(io.BytesIO(raw))
    assert src.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert src.getexif()[ExifTags.Base.Orientation] == 6
    assert SERIAL.encode() in raw and b"XMP-LEAK-CHECK" in raw and COMMENT in raw
    assert "icc_profile" in src.info
    return raw


def test_jpeg_metadata_is_stripped_completely(phone_jpeg: bytes) -> None:
    out, _w, _h = normalize(phone_jpeg)
    img = Image.open(io.BytesIO(out))
    assert img.format == "JPEG"
    assert dict(img.getexif()) == {}
    assert not img.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    for key in ("exif", "icc_profile", "xmp", "comment", "photoshop"):
        assert key not in img.info, key
    for needle in (
        b"Exif",
        SERIAL.encode(),
        MAKE.encode(),
        MODEL.encode(),
        COMMENT,
        b"XMP-LEAK-CHECK",
        b"http://ns.adobe.com/xap",
        b"ICC_PROFILE",
    ):
        assert needle not in out, needle
    # The GPS IFD is gone, so is its latitude rational 39/1 54/1 ... in any byte order.
    assert struct.pack(">II", 39, 1) not in out and struct.pack("<II", 39, 1) not in out
    # Structural check: no APPn segment except APP0/JFIF, no COM segment.
    markers = jpeg_segments(out)
    assert not [m for m in markers if 0xE1 <= m <= 0xEF or m == 0xFE], [hex(m) for m in markers]


def test_jpeg_is_rotated_upright_and_shrunk(phone_jpeg: bytes) -> None:
    out, w, h = normalize(phone_jpeg)
    img = open_bytes(out)
    # 3000x2000 landscape sensor data + orientation 6 -> portrait, longest side 2048.
    assert (w, h) == img.size == (1365, 2048)
    # Orientation 6 = rotate 90 degrees clockwise for display: the red top-left corner of
    # the sensor image ends up top-right.
    r, g, b = img.getpixel((w - 20, 20))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60
    r, g, b = img.getpixel((20, 20))  # type: ignore[misc]
    assert not (r > 200 and g < 60 and b < 60)


@pytest.mark.parametrize("orientation", [1, 3, 8])
def test_other_orientations(orientation: int) -> None:
    raw = encode(scene((300, 200)), "JPEG", exif=gps_exif(orientation))
    _out, w, h = normalize(raw)
    assert (w, h) == ((300, 200) if orientation in (1, 3) else (200, 300))


def test_small_image_is_not_upscaled() -> None:
    out, w, h = normalize(encode(scene((640, 480)), "JPEG"))
    assert (w, h) == (640, 480) == open_bytes(out).size


def test_custom_max_side() -> None:
    _out, w, h = normalize(encode(scene((1000, 500)), "PNG"), ImageLimits(max_side=400))
    assert (w, h) == (400, 200)


def test_png_with_alpha_is_flattened_on_white() -> None:
    img = Image.new("RGBA", (200, 100), (0, 0, 0, 0))  # fully transparent black
    ImageDraw.Draw(img).rectangle((100, 0, 199, 99), fill=(0, 0, 255, 255))
    info_exif = gps_exif(1)
    out, w, h = normalize(encode(img, "PNG", exif=info_exif))
    result = open_bytes(out)
    assert result.mode == "RGB" and (w, h) == (200, 100)
    assert min(result.getpixel((20, 50))) > 240  # type: ignore[arg-type]
    r, g, b = result.getpixel((150, 50))  # type: ignore[misc]
    assert b > 200 and r < 40 and g < 40
    assert SERIAL.encode() not in out and b"Exif" not in out


def test_palette_png_with_transparency() -> None:
    img = Image.new("P", (100, 100), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    ImageDraw.Draw(img).rectangle((50, 0, 99, 99), fill=1)
    out, _, _ = normalize(encode(img, "PNG", transparency=0))
    result = open_bytes(out)
    assert min(result.getpixel((10, 10))) > 240  # type: ignore[arg-type]
    assert result.getpixel((75, 50))[0] > 200  # type: ignore[index]


@pytest.mark.parametrize("mode", ["L", "LA", "CMYK", "I;16", "1"])
def test_other_modes_become_rgb(mode: str) -> None:
    img = scene((120, 90)).convert(mode if mode not in ("I;16",) else "I").convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    out, w, h = normalize(encode(img, fmt))
    assert open_bytes(out).mode == "RGB" and (w, h) == (120, 90)


def test_webp() -> None:
    raw = encode(scene((800, 600)), "WEBP", quality=80, exif=gps_exif(6).tobytes())
    out, w, h = normalize(raw)
    assert (w, h) == (600, 800)  # WebP EXIF orientation honoured too
    assert b"Exif" not in out and SERIAL.encode() not in out


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_animated_takes_first_frame(fmt: str) -> None:
    frames = [Image.new("RGB", (100, 100), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    raw = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)
    assert getattr(Image.open(io.BytesIO(raw)), "n_frames", 1) == 3
    out, _, _ = normalize(raw)
    r, g, b = open_bytes(out).getpixel((50, 50))  # type: ignore[misc]
    assert r > 200 and g < 50 and b < 50


def test_extreme_aspect_ratio_is_padded_for_telegram() -> None:
    out, w, h = normalize(encode(scene((3000, 64)), "PNG"))
    assert w == 2048 and max(w, h) <= 20 * min(w, h)
    assert open_bytes(out).size == (w, h)


def test_output_is_deterministic(phone_jpeg: bytes) -> None:
    assert normalize(phone_jpeg)[0] == normalize(phone_jpeg)[0]


# ---------------------------------------------------------------------------------------
# normalize(): rejections
# ---------------------------------------------------------------------------------------


def test_gif_is_unsupported() -> None:
    assert reject_reason(encode(scene((100, 100)), "GIF")) == "unsupported"


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO", "PPM"])
def test_other_formats_are_unsupported_whatever_the_name(fmt: str, tmp_path: Path) -> None:
    # The client-claimed name (here "photo.jpg") plays no part: only the bytes are judged.
    fake = tmp_path / "photo.jpg"
    fake.write_bytes(encode(scene((100, 100)), fmt))
    assert reject_reason(fake.read_bytes()) == "unsupported"


def test_svg_and_pdf_are_unsupported() -> None:
    assert reject_reason(b'<svg xmlns="http://www.w3.org/2000/svg"/>') == "unsupported"
    assert reject_reason(b"%PDF-1.7\n") == "unsupported"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_file_is_corrupt(fmt: str) -> None:
    raw = encode(scene((640, 480)), fmt)
    assert reject_reason(raw[: len(raw) // 2]) == "corrupt"


def test_random_bytes_rejected() -> None:
    rng = random.Random(7)
    noise = bytes(rng.randrange(256) for _ in range(4096))
    assert reject_reason(noise) in ("unsupported", "corrupt")
    assert reject_reason(b"") == "unsupported"
    # Right magic, garbage after it: the header parser must fail cleanly.
    assert reject_reason(b"\xff\xd8\xff" + noise) == "corrupt"
    assert reject_reason(b"\x89PNG\r\n\x1a\n" + noise) == "corrupt"
    assert reject_reason(b"RIFF\x00\x10\x00\x00WEBP" + noise) == "corrupt"


def test_too_small() -> None:
    assert reject_reason(encode(scene((40, 300)), "PNG")) == "too_small"


def test_over_max_bytes_rejected_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = encode(scene((640, 480)), "JPEG")

    def no_decoding(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("Image.open called for an oversized upload")

    monkeypatch.setattr(Image, "open", no_decoding)
    assert reject_reason(raw, ImageLimits(max_bytes=len(raw) - 1)) == "too_large"
    assert reject_reason(b"\0" * (20 * 1024 * 1024 + 1)) == "too_large"


def test_decompression_bomb_rejected_without_allocating() -> None:
    raw = bomb_png(30_000, 30_000)  # 900 MP; would be 900 MB as "1", 2.7 GB as RGB
    assert len(raw) < 1_000_000
    rss_before, started = max_rss_mb(), time.perf_counter()
    assert reject_reason(raw) == "too_many_pixels"
    assert time.perf_counter() - started < 1.0
    assert max_rss_mb() - rss_before < 100


@pytest.mark.parametrize(
    "size",
    [
        (8_000, 7_000),  # 56 MP: over our 50 MP, under Pillow's 89 MP -> our own check
        (10_000, 10_000),  # 100 MP: Pillow only *warns* here; we must still reject
        (65_535, 65_535),  # Pillow raises DecompressionBombError
        (1, 60_000_000),  # absurd strip
    ],
)
def test_pixel_limit_checked_from_header(size: tuple[int, int]) -> None:
    rss_before = max_rss_mb()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        assert reject_reason(header_only_png(*size)) == "too_many_pixels"
    assert max_rss_mb() - rss_before < 100


def test_pillow_bomb_warning_as_error_is_mapped() -> None:
    # A process running with -W error turns Pillow's warning into an exception inside
    # Image.open; that must still be a clean "too_many_pixels", not a crash.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert reject_reason(header_only_png(10_000, 10_000)) == "too_many_pixels"


def test_pixel_limit_is_configurable() -> None:
    raw = encode(scene((300, 200)), "PNG")
    assert reject_reason(raw, ImageLimits(max_pixels=300 * 200 - 1)) == "too_many_pixels"
    normalize(raw, ImageLimits(max_pixels=300 * 200))


def test_header_lies_about_size_is_corrupt() -> None:
    # Plausible dimensions but no pixel data behind them.
    assert reject_reason(header_only_png(2000, 1500)) == "corrupt"


# ---------------------------------------------------------------------------------------
# Perceptual hash
# ---------------------------------------------------------------------------------------


def test_hamming() -> None:
    assert hamming(0, 0) == 0
    assert hamming(0b1011, 0b0001) == 2
    assert hamming(0, (1 << 64) - 1) == 64


def test_phash_is_64_bit_and_stable() -> None:
    img = scene((640, 480))
    h = perceptual_hash(img)
    assert 0 <= h < 1 << 64
    assert perceptual_hash(img) == h
    assert perceptual_hash(encode(img, "PNG")) == h  # bytes and Image agree


def test_phash_survives_recompression_and_resizing() -> None:
    original = scene((1600, 1200), seed=3)
    base = perceptual_hash(original)
    variants = [
        encode(original, "JPEG", quality=30),
        encode(original.resize((400, 300)), "JPEG", quality=60),
        encode(original.resize((800, 600)), "WEBP", quality=50),
        encode(original.point(lambda v: min(255, int(v * 1.1))), "JPEG", quality=80),
    ]
    for raw in variants:
        assert hamming(base, perceptual_hash(raw)) <= DUPLICATE_MAX_DISTANCE


def test_phash_separates_different_images() -> None:
    a = perceptual_hash(scene((640, 480), seed=1))
    for seed in (2, 5, 9):
        assert hamming(a, perceptual_hash(scene((640, 480), seed=seed))) > 16


def test_phash_of_bytes_honours_orientation() -> None:
    upright = scene((300, 400))
    # Store the pixels rotated and tag them with orientation 6: same picture when shown.
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    raw = encode(sideways, "PNG", exif=gps_exif(6))
    assert hamming(perceptual_hash(upright), perceptual_hash(raw)) <= 2


# ---------------------------------------------------------------------------------------
# MediaStore
# ---------------------------------------------------------------------------------------


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_stores_content_addressed(tmp_path: Path, phone_jpeg: bytes) -> None:
    store = MediaStore(tmp_path)
    stored = store.put(phone_jpeg)
    assert isinstance(stored, StoredImage)
    data = store.read(stored.sha256)
    assert hashlib.sha256(data).hexdigest() == stored.sha256
    assert stored.size == len(data)
    assert (stored.width, stored.height) == (1365, 2048) == open_bytes(data).size
    sha = stored.sha256
    assert stored.relpath == f"{sha[:2]}/{sha[2:4]}/{sha}.jpg"
    assert store.path(sha) == tmp_path / stored.relpath
    assert store.exists(sha)
    # phash is taken from the pixels before JPEG encoding; the stored file agrees closely.
    assert hamming(stored.phash, perceptual_hash(data)) <= 2
    assert all_files(tmp_path) == [tmp_path / stored.relpath]
    assert normalize(phone_jpeg)[0] == data


def test_put_is_idempotent(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    raw = encode(scene(), "JPEG")
    first = store.put(raw)
    mtime = store.path(first.sha256).stat().st_mtime_ns
    second = store.put(raw)
    assert first == second
    assert all_files(tmp_path) == [store.path(first.sha256)]
    assert store.path(first.sha256).stat().st_mtime_ns == mtime  # not rewritten


def test_rejection_stores_nothing(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    for raw in (b"junk", encode(scene(), "GIF"), bomb_png(30_000, 30_000)):
        with pytest.raises(ImageRejected):
            store.put(raw)
    assert all_files(tmp_path) == []


def test_failed_write_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MediaStore(tmp_path)

    def disk_full(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    # os.replace is the commit step of the atomic write; fail exactly there.
    monkeypatch.setattr("os.replace", disk_full)
    with pytest.raises(OSError):
        store.put(encode(scene(), "JPEG"))
    assert all_files(tmp_path) == []


def test_missing_and_invalid_sha(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    missing = "0" * 64
    assert not store.exists(missing)
    with pytest.raises(FileNotFoundError):
        store.read(missing)
    for bad in ("../../etc/passwd", "A" * 64, "0" * 63, ""):
        with pytest.raises(ValueError):
            store.path(bad)


def test_near_duplicate_uploads_have_close_phash(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    original = scene((2400, 1800), seed=11)
    a = store.put(encode(original, "JPEG", quality=92))
    b = store.put(encode(original.resize((1200, 900)), "WEBP", quality=60))
    c = store.put(encode(scene((2400, 1800), seed=12), "JPEG"))
    assert a.sha256 != b.sha256
    assert hamming(a.phash, b.phash) <= DUPLICATE_MAX_DISTANCE
    assert hamming(a.phash, c.phash) > DUPLICATE_MAX_DISTANCE


async def test_aput_runs_off_the_loop(tmp_path: Path, phone_jpeg: bytes) -> None:
    store = MediaStore(tmp_path)
    ticks = 0
    stop = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    beat = asyncio.create_task(heartbeat())
    raws = [phone_jpeg, encode(scene(seed=4), "PNG"), encode(scene(seed=5), "WEBP")]
    results = await asyncio.gather(*(store.aput(raw) for raw in raws))
    stop.set()
    await beat
    assert [store.exists(r.sha256) for r in results] == [True, True, True]
    assert ticks >= 3  # the loop kept running while images were being processed
    with pytest.raises(ImageRejected):
        await store.aput(b"junk")


async def test_image_jobs_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "IMAGE_JOB_SLOTS", 2)
    active = peak = 0
    lock = threading.Lock()

    def job(i: int) -> int:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)
        with lock:
            active -= 1
        return i

    assert await asyncio.gather(*(run_image_job(job, i) for i in range(8))) == list(range(8))
    assert peak == 2


def test_semaphore_works_across_event_loops() -> None:
    # pytest-asyncio and Application restarts create new loops; a module-global
    # asyncio.Semaphore bound to a dead loop would raise here.
    for _ in range(2):
        assert asyncio.run(run_image_job(sum, [1, 2])) == 3


# ---------------------------------------------------------------------------------------
# Fonts and side_by_side
# ---------------------------------------------------------------------------------------


@pytest.fixture
def fresh_font_cache() -> Iterator[None]:
    find_cjk_font.cache_clear()
    yield
    find_cjk_font.cache_clear()


def test_find_cjk_font_debian_paths(fresh_font_cache: None) -> None:
    path = find_cjk_font()
    debian = [Path(p) for p in fonts._CJK_FONT_CANDIDATES if Path(p).is_file()]
    if not debian:
        pytest.skip("no CJK font installed (apt-get install fonts-noto-cjk)")
    assert path == debian[0]


def test_find_cjk_font_override(fresh_font_cache: None, tmp_path: Path) -> None:
    font = tmp_path / "custom.ttf"
    font.write_bytes(b"not really a font")
    assert find_cjk_font(font) == font
    assert find_cjk_font(tmp_path / "missing.ttf") == find_cjk_font()


def test_cjk_font_override_comes_from_settings(tmp_path: Path) -> None:
    from bot.config import Settings

    font = tmp_path / "custom.ttf"
    assert Settings.from_env({"WENMING_CJK_FONT": str(font)}).cjk_font == font
    assert Settings.from_env({}).cjk_font is None


def test_cjk_font_renders_distinct_glyphs(fresh_font_cache: None) -> None:
    if find_cjk_font() is None:
        pytest.skip("no CJK font installed (apt-get install fonts-noto-cjk)")
    font = load_font(32)
    assert isinstance(font, ImageFont.FreeTypeFont)
    family, _ = font.getname()
    assert family is not None and ("SC" in family or "Hei" in family or "Droid" in family)
    # A font without CJK glyphs draws every character as the same "tofu" box.
    masks = {bytes(font.getmask(ch)) for ch in "整改前后"}
    assert len(masks) == 4


def test_load_font_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "find_cjk_font", lambda override=None: None)
    font = load_font(20)
    assert font.getbbox("abc")


@pytest.mark.parametrize(
    ("before_size", "after_size"),
    [((4000, 3000), (4000, 3000)), ((3000, 4000), (1600, 1200)), ((300, 200), (200, 300))],
)
def test_side_by_side(before_size: tuple[int, int], after_size: tuple[int, int]) -> None:
    before = encode(scene(before_size, seed=1), "JPEG", exif=gps_exif(1))
    after = encode(scene(after_size, seed=2), "PNG")
    out = side_by_side(before, after)
    img = open_bytes(out)
    assert img.format == "JPEG" and img.mode == "RGB"
    w, h = img.size
    assert max(w, h) <= 1280
    assert w + h <= 10_000 and max(w, h) <= 20 * min(w, h)
    assert w > h or before_size[0] < before_size[1]  # side by side, not stacked
    assert dict(img.getexif()) == {} and SERIAL.encode() not in out
    # Label bars: red-ish over the left photo, green-ish over the right, with white text.
    r, g, _b = img.getpixel((2, 2))  # type: ignore[misc]
    assert r > 150 and g < 100
    r, g, _b = img.getpixel((w - 3, 2))  # type: ignore[misc]
    assert g > 100 and r < 100
    bar = img.crop((0, 0, w // 2, max(24, h // 12)))
    lo_hi = bar.convert("L").getextrema()
    assert isinstance(lo_hi[1], int) and lo_hi[1] > 230


def test_side_by_side_extreme_ratio_stays_sendable() -> None:
    wide = encode(scene((3000, 100)), "PNG")
    out = side_by_side(wide, wide)
    w, h = open_bytes(out).size
    assert max(w, h) <= 1280 and max(w, h) <= 20 * min(w, h)


def test_side_by_side_custom_labels_and_size() -> None:
    raw = encode(scene((800, 600)), "JPEG")
    out = side_by_side(raw, raw, before_label="Before", after_label="After", max_side=640)
    assert max(open_bytes(out).size) <= 640


def test_side_by_side_rejects_bad_input() -> None:
    with pytest.raises(ImageRejected):
        side_by_side(b"junk", encode(scene(), "JPEG"))


def test_refuses_to_run_with_load_truncated_images(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError):
        normalize(encode(scene(), "JPEG"))


def test_an_iphones_heic_sent_as_a_file_is_read_with_its_capture_time_and_stored_clean(
) -> None:
    """Review of issue 14: the after-photo prompt now says a photo sent as a file keeps its
    capture time, and an iPhone sends its photos as files in HEIC, which the bot refused as
    unsupported. It is read (through libheif): the capture time comes from its EXIF, and what
    is stored is a JPEG with none of it (no GPS, no serial number)."""
    from bot.media.capture import capture_time

    exif = gps_exif(1)
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2026:11:30 08:15:00"
    raw = encode(scene((640, 480)), "HEIF", exif=exif.tobytes(), quality=80)
    assert raw[4:12] == b"ftypheic" and SERIAL.encode() in raw
    taken = capture_time(raw)
    assert taken is not None and str(taken.local) == "2026-11-30 08:15:00"
    out, w, h = normalize(raw)
    assert (w, h) == (640, 480)
    img = Image.open(io.BytesIO(out))
    assert img.format == "JPEG" and dict(img.getexif()) == {}
    assert SERIAL.encode() not in out and MAKE.encode() not in out
