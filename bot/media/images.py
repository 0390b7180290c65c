"""Image pipeline: verify, normalize, store and compose report photos (Pillow only).

Everything here is synchronous, CPU-bound and free of Telegram types; handlers call the
``async`` wrappers (:meth:`MediaStore.aput`, :func:`run_image_job`) so decoding and
re-encoding never run on the event loop.

Security model: every upload is untrusted. The claimed filename / MIME type is ignored, the
format is sniffed from magic bytes, sizes are checked before any pixel is decoded, and the
stored copy is a fresh JPEG re-encoded from pixels only, so no metadata (EXIF, GPS, maker
notes, XMP, ICC, JPEG comments) can survive.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import logging
import os
import re
import struct
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, ParamSpec, TypeVar

from PIL import Image, ImageDraw, ImageFile, ImageFont, ImageOps, UnidentifiedImageError

__all__ = [
    "DUPLICATE_MAX_DISTANCE",
    "ImageLimits",
    "ImageRejected",
    "MediaStore",
    "RejectReason",
    "StoredImage",
    "find_cjk_font",
    "hamming",
    "load_font",
    "normalize",
    "perceptual_hash",
    "run_image_job",
    "side_by_side",
]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

RejectReason = Literal["too_large", "too_many_pixels", "unsupported", "corrupt", "too_small"]

# Hamming distance between two dHashes at or below which photos count as near-identical.
# Re-compression, resizing and mild brightness changes stay within ~0-4 bits in practice.
DUPLICATE_MAX_DISTANCE: Final = 6

# Telegram rejects sendPhoto when width + height > 10000 or the aspect ratio exceeds 20.
TG_MAX_SIDES_SUM: Final = 10_000
TG_MAX_RATIO: Final = 20

_WHITE: Final = (255, 255, 255)
_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")


class ImageRejected(Exception):
    """An upload that will not be stored. ``reason`` is stable; ``detail`` is for logs only.

    ``message_key`` is the i18n key the UI shows to the user (``image.<reason>``).
    """

    # TODO: subclass bot.domain.errors.DomainError once it exists.

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: RejectReason = reason
        self.detail = detail
        self.message_key = f"image.{reason}"


@dataclass(frozen=True)
class ImageLimits:
    # Telegram's Bot API getFile refuses files above 20 MB, so nothing larger can arrive.
    max_bytes: int = 20 * 1024 * 1024
    # 50 MP covers every phone camera (a 48 MP sensor is 8000x6000) yet caps the decoded
    # buffer at ~150 MB RGB, well under Pillow's own 89 MP warning threshold.
    max_pixels: int = 50_000_000
    # FixMyStreet keeps 2048 px; plenty to see a broken kerb, ~0.5 MB as JPEG.
    max_side: int = 2048
    jpeg_quality: int = 85
    # Below this the "photo" is a thumbnail, icon or tracking pixel: useless as evidence.
    min_side: int = 64


@dataclass(frozen=True)
class StoredImage:
    sha256: str  # of the stored, normalized JPEG bytes
    width: int
    height: int
    size: int  # bytes of the stored file
    phash: int  # unsigned 64-bit dHash; see perceptual_hash()
    relpath: str  # POSIX path relative to the MediaStore root, e.g. "ab/cd/<sha>.jpg"


# --------------------------------------------------------------------------------------
# Decoding and normalization
# --------------------------------------------------------------------------------------

_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"


def _sniff_format(raw: bytes) -> str | None:
    """Return the Pillow format name for allowed formats, judged by magic bytes only."""
    if raw.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if raw.startswith(_PNG_MAGIC):
        return "PNG"
    if len(raw) >= 12 and raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "WEBP"
    return None


# Pillow raises a zoo of exception types on malformed input; all of them mean "corrupt".
_DECODE_ERRORS: Final = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)


def _open_verified(raw: bytes, limits: ImageLimits) -> ImageFile.ImageFile:
    """Open ``raw`` lazily (header only) after the byte, format and pixel checks."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Process-global Pillow switch; with it on, a cut-off upload is silently padded
        # with grey and stored. Refuse to run rather than accept damaged evidence.
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must be False")
    # Byte limit first: it costs nothing and bounds everything that follows.
    if len(raw) > limits.max_bytes:
        raise ImageRejected("too_large", f"{len(raw)} bytes > {limits.max_bytes}")
    fmt = _sniff_format(raw)
    if fmt is None:
        raise ImageRejected("unsupported", f"magic bytes {raw[:12].hex()} not JPEG/PNG/WebP")
    try:
        # formats=[fmt] stops Pillow from falling back to any of its ~40 other decoders
        # (a big attack surface) should the sniffed plugin refuse the data.
        img = Image.open(io.BytesIO(raw), formats=[fmt])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow raises the Error above 2 * MAX_IMAGE_PIXELS. Between 1x and 2x it only
        # warns, unless the process runs with warnings as errors; we do not toggle warning
        # filters here because warnings.catch_warnings() is not thread-safe and this runs
        # in worker threads. Our own, stricter check below rejects that range anyway.
        raise ImageRejected("too_many_pixels", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected("corrupt", f"{fmt} header unreadable: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise ImageRejected("corrupt", f"{fmt} header: {exc!r}") from exc

    width, height = img.size
    # Checked from the header, before load(): this is what stops a 30000x30000 PNG that
    # compresses to a few kilobytes from allocating gigabytes.
    if width * height > limits.max_pixels:
        img.close()
        raise ImageRejected(
            "too_many_pixels", f"{width}x{height} = {width * height} > {limits.max_pixels}"
        )
    if min(width, height) < limits.min_side:
        img.close()
        raise ImageRejected("too_small", f"{width}x{height}, min side {limits.min_side}")
    return img


def _target_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _flatten_to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode to RGB; transparent areas become white (JPEG has no alpha, and
    Pillow's plain convert("RGB") would turn them black, hiding dark content)."""
    if img.mode == "RGB":
        return img
    has_alpha = img.mode in ("RGBA", "LA", "RGBa", "La", "PA") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale PNG: convert("L") would clip to 0..255 instead of scaling.
        img = img.point(lambda v: v / 257).convert("L")
    return img.convert("RGB")


def _pad_to_telegram_ratio(img: Image.Image) -> Image.Image:
    """Pad with white so the aspect ratio is at most 20: Telegram refuses to send a more
    extreme photo, and every stored copy may be forwarded with sendPhoto."""
    width, height = img.size
    if max(width, height) <= TG_MAX_RATIO * min(width, height):
        return img
    if width > height:
        size = (width, -(-width // TG_MAX_RATIO))
    else:
        size = (-(-height // TG_MAX_RATIO), height)
    canvas = Image.new("RGB", size, _WHITE)
    canvas.paste(img, ((size[0] - width) // 2, (size[1] - height) // 2))
    return canvas


def _decode(raw: bytes, limits: ImageLimits) -> Image.Image:
    """Verified, fully decoded, upright, RGB, at most ``limits.max_side`` px image."""
    img = _open_verified(raw, limits)
    try:
        target = _target_size(*img.size, limits.max_side)
        if img.format == "JPEG" or img.format == "MPO":
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still leaves at least
            # the target size: a 48 MP photo then decodes at 12 MP, ~4x less work and RAM.
            img.draft("RGB", target)
        # load() decodes the first frame only (animated PNG/WebP, MPO): that is the photo.
        # With LOAD_TRUNCATED_IMAGES False, a cut-off file raises here instead of being
        # padded with grey.
        img.load()
        if img.size != target:
            # In-place, keeps the EXIF needed by exif_transpose below. Shrinking before
            # transposing turns a full-resolution transpose into a 2048 px one.
            img.thumbnail((limits.max_side, limits.max_side), Image.Resampling.LANCZOS)
        try:
            upright = ImageOps.exif_transpose(img)
        except _DECODE_ERRORS as exc:
            # Broken EXIF must not cost the user their report; the pixels are fine.
            log.info("ignoring unreadable EXIF orientation: %r", exc)
            upright = img.copy()
        rgb = _flatten_to_rgb(upright)
        return _pad_to_telegram_ratio(rgb)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("too_many_pixels", str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise ImageRejected("corrupt", f"{img.format} decode failed: {exc!r}") from exc
    finally:
        img.close()


def _encode_jpeg(img: Image.Image, quality: int) -> bytes:
    # Pixels only: a brand-new image has empty .info, so nothing from the upload (exif,
    # icc_profile, xmp, and notably the JPEG "comment", which Pillow copies from .info by
    # default) can reach the encoder. No exif=/icc_profile=/xmp= arguments either.
    clean = Image.new("RGB", img.size)
    clean.paste(img)
    buf = io.BytesIO()
    clean.save(buf, "JPEG", quality=quality, optimize=True, progressive=True)
    return buf.getvalue()


def normalize(raw: bytes, limits: ImageLimits = ImageLimits()) -> tuple[bytes, int, int]:
    """Verify an upload and return ``(jpeg_bytes, width, height)`` of the clean copy.

    Raises :class:`ImageRejected`. CPU-heavy (~0.3 s for 12 MP, see bench/images.py):
    call it from a thread (MediaStore.aput / run_image_job).
    """
    img = _decode(raw, limits)
    return _encode_jpeg(img, limits.jpeg_quality), img.width, img.height


# --------------------------------------------------------------------------------------
# Perceptual hash
# --------------------------------------------------------------------------------------


def perceptual_hash(image: Image.Image | bytes) -> int:
    """64-bit difference hash (dHash) as an unsigned int.

    The image is reduced to 9x8 greyscale and each bit says whether a pixel is brighter
    than its right-hand neighbour. Robust to re-compression, resizing and brightness, not
    to crops or rotations (uploads are made upright first). Bytes go through the same
    verification as :func:`normalize`.

    Note: values use all 64 bits; a signed BIGINT column needs ``h - (1 << 64)`` when
    ``h >= 1 << 63``.
    """
    img = _decode(image, ImageLimits()) if isinstance(image, bytes) else image
    if img.mode not in ("L", "RGB"):
        img = _flatten_to_rgb(img)
    # LANCZOS in Pillow widens its kernel when downscaling, i.e. it averages over the
    # whole area, so tiny JPEG differences do not flip bits the way nearest-neighbour would.
    small = img.convert("L").resize((9, 8), Image.Resampling.LANCZOS)
    px = small.load()
    assert px is not None
    value = 0
    for y in range(8):
        for x in range(8):
            left, right = px[x, y], px[x + 1, y]
            assert isinstance(left, int | float) and isinstance(right, int | float)
            value = (value << 1) | (left > right)
    return value


def signed64(value: int) -> int:
    """A 64-bit perceptual hash as the signed BIGINT column stores it."""
    return value - (1 << 64) if value >= (1 << 63) else value


def unsigned64(value: int) -> int:
    """The stored (signed) value back as the 64-bit hash `hamming` compares."""
    return value + (1 << 64) if value < 0 else value


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two hashes."""
    return (a ^ b).bit_count()


# --------------------------------------------------------------------------------------
# Off-loop execution
# --------------------------------------------------------------------------------------


def _cpu_count() -> int:
    try:
        # Honours taskset / container cpusets, unlike os.cpu_count().
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


IMAGE_JOB_SLOTS: Final = _cpu_count()

# One semaphore per event loop: an asyncio.Semaphore binds to the first loop that waits on
# it, and tests (or a restarted Application) may run several loops in one process.
_slots_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _job_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _slots_by_loop.get(loop)
    if slots is None:
        slots = _slots_by_loop[loop] = asyncio.Semaphore(IMAGE_JOB_SLOTS)
    return slots


async def run_image_job(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run CPU-bound image work in a thread, at most ``IMAGE_JOB_SLOTS`` at a time.

    Pillow releases the GIL while decoding, resampling and encoding, so threads give real
    parallelism. Waiting happens on the loop (not in the executor), so a burst of uploads
    neither blocks executor threads needed elsewhere nor decodes dozens of 50 MP images
    at once.
    """
    async with _job_slots():
        return await asyncio.to_thread(func, *args, **kwargs)


# --------------------------------------------------------------------------------------
# Content-addressed store
# --------------------------------------------------------------------------------------


class MediaStore:
    """Normalized JPEGs on disk at ``<root>/ab/cd/<sha256>.jpg``.

    Files are immutable and named by the hash of their bytes, so writes are idempotent and
    concurrent writers of the same image are harmless (both os.replace identical content).
    """

    def __init__(self, root: Path, limits: ImageLimits = ImageLimits()) -> None:
        self.root = Path(root)
        self.limits = limits

    @staticmethod
    def relpath(sha: str) -> str:
        if not _SHA256_RE.fullmatch(sha):
            # The sha may come from callback data or the DB; never let it build a path
            # like "../../etc".
            raise ValueError(f"not a sha256 hex digest: {sha!r}")
        return f"{sha[:2]}/{sha[2:4]}/{sha}.jpg"

    def path(self, sha: str) -> Path:
        return self.root / self.relpath(sha)

    def exists(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def read(self, sha: str) -> bytes:
        """Stored bytes; raises FileNotFoundError if absent."""
        return self.path(sha).read_bytes()

    def put(self, raw: bytes) -> StoredImage:
        """Verify, normalize and store an upload. Raises :class:`ImageRejected`.

        Every check runs before anything touches the disk, and the file appears under its
        final name only complete (temp file + fsync + os.replace), so a rejection or a
        crash never leaves a half-written image behind.
        """
        img = _decode(raw, self.limits)
        data = _encode_jpeg(img, self.limits.jpeg_quality)
        sha = hashlib.sha256(data).hexdigest()
        stored = StoredImage(
            sha256=sha,
            width=img.width,
            height=img.height,
            size=len(data),
            # Hash the pixels we store (not the upload), so duplicates are compared on the
            # same footing whatever format or size they arrived in.
            phash=perceptual_hash(img),
            relpath=self.relpath(sha),
        )
        target = self.root / stored.relpath
        if not target.is_file():
            self._write_atomic(target, data)
        return stored

    async def aput(self, raw: bytes) -> StoredImage:
        """:meth:`put` off the event loop, bounded by the shared image-job semaphore."""
        return await run_image_job(self.put, raw)

    @staticmethod
    def _write_atomic(target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Same directory as the target, so os.replace is an atomic rename on one filesystem.
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".jpg")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            # BaseException: a cancelled task or KeyboardInterrupt must not leave litter.
            Path(tmp_name).unlink(missing_ok=True)
            raise


# --------------------------------------------------------------------------------------
# Fonts and composed images
# --------------------------------------------------------------------------------------

# Debian/Ubuntu locations; first hit wins. Regular weights first: they suit body text in
# bulletins and are what fonts-noto-cjk installs by default.
_CJK_FONT_CANDIDATES: Final = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # fonts-noto-cjk
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc",  # fonts-noto-cjk-extra
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # fonts-wqy-microhei
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # fonts-wqy-zenhei
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",  # fonts-droid-fallback
)
_CJK_FONT_GLOBS: Final = ("NotoSansCJK*.ttc", "NotoSansSC*.otf", "wqy-*.tt[cf]")


@functools.cache
def find_cjk_font(override: Path | None = None) -> Path | None:
    """Path of a font that can render Chinese, or None (callers fall back to Pillow's
    built-in font, which draws CJK as boxes). `override` (Settings.cjk_font,
    WENMING_CJK_FONT) lets a deployment point at a font elsewhere, e.g. a container without
    Debian paths. Cached: call ``find_cjk_font.cache_clear()`` after installing fonts at
    runtime."""
    if override is not None and override.is_file():
        return override
    for candidate in _CJK_FONT_CANDIDATES:
        path = Path(candidate)
        if path.is_file():
            return path
    for base in (Path("/usr/share/fonts"), Path("/usr/local/share/fonts")):
        if base.is_dir():
            for pattern in _CJK_FONT_GLOBS:
                for path in sorted(base.rglob(pattern)):
                    return path
    return None


@functools.cache
def _simplified_chinese_face(path: Path) -> int:
    """Index of the Simplified Chinese face in a collection (.ttc).

    NotoSansCJK-*.ttc holds JP, KR, SC, TC, HK faces; index 0 is JP, whose glyph shapes
    differ from the mainland standard for some characters. Pick SC when present.
    """
    if path.suffix.lower() != ".ttc":
        return 0
    for index in range(16):
        try:
            family, _style = ImageFont.truetype(str(path), 12, index=index).getname()
        except OSError:
            break
        if family and ("SC" in family.split() or "CN" in family.split()):
            return index
    return 0


def load_font(
    size: int, cjk_font: Path | None = None
) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A CJK-capable font at ``size`` px (`cjk_font` first, if it exists), or Pillow's default
    font if none is installed."""
    path = find_cjk_font(cjk_font)
    if path is not None:
        try:
            return ImageFont.truetype(str(path), size, index=_simplified_chinese_face(path))
        except OSError as exc:
            log.warning("cannot load CJK font %s: %r", path, exc)
    else:
        log.warning("no CJK font found (apt-get install fonts-noto-cjk); Chinese will not render")
    return ImageFont.load_default(size=size)


def _fit_height(img: Image.Image, height: int) -> Image.Image:
    width = max(1, round(img.width * height / img.height))
    if (width, height) == img.size:
        return img
    return img.resize((width, height), Image.Resampling.LANCZOS)


def side_by_side(
    before: bytes,
    after: bytes,
    *,
    before_label: str = "整改前",
    after_label: str = "整改后",
    max_side: int = 1280,
    cjk_font: Path | None = None,
) -> bytes:
    """A before/after comparison as JPEG: both photos at the same height, side by side,
    each under a labelled bar. The longest side is at most ``max_side`` (Telegram shows
    photos at up to 1280 px) and the result is always valid for sendPhoto.

    Inputs go through the same verification as uploads (raises :class:`ImageRejected`).
    CPU-bound: call through :func:`run_image_job`.
    """
    if max_side < 64:
        raise ValueError("max_side too small for a labelled comparison")
    limits = ImageLimits(max_side=max_side * 2)
    left, right = _decode(before, limits), _decode(after, limits)

    gap = max(4, max_side // 160)
    aspect_sum = left.width / left.height + right.width / right.height
    # The label bar is proportional to the photo height, so the total height is
    # photo_h * (1 + bar_ratio); solve both the width and height limits for photo_h.
    bar_ratio = 0.12
    photo_h = min(
        (max_side - gap) / aspect_sum,
        max_side / (1 + bar_ratio),
        max(left.height, right.height),  # never upscale beyond the larger original
    )
    # Also keep the whole picture within Telegram's 20:1 ratio: two very wide panoramas
    # side by side would otherwise exceed it (padding the height is harmless).
    photo_h = max(int(photo_h), 16)
    left, right = _fit_height(left, photo_h), _fit_height(right, photo_h)
    bar_h = max(24, round(photo_h * bar_ratio))

    width = left.width + gap + right.width
    height = photo_h + bar_h
    height = max(height, -(-width // TG_MAX_RATIO))
    width = max(width, -(-height // TG_MAX_RATIO))
    assert width + height <= TG_MAX_SIDES_SUM

    canvas = Image.new("RGB", (width, height), _WHITE)
    draw = ImageDraw.Draw(canvas)
    font = load_font(max(12, round(bar_h * 0.62)), cjk_font)
    top = (height - photo_h - bar_h) // 2  # non-zero only when padded for the ratio
    # Muted red for "before", green for "after": the convention in rectification notices.
    panels = (
        (0, left, before_label, (192, 57, 43)),
        (left.width + gap, right, after_label, (39, 140, 74)),
    )
    for x, photo, label, colour in panels:
        draw.rectangle((x, top, x + photo.width - 1, top + bar_h - 1), fill=colour)
        text_box = draw.textbbox((0, 0), label, font=font)
        text_w, text_h = text_box[2] - text_box[0], text_box[3] - text_box[1]
        text_x = x + (photo.width - text_w) / 2 - text_box[0]
        text_y = top + (bar_h - text_h) / 2 - text_box[1]
        draw.text((text_x, text_y), label, font=font, fill=_WHITE)
        canvas.paste(photo, (x, top + bar_h))
    return _encode_jpeg(canvas, 85)
