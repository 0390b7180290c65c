"""The rectification loop in the groups, through the sandbox, as the people involved see it."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from sqlalchemy import select

from bot.render.i18n import t
from bot.services import tasks as svc
from db.models import SiteItem, Task, TaskCard, TaskEvent
from tests.conftest import Harness, wait_until
from tests.e2e.chat import Chat, body, buttons, data_where, shown
from tests.imagegen import jpeg_with_gps

ZH = "zh-hans"
ADMIN, INSPECTOR, INSPECTOR_2 = 10000, 10001, 10002  # 王管理, 张督查, 李测评
LIAISON_MEMBER = 10012  # 陈联络, of liaison group 1 (the hotel's responsible unit)
LIAISON_GROUP = -1001003
HOUQIJIE_GROUP = -1001004  # 后祁街社区
JSON = dict[str, Any]


def code(name: str):
    """A task button by its action code (t:<task>:<version>:<code>), never by its text."""
    return lambda _text, data: data.startswith("t:") and data.split(":")[3] == name


def task_id_of(message: JSON) -> int:
    found = re.search(r"#(\d+)", body(message))
    assert found, body(message)
    return int(found.group(1))


async def card_of(harness: Harness, task_id: int, chat_id: int = LIAISON_GROUP) -> JSON:
    return await harness.sb.wait_for_bot_message(
        chat_id, predicate=lambda m: f"整改任务 #{task_id}" in body(m))


async def card_changes(harness: Harness, before: JSON, predicate: Any,
                       chat_id: int = LIAISON_GROUP, timeout: float = 10.0) -> JSON:
    """Wait until the card (same task) reads as `predicate` wants; returns it."""
    tid = task_id_of(before)
    transcript = await harness.sb.wait_for(
        chat_id, lambda ms: any(f"整改任务 #{tid}" in body(m) and predicate(m) for m in ms),
        timeout)
    return next(m for m in transcript if f"整改任务 #{tid}" in body(m) and predicate(m))


async def press(harness: Harness, user: int, chat_id: int, message: JSON, which: str) -> JSON:
    """Press a button and return the answer to the press (toast or alert)."""
    qid = await harness.sb.press(user, chat_id, message["message_id"],
                                 data_where(message, code(which)))
    return await harness.sb.wait_for_callback_answer(qid)


async def inspect_hotel(harness: Harness, chat: Chat, fail: str = "9") -> None:
    """张督查 inspects the hotel: item `fail` is 不符合 with a photo, everything else 符合."""
    menu = await chat.say("/inspect")
    msg = await chat.press(menu, data_where(menu, lambda text, _d: "皇冠假日" in text))
    for step in range(1, 18):
        assert f"第 {step}/17 项" in body(msg)
        if str(step) == fail:
            msg = await chat.press(msg, data_where(msg, lambda _t, d: d.endswith(":n")))
            msg = await chat.send_photo(jpeg_with_gps(800, 600, "#204080"))
            msg = await chat.press(msg, data_where(msg, lambda _t, d: d.endswith(":done")))
        else:
            msg = await chat.press(msg, data_where(msg, lambda _t, d: d.startswith("v:")
                                                   and d.endswith(":c")))
    await chat.press(msg, data_where(msg, lambda _t, d: d.endswith(":submit")))


async def start_private(harness: Harness, user: int) -> None:
    await Chat(harness.sb, user).say("/start")


async def group_bot_messages(harness: Harness, chat_id: int = LIAISON_GROUP) -> list[JSON]:
    return await harness.sb.bot_messages(chat_id)


async def test_inspection_failure_to_closed_task_in_the_group(harness: Harness) -> None:
    inspector = Chat(harness.sb, INSPECTOR)
    await inspect_hotel(harness, inspector)

    # The failed item is a card in the unit's group: the problem, the site, the deadline and
    # the time left, the evidence photo, and the button to accept it.
    card = await harness.sb.wait_for_bot_message(
        LIAISON_GROUP, predicate=lambda m: "整改任务 #" in body(m))
    tid = task_id_of(card)
    text = body(card)
    assert "东岭皇冠假日酒店" in text and "9" in text and "剩余" in text
    assert t(ZH, "task.state.open") in text and card.get("photo")
    assert buttons(card)[0][0] == t(ZH, "task.button.accept")
    messages_before = len(await group_bot_messages(harness))

    # 签收: the same card changes in place, and now offers 提交整改.
    answer = await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "a")
    assert answer["text"] == t(ZH, "task.done_toast", action=t(ZH, "task.action.accept"))
    card = await card_changes(harness, card, lambda m: t(ZH, "task.state.accepted") in body(m))
    assert "陈联络" in body(card)
    assert any(d.endswith(":f") for _, d in buttons(card))

    # 提交整改 from someone who never opened a private chat with the bot: the press opens it
    # (a t.me link with /start task_<id>), and /start task_<id> goes on with the fix.
    answer = await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "f")
    assert answer["url"] == f"https://t.me/wenming_bot?start=task_{tid}"
    use_task_start_link(harness)
    member = Chat(harness.sb, LIAISON_MEMBER)
    resumed = await member.say(f"/start task_{tid}")
    assert f"#{tid}" in body(resumed) and "整改后的照片" in body(resumed)
    assert any(d.endswith(":done") for _, d in buttons(resumed))
    last = await member.last_id()
    answer = await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "f")
    assert answer["text"] == t(ZH, "task.see_private")
    prompt = await harness.sb.wait_for_bot_message(LIAISON_MEMBER, after_message_id=last)
    assert f"#{tid}" in body(prompt)

    # After photo, a note, Done.
    reply = await member.send_photo(jpeg_with_gps(800, 600, "#30a050"))
    assert body(reply) == shown(t(ZH, "task.fix_photo", count=1))
    reply = await member.say("已劝离吸烟人员，张贴禁烟标识")
    assert body(reply) == shown(t(ZH, "task.fix_noted", count=1))
    done = await member.press(reply, data_where(reply, code("done")))
    assert body(done) == shown(t(ZH, "task.done_private", id=tid,
                                 action=t(ZH, "task.action.submit_fix")))

    # The card now shows 整改前 | 整改后 side by side (a new, wider picture) and the check
    # buttons; still the same message.
    old_photo = card["photo"][-1]
    card = await card_changes(harness, card,
                              lambda m: t(ZH, "task.state.fix_submitted") in body(m))
    new_photo = card["photo"][-1]
    assert new_photo["file_unique_id"] != old_photo["file_unique_id"]
    assert new_photo["width"] > new_photo["height"] * 1.5
    assert {d.split(":")[3] for _, d in buttons(card)} == {"p", "r"}

    # The person who fixed it cannot check it; a unit member is not a verifier.
    answer = await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "p")
    assert answer["show_alert"] and "督查员或管理员" in answer["text"]

    # 李测评 checks: the same checklist item is asked again, in its words, in private.
    await start_private(harness, INSPECTOR_2)
    checker = Chat(harness.sb, INSPECTOR_2)
    last = await checker.last_id()
    await press(harness, INSPECTOR_2, LIAISON_GROUP, card, "p")
    ask = await harness.sb.wait_for_bot_message(INSPECTOR_2, after_message_id=last)
    assert "室内公共场所禁止吸烟" in body(ask) or "吸烟" in body(ask)
    # The verifier sees what they check: 整改前 | 整改后 side by side, in private.
    assert ask.get("photo") and ask["photo"][-1]["width"] > ask["photo"][-1]["height"] * 1.5
    assert [label for label, _ in buttons(ask)] == [
        t(ZH, "verdict.compliant"), t(ZH, "verdict.basic"), t(ZH, "verdict.noncompliant")]
    await checker.press(ask, data_where(ask, code("vc")))
    card = await card_changes(harness, card, lambda m: t(ZH, "task.state.closed") in body(m))
    assert buttons(card) == [] and "李测评" in body(card)

    # One message in the group for the whole life of the task.
    assert len(await group_bot_messages(harness)) == messages_before
    async with harness.sessions() as s:
        task = await s.get(Task, tid)
        row = await s.get(SiteItem, (task.site_id, "hotel", "9")) if task else None
        actions = list(await s.scalars(select(TaskEvent.action)
                                       .where(TaskEvent.task_id == tid).order_by(TaskEvent.id)))
    assert task is not None and task.status == "closed"
    assert row is not None and (row.verdict, row.source) == ("compliant", "verification")
    assert actions == ["created", "accepted", "note", "fix_submitted", "verified"]
    async with harness.uow() as uow:
        score = await svc.current_site_score(uow, task.site_id or 0)
    assert score is not None and score.overall == 100.0

    # The same item fails again weeks later: the new task is flagged as a relapse (反弹).
    await inspect_hotel(harness, inspector)
    relapse = await harness.sb.wait_for_bot_message(
        LIAISON_GROUP, predicate=lambda m: "整改任务 #" in body(m) and task_id_of(m) != tid)
    assert "反弹" in body(relapse) and f"#{tid}" in body(relapse)


def use_task_start_link(harness: Harness) -> None:
    """/start task_<id> must reach handlers.tasks before handlers.start (whose payload is an
    invite code). Until handlers/__init__.py registers tasks.START_HANDLER ahead of
    start.HANDLERS, put it there for the test (a second copy later in the group is harmless:
    the first match wins)."""
    from handlers import tasks as task_handlers

    group = harness.bot.application.handlers[0]  # type: ignore[attr-defined]
    starts = [h for h in group if getattr(h, "commands", None) == frozenset({"start"})]
    if starts and starts[0] is not task_handlers.START_HANDLER:
        group.insert(group.index(starts[0]), task_handlers.START_HANDLER)


async def file_finding(harness: Harness, text: str, who: int = INSPECTOR) -> int:
    chat = Chat(harness.sb, who)
    reply = await chat.say(f"/task {text}")
    assert "#" in body(reply), body(reply)
    return task_id_of(reply)


async def test_race_return_rework_and_reopen(harness: Harness) -> None:
    tid = await file_finding(harness, "liaison_1 3 大堂入口地面有烟头")
    card = await card_of(harness, tid)
    assert not card.get("photo")  # no photo: a text card

    # Someone without the role is refused with a clear message.
    answer = await press(harness, INSPECTOR, LIAISON_GROUP, card, "a")
    assert answer["show_alert"]
    assert answer["text"] == shown(t(ZH, "task.not_your_role", who=t(ZH, "task.who.unit"),
                                     action=t(ZH, "task.action.accept")))

    # The admin looks at the task in private (its buttons are drawn for this version).
    await start_private(harness, ADMIN)
    detail = await Chat(harness.sb, ADMIN).say(f"/tasks {tid}")
    assert {d.split(":")[3] for _, d in buttons(detail)} >= {"a", "n", "m"}

    # Two people press 签收 at the same moment: one accepts, the other is told who did.
    data = data_where(card, code("a"))
    q1, q2 = await asyncio.gather(
        harness.sb.press(LIAISON_MEMBER, LIAISON_GROUP, card["message_id"], data),
        harness.sb.press(ADMIN, LIAISON_GROUP, card["message_id"], data))
    a1, a2 = await asyncio.gather(harness.sb.wait_for_callback_answer(q1),
                                  harness.sb.wait_for_callback_answer(q2))
    toast = t(ZH, "task.done_toast", action=t(ZH, "task.action.accept"))
    winners = [a for a in (a1, a2) if a["text"] == toast]
    losers = [a for a in (a1, a2) if a["text"] != toast]
    assert len(winners) == 1 and len(losers) == 1, (a1, a2)
    assert re.fullmatch(r"(陈联络|王管理) 已经签收了。", losers[0]["text"]), losers[0]
    async with harness.sessions() as s:
        accepted = list(await s.scalars(select(TaskEvent).where(
            TaskEvent.task_id == tid, TaskEvent.action == "accepted")))
    assert len(accepted) == 1

    # Issue 11 item 11: the screen drawn before the press loses its buttons once the task
    # moved on, so nothing stale is left to press.
    await harness.sb.wait_for(ADMIN, lambda ms: any(
        m["message_id"] == detail["message_id"] and not buttons(m) for m in ms))

    card = await card_changes(harness, card, lambda m: t(ZH, "task.state.accepted") in body(m))
    await fix_in_private(harness, card, "#b0b0b0")
    # The text card became a photo card (the after photo): still one card in the group.
    card = await card_changes(harness, card, lambda m: t(ZH, "task.state.fix_submitted")
                              in body(m) and bool(m.get("photo")))
    assert sum(f"整改任务 #{tid}" in body(m) for m in await group_bot_messages(harness)) == 1

    # 退回 with a reason: the unit reworks it.
    await start_private(harness, INSPECTOR)
    inspector = Chat(harness.sb, INSPECTOR)
    last = await inspector.last_id()
    await press(harness, INSPECTOR, LIAISON_GROUP, card, "r")
    ask = await harness.sb.wait_for_bot_message(INSPECTOR, after_message_id=last,
                                                predicate=lambda m: "退回原因" in body(m))
    assert f"#{tid}" in body(ask)
    await inspector.say("门口仍有烟头")
    card = await card_changes(harness, card, lambda m: t(ZH, "task.state.returned") in body(m))
    assert "门口仍有烟头" in body(card) and "已返工 1 次" in body(card)
    await fix_in_private(harness, card, "#c0c0c0")
    card = await card_changes(harness, card,
                              lambda m: t(ZH, "task.state.fix_submitted") in body(m))
    await press(harness, INSPECTOR, LIAISON_GROUP, card, "p")
    card = await card_changes(harness, card, lambda m: t(ZH, "task.state.closed") in body(m))

    # The admin reopens it from the task's history in private.
    admin = Chat(harness.sb, ADMIN)
    detail = await admin.say(f"/tasks {tid}")
    assert t(ZH, "task.history_title").replace("<b>", "").replace("</b>", "") in body(detail)
    assert "门口仍有烟头" in body(detail)
    assert [d.split(":")[3] for _, d in buttons(detail)] == ["o"]
    ask = await admin.press(detail, data_where(detail, code("o")))
    assert f"#{tid}" in body(ask)
    await admin.say("群众反映问题仍在")
    card = await card_changes(harness, card, lambda m: t(ZH, "task.state.returned") in body(m))
    assert "已返工 2 次" in body(card)


async def fix_in_private(harness: Harness, card: JSON, colour: str) -> None:
    await start_private(harness, LIAISON_MEMBER)
    member = Chat(harness.sb, LIAISON_MEMBER)
    last = await member.last_id()
    await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "f")
    await harness.sb.wait_for_bot_message(LIAISON_MEMBER, after_message_id=last)
    reply = await member.send_photo(jpeg_with_gps(640, 480, colour))
    await member.press(reply, data_where(reply, code("done")))


async def test_extension_and_reroute(harness: Harness) -> None:
    tid = await file_finding(harness, "东岭皇冠假日酒店 2 门前人行道破损", who=ADMIN)
    card = await card_of(harness, tid)
    assert "东岭皇冠假日酒店" in body(card)  # the site named; its unit is responsible
    await start_private(harness, LIAISON_MEMBER)
    await start_private(harness, ADMIN)
    member = Chat(harness.sb, LIAISON_MEMBER)

    # The unit asks for 5 more days, with a reason; an admin grants it.
    last = await member.last_id()
    await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "x")
    await harness.sb.wait_for_bot_message(LIAISON_MEMBER, after_message_id=last)
    await member.say("5 需要市政部门配合")
    card = await card_changes(harness, card, lambda m: "申请延期至" in body(m))
    async with harness.sessions() as s:
        due_before = (await s.get(Task, tid)).due_at  # type: ignore[union-attr]
    assert {d.split(":")[3] for _, d in buttons(card)} >= {"g", "d"}
    # Admins are asked in private too (they need not be in every unit's group).
    asked = await harness.sb.wait_for_bot_message(ADMIN, predicate=lambda m: "延期申请" in body(m))
    assert "需要市政部门配合" in body(asked)
    assert [d.split(":")[3] for _, d in buttons(asked)] == ["g", "d"]
    answer = await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "g")
    assert answer["show_alert"]  # only an admin decides
    await press(harness, ADMIN, LIAISON_GROUP, card, "g")
    card = await card_changes(harness, card, lambda m: "申请延期至" not in body(m))
    async with harness.sessions() as s:
        task = await s.get(Task, tid)
    assert task is not None and (task.due_at - due_before).days == 5
    assert task.due_at.astimezone(harness.settings.tz).strftime("%Y-%m-%d %H:%M") in body(card)

    # "Not our unit": the admin re-routes it to 后祁街社区, whose group gets the card.
    last = await member.last_id()
    await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "n")
    await harness.sb.wait_for_bot_message(LIAISON_MEMBER, after_message_id=last)
    await member.say("人行道归社区管理")
    card = await card_changes(harness, card, lambda m: "单位申请转派" in body(m))
    admin = Chat(harness.sb, ADMIN)
    last = await admin.last_id()
    await press(harness, ADMIN, LIAISON_GROUP, card, "m")
    await harness.sb.wait_for_bot_message(ADMIN, after_message_id=last,
                                          predicate=lambda m: "请输入新的责任单位" in body(m))
    await admin.say("houqijie 属地管理")
    old = await card_changes(harness, card, lambda m: "转派给" in body(m))
    assert "管理员 王管理 已将本任务从" in body(old)  # who moved it: the admin, by name
    assert buttons(old) == [] and "后祁街社区" in body(old)
    new = await card_of(harness, tid, HOUQIJIE_GROUP)
    assert t(ZH, "task.state.open") in body(new)
    assert any(d.endswith(":a") for _, d in buttons(new))
    async def new_card_remembered() -> bool:
        # The outbox records the delivered card right after Telegram accepted it.
        async with harness.sessions() as s:
            return await s.scalar(select(TaskCard.message_id).where(
                TaskCard.task_id == tid, TaskCard.chat_id == HOUQIJIE_GROUP)) is not None

    await wait_until(new_card_remembered)
    async with harness.sessions() as s:
        task = await s.get(Task, tid)
        actions = list(await s.scalars(select(TaskEvent.action)
                                       .where(TaskEvent.task_id == tid).order_by(TaskEvent.id)))
    assert task is not None and task.status == "open"
    assert actions == ["created", "extension_requested", "extension_granted", "not_ours",
                       "rerouted"]


async def test_lists_in_private_and_in_the_group(harness: Harness) -> None:
    tid = await file_finding(harness, "liaison_1 1 消防通道堆放纸箱")
    await card_of(harness, tid)
    await start_private(harness, LIAISON_MEMBER)
    mine = await Chat(harness.sb, LIAISON_MEMBER).say("/tasks")
    assert f"#{tid}" in body(mine) and "消防通道堆放纸箱" in body(mine)
    sent = await harness.sb.send_text(LIAISON_MEMBER, "/tasks", LIAISON_GROUP)
    # (The group may also hold the bot's greeting from being added: wait for the list.)
    group = await harness.sb.wait_for_bot_message(
        LIAISON_GROUP, after_message_id=sent["message_id"],
        predicate=lambda m: "未销号整改任务" in body(m))
    assert f"#{tid}" in body(group) and "第1网络包抓联络小组" in body(group)
    overdue = await Chat(harness.sb, ADMIN).say("/tasks overdue")
    assert f"#{tid}" not in body(overdue)
    by_unit = await Chat(harness.sb, ADMIN).say("/tasks unit liaison_1")
    assert f"#{tid}" in body(by_unit)
    checks = await Chat(harness.sb, INSPECTOR_2).say("/tasks")
    assert shown(t(ZH, "task.list.to_verify", count=0, unit="")) in body(checks)


# ---- UX review: photos in private, captions, extension days, returns, old buttons ----------


async def test_a_fix_returned_and_fixed_again_as_the_people_involved_see_it(
    harness: Harness
) -> None:
    from datetime import timedelta

    from bot.render.tasks import default_tz

    tid = await file_finding(harness, "liaison_1 3 大堂入口地面有烟头")  # 张督查 filed it
    card = await card_of(harness, tid)
    await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "a")
    card = await card_changes(harness, card, lambda m: t(ZH, "task.state.accepted") in body(m))
    await start_private(harness, LIAISON_MEMBER)
    member = Chat(harness.sb, LIAISON_MEMBER)

    # An extension in words: three days, confirmed with the date asked for.
    last = await member.last_id()
    await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "x")
    await harness.sb.wait_for_bot_message(LIAISON_MEMBER, after_message_id=last)
    reply = await member.say("人手不足")
    assert body(reply) == shown(t(ZH, "task.extension_days_missing", max=60))
    reply = await member.say("人手不足，需要再给三天")
    async with harness.sessions() as s:
        task = await s.get(Task, tid)
        assert task is not None and task.extension_until is not None
        assert task.extension_until == task.due_at + timedelta(days=3)
        until = task.extension_until.astimezone(default_tz())
    assert body(reply) == shown(t(ZH, "task.extension_requested", id=tid,
                                  until=f"{until.month}月{until.day}日"))
    card = await card_changes(harness, card, lambda m: "申请延期至" in body(m))

    # The after-photo's caption is the fix note.
    last = await member.last_id()
    await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "f")
    first_prompt = await harness.sb.wait_for_bot_message(LIAISON_MEMBER, after_message_id=last)
    reply = await member.send_photo(jpeg_with_gps(800, 600, "#30a050"), caption="东侧也清理了")
    assert body(reply) == shown(t(ZH, "task.fix_noted", count=1))
    done = await member.press(reply, data_where(reply, code("done")))
    assert body(done) == shown(t(ZH, "task.done_private", id=tid,
                                 action=t(ZH, "task.action.submit_fix")))
    # 完成 pressed again on an older prompt: "you already did", not one's own name.
    again = await press(harness, LIAISON_MEMBER, LIAISON_MEMBER, first_prompt, "done")
    assert again["text"] == t(ZH, "task.already_done_self",
                              action=t(ZH, "task.action.submit_fix"))

    # 张督查 is told, with the note; /tasks state 待复核 finds it.
    notice = await harness.sb.wait_for_bot_message(
        INSPECTOR, predicate=lambda m: "待复核" in body(m) and "东侧也清理了" in body(m))
    inspector = Chat(harness.sb, INSPECTOR)
    listing = await inspector.say("/tasks state 待复核")
    assert f"#{tid}" in body(listing)
    # /tasks <id> shows the after-photo (a stored copy) with the history as its caption.
    detail = await inspector.say(f"/tasks {tid}")
    assert detail.get("photo") and body(detail).count("东侧也清理了") == 1
    assert "提交整改（1 张照片）" in body(detail)

    # 退回 from the notice: a return is not a green check; the group gets a new message; the
    # notice's buttons go away.
    last = await inspector.last_id()
    await press(harness, INSPECTOR, INSPECTOR, notice, "r")
    await harness.sb.wait_for_bot_message(INSPECTOR, after_message_id=last)
    reply = await inspector.say("西侧还有烟头")
    assert body(reply) == shown(t(ZH, "task.done_private_return", id=tid,
                                  action=t(ZH, "task.action.verify_return")))
    told = await harness.sb.wait_for_bot_message(
        LIAISON_GROUP, predicate=lambda m: body(m).startswith(f"↩️ 任务 #{tid} 被退回"))
    assert "西侧还有烟头" in body(told)
    await harness.sb.wait_for(INSPECTOR, lambda ms: any(
        m["message_id"] == notice["message_id"] and not buttons(m) for m in ms))

    # Fixing again: the prompt says why it came back.
    card = await card_changes(harness, card, lambda m: t(ZH, "task.state.returned") in body(m))
    last = await member.last_id()
    await press(harness, LIAISON_MEMBER, LIAISON_GROUP, card, "f")
    prompt = await harness.sb.wait_for_bot_message(LIAISON_MEMBER, after_message_id=last)
    assert "西侧还有烟头" in body(prompt)


async def test_a_finding_photo_caption_files_the_finding(harness: Harness) -> None:
    inspector = Chat(harness.sb, INSPECTOR)
    await inspector.say("/task")
    reply = await inspector.send_photo(jpeg_with_gps(800, 600, "#804020"),
                                       caption="liaison_1 3 大堂入口地面有烟头")
    tid = task_id_of(reply)
    assert "照片 1 张" in body(reply)
    card = await card_of(harness, tid)
    assert card.get("photo")


async def test_an_edit_that_changes_nothing_counts_as_delivered(harness: Harness) -> None:
    from db.models import OutboxMessage

    tid = await file_finding(harness, "liaison_1 3 消防通道堆放纸箱")
    await card_of(harness, tid)

    async def delivered() -> bool:
        async with harness.uow() as uow:
            return bool(await uow.cards.places(tid))

    await wait_until(delivered)
    await harness.sb.inject_fault(
        "editMessageText", status=400,
        description="Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup "
                    "of the message")
    async with harness.uow() as uow:
        now = harness.bot.deps.clock()  # type: ignore[attr-defined]
        assert await svc.queue_card_edits(uow, tid, now, tag="again")
        await uow.commit()
    harness.bot.application.bot_data["outbox"].wake()  # type: ignore[attr-defined]

    async def settled() -> str | None:
        async with harness.sessions() as s:
            row = (await s.scalars(select(OutboxMessage).where(
                OutboxMessage.dedup_key.startswith(f"task:{tid}:edit:")))).one()
        return row.status if row.status != "pending" else None

    await wait_until(settled)
    assert await settled() == "sent"  # and no ERROR logged (the error_log fixture checks)
