"""Photos as Telegram treats them: a photo sent as a photo is re-encoded without any metadata
(no capture time, GPS or camera reach the bot), a photo sent as a file arrives byte for byte."""

from __future__ import annotations

import io

from PIL import ExifTags, Image
from telegram import Bot

from sandbox.client import SandboxClient
from tests.imagegen import jpeg_with_gps
from tests.sandbox.conftest import image_bytes

PHONE_PHOTO_METADATA = (b"SERIAL-123456789", b"PhoneMaker", b"Exif")


async def _downloaded_by_bot(bot: Bot, file_id: str) -> bytes:
    """The bytes the bot gets for a file_id: getFile, then the file download URL."""
    file = await bot.get_file(file_id)
    return bytes(await file.download_as_bytearray())


async def test_a_photo_sent_as_a_photo_reaches_the_bot_without_exif(
        client: SandboxClient, bot: Bot) -> None:
    user = await client.create_user("Li")
    original = jpeg_with_gps(1200, 900, taken="2025:06:01 10:00:00")
    sent = await client.send_photo(user["id"], original)
    assert [(p["width"], p["height"]) for p in sent["photo"]] == [
        (90, 68), (320, 240), (800, 600), (1200, 900)]
    for size in sent["photo"]:
        data = await _downloaded_by_bot(bot, size["file_id"])
        with Image.open(io.BytesIO(data)) as img:
            assert img.format == "JPEG" and (img.width, img.height) == (size["width"],
                                                                        size["height"])
            assert not img.getexif() and "exif" not in img.info
        assert not any(marker in data for marker in PHONE_PHOTO_METADATA)
        assert size["file_size"] == len(data)


async def test_a_photo_sent_as_a_file_reaches_the_bot_byte_for_byte(
        client: SandboxClient, bot: Bot) -> None:
    user = await client.create_user("Li")
    original = jpeg_with_gps(1200, 900, taken="2025:06:01 10:00:00")
    sent = await client.send_photo(user["id"], original, as_document=True)
    data = await _downloaded_by_bot(bot, sent["document"]["file_id"])
    assert data == original
    with Image.open(io.BytesIO(data)) as img:
        taken = img.getexif().get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal]
    assert taken == "2025:06:01 10:00:00"


async def test_a_turned_phone_photo_arrives_upright_and_a_png_arrives_as_a_jpeg(
        client: SandboxClient, bot: Bot) -> None:
    user = await client.create_user("Li")
    # Stored 1200x900 with "rotate 90° to show" (EXIF Orientation 6): Telegram shows 900x1200.
    turned = await client.send_photo(user["id"], jpeg_with_gps(1200, 900, orientation=6))
    assert (turned["photo"][-1]["width"], turned["photo"][-1]["height"]) == (900, 1200)
    png = await client.send_photo(user["id"], image_bytes(400, 300, "PNG"), filename="p.png",
                                  content_type="image/png")
    data = await _downloaded_by_bot(bot, png["photo"][-1]["file_id"])
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG" and img.size == (400, 300)


async def test_a_bot_photo_is_re_encoded_and_what_the_bot_uploaded_stays_inspectable(
        client: SandboxClient, bot: Bot) -> None:
    user = await client.create_user("Li", started=True)
    original = jpeg_with_gps(640, 480)
    sent = await bot.send_photo(user["id"], original)
    largest = sent.photo[-1]
    shown = await client.file_bytes(largest.file_id)
    assert not any(marker in shown for marker in PHONE_PHOTO_METADATA)
    # What the bot put on the wire, for tests of the bot's own privacy: here, the EXIF it sent.
    assert await client.uploaded_bytes(largest.file_id) == original
    # A document is kept as it is.
    doc = await bot.send_document(user["id"], original, filename="p.jpg")
    assert doc.document is not None
    assert await client.file_bytes(doc.document.file_id) == original
