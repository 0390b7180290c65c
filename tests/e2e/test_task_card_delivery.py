"""Task cards that cannot be edited at once, lost cards, two members fixing, typed numbers:
through the sandbox, as the people involved see it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.render.i18n import t
from db.models import (
    GroupBinding,
    OutboxMessage,
    Person,
    Photo,
    Task,
    TaskCard,
    TaskEvent,
    Unit,
)
from tests.conftest import Harness, wait_until
from tests.e2e.chat import Chat, body, buttons, data_where, shown
from tests.e2e.test_tasks import (
    ADMIN,
    INSPECTOR,
    LIAISON_GROUP,
    LIAISON_MEMBER,
    ZH,
    card_changes,
    card_of,
    code,
    file_finding,
    press,
    start_private,
)
from tests.imagegen import jpeg_with_gps

OFFICE_GROUP = -1001001  # 区创文办工作群, bound to liaison_1 as well in the two-group test
SECOND_MEMBER = 10099  # 周组员, a second member of liaison group 1 (added by the test)


async def outbox_drained(harness: Harness) -> bool:
    async with harness.sessions() as s:
        pending = await s.scalar(select(OutboxMessage.id)
                                 .where(OutboxMessage.status == "pending").limit(1))
    return pending is None


async def test_a_card_still_on_its_way_when_the_task_changes_is_brought_up_to_date(
    harness: Harness
) -> None:
    """The card lands in the group, but the bot hears so only later (a slow network): a
    request typed in private meanwhile finds no card to edit. When the delivery is confirmed,
    the card is edited to what the task is by then."""
    # The group's greeting (sent when it was bound) is out of the way first.
    await harness.sb.wait_for_bot_message(LIAISON_GROUP,
                                          predicate=lambda m: "本群已绑定" in body(m))
    await harness.sb.inject_fault("sendMessage", hold_ms=2500, chat_id=LIAISON_GROUP)
    tid = await file_finding(harness, "liaison_1 3 大堂入口地面有烟头")
    card = await card_of(harness, tid)
    async with harness.sessions() as s:
        known = await s.scalar(select(TaskCard).where(TaskCard.task_id == tid))
        assert known is None  # not known yet
    await start_private(harness, LIAISON_MEMBER)
    member = Chat(harness.sb, LIAISON_MEMBER)
    last = await member.last_id()
    await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "x")
    await harness.sb.wait_for_bot_message(LIAISON_MEMBER, after_message_id=last)
    await member.say("3天 等待材料")
    async with harness.sessions() as s:
        task = await s.get(Task, tid)
        assert task is not None and task.extension_until is not None
    card = await card_changes(harness, card, lambda m: "申请延期至" in body(m), timeout=15)
    assert any(d.endswith(":g") for _, d in buttons(card))  # an admin can decide on it


async def test_a_card_edit_refused_by_flood_control_or_an_error_is_retried(
    harness: Harness
) -> None:
    tid = await file_finding(harness, "liaison_1 3 大堂入口地面有烟头")
    card = await card_of(harness, tid)
    assert not card.get("photo")  # a text card: edited with editMessageText

    # 429 on the direct edit of the card: the outbox edits it instead.
    await harness.sb.inject_fault("editMessageText", status=429, retry_after=1)
    answer = await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "a")
    assert answer["text"] == t(ZH, "task.done_toast", action=t(ZH, "task.action.accept"))
    # Through the outbox: its retry may wait behind the pacing of this group (generous wait).
    card = await card_changes(harness, card, lambda m: t(ZH, "task.state.accepted") in body(m),
                              timeout=30)
    assert "陈联络" in body(card)

    # 500 on the direct edit after a request typed in private: the same.
    await start_private(harness, LIAISON_MEMBER)
    member = Chat(harness.sb, LIAISON_MEMBER)
    last = await member.last_id()
    await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "x")
    await harness.sb.wait_for_bot_message(LIAISON_MEMBER, after_message_id=last)
    await harness.sb.inject_fault("editMessageText", status=500)
    await member.say("5 需要市政部门配合")
    card = await card_changes(harness, card, lambda m: "申请延期至" in body(m), timeout=30)
    await wait_until(lambda: outbox_drained(harness))
    # Still one card in the group.
    cards = [m for m in await harness.sb.bot_messages(LIAISON_GROUP)
             if f"整改任务 #{tid}" in body(m)]
    assert len(cards) == 1


async def test_a_lost_card_is_posted_again_only_where_it_was_lost(harness: Harness) -> None:
    async with harness.sessions() as s, s.begin():
        liaison = (await s.scalars(select(Unit).where(Unit.code == "liaison_1"))).one()
        office_group = await s.get(GroupBinding, OFFICE_GROUP)
        assert office_group is not None
        office_group.unit_id = liaison.id  # liaison group 1 now has two groups
    tid = await file_finding(harness, "liaison_1 3 消防通道堆放纸箱")
    await card_of(harness, tid, LIAISON_GROUP)
    await card_of(harness, tid, OFFICE_GROUP)

    async def both_delivered() -> list[tuple[int, int]] | None:
        async with harness.uow() as uow:
            cards = await uow.cards.places(tid)
        return cards if len(cards) == 2 else None

    await wait_until(both_delivered)
    cards = await both_delivered()
    assert cards is not None
    # The first card edited turns out to be deleted; the other one is there.
    lost_chat = cards[0][0]
    kept_chat = cards[1][0]
    await harness.sb.inject_fault("editMessageText", status=400,
                                  description="Bad Request: message to edit not found")
    card = await card_of(harness, tid, LIAISON_GROUP)
    await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "a")

    def task_cards(transcript: list[dict[str, object]]) -> list[dict[str, object]]:
        return [m for m in transcript if f"整改任务 #{tid}" in body(m)]

    await harness.sb.wait_for(lost_chat, lambda ms: len(task_cards(ms)) == 2)
    await card_changes(harness, card, lambda m: t(ZH, "task.state.accepted") in body(m),
                       chat_id=kept_chat)
    await wait_until(lambda: outbox_drained(harness))
    reposted = task_cards(await harness.sb.bot_messages(lost_chat))[-1]
    assert t(ZH, "task.state.accepted") in body(reposted)
    assert len(task_cards(await harness.sb.bot_messages(kept_chat))) == 1


async def test_two_members_writing_a_fix_keep_their_own_photos(harness: Harness) -> None:
    async with harness.sessions() as s, s.begin():
        liaison = (await s.scalars(select(Unit).where(Unit.code == "liaison_1"))).one()
        s.add(Person(id=SECOND_MEMBER, first_name="周组员", role="unit_member",
                     unit_id=liaison.id, language="zh-hans"))
    await harness.sb.create_user("周组员", user_id=SECOND_MEMBER, language_code="zh-hans")
    await harness.sb.add_member(LIAISON_GROUP, SECOND_MEMBER)
    tid = await file_finding(harness, "liaison_1 3 楼道堆放杂物")
    card = await card_of(harness, tid)
    await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "a")
    # Through the outbox: its retry may wait behind the pacing of this group (generous wait).
    card = await card_changes(harness, card, lambda m: t(ZH, "task.state.accepted") in body(m),
                              timeout=30)

    first, second = Chat(harness.sb, LIAISON_MEMBER), Chat(harness.sb, SECOND_MEMBER)
    for chat in (first, second):
        await start_private(harness, chat.user_id)

    async def begin(chat: Chat) -> dict[str, object]:
        last = await chat.last_id()
        await press(harness, chat.user_id, LIAISON_GROUP, card, "f")
        prompt: dict[str, object] = await harness.sb.wait_for_bot_message(
            chat.user_id, after_message_id=last)
        return prompt

    # 陈联络 starts the fix and sends a photo; 周组员 starts it too, sends two, then cancels.
    asked = await begin(first)
    mine = await first.send_photo(jpeg_with_gps(640, 480, "#30a050"))
    assert body(mine) == shown(t(ZH, "task.fix_photo", count=1))
    await begin(second)
    await second.send_photo(jpeg_with_gps(640, 480, "#a03050"))
    theirs = await second.send_photo(jpeg_with_gps(640, 480, "#5030a0"))
    assert body(theirs) == shown(t(ZH, "task.fix_photo", count=2))  # only their own
    cancelled = await second.press(theirs, data_where(theirs, code("q")))
    assert body(cancelled) == shown(t(ZH, "task.cancelled"))

    # 陈联络's Done submits exactly 陈联络's photo.
    done = await first.press(mine, data_where(mine, code("done")))
    assert body(done) == shown(t(ZH, "task.done_private", id=tid,
                                 action=t(ZH, "task.action.submit_fix")))
    async with harness.sessions() as s:
        event = (await s.scalars(select(TaskEvent).where(
            TaskEvent.task_id == tid, TaskEvent.action == "fix_submitted"))).one()
        photo_ids = list(event.data["photos"])  # type: ignore[call-overload]
        owners = set(await s.scalars(select(Photo.uploaded_by).where(Photo.id.in_(photo_ids))))
    assert len(photo_ids) == 1 and owners == {LIAISON_MEMBER}

    # 陈联络's first prompt's 取消, pressed after the fix was submitted: refused as stale, not
    # "cancelled" (nothing was waiting any more; it said 已取消 before), and the task still
    # awaits its check.
    answer = await first.press_expect_alert(asked, data_where(asked, code("q")))
    assert answer.get("text") == t(ZH, "error.stale_button"), answer
    async with harness.sessions() as s:
        assert (await s.get(Task, tid)).status == "fix_submitted"  # type: ignore[union-attr]


async def test_numbers_typed_with_circled_digits_or_too_many_digits(harness: Harness) -> None:
    await start_private(harness, ADMIN)
    admin = Chat(harness.sb, ADMIN)
    huge = "99999999999999999999"
    reply = await admin.say(f"/tasks {huge}")
    assert body(reply) == shown(t(ZH, "task.not_found", id=huge))
    reply = await admin.say("/tasks ③")
    assert body(reply) == shown(t(ZH, "task.bad_filter"))

    await start_private(harness, INSPECTOR)
    inspector = Chat(harness.sb, INSPECTOR)
    for days in ("③", huge):
        reply = await inspector.say(f"/task liaison_1 {days} 楼道堆物")
        assert body(reply) == shown(t(ZH, "task.finding_usage", days=90))

    tid = await file_finding(harness, "liaison_1 3 门前人行道破损")
    card = await card_of(harness, tid)
    await start_private(harness, LIAISON_MEMBER)
    member = Chat(harness.sb, LIAISON_MEMBER)
    last = await member.last_id()
    await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "x")
    await harness.sb.wait_for_bot_message(LIAISON_MEMBER, after_message_id=last)
    reply = await member.say(f"{huge} 等待材料")
    assert body(reply) == shown(t(ZH, "task.bad_extension_days", max=60))
    # ③ is not a number of days: asked again (never a silent default).
    reply = await member.say("③ 等待材料")
    assert body(reply) == shown(t(ZH, "task.extension_days_missing", max=60))
    reply = await member.say("3 ③ 等待材料")
    assert "已申请延期至" in body(reply)
    async with harness.sessions() as s:
        event = (await s.scalars(select(TaskEvent).where(
            TaskEvent.task_id == tid, TaskEvent.action == "extension_requested"))).one()
    assert event.reason == "③ 等待材料"


async def test_a_deadline_reminder_lands_as_a_reply_to_the_card(harness: Harness) -> None:
    """The group sees the reminder under the card it is about (Telegram's reply), so the
    card's buttons are one tap away."""
    tid = await file_finding(harness, "liaison_1 3 大堂入口地面有烟头")
    card = await card_of(harness, tid)

    async def card_recorded() -> bool:
        async with harness.sessions() as s:
            return await s.scalar(select(TaskCard.message_id).where(
                TaskCard.task_id == tid)) == card["message_id"]

    await wait_until(card_recorded)
    async with harness.sessions() as s, s.begin():
        task = await s.get(Task, tid)
        assert task is not None
        task.due_at = datetime.now(UTC) - timedelta(minutes=1)  # the deadline just passed
    await harness.bot.scheduler.tick()  # type: ignore[attr-defined]
    harness.bot.outbox.wake()  # type: ignore[attr-defined]
    reminder = await harness.sb.wait_for_bot_message(
        LIAISON_GROUP, after_message_id=card["message_id"],
        predicate=lambda m: "整改到期" in body(m))
    assert reminder["reply_to_message"]["message_id"] == card["message_id"]
