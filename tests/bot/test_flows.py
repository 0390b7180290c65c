"""Conversations through the real application, read as transcripts, then checked in the database.

The end-to-end twins of these (tests/e2e/test_inspection.py) go through the sandbox over HTTP;
these run in-process against the fake Bot API and look closer at what the bot asked Telegram
to do: edit or send, which answer a press got.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.standards import Standard, Verdict
from bot.render.i18n import t
from db.models import Inspection, Person, Photo
from tests.bot.conftest import (
    EN,
    HOTEL,
    RESIDENT,
    ZH,
    ZHANG,
    Chat,
    action,
    answer_compliant_until,
    buttons,
    data_where,
    first_index,
    header,
    jpeg,
    open_hotel,
    record,
    verdict,
)
from tests.bot.fakes import JSON, FakeBotAPI
from tests.conftest import FakeClock

Sessions = async_sessionmaker[AsyncSession]


async def test_resident_is_greeted_as_resident_and_may_not_inspect(
    resident: Chat, db: Sessions
) -> None:
    greeting = await resident.say("/start")
    assert greeting["text"] == "\n\n".join([
        t(ZH, "start.greeting.resident", name=RESIDENT.first_name), t(ZH, "help.resident"),
    ])
    refusal = await resident.say("/inspect")
    assert refusal["text"] == t(ZH, "error.role_required", role=t(ZH, "role.inspector"))
    assert len(resident.transcript()) == 2

    async with db() as s:
        person = await s.get(Person, RESIDENT.id)
        assert person is not None and person.role == "resident"
        assert (await s.scalars(select(Inspection))).all() == []


async def test_inspector_answers_in_one_message_and_old_presses_do_no_harm(
    zhang: Chat, api: FakeBotAPI, db: Sessions, hotel_standard: Standard
) -> None:
    greeting = await zhang.say("/start")
    assert greeting["text"].startswith(t(ZH, "start.greeting.inspector", name=ZHANG.first_name))

    menu = await zhang.say("/inspect")
    assert menu["text"] == t(ZH, "inspect.choose_site")
    site_names = [text for text, data in buttons(menu) if data.startswith("s:")]
    assert HOTEL in site_names and len(site_names) == 5  # his five assigned sites

    sends_before = len(api.calls("sendMessage"))
    item1 = await zhang.press(menu, data_where(menu, lambda text, _d: text == HOTEL))
    # The menu itself became item 1: edited in place, nothing new sent.
    assert item1["message_id"] == menu["message_id"]
    assert item1["text"].startswith(header(hotel_standard, 1))
    assert api.calls("editMessageText")[-1]["message_id"] == menu["message_id"]
    assert len(api.calls("sendMessage")) == sends_before

    item2 = await zhang.press(item1, data_where(item1, verdict("c")))
    assert item2["text"].startswith(header(hotel_standard, 2))
    item3 = await zhang.press(item2, data_where(item2, verdict("b")))
    assert item3["text"].startswith(header(hotel_standard, 3))
    assert item3["message_id"] == menu["message_id"]

    # Telegram re-sending the press already handled (item 2, basic) changes nothing.
    calls_before = len(api.log)
    again = await zhang.press(item3, data_where(item2, verdict("b")))
    assert again == item3
    assert zhang.answer().get("text") is None
    new_calls = [c.method for c in api.log[calls_before:]]
    assert "sendMessage" not in new_calls
    # A different verdict from that older step is refused with the catalogue's alert.
    await zhang.press(item3, data_where(item2, verdict("n")))
    assert zhang.answer()["text"] == t(ZH, "checklist.stale_step")
    assert zhang.answer()["show_alert"] is True
    assert zhang.last() == item3

    assert len(zhang.transcript()) == 2  # the greeting and the one inspection message
    rec = await record(db)
    assert rec.inspection.status == "open" and rec.inspection.step == 2
    assert rec.inspection.message_id == menu["message_id"]
    assert {k: a.verdict for k, a in rec.answers.items()} == {
        hotel_standard.items[0].key: Verdict.COMPLIANT.value,
        hotel_standard.items[1].key: Verdict.BASIC.value,
    }


async def test_not_applicable_asks_for_a_remark_and_the_typed_text_completes_it(
    zhang: Chat, db: Sessions, hotel_standard: Standard
) -> None:
    na_at = first_index(hotel_standard, lambda item: Verdict.NA in item.verdicts)
    msg = await answer_compliant_until(zhang, await open_hotel(zhang), hotel_standard, na_at)

    asking = await zhang.press(msg, data_where(msg, verdict("a")))
    assert asking["text"].startswith(header(hotel_standard, na_at + 1))
    assert asking["text"].endswith(t(ZH, "inspect.ask_remark"))
    assert [d for _text, d in buttons(asking)] == [f"i:{_id(asking)}:{na_at}:cancel"]

    nxt = await zhang.say("本店无餐厅")
    # The next item comes as a new message below the remark; the old prompt loses its buttons.
    assert nxt["message_id"] > asking["message_id"]
    assert nxt["text"].startswith(header(hotel_standard, na_at + 2))
    assert "reply_markup" not in zhang.api.message(zhang.id, asking["message_id"])

    rec = await record(db)
    item = hotel_standard.items[na_at]
    assert rec.answers[item.key].verdict == Verdict.NA.value
    assert rec.answers[item.key].remark == "本店无餐厅"
    assert rec.inspection.step == na_at + 1 and rec.inspection.awaiting is None
    assert rec.inspection.message_id == nxt["message_id"]


async def test_non_compliant_dynamic_item_takes_a_photo_and_done_moves_on(
    zhang: Chat, api: FakeBotAPI, db: Sessions, hotel_standard: Standard
) -> None:
    dyn = first_index(hotel_standard, lambda item: item.photo_on_fail)
    msg = await answer_compliant_until(zhang, await open_hotel(zhang), hotel_standard, dyn)
    assert t(ZH, "inspect.photo_rule") in msg["text"]

    asking = await zhang.press(msg, data_where(msg, verdict("n")))
    assert t(ZH, "inspect.ask_evidence", count=0) in asking["text"]
    assert not any(d.endswith(":done") for _t, d in buttons(asking))  # no photo yet

    photo = jpeg(800, 600)
    prompt = await zhang.send_photo(photo, 800, 600)
    assert t(ZH, "inspect.ask_evidence", count=1) in prompt["text"]
    assert prompt["message_id"] > asking["message_id"]
    # The bot fetched the largest size, and only that.
    assert [c["file_id"] for c in api.calls("getFile")] == ["photo-1-x"]

    nxt = await zhang.press(prompt, data_where(prompt, action("done")))
    assert nxt["message_id"] == prompt["message_id"]
    assert nxt["text"].startswith(header(hotel_standard, dyn + 2))

    rec = await record(db)
    assert rec.answers[hotel_standard.items[dyn].key].verdict == Verdict.NONCOMPLIANT.value
    assert rec.evidence == 1
    assert rec.inspection.step == dyn + 1 and rec.inspection.awaiting is None
    async with db() as s:
        stored = (await s.scalars(select(Photo))).one()
    assert (stored.width, stored.height, stored.telegram_file_id) == (800, 600, "photo-1-x")


async def test_lang_english_switches_the_catalogue_for_the_next_reply(
    zhang: Chat, api: FakeBotAPI, db: Sessions
) -> None:
    chooser = await zhang.say("/lang")
    assert chooser["text"] == t(ZH, "lang.choose")
    done = await zhang.press(chooser, data_where(chooser, lambda _t, d: d == "l:en"))
    assert done["text"] == t(EN, "lang.set")
    # His own command menu follows the language.
    menu = api.calls("setMyCommands")[-1]
    assert menu["scope"] == {"type": "chat", "chat_id": ZHANG.id}
    assert menu["commands"][0]["description"] == t(EN, "command.inspect")

    reply = await zhang.say("/help")
    assert reply["text"] == t(EN, "help.inspector")

    async with db() as s:
        person = await s.get(Person, ZHANG.id)
        assert person is not None and person.language == EN


async def test_cancel_while_a_remark_is_awaited_withdraws_the_verdict_and_pauses(
    zhang: Chat, db: Sessions, hotel_standard: Standard
) -> None:
    na_at = first_index(hotel_standard, lambda item: Verdict.NA in item.verdicts)
    msg = await answer_compliant_until(zhang, await open_hotel(zhang), hotel_standard, na_at)
    asking = await zhang.press(msg, data_where(msg, verdict("a")))

    reply = await zhang.say("/cancel")
    assert reply["text"] == t(ZH, "cancel.paused")
    # The screen that asked for the reason shows the pause, with no prompt or button left
    # on it that the bot no longer listens to (tryout: "📝 Type a note…" stayed).
    screen = zhang.api.message(zhang.id, asking["message_id"])
    assert screen["text"].startswith("⏸ 已暂停") and f"{na_at}/" in screen["text"], screen
    assert "reply_markup" not in screen
    # Paused: text is no longer taken as the remark.
    reply = await zhang.say("本店无餐厅")
    assert reply["text"] == t(ZH, "inspect.text_unexpected")

    rec = await record(db)
    item = hotel_standard.items[na_at]
    assert item.key not in rec.answers or rec.answers[item.key].verdict is None
    assert all(a.remark is None for a in rec.answers.values())
    assert rec.inspection.status == "open"
    assert rec.inspection.step == na_at and rec.inspection.awaiting is None
    assert rec.person.active_inspection_id is None

    # /inspect offers to resume it, with the answered items kept.
    menu = await zhang.say("/inspect")
    assert menu["text"] == t(ZH, "inspect.open_list")
    resumed = await zhang.press(menu, data_where(menu, lambda _t, d: d.startswith("r:")))
    assert resumed["text"].startswith(header(hotel_standard, na_at + 1))


async def test_a_press_on_a_days_old_message_still_edits_it_in_place(
    zhang: Chat, db: Sessions, hotel_standard: Standard, clock: FakeClock
) -> None:
    item1 = await open_hotel(zhang)
    clock.advance(days=3)  # paused over a weekend; Telegram now sends the message as date 0

    await zhang.press_old(item1, data_where(item1, verdict("c")))

    # PTB 22 parses it as a Message with is_accessible False; a bot may edit its own messages
    # at any age, so the same message moves on.
    item2 = zhang.last()
    assert item2["message_id"] == item1["message_id"]
    assert item2["text"].startswith(header(hotel_standard, 2))
    rec = await record(db)
    assert rec.answers[hotel_standard.items[0].key].verdict == Verdict.COMPLIANT.value


async def test_a_press_on_a_message_the_user_deleted_continues_in_a_new_one(
    zhang: Chat, api: FakeBotAPI, db: Sessions, hotel_standard: Standard
) -> None:
    item1 = await open_hotel(zhang)
    api.delete(zhang.id, item1["message_id"])  # cleared from the chat; the press was in flight

    await zhang.press_old(item1, data_where(item1, verdict("c")))

    item2 = zhang.last()
    assert item2["message_id"] > item1["message_id"]
    assert item2["text"].startswith(header(hotel_standard, 2))
    assert api.calls("editMessageText")[-1]["message_id"] == item1["message_id"]  # tried first
    rec = await record(db)
    assert rec.answers[hotel_standard.items[0].key].verdict == Verdict.COMPLIANT.value
    assert rec.inspection.message_id == item2["message_id"]


def _id(message: JSON) -> int:
    """The inspection id carried by the buttons of an inspection message."""
    return int(buttons(message)[0][1].split(":")[1])
