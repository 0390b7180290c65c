"""Input the bot did not ask for gets a clear answer from the catalogue, and changes nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.standards import Standard, Verdict
from bot.render.i18n import t
from db.models import Inspection, Person
from tests.bot.conftest import (
    ZH,
    ZHANG,
    Chat,
    TgUser,
    UpdateFactory,
    answer_compliant_until,
    data_where,
    first_index,
    header,
    open_hotel,
    record,
    verdict,
)

Sessions = async_sessionmaker[AsyncSession]


@pytest.mark.parametrize("data", ["v:x", "zzz", "v:1:0:q", "i:1:0", "s:hotel", "l:fr"])
async def test_malformed_button_data_is_a_stale_button(
    zhang: Chat, db: Sessions, hotel_standard: Standard, data: str
) -> None:
    item1 = await open_hotel(zhang)
    before = zhang.last()

    await zhang.press(item1, data)
    assert zhang.answer()["text"] == t(ZH, "error.stale_button")
    if data != "l:fr":  # the language picker answers with a toast rather than an alert
        assert zhang.answer()["show_alert"] is True
    assert zhang.transcript()[-1] == before

    # Nothing was recorded, and the inspection still answers its real buttons.
    rec = await record(db)
    assert rec.answers == {} and rec.inspection.step == 0
    item2 = await zhang.press(item1, data_where(item1, verdict("c")))
    assert item2["text"].startswith(header(hotel_standard, 2))


async def test_sticker_is_not_supported(zhang: Chat, db: Sessions) -> None:
    item1 = await open_hotel(zhang)
    reply = await zhang.send_sticker()
    assert reply["text"] == t(ZH, "error.unsupported_message")
    assert zhang.api.message(zhang.id, item1["message_id"]) == item1

    rec = await record(db)
    assert rec.answers == {} and rec.inspection.step == 0 and rec.inspection.awaiting is None


async def test_unknown_command_says_so_and_shows_the_role_help(
    zhang: Chat, db: Sessions, hotel_standard: Standard
) -> None:
    item1 = await open_hotel(zhang)
    reply = await zhang.say("/frobnicate now")
    assert reply["text"] == (t(ZH, "error.unknown_command") + "\n\n" + t(ZH, "help.inspector"))

    rec = await record(db)
    assert rec.answers == {} and rec.inspection.step == 0
    # The inspection is still live: the buttons work.
    item2 = await zhang.press(item1, data_where(item1, verdict("b")))
    assert item2["text"].startswith(header(hotel_standard, 2))
    rec = await record(db)
    assert [a.verdict for a in rec.answers.values()] == [Verdict.BASIC.value]


async def test_text_without_context_gets_the_role_hint(
    zhang: Chat, resident: Chat, db: Sessions
) -> None:
    item1 = await open_hotel(zhang)
    reply = await zhang.say("你好")
    assert reply["text"] == t(ZH, "inspect.text_unexpected")
    # Text is not taken as a remark unless one was asked for.
    rec = await record(db)
    assert rec.answers == {} and rec.inspection.awaiting is None
    assert zhang.api.message(zhang.id, item1["message_id"]) == item1

    reply = await resident.say("你好")
    assert reply["text"] == t(ZH, "error.text_unexpected")
    async with db() as s:
        person = await s.get(Person, resident.id)
        assert person is not None and person.role == "resident" and person.pending is None
        assert len((await s.scalars(select(Inspection))).all()) == 1


async def test_a_press_on_someone_elses_inspection_is_refused(
    zhang: Chat, chat_with: Callable[[TgUser], Chat], db: Sessions
) -> None:
    item1 = await open_hotel(zhang)
    li = chat_with(TgUser(10002, "李测评"))  # the other inspector
    await li.say("/start")
    forged = data_where(item1, verdict("c"))
    li_msg = li.last()
    await li.press(li_msg, forged)
    assert li.answer()["text"] == t(ZH, "inspect.not_yours")
    rec = await record(db)
    assert rec.answers == {} and rec.inspection.inspector_id == ZHANG.id


async def test_editing_an_earlier_remark_is_not_taken_as_the_next_items_remark(
    zhang: Chat, updates: UpdateFactory, db: Sessions, hotel_standard: Standard
) -> None:
    na_at = first_index(hotel_standard, lambda item: Verdict.NA in item.verdicts)
    assert Verdict.NA in hotel_standard.items[na_at + 1].verdicts
    msg = await answer_compliant_until(zhang, await open_hotel(zhang), hotel_standard, na_at)
    await zhang.press(msg, data_where(msg, verdict("a")))
    typed = updates.text(zhang.user, "本店无餐厅")
    assert typed.message is not None
    await zhang.feed(typed)
    msg = zhang.last()
    assert msg["text"].startswith(header(hotel_standard, na_at + 2))
    await zhang.press(msg, data_where(msg, verdict("a")))  # the next item is n/a too

    # He fixes a typo in the remark he sent for the previous item.
    await zhang.feed(updates.edited_text(zhang.user, typed.message.message_id, "本店无餐厅。"))

    rec = await record(db)
    this, previous = hotel_standard.items[na_at + 1], hotel_standard.items[na_at]
    assert rec.answers[previous.key].remark == "本店无餐厅"
    assert rec.answers[this.key].remark is None
    assert rec.inspection.step == na_at + 1 and rec.inspection.awaiting == "remark"


async def test_a_sticker_when_a_photo_is_awaited_says_a_photo_is_needed(
    zhang: Chat, db: Sessions, hotel_standard: Standard
) -> None:
    """Tryout: after 不符合 asked for evidence, a sticker or a voice message got "暂不支持这种
    消息。请发送文字、照片或位置。", the generic list; it now says a photo is what is waited for,
    and the item still waits for it."""
    dyn = first_index(hotel_standard, lambda item: item.photo_on_fail)
    msg = await answer_compliant_until(zhang, await open_hotel(zhang), hotel_standard, dyn)
    await zhang.press(msg, data_where(msg, verdict("n")))
    reply = await zhang.send_sticker()
    assert reply["text"] == t(ZH, "error.photo_awaited")
    rec = await record(db)
    assert rec.inspection.awaiting == "photo" and rec.inspection.step == dyn
