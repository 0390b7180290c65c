"""Evidence that can be trusted, through the sandbox as the people involved see it: the task's
own before-photo sent again as the "after" photo is refused in private (the fix in progress is
kept), and an old photo (its camera says it was taken before the task existed) goes through
flagged on the card the checker reads in the group."""

from __future__ import annotations

import io

from PIL import ExifTags, Image, ImageDraw

from bot.render.i18n import t
from sandbox.client import JSON
from tests.conftest import Harness
from tests.e2e.chat import Chat, body, data_where, shown
from tests.e2e.test_tasks import (
    INSPECTOR,
    LIAISON_GROUP,
    LIAISON_MEMBER,
    ZH,
    card_changes,
    code,
    inspect_hotel,
    press,
    start_private,
    task_id_of,
)
from tests.imagegen import jpeg_with_gps


def old_camera_photo() -> bytes:
    """A phone photo (sent as a file, so its EXIF arrives) taken on 1 June 2025, 10:00."""
    img = Image.new("RGB", (900, 700), "#d8d0b0")
    draw = ImageDraw.Draw(img)
    for i in range(6):
        draw.ellipse((60 + i * 130, 80 + (i % 3) * 150, 180 + i * 130, 220 + (i % 3) * 150),
                     fill=(30 * i, 200 - 25 * i, 90))
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2025:06:01 10:00:00"
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


async def open_fix(harness: Harness) -> tuple[JSON, Chat, int, JSON]:
    """The inspector's failed item becomes a task; the unit accepts it and presses "submit
    the fix": returns the group's card, the member's private chat, the task id and the
    prompt asking for after-photos."""
    await inspect_hotel(harness, Chat(harness.sb, INSPECTOR))
    card = await harness.sb.wait_for_bot_message(
        LIAISON_GROUP, predicate=lambda m: "整改任务 #" in body(m))
    tid = task_id_of(card)
    await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "a")
    card = await card_changes(harness, card, lambda m: t(ZH, "task.state.accepted") in body(m))
    await start_private(harness, LIAISON_MEMBER)
    member = Chat(harness.sb, LIAISON_MEMBER)
    last = await member.last_id()
    await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "f")
    prompt = await harness.sb.wait_for_bot_message(LIAISON_MEMBER, after_message_id=last)
    return card, member, tid, prompt


async def test_a_recycled_before_photo_is_refused_and_an_old_photo_is_flagged_on_the_card(
        harness: Harness) -> None:
    card, member, tid, _ = await open_fix(harness)

    # The inspector's before-photo again, smaller and re-compressed: refused, in words.
    reply = await member.send_photo(jpeg_with_gps(640, 480, "#204080"))
    assert body(reply) == shown(t(ZH, "evidence.same_as_before", id=tid))

    # Another photo, sent as a file so its capture time arrives: taken long before the task.
    reply = await member.send_photo(old_camera_photo(), as_document=True)
    assert body(reply) == shown(t(ZH, "task.fix_photo", count=1))  # the refused one not counted
    await member.press(reply, data_where(reply, code("done")))

    card = await card_changes(harness, card,
                              lambda m: t(ZH, "task.state.fix_submitted") in body(m))
    text = body(card)
    assert shown(t(ZH, "evidence.card.title")) in text
    assert shown(t(ZH, "evidence.card.old", at="2025-06-01 10:00")) in text
    assert card.get("photo")  # 整改前 | 整改后, stamped


async def test_the_same_old_photo_sent_as_a_photo_arrives_without_capture_time_and_says_so(
        harness: Harness) -> None:
    """Telegram re-encodes a photo sent as a photo, dropping its EXIF: the bot cannot tell it
    is old, and the checker is told the photo carries no capture time (the unit was told, in
    the prompt, that a photo sent as a file keeps it)."""
    card, member, tid, prompt = await open_fix(harness)
    tip = shown(t(ZH, "task.ask.fix", id=tid, title="")).splitlines()[-1]
    assert "文件" in tip and tip in body(prompt)

    reply = await member.send_photo(old_camera_photo())  # as a photo: Telegram strips EXIF
    assert body(reply) == shown(t(ZH, "task.fix_photo", count=1))
    await member.press(reply, data_where(reply, code("done")))

    card = await card_changes(harness, card,
                              lambda m: t(ZH, "task.state.fix_submitted") in body(m))
    text = body(card)
    assert shown(t(ZH, "evidence.card.no_capture_time", count=1)) in text
    assert shown(t(ZH, "evidence.card.old", at="2025-06-01 10:00")) not in text
