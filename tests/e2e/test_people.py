"""Roles through the chat: invites, group binding, language, menus, /cancel."""

from __future__ import annotations

import re

from bot.render.i18n import t
from tests.conftest import Harness
from tests.e2e.chat import Chat, body, data_where, shown

ADMIN, RESIDENT, OTHER_RESIDENT = 10000, 20001, 20002
ZH = "zh-hans"


async def test_admin_invites_an_inspector_who_then_can_inspect(harness: Harness) -> None:
    admin = Chat(harness.sb, ADMIN)
    resident = Chat(harness.sb, RESIDENT)
    refused = await resident.say("/inspect")
    assert body(refused) == t(ZH, "error.role_required", role=t(ZH, "role.inspector"))
    # A resident cannot make invites either.
    refused = await resident.say("/invite inspector")
    assert body(refused) == t(ZH, "error.role_required", role=t(ZH, "role.admin"))

    reply = await admin.say("/invite inspector")
    link = re.search(r"https://t\.me/wenming_bot\?start=(\w+)", body(reply))
    assert link, body(reply)
    code = link.group(1)
    granted = await resident.say(f"/start {code}")
    assert shown(t(ZH, "start.invite_granted", role=t(ZH, "role.inspector"), unit="")) in body(
        granted)
    # Their own command menu now offers /inspect.
    commands = await harness.sb.commands()
    mine = [c for c in commands if c.get("scope", {}).get("chat_id") == RESIDENT]
    assert mine and any(cmd["command"] == "inspect" for cmd in mine[0]["commands"])
    # The same link again is harmless; a second person finds it used up.
    again = await resident.say(f"/start {code}")
    assert shown(t(ZH, "start.invite_already", role=t(ZH, "role.inspector"), unit="")) in body(
        again)
    used = await Chat(harness.sb, OTHER_RESIDENT).say(f"/start {code}")
    assert body(used) == t("en", "invite.used_up")  # Alice's Telegram speaks English
    # And the new inspector can search for a site by name.
    menu = await resident.say("/inspect")
    assert body(menu) == t(ZH, "inspect.no_assigned_sites")
    prompt = await resident.press(menu, data_where(menu, lambda _t, d: d == "f:search"))
    assert body(prompt) == t(ZH, "inspect.type_site_name")
    found = await resident.say("银泰")
    assert body(found) == t(ZH, "inspect.found_sites")
    first = await resident.press(found, data_where(found, lambda text, _d: "银泰" in text))
    assert "第 1/19 项" in body(first)  # the mall standard: 16 items, item 14 in four parts


async def test_unknown_invites_and_a_residents_typed_complaint(harness: Harness) -> None:
    resident = Chat(harness.sb, RESIDENT)
    reply = await resident.say("/start nosuchcode")
    assert body(reply) == t(ZH, "invite.unknown")
    # Typing a complaint instead of sending a photo: told how to report it.
    reply = await resident.say("你好，路灯坏了")
    assert body(reply) == t(ZH, "error.text_unexpected")
    assert "/report" in body(reply)


async def test_unit_invite_needs_a_unit_and_names_ambiguity(harness: Harness) -> None:
    admin = Chat(harness.sb, ADMIN)
    reply = await admin.say("/invite unit")
    assert body(reply) == t(ZH, "invite.unit_required")
    reply = await admin.say("/invite unit 社区")
    assert "社区" in body(reply) and "匹配到多个单位" in body(reply)
    reply = await admin.say("/invite unit houqijie 5")
    assert "后祁街社区" in body(reply) and "可用 5 次" in body(reply)
    code = re.search(r"start=(\w+)", body(reply))
    assert code
    # The member is greeted as a member of that unit, named.
    welcome = await Chat(harness.sb, RESIDENT).say(f"/start {code.group(1)}")
    assert shown(t(ZH, "start.greeting.unit_member", name="赵居民", unit="后祁街社区")) in body(
        welcome)
    assert "（单位：后祁街社区）" in body(welcome)


async def test_admin_binds_a_new_group_and_a_member_cannot(harness: Harness) -> None:
    sb = harness.sb
    group = await sb.create_group("新建的社区群", chat_id=-1009999)
    await sb.add_member(group["id"], OTHER_RESIDENT)
    await sb.add_bot(group["id"], ADMIN)
    hello = await sb.wait_for_bot_message(group["id"])
    assert body(hello) == shown(t(ZH, "bind.added_by_admin"))
    member = Chat(sb, OTHER_RESIDENT, group["id"])
    refused = await member.say("/bind houqijie")
    assert body(refused) == t("en", "bind.admin_only")  # refused in Alice's own language
    admin = Chat(sb, ADMIN, group["id"])
    done = await admin.say("/bind houqijie")
    assert body(done) == shown(t(ZH, "bind.done", unit="后祁街社区"))
    unknown = await admin.say("/bind 不存在的单位")
    assert body(unknown) == t(ZH, "unit.not_found", query="不存在的单位")


async def test_language_is_remembered_and_cancel_is_always_safe(harness: Harness) -> None:
    resident = Chat(harness.sb, RESIDENT)
    menu = await resident.say("/lang")
    done = await resident.press(menu, data_where(menu, lambda text, _d: text == "English"))
    assert body(done) == t("en", "lang.set")
    await harness.restart()
    reply = await resident.say("/cancel")
    assert body(reply) == t("en", "cancel.done")
    reply = await resident.say("/help")
    assert body(reply) == shown(t("en", "help.resident"))
