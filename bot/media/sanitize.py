"""Sanitising an upload: verify, orient, strip, shrink and re-encode it (Pillow only).

Security model: every upload is untrusted. The claimed filename / MIME type is ignored, the
format is sniffed from magic bytes, sizes are checked before any pixel is decoded, and the
stored copy is a fresh JPEG re-encoded from pixels only, so no metadata (EXIF, GPS, maker
notes, XMP, ICC, JPEG comments) can survive.
"""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass
from typing import Final, Literal

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

RejectReason = Literal["too_large", "too_many_pixels", "unsupported", "corrupt", "too_small"]

# Telegram rejects sendPhoto when width + height > 10000 or the aspect ratio exceeds 20.
TG_MAX_SIDES_SUM: Final = 10_000
TG_MAX_RATIO: Final = 20

WHITE: Final = (255, 255, 255)


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


DEFAULT_LIMITS: Final = ImageLimits()

_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
# The ISO base media file's major brands of HEIC stills and sequences (ISO/IEC 23008-12).
_HEIC_BRANDS: Final = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1",
                                 b"msf1"})


def _sniff_format(raw: bytes) -> str | None:
    """Return the Pillow format name for allowed formats, judged by magic bytes only."""
    if raw.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if raw.startswith(_PNG_MAGIC):
        return "PNG"
    if len(raw) >= 12 and raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "WEBP"
    if len(raw) >= 12 and raw[4:8] == b"ftyp" and raw[8:12] in _HEIC_BRANDS:
        return "HEIF"  # an iPhone's photo sent as a file
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
        raise ImageRejected("unsupported", f"magic bytes {raw[:12].hex()} not JPEG/PNG/WebP/HEIC")
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


def flatten_to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode to RGB; transparent areas become white (JPEG has no alpha, and
    Pillow's plain convert("RGB") would turn them black, hiding dark content)."""
    if img.mode == "RGB":
        return img
    has_alpha = img.mode in ("RGBA", "LA", "RGBa", "La", "PA") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, WHITE)
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
    canvas = Image.new("RGB", size, WHITE)
    canvas.paste(img, ((size[0] - width) // 2, (size[1] - height) // 2))
    return canvas


def decode(raw: bytes, limits: ImageLimits) -> Image.Image:
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
        rgb = flatten_to_rgb(upright)
        return _pad_to_telegram_ratio(rgb)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("too_many_pixels", str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise ImageRejected("corrupt", f"{img.format} decode failed: {exc!r}") from exc
    finally:
        img.close()


def encode_jpeg(img: Image.Image, quality: int) -> bytes:
    # Pixels only: a brand-new image has empty .info, so nothing from the upload (exif,
    # icc_profile, xmp, and notably the JPEG "comment", which Pillow copies from .info by
    # default) can reach the encoder. No exif=/icc_profile=/xmp= arguments either.
    clean = Image.new("RGB", img.size)
    clean.paste(img)
    buf = io.BytesIO()
    clean.save(buf, "JPEG", quality=quality, optimize=True, progressive=True)
    return buf.getvalue()


def normalize(raw: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> tuple[bytes, int, int]:
    """Verify an upload and return ``(jpeg_bytes, width, height)`` of the clean copy.

    Raises :class:`ImageRejected`. CPU-heavy (~0.3 s for 12 MP, see bench/images.py):
    call it from a thread (MediaStore.aput / run_image_job).
    """
    img = decode(raw, limits)
    return encode_jpeg(img, limits.jpeg_quality), img.width, img.height
