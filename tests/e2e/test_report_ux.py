"""What a resident and a unit see of a report, from the user-experience review: the fix
confirmation and its check, refused photos, naming and questioning a location, the privacy
note, captions, /report in a group, accepting = taking on, the fix note (SQLite, PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.domain.tasks import Action
from bot.render.callbacks import TASK_ACTION_CODES as ACTION_CODES
from bot.render.i18n import t
from bot.services import tasks as task_service
from db.models import Person, Report, Task, TaskEvent
from db.types import utcnow
from tests.conftest import Harness
from tests.e2e.chat import Chat, body, buttons, data_where, shown
from tests.e2e.test_reports import (
    ADMIN,
    ALICE,
    EN,
    HOUQIJIE,
    HOUQIJIE_GROUP,
    HOUQIJIE_MEMBER,
    RESIDENT,
    ZH,
    after_photo,
    button,
    file_report,
    group_card,
    has,
    latest,
    press,
)
from tests.imagegen import jpeg_with_gps, truncated_jpeg

BEIJING = (39.9, 116.4)


async def _act(harness: Harness, task_id: int, who: int, action: Action, **kw: Any) -> None:
    async with harness.uow() as uow:
        person = await uow.session.get(Person, who)
        task = await uow.session.get(Task, task_id)
        assert person is not None and task is not None
        await task_service.act(uow, person, task_id, action, expected_version=task.version,
                               now=utcnow(), **kw)
        await uow.commit()
    harness.bot.outbox.wake()  # type: ignore[attr-defined]


async def test_accepting_takes_the_task_on_and_the_confirmation_awaits_the_check(
    harness: Harness,
) -> None:
    """Items 7, 8 and 1: 受理 is 签收; the fix note reaches the resident. Issue 11 item 6:
    the reporter is asked once the check passed and closed the task; 👍 is recorded on the
    task and the unit told, and /myreports says so."""
    ticket, _ = await file_report(harness, RESIDENT, "stairwell")
    card = await group_card(harness, ticket)
    unit = Chat(harness.sb, HOUQIJIE_MEMBER, HOUQIJIE_GROUP)
    await press(unit, card, data_where(card, button(":acc")))
    async with harness.sessions() as s:
        report = (await s.scalars(select(Report))).one()
        task = await s.get(Task, report.task_id)
    assert task is not None
    assert task.status == "accepted" and task.accepted_by == HOUQIJIE_MEMBER
    # The task card the group gets offers no 签收 (accept) button: it is taken on already.
    task_card = await harness.sb.wait_for_bot_message(
        HOUQIJIE_GROUP, predicate=lambda m: f"#{task.id}" in body(m) and bool(buttons(m)))
    codes = {d.rsplit(":", 1)[-1] for _t, d in buttons(task_card)}
    assert ACTION_CODES[Action.ACCEPT] not in codes
    resident = Chat(harness.sb, RESIDENT)
    accepted = await latest(resident, lambda m: ticket in body(m) and "已受理" in body(m))
    # One notice of the acceptance, not a second "the unit has started work".
    assert not [m for m in await harness.sb.bot_messages(RESIDENT)
                if shown(t(ZH, "reports.push.in_progress", ticket=ticket, category="楼道堆物"))
                in body(m)]

    await _act(harness, task.id, HOUQIJIE_MEMBER, Action.SUBMIT_FIX,
               after_photo_ids=[await after_photo(harness)], reason="已清理楼道杂物")
    # Issue 11 item 6: the submitted fix is announced (with the unit's note), not asked about.
    submitted = await latest(resident, lambda m: ticket in body(m) and "等待复核" in body(m),
                             after=accepted["message_id"], timeout=15)
    assert "整改说明：已清理楼道杂物" in body(submitted) and not buttons(submitted)
    # The check closes the task, and with it the report; now the reporter is asked.
    await _act(harness, task.id, ADMIN, Action.VERIFY_PASS)
    fixed = await latest(resident, lambda m: ticket in body(m) and "复核通过" in body(m),
                         after=submitted["message_id"], timeout=15)
    async with harness.sessions() as s:
        report = (await s.scalars(select(Report))).one()
        assert report.status == "closed"
        assert await s.scalar(select(TaskEvent.id).where(
            TaskEvent.task_id == task.id, TaskEvent.action == "verified")) is not None

    await press(resident, fixed, data_where(fixed, button(":ok")))
    thanks = await latest(resident, has("reports.fix_ok"), after=fixed["message_id"] - 1)
    assert "满意" in body(thanks)
    await harness.sb.wait_for_bot_message(
        HOUQIJIE_GROUP, predicate=has("reports.group.confirmed", ticket=ticket))
    async with harness.uow() as uow:
        report = (await uow.session.scalars(select(Report))).one()
        assert report.status == "confirmed"
        events = await task_service.history(uow, task.id)
    confirmed = [e for e in events if e.action == "reporter_confirmed"]
    assert len(confirmed) == 1
    assert confirmed[0].actor_id is None and confirmed[0].data == {"by": "reporter"}
    mine = await resident.say("/myreports")
    assert t(ZH, "reports.status.confirmed") in body(mine)


async def test_text_after_every_photo_was_refused_asks_for_a_photo(harness: Harness) -> None:
    """Item 2: no photo was accepted, no category buttons were shown: ask for a photo."""
    chat = Chat(harness.sb, RESIDENT)
    await chat.say("/report")
    refused = await chat.send_photo(truncated_jpeg(), as_document=True)
    assert "照片" in body(refused) or "图片" in body(refused)
    answer = await chat.say("楼下垃圾没人清")
    assert body(answer) == shown(t(ZH, "reports.send_photo_first"))
    assert "类别" not in body(answer).split("。")[0]


async def test_the_group_card_names_the_area_and_a_far_location_is_questioned(
    harness: Harness,
) -> None:
    """Item 3: "后祁街社区附近 · 地图" instead of bare coordinates; a location in Beijing is
    questioned before submitting, and the resident can send the right one."""
    ticket, _ = await file_report(harness, RESIDENT, "stairwell")
    card = await group_card(harness, ticket)
    assert "后祁街社区附近" in body(card)
    assert "34.36600" not in body(card)  # the coordinates are behind the map link
    link = [e for e in card.get("entities", []) if e.get("type") == "text_link"]
    assert link and "uri.amap.com" in link[0]["url"]

    chat = Chat(harness.sb, ALICE)
    msg = await chat.send_photo(jpeg_with_gps(640, 480, "#506070"))
    last = await chat.last_id()
    await press(chat, msg, data_where(msg, button(":c:litter")))
    await latest(chat, has("reports.ask_place", EN), after=last)
    last = await chat.last_id()
    await harness.sb.send_location(ALICE, *BEIJING)
    prompt = await latest(chat, has("reports.ask_description", EN, max=500), after=last)
    assert "outside the city" in body(prompt)
    await press(chat, prompt, data_where(prompt, button(":place")))
    await latest(chat, has("reports.ask_place", EN), after=prompt["message_id"])
    last = await chat.last_id()
    await harness.sb.send_location(ALICE, *HOUQIJIE)
    prompt = await latest(chat, has("reports.ask_description", EN, max=500), after=last)
    assert "outside the city" not in body(prompt)
    assert "near 后祁街社区" in body(prompt)


async def test_the_description_prompt_warns_that_it_is_forwarded(harness: Harness) -> None:
    """Item 4: the resident is told the description goes to the unit verbatim."""
    chat = Chat(harness.sb, RESIDENT)
    msg = await chat.send_photo(jpeg_with_gps())
    last = await chat.last_id()
    await press(chat, msg, data_where(msg, button(":c:litter")))
    await latest(chat, has("reports.ask_place"), after=last)
    last = await chat.last_id()
    await harness.sb.send_location(RESIDENT, *HOUQIJIE)
    prompt = await latest(chat, has("reports.ask_description", max=500), after=last)
    assert "描述会转给责任单位，请不要填写姓名、电话等个人信息" in body(prompt)


async def test_a_photo_caption_is_the_description(harness: Harness) -> None:
    """Item 5: Alice's caption is her report's description (changeable on the confirm)."""
    chat = Chat(harness.sb, ALICE)
    msg = await chat.send_photo(jpeg_with_gps(700, 500, "#607080"), caption="overflowing bin")
    last = await chat.last_id()
    await press(chat, msg, data_where(msg, button(":c:litter")))
    await latest(chat, has("reports.ask_place", EN), after=last)
    last = await chat.last_id()
    await harness.sb.send_location(ALICE, *HOUQIJIE)
    confirm = await latest(chat, has("reports.confirm_title", EN), after=last)
    assert "overflowing bin" in body(confirm)
    assert shown(t(EN, "reports.description_forwarded")) in body(confirm)
    await press(chat, confirm, data_where(confirm, button(":submit")))
    async with harness.sessions() as s:
        report = (await s.scalars(select(Report))).one()
    assert report.description == "overflowing bin" and report.ticket is not None
    card = await group_card(harness, report.ticket)
    assert "overflowing bin" in body(card)


async def test_report_in_a_group_points_to_the_private_chat(harness: Harness) -> None:
    """Item 6: /report in a group is answered with a deep link into the private chat."""
    group = Chat(harness.sb, HOUQIJIE_MEMBER, HOUQIJIE_GROUP)
    sent = await harness.sb.send_text(HOUQIJIE_MEMBER, "/report", HOUQIJIE_GROUP)
    answer = await latest(group, lambda m: "t.me" in str(m.get("entities")),
                          after=sent["message_id"])
    assert "私聊" in body(answer)
    urls = [e.get("url", "") for e in answer.get("entities", [])]
    assert any(u.startswith("https://t.me/") and u.endswith("?start=report") for u in urls)


async def test_the_deep_link_starts_a_report(harness: Harness) -> None:
    """Item 6: /start report in the private chat starts a report."""
    chat = Chat(harness.sb, RESIDENT)
    answer = await chat.say("/start report")
    assert has("reports.ask_photos", max=5)(answer)
