"""Issue 11 (first contact), the inspection and task screens: through the real application."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.standards import Standard
from bot.i18n import t
from db.models import Report
from sandbox.html_entities import parse_formatted, u16len
from tests.bot.conftest import (
    ZH,
    Chat,
    action,
    answer_compliant_until,
    data_where,
    header,
    jpeg,
    open_hotel,
    record,
)
from tests.bot.fakes import JSON

Sessions = async_sessionmaker[AsyncSession]


def shown(message: JSON) -> str:
    """The text as Telegram shows it (HTML parsed)."""
    return parse_formatted(message.get("text") or message.get("caption") or "", "HTML")[0]


async def test_a_note_near_telegrams_limit_never_blocks_the_inspection(
    zhang: Chat, db: Sessions, hotel_standard: Standard
) -> None:
    """Issue 11 item 5: a 4,090-character note is shown shortened with "…" (the full text
    stays stored) and Resume keeps working, however long the notes grow."""
    msg = await open_hotel(zhang)
    asking = await zhang.press(msg, data_where(msg, action("note")))
    assert asking["text"].endswith(t(ZH, "inspect.ask_note"))
    note = "墙" * 4000 + "a" * 89 + "尾"  # 4,090 characters, as in the report
    screen = await zhang.say(note)
    assert screen["text"].startswith(header(hotel_standard, 1))
    assert "…" in shown(screen) and u16len(shown(screen)) <= 4096
    assert "尾" not in shown(screen)
    rec = await record(db)
    assert rec.answers[hotel_standard.items[0].key].remark == note  # stored in full

    # A second note on the same item (now 8,000+ characters together), then pause and resume.
    screen = await zhang.press(screen, data_where(screen, action("note")))
    screen = await zhang.say("😀" * 3000)  # 6,000 UTF-16 code units
    assert u16len(shown(screen)) <= 4096
    await zhang.press(screen, data_where(screen, action("pause")))
    menu = await zhang.say("/inspect")
    resumed = await zhang.press(menu, data_where(menu, lambda _t, d: d.startswith("r:")))
    assert resumed["text"].startswith(header(hotel_standard, 1))
    assert u16len(shown(resumed)) <= 4096
    rec = await record(db)
    assert rec.answers[hotel_standard.items[0].key].remark == note + "\n" + "😀" * 3000


async def test_a_photo_nobody_asked_for_during_an_inspection_is_evidence_not_a_report(
    zhang: Chat, db: Sessions, hotel_standard: Standard
) -> None:
    """Issue 11 item 7: inside an open inspection a photo belongs to the inspection: it is
    attached to the current item as extra evidence, with a word saying which item; no
    resident's report draft is started."""
    msg = await answer_compliant_until(zhang, await open_hotel(zhang), hotel_standard, 2)
    before = len(zhang.transcript())
    screen = await zhang.send_photo(jpeg(), 800, 600)
    said = [m["text"] for m in zhang.transcript()[before:]]
    item = hotel_standard.items[2]
    assert said[0] == t(ZH, "inspect.photo_added", number=item.number, count=1)
    assert screen["text"].startswith(header(hotel_standard, 3))
    assert t(ZH, "inspect.current_photos", count=1) in screen["text"]
    assert "reply_markup" not in zhang.api.message(zhang.id, msg["message_id"])
    async with db() as s:
        assert (await s.scalars(select(Report))).all() == []
    rec = await record(db)
    assert rec.evidence == 1 and rec.inspection.step == 2
