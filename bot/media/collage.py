"""Composed pictures: a before/after comparison of a fix."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from bot.media.fonts import load_font
from bot.media.sanitize import (
    TG_MAX_RATIO,
    TG_MAX_SIDES_SUM,
    WHITE,
    ImageLimits,
    decode,
    encode_jpeg,
)


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
    font: Path | None = None,
) -> bytes:
    """A before/after comparison as JPEG: both photos at the same height, side by side,
    each under a labelled bar. The longest side is at most ``max_side`` (Telegram shows
    photos at up to 1280 px) and the result is always valid for sendPhoto.

    Inputs go through the same verification as uploads (raises :class:`ImageRejected`).
    CPU-bound: call through :func:`run_image_job`.
    ``font`` overrides the CJK font (Settings.cjk_font).
    """
    if max_side < 64:
        raise ValueError("max_side too small for a labelled comparison")
    limits = ImageLimits(max_side=max_side * 2)
    left, right = decode(before, limits), decode(after, limits)

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

    canvas = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(canvas)
    label_font = load_font(max(12, round(bar_h * 0.62)), font)
    top = (height - photo_h - bar_h) // 2  # non-zero only when padded for the ratio
    # Muted red for "before", green for "after": the convention in rectification notices.
    panels = (
        (0, left, before_label, (192, 57, 43)),
        (left.width + gap, right, after_label, (39, 140, 74)),
    )
    for x, photo, label, colour in panels:
        draw.rectangle((x, top, x + photo.width - 1, top + bar_h - 1), fill=colour)
        text_box = draw.textbbox((0, 0), label, font=label_font)
        text_w, text_h = text_box[2] - text_box[0], text_box[3] - text_box[1]
        text_x = x + (photo.width - text_w) / 2 - text_box[0]
        text_y = top + (bar_h - text_h) / 2 - text_box[1]
        draw.text((text_x, text_y), label, font=label_font, fill=WHITE)
        canvas.paste(photo, (x, top + bar_h))
    return encode_jpeg(canvas, 85)
