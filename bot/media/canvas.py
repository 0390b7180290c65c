"""What the bot's pictures share (the weekly bulletin, the special actions' battle map): the
colours, the CJK fonts (a bold face when the collection has one), and text measured, shortened
and wrapped to a width in pixels. Pillow only.
"""

from __future__ import annotations

import html
import io
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bot.media.fonts import find_cjk_font, load_font
from bot.render.i18n import t

RED = (178, 34, 34)
DARK = (33, 33, 33)
GREY = (110, 110, 110)
LIGHT = (236, 236, 236)
WHITE = (255, 255, 255)
GREEN = (39, 140, 74)
AMBER = (214, 137, 16)
LAGGARD_BG = (253, 236, 234)


Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@cache
def cached_font(size: int, bold: bool = False, override: Path | None = None) -> Font:
    """The CJK font at `size` px (`override`: Settings.cjk_font), its bold face when asked
    for and installed beside the regular one; loaded once per size."""
    if bold:
        path = find_cjk_font(override)
        if path is not None and "Regular" in path.name:
            bold_path = Path(str(path).replace("Regular", "Bold"))
            if bold_path.is_file():
                for index in range(8):
                    try:
                        font = ImageFont.truetype(str(bold_path), size, index=index)
                    except OSError:
                        break
                    if "SC" in (font.getname()[0] or "").split():
                        return font
    return load_font(size, override)


def text_width(draw: ImageDraw.ImageDraw, text: str, font: Font) -> float:
    return draw.textlength(text, font=font)


def fit_text(draw: ImageDraw.ImageDraw, text: str, font: Font, width: float) -> str:
    """Shorten text with an ellipsis to fit `width` pixels."""
    if text_width(draw, text, font) <= width:
        return text
    while text and text_width(draw, text + "…", font) > width:
        text = text[:-1]
    return text + "…"


def wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, width: float) -> list[str]:
    """Break text into lines of at most `width` pixels (character-wise: fine for Chinese,
    and English words are kept whole when spaces allow)."""
    lines: list[str] = []
    current = ""
    for token in _tokens(text):
        if current and text_width(draw, current + token, font) > width:
            lines.append(current.rstrip())
            current = token.lstrip()
        else:
            current += token
    if current:
        lines.append(current.rstrip())
    return lines


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    word = ""
    for ch in text:
        if ch.isascii() and not ch.isspace():
            word += ch
            continue
        if word:
            out.append(word)
            word = ""
        out.append(ch)
    if word:
        out.append(word)
    return out


def plain(text: str) -> str:
    """Catalogue text is HTML-escaped for Telegram; the picture wants the characters."""
    return html.unescape(text)


def tp(lang: str, key: str, /, **values: object) -> str:
    return html.unescape(t(lang, key, **values))


FOOTER_LINE_H = 32


def draw_footer(draw: ImageDraw.ImageDraw, lines: list[str], y: int, font: Font, left: int,
                right: int) -> None:
    """A light rule at `y` across [left, right], then `lines` in grey under it (each
    FOOTER_LINE_H px; 16 px of space between the rule and the first)."""
    draw.line((left, y, right, y), fill=LIGHT, width=2)
    y += 16
    for line in lines:
        draw.text((left, y), line, fill=GREY, font=font)
        y += FOOTER_LINE_H


def png_bytes(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()
