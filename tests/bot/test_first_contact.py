"""Issue 11 (first contact), the inspection and task screens: through the real application."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import WenmingApplication
from bot.domain.standards import Standard
from bot.domain.tasks import Action
from bot.render.i18n import t
from bot.services import tasks as svc
from db.models import Inspection, OutboxMessage, Person, Photo, Report, Site, Unit
from sandbox.html_entities import parse_formatted, u16len
from tests.bot.conftest import (
    EN,
    HOTEL,
    ZH,
    ZHANG,
    Chat,
    TgUser,
    action,
    answer_compliant_until,
    buttons,
    data_where,
    deps_of,
    header,
    jpeg,
    open_hotel,
    record,
    verdict,
)
from tests.bot.fakes import JSON, FakeBotAPI
from tests.conftest import FakeClock

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


ADMIN = TgUser(10000, "王管理")
MEMBER_ID, VERIFIER_ID = 10012, 10002  # 陈联络 of liaison_1; 李测评, another inspector


async def _task_awaiting_check(app: WenmingApplication, now: datetime) -> int:
    """A finding for liaison_1, accepted and fixed: it waits for a check."""
    uow_factory = deps_of(app).uow
    async with uow_factory() as uow:
        unit = (await uow.session.scalars(select(Unit).where(Unit.code == "liaison_1"))).one()
        task = await svc.create_task(uow, source="finding", unit_id=unit.id, title="门前堆放杂物",
                                     due_at=now + timedelta(days=3), created_by=ZHANG.id,
                                     now=now)
        await uow.commit()
    for step in (Action.ACCEPT, Action.SUBMIT_FIX):
        async with uow_factory() as uow:
            member = await uow.session.get(Person, MEMBER_ID)
            current = await svc.get_task(uow, task.id)
            photo = Photo(sha256="a" * 64, width=640, height=480, size=1000, phash=1,
                          chat_id=MEMBER_ID, message_id=1, uploaded_by=MEMBER_ID)
            if step is Action.SUBMIT_FIX:
                uow.session.add(photo)
                await uow.session.flush()
            await svc.act(uow, member, task.id, step, expected_version=current.version,
                          reason="已清理", now=now,
                          after_photo_ids=[photo.id] if step is Action.SUBMIT_FIX else [])
            await uow.commit()
    return task.id


async def test_a_tasks_screen_loses_buttons_the_task_has_moved_past(
    app: WenmingApplication, chat_with: Callable[[TgUser], Chat], db: Sessions,
    clock: FakeClock,
) -> None:
    """Issue 11 item 11: /tasks N shows only the actions valid now; once someone else closes
    the task its buttons are taken away, and a press on an old one is refused politely and
    leaves the buttons that are valid now (an admin may reopen a closed task)."""
    for someone in (ADMIN, TgUser(MEMBER_ID, "陈联络"), TgUser(VERIFIER_ID, "李测评")):
        await chat_with(someone).say("/start")  # people of the org file meet the bot
    task_id = await _task_awaiting_check(app, clock.now)
    admin = chat_with(ADMIN)
    screen = await admin.say(f"/tasks {task_id}")
    pass_button = data_where(screen, lambda _t, d: d.endswith(":p"))
    async with deps_of(app).uow() as uow:
        verifier = await uow.session.get(Person, VERIFIER_ID)
        current = await svc.get_task(uow, task_id)
        await svc.act(uow, verifier, task_id, Action.VERIFY_PASS,
                      expected_version=current.version, now=clock.now)
        await uow.commit()
    async with db() as s:
        edits = (await s.scalars(select(OutboxMessage).where(
            OutboxMessage.method == "editMessageReplyMarkup"))).all()
    assert [(m.chat_id, m.params["message_id"]) for m in edits] == [
        (ADMIN.id, screen["message_id"])]
    after = await admin.press(screen, pass_button)
    assert admin.answer()["show_alert"] is True
    assert "李测评" in admin.answer()["text"]  # who handled it
    assert [d.rsplit(":", 1)[1] for _t, d in buttons(after)] == ["o"]


async def test_a_unit_member_from_the_org_file_gets_a_menu_with_tasks(
    chat_with: Callable[[TgUser], Chat], api: FakeBotAPI
) -> None:
    """Issue 11 item 11: a unit member named in the organisation file (never invited) has
    /tasks in their command menu from their first /start."""
    await chat_with(TgUser(MEMBER_ID, "陈联络")).say("/start")
    menus = [c for c in api.calls("setMyCommands")
             if c.get("scope") == {"type": "chat", "chat_id": MEMBER_ID}]
    assert menus and "tasks" in [c["command"] for c in menus[-1]["commands"]]


async def test_a_residents_start_sets_their_menu_so_a_demoted_person_loses_tasks(
    resident: Chat, api: FakeBotAPI
) -> None:
    """Issue 11 item 11: the menu was only republished at /start for roles above resident, so
    a person demoted to resident kept /tasks and /inspect in it. /start sets every person's
    own menu, a resident's too (one cheap call)."""
    await resident.say("/start")
    menus = [c for c in api.calls("setMyCommands")
             if c.get("scope") == {"type": "chat", "chat_id": resident.id}]
    assert menus
    commands = [c["command"] for c in menus[-1]["commands"]]
    assert "tasks" not in commands and "inspect" not in commands and "report" in commands


async def test_start_in_the_middle_of_an_inspection_offers_to_resume_it(
    zhang: Chat, hotel_standard: Standard
) -> None:
    """Issue 11 item 11: /start during an inspection mentions it, with a button to resume."""
    msg = await answer_compliant_until(zhang, await open_hotel(zhang), hotel_standard, 2)
    greeting = await zhang.say("/start")
    assert t(ZH, "start.open_inspections", count=1) in greeting["text"]
    resume = data_where(greeting, lambda _t, d: d.startswith("r:"))
    resumed = await zhang.press(greeting, resume)
    assert resumed["text"].startswith(header(hotel_standard, 3))
    assert "reply_markup" not in zhang.api.message(zhang.id, msg["message_id"])


async def test_a_second_inspector_is_warned_who_has_the_site_open_and_may_go_on(
    zhang: Chat, chat_with: Callable[[TgUser], Chat], db: Sessions, clock: FakeClock
) -> None:
    """Issue 11 item 11: opening a site someone else has open names who and since when, and
    lets the second inspector go on anyway or choose another site."""
    await open_hotel(zhang)
    async with db() as s:
        hotel = (await s.scalars(select(Site).where(Site.name == HOTEL))).one()
    li = chat_with(TgUser(VERIFIER_ID, "李测评"))
    menu = await li.say("/inspect")
    warned = await li.press(menu, f"s:{hotel.id}")
    since = clock.now.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert t(ZH, "inspect.site_held_by", name=ZHANG.first_name, since=since) in warned["text"]
    async with db() as s:
        assert len((await s.scalars(select(Inspection))).all()) == 1  # nothing started yet
    assert data_where(warned, lambda _t, d: d == "f:new")  # choose another site
    started = await li.press(warned, data_where(warned, lambda _t, d: d.endswith(":go")))
    assert started["text"].startswith(f"<b>{HOTEL}</b> · ")  # its first item
    async with db() as s:
        assert len((await s.scalars(select(Inspection))).all()) == 2


FULL_WIDTH = re.compile("[（）：，。；！？「」、　【】《》]")
CJK = re.compile(r"[\u4e00-\u9fff]")


async def test_tasks_in_english_name_units_sites_titles_and_states_in_english(
    zhang: Chat, chat_with: Callable[[TgUser], Chat], hotel_standard: Standard
) -> None:
    """Issue 11 item 12: an English reader's /tasks and /tasks N show the unit's and the
    site's English names, the task's title in the standard's English and the states in
    English, with no full-width punctuation; only people's names stay as they are."""
    msg = await open_hotel(zhang)
    first = hotel_standard.items[0]
    msg = await zhang.press(msg, data_where(msg, verdict("n")))
    if first.photo_on_fail:
        msg = await zhang.send_photo(jpeg(), 800, 600)
        msg = await zhang.press(msg, data_where(msg, action("done")))
    for _ in hotel_standard.items[1:]:
        msg = await zhang.press(msg, data_where(msg, verdict("c")))
    await zhang.press(msg, data_where(msg, lambda _t, d: d.endswith(":submit")))

    admin = chat_with(TgUser(ADMIN.id, "Wang", language_code="en"))
    await admin.say("/start")
    listing = await admin.say("/tasks")
    card = await admin.say("/tasks 1")
    card_text = card.get("text") or card.get("caption") or ""
    title = f"{first.number} {first.text.en}"
    assert title[:30] in listing["text"] and title[:30] in card_text
    assert "Liaison group 1 (commerce bureau)" in card_text
    assert "Dongling Crowne Plaza Hotel" in card_text
    assert t(EN, "task.state.open") in listing["text"]
    refusal = await admin.say("/tasks state nosuch")
    assert refusal["text"] == t(EN, "task.bad_state", state="nosuch", states=", ".join(
        t(EN, f"task.state.{s}") for s in
        ("open", "accepted", "fix_submitted", "returned", "closed")))
    for shown_text in (listing["text"], card_text, refusal["text"]):
        assert not FULL_WIDTH.search(shown_text), shown_text
        assert not CJK.search(shown_text.replace(ZHANG.first_name, "")), shown_text


async def test_replies_that_quote_long_typed_text_fit_too(
    zhang: Chat, chat_with: Callable[[TgUser], Chat]
) -> None:
    """Issue 11 item 5: a reply quoting what was typed (a site search, a state in /tasks)
    shortens the quote instead of failing."""
    menu = await zhang.say("/inspect")
    await zhang.press(menu, data_where(menu, lambda _t, d: d == "f:search"))
    answer = await zhang.say("找" * 4090)
    assert answer["text"].startswith(t(ZH, "inspect.no_site_found", query="找")[:8])
    assert "…" in shown(answer) and u16len(shown(answer)) <= 4096
    admin = chat_with(ADMIN)
    refusal = await admin.say("/tasks state " + "态" * 4083)  # 4,096 in all
    assert "…" in shown(refusal) and u16len(shown(refusal)) <= 4096
