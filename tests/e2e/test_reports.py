"""Residents' reports (随手拍) end to end: the real bot against the local Bot API sandbox."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from PIL import Image
from sqlalchemy import func, select
from telegram import Update

from bot.domain.tasks import Action, end_of_day
from bot.render.i18n import t
from bot.render.tasks import default_tz
from bot.services import tasks as task_service
from db.models import (
    OutboxMessage,
    Person,
    Photo,
    Report,
    ReportFollower,
    Task,
    TaskEvent,
    Unit,
)
from db.types import utcnow
from db.uow import UnitOfWork
from tests.conftest import Harness, wait_until
from tests.e2e.chat import Chat, body, buttons, data_where, shown
from tests.imagegen import jpeg_with_gps

ZH = "zh-hans"
RESIDENT = 20001  # 赵居民
ALICE = 20002  # Alice's Telegram speaks English
EN = "en"
ADMIN = 10000
HOUQIJIE_MEMBER = 10013  # 杨社区, a member of 后祁街社区
HOUQIJIE_GROUP = -1001004
HOUQIJIE = (34.3660, 107.1950)  # the community's own site
TICKET = re.compile(r"R-\d{4}-\d{6}")
JSON = dict[str, Any]


def has(key: str, lang: str = ZH, **values: object) -> Callable[[JSON], bool]:
    text = shown(t(lang, key, **values))
    return lambda m: text in body(m)


def button(suffix: str) -> Callable[[str, str], bool]:
    return lambda _text, data: data.endswith(suffix)


async def latest(chat: Chat, predicate: Callable[[JSON], bool], after: int = 0,
                 timeout: float = 10.0) -> JSON:
    """The newest bot message after `after` (as last edited) that matches."""
    def match(m: JSON) -> bool:
        return (m["message_id"] > after and bool(m.get("from", {}).get("is_bot"))
                and predicate(m))

    transcript = await chat.sb.wait_for(chat.chat_id, lambda ms: any(match(m) for m in ms),
                                        timeout)
    return [m for m in transcript if match(m)][-1]


async def press(chat: Chat, message: JSON, data: str) -> None:
    qid = await chat.sb.press(chat.user_id, chat.chat_id, message["message_id"], data)
    await chat.sb.wait_for_callback_answer(qid)


async def file_report(
    harness: Harness, user_id: int, category: str, *, photo: bytes | None = None,
    at: tuple[float, float] = HOUQIJIE, description: str | None = "人行道上停满了车",
    as_document: bool = False,
) -> tuple[str, JSON]:
    """Photo, category, location, description, submit: returns the ticket and the confirm."""
    chat = Chat(harness.sb, user_id)
    msg = await chat.send_photo(photo or jpeg_with_gps(), as_document=as_document)
    assert has("reports.photos_received", count=1, max=5)(msg)
    last = await chat.last_id()
    await press(chat, msg, data_where(msg, button(f":c:{category}")))
    place = await latest(chat, has("reports.ask_place"), after=last)
    assert buttons(place)
    last = await chat.last_id()
    await harness.sb.send_location(user_id, *at)
    await latest(chat, has("reports.ask_description", max=500), after=last)
    if description is None:
        prompt = await chat.prompt()
        await press(chat, prompt, data_where(prompt, button(":skip")))
        confirm = await latest(chat, has("reports.confirm_title"), after=prompt["message_id"] - 1)
    else:
        confirm = await chat.say(description)
    assert has("reports.confirm_title")(confirm)
    submit = data_where(confirm, button(":submit"))
    await press(chat, confirm, submit)
    done = await latest(chat, lambda m: "R-" in body(m) and TICKET.search(body(m)) is not None
                        and m["message_id"] == confirm["message_id"],
                        after=confirm["message_id"] - 1)
    match = TICKET.search(body(done))
    assert match is not None
    return match.group(0), confirm


async def group_card(harness: Harness, ticket: str, chat_id: int = HOUQIJIE_GROUP) -> JSON:
    return await harness.sb.wait_for_bot_message(
        chat_id, predicate=has("reports.group.title", ticket=ticket))


async def press_accept(harness: Harness, ticket: str) -> None:
    """杨社区 presses 受理 on the report's card in 后祁街社区's group."""
    card = await group_card(harness, ticket)
    unit = Chat(harness.sb, HOUQIJIE_MEMBER, HOUQIJIE_GROUP)
    await press(unit, card, data_where(card, button(":acc")))


async def test_a_gps_jpeg_sent_as_a_file_reaches_the_unit_without_metadata_or_identity(
    harness: Harness,
) -> None:
    ticket, _ = await file_report(harness, RESIDENT, "parking", as_document=True)
    chat = Chat(harness.sb, RESIDENT)
    async with harness.sessions() as s:
        report = (await s.scalars(select(Report))).one()
        unit = await s.get(Unit, report.unit_id)
    assert report.ticket == ticket and report.status == "submitted"
    assert unit is not None and unit.code == "houqijie"  # the site's own unit, near its site
    assert (report.latitude, report.longitude) == HOUQIJIE  # the shared location is kept
    done = (await harness.sb.messages(RESIDENT))[-1]
    assert has("reports.submitted", ticket=ticket, unit="后祁街社区")(done)

    card = await group_card(harness, ticket)
    text = body(card)
    assert "乱停车" in text and "人行道上停满了车" in text
    assert "赵居民" not in text and str(RESIDENT) not in text
    assert re.search(r"居民 #\d+", text)
    assert {d.split(":")[2] for _t, d in buttons(card)} == {"acc", "rej", "dup", "rr"}
    group = await harness.sb.messages(HOUQIJIE_GROUP)
    photos = [m for m in group if m.get("photo")]
    assert len(photos) == 1 and ticket in body(photos[0])
    assert any(m.get("location") for m in group)
    largest = max(photos[0]["photo"], key=lambda p: p["width"] * p["height"])
    # What the bot uploaded (Telegram's re-encoding would hide metadata the bot left in).
    data = await harness.sb.uploaded_bytes(largest["file_id"])
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG" and not img.getexif()
        assert max(img.size) <= 2048
    assert b"SERIAL-123456789" not in data and b"PhoneMaker" not in data

    mine = await chat.say("/myreports")
    assert ticket in body(mine) and t(ZH, "reports.status.submitted") in body(mine)


async def test_an_album_of_ten_photos_is_answered_once(harness: Harness) -> None:
    """Issue 11 item 11: an album of 10 photos (five over the limit) gave five "at most 5
    photos" replies besides the draft. Now the album gets one answer: the draft with its five
    photos, saying the other five were not added."""
    chat = Chat(harness.sb, RESIDENT)
    colours = [f"#{i:02x}3030" for i in range(40, 240, 20)]
    sent = await harness.sb.send_album(RESIDENT, [jpeg_with_gps(400, 300, c) for c in colours])
    assert len(sent) == 10
    msg = await latest(chat, has("reports.photos_received", count=5, max=5),
                       after=sent[-1]["message_id"])
    assert has("reports.album_too_many", max=5, count=5)(msg)
    await asyncio.sleep(2.0)  # longer than the album wait: nothing more is said
    assert [m["message_id"] for m in await harness.sb.bot_messages(RESIDENT)] == [
        msg["message_id"]]
    async with harness.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Photo)) == 5
    # A photo sent on its own to the full draft is still refused, once.
    refused = await chat.send_photo(jpeg_with_gps(400, 300, "#202020"))
    assert has("reports.too_many_photos", max=5)(refused)


async def test_a_left_out_album_photo_delivered_twice_is_counted_once(harness: Harness) -> None:
    """Issue 11 item 11: Telegram may deliver an update twice (after a crash, say); a photo of
    an album that the full draft left out, delivered again, made "N photos were left out"
    count it twice."""
    deps = harness.bot.deps  # type: ignore[attr-defined]
    deps.reports = dataclasses.replace(deps.reports, config=dataclasses.replace(
        deps.reports.config, album_wait_seconds=4))
    chat = Chat(harness.sb, RESIDENT)
    colours = [f"#{i:02x}3030" for i in range(40, 180, 20)]
    sent = await harness.sb.send_album(RESIDENT, [jpeg_with_gps(400, 300, c) for c in colours])
    assert len(sent) == 7

    async def five_stored() -> bool:
        async with harness.sessions() as s:
            return await s.scalar(select(func.count()).select_from(Photo)) == 5

    await wait_until(five_stored, timeout=4)
    await asyncio.sleep(0.3)  # the last two, left out, are handled too
    app = harness.bot.application  # type: ignore[attr-defined]
    last = (await harness.sb.messages(RESIDENT))[-1]
    assert last.get("photo")
    await app.process_update(Update.de_json({"update_id": 9_100_001, "message": last}, app.bot))
    msg = await latest(chat, has("reports.photos_received", count=5, max=5),
                       after=sent[-1]["message_id"], timeout=10)
    assert has("reports.album_too_many", max=5, count=2)(msg)


async def test_an_album_is_one_report_answered_once(harness: Harness) -> None:
    chat = Chat(harness.sb, ALICE)
    colours = ["#803030", "#308030", "#303080"]
    sent = await harness.sb.send_album(ALICE, [jpeg_with_gps(800, 600, c) for c in colours])
    msg = await latest(chat, has("reports.photos_received", EN, count=3, max=5),
                       after=sent[-1]["message_id"])
    await asyncio.sleep(2.0)  # longer than the album wait: nothing more is said
    answers = [m for m in await harness.sb.bot_messages(ALICE)
               if shown(t(EN, "reports.choose_category")) in body(m)]
    assert answers == [msg]
    async with harness.sessions() as s:
        report = (await s.scalars(select(Report))).one()
        assert report.status == "draft" and report.media_group_id is not None
        assert await s.scalar(select(func.count()).select_from(Photo)) == 3
    # The draft survives a restart: /report shows it where it was.
    await harness.restart()
    again = await chat.say("/report")
    assert has("reports.photos_received", EN, count=3, max=5)(again)
    # /cancel is the lead's handler; the service's cancel drops the draft cleanly.
    await press(chat, again, data_where(again, button(":cancel")))
    await latest(chat, has("reports.cancelled", EN), after=again["message_id"] - 1)
    async with harness.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Report)
                              .where(Report.status == "draft")) == 0


async def test_a_duplicate_is_offered_and_followed(harness: Harness) -> None:
    ticket, _ = await file_report(harness, RESIDENT, "litter")
    await group_card(harness, ticket)
    # Alice reports litter ten metres away with her own photo: the same problem is offered.
    chat = Chat(harness.sb, ALICE)
    msg = await chat.send_photo(jpeg_with_gps(900, 700, "#20a060"))
    last = await chat.last_id()
    await press(chat, msg, data_where(msg, button(":c:litter")))
    await latest(chat, has("reports.ask_place", EN), after=last)
    last = await chat.last_id()
    await harness.sb.send_location(ALICE, HOUQIJIE[0] + 0.00009, HOUQIJIE[1])
    prompt = await latest(chat, has("reports.ask_description", EN, max=500), after=last)
    await press(chat, prompt, data_where(prompt, button(":skip")))
    confirm = await latest(chat, has("reports.confirm_title", EN),
                           after=prompt["message_id"] - 1)
    assert has("reports.maybe_same", EN, count=1)(confirm)
    same = data_where(confirm, lambda text, _d: ticket in text)
    await press(chat, confirm, same)
    await latest(chat, has("reports.followed", EN, ticket=ticket, count=1),
                 after=confirm["message_id"] - 1)
    # The unit sees the count.
    await harness.sb.wait_for_bot_message(
        HOUQIJIE_GROUP, predicate=has("reports.group.follow_notice", ticket=ticket,
                                      category="垃圾", count=1))
    async with harness.sessions() as s:
        reports = (await s.scalars(select(Report).where(Report.status != "cancelled"))).all()
        assert [r.ticket for r in reports] == [ticket]  # no second ticket, no draft left
        assert reports[0].priority == 1
        follower = (await s.scalars(select(ReportFollower))).one()
        assert follower.person_id == ALICE
    assert ticket in body(await chat.say("/myreports"))


async def _task_act(harness: Harness, task_id: int, action: Action, *,
                    who: int = HOUQIJIE_MEMBER, **kw: Any) -> None:
    async with harness.uow() as uow:
        member = await uow.session.get(Person, who)
        task = await uow.session.get(Task, task_id)
        assert member is not None and task is not None
        await task_service.act(uow, member, task_id, action, expected_version=task.version,
                               now=utcnow(), **kw)
        await uow.commit()
    harness.bot.outbox.wake()  # type: ignore[attr-defined]


async def after_photo(harness: Harness) -> int:
    """The unit's after photo, stored (the task engineer's flow, driven through its service);
    its id."""
    stored = harness.bot.deps.media.put(jpeg_with_gps(800, 600, "#f0f0f0"))  # type: ignore[attr-defined]
    async with harness.sessions() as s, s.begin():
        photo = Photo(sha256=stored.sha256, width=stored.width, height=stored.height,
                      size=stored.size, phash=0, chat_id=HOUQIJIE_MEMBER, message_id=777,
                      uploaded_by=HOUQIJIE_MEMBER)
        s.add(photo)
    return photo.id


async def test_accept_fix_and_dispute_reach_the_reporter_and_followers(harness: Harness) -> None:
    ticket, _ = await file_report(harness, RESIDENT, "stairwell")
    card = await group_card(harness, ticket)
    unit = Chat(harness.sb, HOUQIJIE_MEMBER, HOUQIJIE_GROUP)
    await press(unit, card, data_where(card, button(":acc")))
    await latest(unit, lambda m: "已由 杨社区 受理" in body(m), after=card["message_id"] - 1)
    resident = Chat(harness.sb, RESIDENT)
    accepted = await latest(resident, lambda m: ticket in body(m) and "已受理" in body(m))
    assert "整改期限" in body(accepted)
    async with harness.sessions() as s:
        report = (await s.scalars(select(Report))).one()
        task = await s.get(Task, report.task_id)
        assert task is not None and task.source == "report" and task.report_id == report.id
        assert report.status == "accepted"
        # The stairwell category's deadline (3 days) became the task's, to the end of that day.
        assert report.decided_at is not None
        assert task.due_at == end_of_day(report.decided_at + timedelta(days=3), default_tz())

    # Accepting the report took the task on (签收) for the unit: nobody presses 签收 again.
    assert task.status == "accepted" and task.accepted_by == HOUQIJIE_MEMBER
    # The unit fixes it and sends an after photo (the task engineer's flow, driven through
    # its service here).
    await _task_act(harness, task.id, Action.SUBMIT_FIX,
                    after_photo_ids=[await after_photo(harness)], reason="已清理")
    # Issue 11 item 6: announced, not asked: the fix has its check first.
    submitted = await latest(resident, lambda m: ticket in body(m) and "等待复核" in body(m),
                             timeout=15)
    assert not buttons(submitted)
    await _task_act(harness, task.id, Action.VERIFY_PASS, who=ADMIN)
    fixed = await latest(resident, lambda m: ticket in body(m) and "复核通过" in body(m),
                         after=submitted["message_id"], timeout=15)
    history = await harness.sb.messages(RESIDENT)
    assert any(m.get("photo") for m in history if m["message_id"] < fixed["message_id"])
    # Issue 11 items 6 and 13: "still there" within the window, with a reason typed next:
    # the task is reopened as rework, the unit's group hears the reason with the phone
    # number masked, the task's history keeps it in full.
    await press(resident, fixed, data_where(fixed, button(":still")))
    await latest(resident, has("reports.ask_dispute_reason", ticket=ticket),
                 after=fixed["message_id"] - 1)
    said = await resident.say("楼道里还堆着纸箱，物业电话 13912345678")
    assert has("reports.fix_still")(said)
    notice = await harness.sb.wait_for_bot_message(
        HOUQIJIE_GROUP, predicate=has("reports.group.disputed", ticket=ticket))
    assert "139****5678" in body(notice) and "纸箱" in body(notice)
    async with harness.sessions() as s:
        report = (await s.scalars(select(Report))).one()
        assert report.status == "accepted" and report.reason == "disputed"
        task = await s.get(Task, report.task_id)
        reopened = (await s.scalars(select(TaskEvent).where(
            TaskEvent.task_id == report.task_id, TaskEvent.action == "reopened"))).one()
    assert task is not None
    assert task.status == "returned" and task.reopen_count == 1
    assert reopened.reason is not None and "13912345678" in reopened.reason
    await harness.sb.wait_for_bot_message(
        HOUQIJIE_GROUP, predicate=lambda m: f"#{task.id}" in body(m) and "返工" in body(m))
    leaked = [m for m in await harness.sb.bot_messages(HOUQIJIE_GROUP)
              if "13912345678" in body(m)]
    assert leaked == []


async def test_a_redelivered_update_creates_nothing_new(harness: Harness) -> None:
    """Telegram may deliver an update twice; the sandbox will not, so the test feeds the same
    Update to the application twice (bypassing the inbox, whose update_id key would drop it):
    the photo's (chat, message) key and the idempotent submit must hold on their own."""
    chat = Chat(harness.sb, RESIDENT)
    ticket, confirm = await file_report(harness, RESIDENT, "posters")
    app = harness.bot.application  # type: ignore[attr-defined]
    photo_msg = next(m for m in await harness.sb.messages(RESIDENT)
                     if m.get("photo") or m.get("document"))
    again = Update.de_json({"update_id": 9_000_001, "message": photo_msg}, app.bot)
    submit = data_where(confirm, button(":submit"))
    press_again = Update.de_json({"update_id": 9_000_002, "callback_query": {
        "id": "redelivered-1", "from": photo_msg["from"], "chat_instance": "1",
        "message": confirm, "data": submit}}, app.bot)
    async with harness.sessions() as s:
        outbox_before = await s.scalar(select(func.count()).select_from(OutboxMessage))
    for update in (again, again, press_again, press_again):
        await app.process_update(update)
    async with harness.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Report)) == 1
        assert await s.scalar(select(func.count()).select_from(Photo)) == 1
        assert await s.scalar(select(func.count()).select_from(OutboxMessage)) == outbox_before
    assert ticket in body(await chat.say("/myreports"))


async def test_blocked_and_rate_limited_residents_are_told_why(harness: Harness) -> None:
    admin = Chat(harness.sb, ADMIN)
    alice = Chat(harness.sb, ALICE)
    await alice.say("/start")
    reply = await admin.say(f"/block {ALICE}")
    assert "20002" in body(reply) and "已停用居民 #" in body(reply)
    refused = await alice.send_photo(jpeg_with_gps())
    assert body(refused) == t(EN, "error.blocked")
    reply = await admin.say(f"/unblock {ALICE}")
    assert "已恢复居民 #" in body(reply)

    # Ten reports within the hour (made directly), then one more photo: refused politely.
    now = utcnow()
    async with harness.sessions() as s, s.begin():
        for i in range(10):
            s.add(Report(ticket=f"R-2000-{i:06d}", reporter_id=ALICE, status="rejected",
                         category="litter", submitted_at=now - timedelta(minutes=5 + i),
                         created_at=now, updated_at=now))
    refused = await alice.send_photo(jpeg_with_gps())
    assert "You have sent 10 reports within an hour" in body(refused)
    async with harness.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Report)
                              .where(Report.status == "draft")) == 0


async def test_block_in_a_group_reveals_no_id_and_blocks_nobody(harness: Harness) -> None:
    ticket, _ = await file_report(harness, RESIDENT, "litter")
    await group_card(harness, ticket)
    group = Chat(harness.sb, ADMIN, HOUQIJIE_GROUP)
    for command in (f"/block {ticket}", f"/unblock {ticket}", f"/block {RESIDENT}",
                    f"/reroute {ticket} 卧龙寺"):
        answer = await group.say(command)
        name = command.split()[0].lstrip("/")
        assert body(answer) == shown(t(ZH, "reports.private_only", command=name))
    transcript = " ".join(body(m) for m in await harness.sb.bot_messages(HOUQIJIE_GROUP))
    assert str(RESIDENT) not in transcript and "用户ID" not in transcript
    async with harness.sessions() as s:
        person = await s.get(Person, RESIDENT)
        report = (await s.scalars(select(Report))).one()
        assert person is not None and not person.blocked
        unit = await s.get(Unit, report.unit_id)
        assert unit is not None and unit.code == "houqijie"  # not re-routed either
    # In the admin's private chat /block still works (and may name the account there).
    reply = await Chat(harness.sb, ADMIN).say(f"/block {ticket}")
    assert "已停用居民 #" in body(reply)


async def test_no_telegram_call_is_made_inside_a_unit_of_work(
    harness: Harness, monkeypatch: Any
) -> None:
    """The group card's second-level buttons and the resident's "known sites" button read the
    database and answer; the answer must come after the unit of work is left (on SQLite an
    open one may hold the write lock across the Telegram round trip)."""
    import handlers.reports as hr

    open_uows: dict[object, int] = {}
    inside: list[str] = []
    enter, leave = UnitOfWork.__aenter__, UnitOfWork.__aexit__

    async def tracked_enter(self: UnitOfWork) -> UnitOfWork:
        task = asyncio.current_task()
        open_uows[task] = open_uows.get(task, 0) + 1
        return await enter(self)

    async def tracked_leave(self: UnitOfWork, *exc: Any) -> None:
        task = asyncio.current_task()
        open_uows[task] = open_uows.get(task, 1) - 1
        await leave(self, *exc)

    def watched(name: str, fn: Any) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            if open_uows.get(asyncio.current_task(), 0):
                inside.append(name)
            return await fn(*args, **kwargs)
        return call

    monkeypatch.setattr(UnitOfWork, "__aenter__", tracked_enter)
    monkeypatch.setattr(UnitOfWork, "__aexit__", tracked_leave)
    for name in ("answer_query", "show", "reply"):
        monkeypatch.setattr(hr, name, watched(name, getattr(hr, name)))

    ticket, _ = await file_report(harness, RESIDENT, "litter")
    card = await group_card(harness, ticket)
    admin = Chat(harness.sb, ADMIN, HOUQIJIE_GROUP)
    for action in ("rej", "back", "dup", "rr", "back"):
        await press(admin, card, data_where(card, button(f":{action}")) if action != "back"
                    else f"rg:{card_report_id(card)}:back")
    # The resident's "choose a known site" button.
    chat = Chat(harness.sb, ALICE)
    msg = await chat.send_photo(jpeg_with_gps(640, 480, "#405060"))
    last = await chat.last_id()
    await press(chat, msg, data_where(msg, button(":c:litter")))
    place = await latest(chat, has("reports.ask_place", EN), after=last)
    await press(chat, place, data_where(place, button(":list")))
    await latest(chat, has("reports.sites_list", EN), after=last)
    assert inside == []


def card_report_id(card: JSON) -> int:
    return int(buttons(card)[0][1].split(":")[1])


async def test_a_text_for_a_dispute_no_longer_possible_goes_to_the_draft(
    harness: Harness,
) -> None:
    """Issue 11 item 6: 👎 pressed while a new report waited for its place; when the dispute
    can no longer be taken (its window closed meanwhile), the typed address is not refused
    and lost: the wait for a reason ends and the text goes to the draft."""
    ticket, _ = await file_report(harness, RESIDENT, "stairwell")
    await press_accept(harness, ticket)
    async with harness.sessions() as s:
        report = (await s.scalars(select(Report))).one()
    assert report.task_id is not None
    await _task_act(harness, report.task_id, Action.SUBMIT_FIX,
                    after_photo_ids=[await after_photo(harness)],
                    reason="已清理")
    resident = Chat(harness.sb, RESIDENT)
    submitted = await latest(resident, lambda m: ticket in body(m) and "等待复核" in body(m),
                             timeout=15)
    await _task_act(harness, report.task_id, Action.VERIFY_PASS, who=ADMIN)
    fixed = await latest(resident, lambda m: ticket in body(m) and "复核通过" in body(m),
                         after=submitted["message_id"], timeout=15)
    # A new report, waiting for its place; then 👎 on the old one.
    msg = await resident.send_photo(jpeg_with_gps(640, 480, "#203040"))
    last = await resident.last_id()
    await press(resident, msg, data_where(msg, button(":c:parking")))
    await latest(resident, has("reports.ask_place"), after=last)
    await press(resident, fixed, data_where(fixed, button(":still")))
    await latest(resident, has("reports.ask_dispute_reason", ticket=ticket),
                 after=fixed["message_id"] - 1)
    async with harness.sessions() as s, s.begin():
        old = await s.get(Report, report.id)
        assert old is not None and old.confirm_until is not None
        old.confirm_until = utcnow() - timedelta(minutes=1)  # the window closed meanwhile
    await resident.say("人民路99号门口")
    async with harness.sessions() as s:
        draft = (await s.scalars(select(Report).where(Report.status == "draft"))).one()
        task = await s.get(Task, report.task_id)
    assert draft.address == "人民路99号门口"
    assert task is not None and task.status == "closed"
