"""A visible stamp on evidence photos shown in groups, as an inspector's 水印相机 draws it.

Only the copy sent to a chat is stamped; the stored original stays as it was uploaded (after
sanitising), so a stamp can be redrawn, and a checker can always see the bare photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from PIL import Image, ImageDraw

from bot.media.fonts import load_font
from bot.media.sanitize import ImageLimits, decode, encode_jpeg

# The band's share of the photo's shorter side per line of text; readable on a phone
# (Telegram shows photos at up to 1280 px) without hiding the problem in the picture.
LINE_SHARE: Final = 0.045
MIN_LINE_PX: Final = 14
BAND_RGBA: Final = (0, 0, 0, 150)
TEXT_RGB: Final = (255, 255, 255)
ACCENT_RGB: Final = (255, 196, 0)  # the first line (number, 整改前/后), as 水印相机 do


def band_height(size: tuple[int, int], lines: int) -> int:
    """Height in px of the stamp band at the bottom of a photo of `size` with `lines` lines."""
    line = max(MIN_LINE_PX, round(min(size) * LINE_SHARE))
    pad = max(4, line // 3)
    return lines * round(line * 1.25) + 2 * pad


def stamp(image: bytes, lines: Sequence[str], *, font: Path | None = None,
          max_side: int = 2048, quality: int = 85) -> bytes:
    """A JPEG copy of `image` with `lines` written on a dark band along its bottom edge.

    The input goes through the same verification as uploads (raises ImageRejected). The
    input bytes are not modified. CPU-bound: call through bot.media.jobs.run_image_job."""
    img = decode(image, ImageLimits(max_side=max_side))
    shown = [line for line in lines if line]
    if not shown:
        return encode_jpeg(img, quality)
    line_px = max(MIN_LINE_PX, round(min(img.size) * LINE_SHARE))
    pad = max(4, line_px // 3)
    height = band_height(img.size, len(shown))
    face = load_font(line_px, font)
    overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    top = img.height - height
    draw.rectangle((0, top, img.width, img.height), fill=BAND_RGBA)
    y = top + pad
    for i, text in enumerate(shown):
        draw.text((pad * 2, y), text, font=face, fill=ACCENT_RGB if i == 0 else TEXT_RGB)
        y += round(line_px * 1.25)
    out = Image.alpha_composite(img.convert("RGBA"), overlay).convert("RGB")
    return encode_jpeg(out, quality)
