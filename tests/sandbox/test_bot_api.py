"""Bot API semantics through PTB's Bot: errors, polling, webhooks, flood control, faults."""

from __future__ import annotations

import asyncio
import time
import warnings
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot, BotCommand, BotCommandScopeChat, InlineKeyboardButton
from telegram import InlineKeyboardMarkup as Markup
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter

from sandbox.client import SandboxClient
from sandbox.server import SandboxServer
from tests.sandbox.conftest import TOKEN, image_bytes

# PTB 22.2+ warns on RetryAfter.retry_after being an int; that is PTB's business, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


async def started_user(client: SandboxClient, name: str = "U") -> int:
    user = await client.create_user(name, started=True)
    return int(user["id"])


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22.2+ warns that this becomes a timedelta
        warnings.simplefilter("ignore")
        value: Any = exc.retry_after
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)


async def test_get_me_uses_token_id(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123 and me.is_bot and me.username == "wenming_bot"
    assert me.can_join_groups


async def test_long_poll_returns_empty_after_timeout(bot: Bot) -> None:
    t0 = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= time.monotonic() - t0 < 3


async def test_long_poll_wakes_on_update(bot: Bot, client: SandboxClient) -> None:
    uid = await started_user(client)
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    t0 = time.monotonic()
    await client.send_text(uid, "hi")
    updates = await poll
    assert time.monotonic() - t0 < 1
    assert updates[0].message is not None and updates[0].message.text == "hi"


async def test_offset_confirmation(bot: Bot, client: SandboxClient) -> None:
    uid = await started_user(client)
    for text in ("a", "b", "c"):
        await client.send_text(uid, text)
    first = await bot.get_updates()
    assert [u.message.text for u in first if u.message] == ["a", "b", "c"]
    again = await bot.get_updates()  # not confirmed yet: delivered again
    assert [u.update_id for u in again] == [u.update_id for u in first]
    limited = await bot.get_updates(offset=first[0].update_id + 1, limit=1)
    assert [u.update_id for u in limited] == [first[1].update_id]
    assert await bot.get_updates(offset=first[-1].update_id + 1) == ()
    for text in ("d", "e", "f"):
        await client.send_text(uid, text)
    last = await bot.get_updates(offset=-1)
    assert [u.message.text for u in last if u.message] == ["f"]
    assert (await client.stats())["pending_updates"] == 1


async def test_second_poll_terminates_first(bot: Bot, server: SandboxServer) -> None:
    older = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    # A second bot instance (PTB's getUpdates pool holds a single connection).
    async with Bot(TOKEN, base_url=server.api_base_url) as other:
        newer = asyncio.create_task(other.get_updates(timeout=1))
        with pytest.raises(Conflict, match="terminated by other getUpdates"):
            await older
        assert await newer == ()


async def test_allowed_updates_filter(bot: Bot, client: SandboxClient) -> None:
    uid = await started_user(client)
    await client.send_text(uid, "hello")
    assert await bot.get_updates(allowed_updates=["callback_query"]) == ()
    assert (await client.stats())["pending_updates"] == 0


async def test_webhook_conflict_and_delivery(bot: Bot, client: SandboxClient) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    failures = {"left": 1}

    async def receive(request: web.Request) -> web.Response:
        if failures["left"]:
            failures["left"] -= 1
            return web.Response(status=500)
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"),
                         await request.json()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        uid = await started_user(client)
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        await client.send_text(uid, "one")
        await client.send_text(uid, "two")
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.05)
        assert [secret for secret, _ in received] == ["s3cret", "s3cret"]
        assert [u["message"]["text"] for _, u in received] == ["one", "two"]
        info = await bot.get_webhook_info()
        assert info.url.endswith("/hook") and info.pending_update_count == 0
        assert info.last_error_message is not None  # the first 500 was recorded
        await bot.delete_webhook()
        assert await bot.get_updates() == ()
    finally:
        await runner.cleanup()


async def test_webhook_posts_one_update_per_chat_at_a_time_and_chats_in_parallel(
    bot: Bot, client: SandboxClient
) -> None:
    """As Telegram: a chat's next message waits for the answer to the one in flight; another
    chat, and the same user's button press (queued per user), do not wait."""
    held = asyncio.Event()
    posted: list[str] = []

    async def receive(request: web.Request) -> web.Response:
        update = await request.json()
        text = update.get("message", {}).get("text") or update["callback_query"]["data"]
        posted.append(text)
        if text == "a1":
            await held.wait()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        a, b = await started_user(client, "A"), await started_user(client, "B")
        sent = await bot.send_message(a, "pick", reply_markup=Markup(
            [[InlineKeyboardButton("x", callback_data="press-a")]]))
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", max_connections=10)
        await client.send_text(a, "a1")
        await client.send_text(a, "a2")
        await client.send_text(b, "b1")
        await client.press(a, a, sent.message_id, "press-a")
        for _ in range(100):
            if {"a1", "b1", "press-a"} <= set(posted):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert sorted(posted) == ["a1", "b1", "press-a"]  # a2 waits behind a1
        held.set()
        for _ in range(100):
            if "a2" in posted:
                break
            await asyncio.sleep(0.02)
        assert posted[-1] == "a2" and len(posted) == 4
    finally:
        await bot.delete_webhook()
        await runner.cleanup()


async def test_html_validation(bot: Bot, client: SandboxClient) -> None:
    uid = await started_user(client)
    for bad, fragment in [("<b>open", "Can't find end tag"), ("<x>y</x>", "Unsupported start tag"),
                          ("a < b", "Unsupported start tag"), ("&foo; bar", "Unsupported HTML"),
                          ("<b>x</i>", "Unmatched end tag"),
                          ('<span class="x">s</span>', "tg-spoiler")]:
        with pytest.raises(BadRequest, match="Can't parse entities") as info:
            await bot.send_message(uid, bad, parse_mode="HTML")
        assert fragment.lower() in info.value.message.lower()
    ok = await bot.send_message(
        uid, '<b>粗<i>斜</i></b> <a href="https://x.y/?a=1&amp;b=2">l</a> &lt;&#33;'
             '<pre><code class="language-py">x</code></pre>', parse_mode="HTML")
    assert ok.text == "粗斜 l <!x"
    kinds = [(e.type, e.offset, e.length) for e in ok.entities]
    assert kinds == [("bold", 0, 2), ("italic", 1, 1), ("text_link", 3, 1), ("pre", 7, 1)]
    assert ok.entities[2].url == "https://x.y/?a=1&b=2" and ok.entities[3].language == "py"
    await bot.send_message(uid, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(uid, "<b>" + "a" * 4097 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(uid, "😀" * 2049)  # 4098 UTF-16 code units
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(uid, "<b> </b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="reserved"):
        await bot.send_message(uid, "1.5", parse_mode="MarkdownV2")
    assert (await bot.send_message(uid, "*b* 1\\.5", parse_mode="MarkdownV2")).text == "b 1.5"


async def test_caption_and_callback_data_limits(bot: Bot, client: SandboxClient) -> None:
    uid = await started_user(client)
    with pytest.raises(BadRequest, match="caption is too long"):
        await bot.send_photo(uid, image_bytes(50, 50), caption="x" * 1025)
    ok_data = "检" * 21  # 63 bytes
    await bot.send_message(uid, "k", reply_markup=Markup(
        [[InlineKeyboardButton("a", callback_data=ok_data)]]))
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(uid, "k", reply_markup=Markup(
            [[InlineKeyboardButton("a", callback_data="检" * 22)]]))


async def test_photo_dimension_limits(bot: Bot, client: SandboxClient) -> None:
    uid = await started_user(client)
    with pytest.raises(BadRequest, match="Photo_invalid_dimensions"):
        await bot.send_photo(uid, image_bytes(2100, 100))
    with pytest.raises(BadRequest, match="Image_process_failed"):
        await bot.send_photo(uid, b"not an image")


async def test_edit_delete_errors(bot: Bot, client: SandboxClient) -> None:
    uid = await started_user(client)
    msg = await bot.send_message(uid, "x", reply_markup=Markup(
        [[InlineKeyboardButton("b", callback_data="d")]]))
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(uid, msg.message_id, reply_markup=msg.reply_markup)
    edited = await bot.edit_message_text("y", uid, msg.message_id)
    assert isinstance(edited, type(msg)) and edited.edit_date is not None
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("z", uid, 999)
    assert await bot.delete_message(uid, msg.message_id)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(uid, msg.message_id)
    assert await client.bot_messages(uid) == []


async def test_forbidden_and_chat_not_found(bot: Bot, client: SandboxClient) -> None:
    fresh = await client.create_user("New")
    with pytest.raises(Forbidden, match="can't initiate conversation"):
        await bot.send_message(fresh["id"], "hi")
    await client.send_text(fresh["id"], "hello")
    await bot.send_message(fresh["id"], "now allowed")
    await client.block_user(fresh["id"])
    with pytest.raises(Forbidden, match="blocked by the user"):
        await bot.send_message(fresh["id"], "hi")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(424242, "hi")


async def test_group_membership(bot: Bot, client: SandboxClient) -> None:
    admin = await client.create_user("Admin")
    group = await client.create_group("街道群", chat_type="supergroup")
    basic = await client.create_group("小组", chat_type="group")
    with pytest.raises(Forbidden, match="not a member"):
        await bot.send_message(group["id"], "hi")
    await client.add_bot(group["id"], admin["id"])
    updates = await bot.get_updates()
    assert updates[0].my_chat_member is not None
    assert updates[0].my_chat_member.new_chat_member.status == "member"
    assert updates[1].message is not None and updates[1].message.new_chat_members
    await bot.send_message(group["id"], "hi group")
    await client.remove_bot(group["id"], admin["id"])
    with pytest.raises(Forbidden, match="bot was kicked from the supergroup chat"):
        await bot.send_message(group["id"], "still here?")
    await client.add_bot(basic["id"], admin["id"])
    await client.remove_bot(basic["id"], admin["id"])
    with pytest.raises(Forbidden, match="bot was kicked from the group chat"):
        await bot.send_message(basic["id"], "still here?")
    chats = {c["id"]: c for c in await client.chats()}
    assert chats[group["id"]]["bot_member"] is False


async def test_flood_control_retry_after(bot: Bot, client: SandboxClient) -> None:
    uid = await started_user(client)
    with pytest.raises(RetryAfter) as info:
        for i in range(20):
            await bot.send_message(uid, f"m{i}")
    assert retry_seconds(info.value) >= 1
    stats = await client.stats()
    assert stats["errors"]["429"] == 1
    await client.set_flood_control(False)
    for i in range(20):
        await bot.send_message(uid, f"n{i}")


async def test_flood_history_records_each_429_and_each_accepted_call(
    bot: Bot, client: SandboxClient, server: SandboxServer
) -> None:
    """Issue 11 item 1: the user side tells, per chat, which calls flood control refused (when,
    with what retry_after) and which it let through, so a test can check that nothing reached
    a chat inside its retry_after."""
    uid = await started_user(client, "A")
    other = await started_user(client, "B")
    clock = [500.0]
    server.state.flood.clock = lambda: clock[0]
    sent = [await bot.send_message(uid, f"m{i}") for i in range(5)]  # the per-chat burst
    with pytest.raises(RetryAfter):
        await bot.send_message(uid, "one too many")
    clock[0] += 0.5
    await bot.edit_message_text("edited", chat_id=uid, message_id=sent[0].message_id)
    await bot.send_message(other, "elsewhere")
    history = await client.flood_history()
    mine = history["chats"][str(uid)]
    assert history["enabled"] is True and history["now"] == 500.5
    assert mine["refused"] == [{"at": 500.0, "retry_after": 1, "kind": "send"}]
    assert [(a["at"], a["kind"]) for a in mine["accepted"]] == [(500.0, "send")] * 5 + [
        (500.5, "edit")]
    assert list((await client.flood_history(other))["chats"]) == [str(other)]
    await client.set_flood_control(True)  # a reset empties it
    assert (await client.flood_history())["chats"] == {}


async def test_group_flood_limit(bot: Bot, client: SandboxClient, server: SandboxServer) -> None:
    admin = await client.create_user("Admin")
    group = await client.create_group("g")
    await client.add_bot(group["id"], admin["id"])
    # Step a fake clock so the per-chat bucket refills but the 20/minute one does not.
    clock = [1000.0]
    server.state.flood.clock = lambda: clock[0]
    server.state.flood.reset()
    sent = 0
    with pytest.raises(RetryAfter) as info:
        for _ in range(30):
            await bot.send_message(group["id"], "x")
            sent += 1
            clock[0] += 1.0
    # 20 burst + one token per 3 s: the 30th send at t=29 s finds 20 + 29/3 - 29 < 1 tokens.
    assert sent == 29
    assert retry_seconds(info.value) >= 1


async def test_injected_faults(bot: Bot, client: SandboxClient) -> None:
    uid = await started_user(client)
    await client.inject_fault("sendMessage", retry_after=3)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(uid, "x")
    assert retry_seconds(info.value) == 3
    await client.inject_fault("sendmessage", count=2, status=400, description="Bad Request: boom")
    for _ in range(2):
        with pytest.raises(BadRequest, match="Boom"):
            await bot.send_message(uid, "x")
    await client.inject_fault("getMe", drop=True)
    with pytest.raises(NetworkError):
        await bot.get_me()
    await client.inject_fault("sendMessage", status=502)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(uid, "x")
    assert (await bot.send_message(uid, "fine")).text == "fine"


async def test_latency(bot: Bot, client: SandboxClient) -> None:
    await client.set_latency(200)
    t0 = time.monotonic()
    await bot.get_me()
    assert time.monotonic() - t0 >= 0.2
    await client.set_latency(0)


async def test_commands_per_scope_and_language(bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("start", "开始")])
    scope = BotCommandScopeChat(42)
    await bot.set_my_commands([BotCommand("report", "上报")], scope=scope, language_code="zh")
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert [c.command for c in await bot.get_my_commands(scope=scope, language_code="zh")] == [
        "report"]
    assert await bot.get_my_commands(scope=scope) == ()
    await bot.delete_my_commands(scope=scope, language_code="zh")
    assert await bot.get_my_commands(scope=scope, language_code="zh") == ()
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])


async def test_file_download_with_encoded_token(server: SandboxServer, bot: Bot,
                                                client: SandboxClient) -> None:
    uid = await started_user(client)
    doc = await bot.send_document(uid, b"%PDF-1.4 test", filename="r.pdf")
    assert doc.document is not None and doc.document.file_name == "r.pdf"
    assert doc.document.mime_type == "application/pdf"
    f = await bot.get_file(doc.document.file_id)
    assert f.file_path is not None and f.file_path.startswith(server.file_base_url)
    assert bytes(await f.download_as_bytearray()) == b"%PDF-1.4 test"
    assert "%3A" not in TOKEN and ":" in TOKEN  # PTB quotes the colon; the server decodes it


async def test_chat_info_methods(bot: Bot, client: SandboxClient) -> None:
    admin = await client.create_user("Admin", started=True)
    group = await client.create_group("g", creator_user_id=admin["id"])
    await client.add_bot(group["id"], admin["id"], as_admin=True)
    chat = await bot.get_chat(group["id"])
    assert chat.title == "g" and chat.type == "supergroup"
    member = await bot.get_chat_member(group["id"], admin["id"])
    assert member.status == "creator"
    admins = await bot.get_chat_administrators(group["id"])
    assert {a.user.id for a in admins} == {admin["id"], 123}
    assert await bot.get_chat_member_count(group["id"]) == 2
    assert await bot.send_chat_action(admin["id"], "typing")
    loc = await bot.send_location(admin["id"], 31.2, 121.5)
    assert loc.location is not None and loc.location.latitude == 31.2
    copied = await bot.copy_message(admin["id"], admin["id"], loc.message_id)
    assert copied.message_id == loc.message_id + 1
    await bot.leave_chat(group["id"])
    with pytest.raises(Forbidden):
        await bot.send_message(group["id"], "x")


async def test_edit_media_venue_and_big_file(bot: Bot, client: SandboxClient) -> None:
    from telegram import InputMediaDocument

    uid = await started_user(client)
    photo = await bot.send_photo(uid, image_bytes(400, 300), caption="c")
    edited = await bot.edit_message_media(InputMediaDocument(b"doc", filename="d.txt"),
                                          uid, photo.message_id)
    assert not isinstance(edited, bool)
    assert edited.document is not None and not edited.photo and edited.caption is None
    with pytest.raises(BadRequest, match="There is no text in the message to edit"):
        await bot.edit_message_text("x", uid, photo.message_id)
    venue = await bot.send_venue(uid, 1.0, 2.0, "市政府", "人民路1号")
    assert venue.venue is not None and venue.venue.title == "市政府"
    big = await client.send_document(uid, b"\0" * (20 * 1024 * 1024 + 1), filename="big.bin")
    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(big["document"]["file_id"])
