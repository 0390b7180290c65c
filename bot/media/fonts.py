"""Finding and loading a font that can draw Chinese."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Final

from PIL import ImageFont

log = logging.getLogger(__name__)

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
    built-in font, which draws CJK as boxes). `override` (Settings.cjk_font) lets a
    deployment point at a font elsewhere, e.g. a container without Debian paths. Cached:
    call ``find_cjk_font.cache_clear()`` after installing fonts at runtime."""
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
    size: int, override: Path | None = None
) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A CJK-capable font at ``size`` px, or Pillow's default font if none is installed."""
    path = find_cjk_font(override)
    if path is not None:
        try:
            return ImageFont.truetype(str(path), size, index=_simplified_chinese_face(path))
        except OSError as exc:
            log.warning("cannot load CJK font %s: %r", path, exc)
    else:
        log.warning("no CJK font found (apt-get install fonts-noto-cjk); Chinese will not render")
    return ImageFont.load_default(size=size)
