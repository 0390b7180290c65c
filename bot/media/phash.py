"""Perceptual hashes of photos (dHash) and how far apart two of them are."""

from __future__ import annotations

from typing import Final

from PIL import Image

from bot.media.sanitize import DEFAULT_LIMITS, decode, flatten_to_rgb

# Hamming distance between two dHashes at or below which photos count as near-identical.
# Re-compression, resizing and mild brightness changes stay within ~0-4 bits in practice.
DUPLICATE_MAX_DISTANCE: Final = 6


def perceptual_hash(image: Image.Image | bytes) -> int:
    """64-bit difference hash (dHash) as an unsigned int.

    The image is reduced to 9x8 greyscale and each bit says whether a pixel is brighter
    than its right-hand neighbour. Robust to re-compression, resizing and brightness, not
    to crops or rotations (uploads are made upright first). Bytes go through the same
    verification as :func:`normalize`.

    Note: values use all 64 bits; a signed BIGINT column needs ``h - (1 << 64)`` when
    ``h >= 1 << 63``.
    """
    img = decode(image, DEFAULT_LIMITS) if isinstance(image, bytes) else image
    if img.mode not in ("L", "RGB"):
        img = flatten_to_rgb(img)
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
