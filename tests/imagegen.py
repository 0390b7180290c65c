"""Test images made on the spot: a phone-like JPEG with GPS EXIF, a corrupt one, a bomb."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import ExifTags, Image, ImageDraw

GPS_IFD = 0x8825


def jpeg_with_gps(width: int = 1600, height: int = 1200, colour: str = "#b04030", *,
                  taken: str | None = None, orientation: int = 1) -> bytes:
    """A JPEG carrying GPS coordinates, camera make/model and a serial, like a phone's photo;
    `taken` ("2025:06:01 10:00:00", EXIF's format) adds the capture time."""
    img = Image.new("RGB", (width, height), colour)
    draw = ImageDraw.Draw(img)
    draw.rectangle((width // 4, height // 4, width // 2, height // 2), fill="#2040a0")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model X"  # Model
    exif[0xA431] = "SERIAL-123456789"  # BodySerialNumber
    exif[0x0112] = orientation
    if taken is not None:
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = taken
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (34.0, 21.0, 36.0)
    gps[3] = "E"
    gps[4] = (107.0, 14.0, 24.0)
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def truncated_jpeg() -> bytes:
    data = jpeg_with_gps(800, 600)
    return data[: len(data) // 3]


def png_bomb(side: int = 30000) -> bytes:
    """A tiny PNG whose header claims side x side pixels."""
    raw_row = b"\x00" + b"\x00" * (side // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(raw_row) for _ in range(side)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data)
            + chunk(b"IEND", b""))
