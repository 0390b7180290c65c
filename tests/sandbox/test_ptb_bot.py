"""End to end: a real PTB 22.8 Application, polling the sandbox, driven from the user side."""

from __future__ import annotations

import hashlib

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto, Update
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from sandbox.client import SandboxClient, button_data
from sandbox.server import SandboxServer
from tests.sandbox.conftest import build_app, image_bytes, running

Ctx = ContextTypes.DEFAULT_TYPE


async def start(update: Update, context: Ctx) -> None:
    assert update.effective_message is not None
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("合格 ✅", callback_data="pick:ok")],
                                     [InlineKeyboardButton("不合格", callback_data="pick:bad")]])
    await update.effective_message.reply_text("<b>欢迎</b> welcome", parse_mode="HTML",
                                              reply_markup=keyboard)


async def on_button(update: Update, context: Ctx) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    await query.answer(f"got {query.data}")
    await query.edit_message_text(f"You picked {query.data}")


async def edit_twice(update: Update, context: Ctx) -> None:
    assert update.effective_message is not None
    sent = await update.effective_message.reply_text("v1")
    await sent.edit_text("v2")
    try:
        await sent.edit_text("v2")
    except BadRequest as exc:
        await update.effective_message.reply_text(f"error: {exc.message}")


async def on_photo(update: Update, context: Ctx) -> None:
    message = update.effective_message
    assert message is not None and message.photo
    largest = message.photo[-1]
    file = await largest.get_file()
    data = bytes(await file.download_as_bytearray())
    digest = hashlib.sha256(data).hexdigest()[:16]
    await message.reply_text(f"got {len(data)} bytes sha={digest} "
                             f"{largest.width}x{largest.height}")
    sent = await message.reply_photo(data, caption="echo")
    await context.bot.send_media_group(message.chat_id, [
        InputMediaPhoto(data, caption="first"), InputMediaPhoto(sent.photo[-1].file_id)])


async def echo(update: Update, context: Ctx) -> None:
    assert update.effective_message is not None and update.effective_message.text
    await update.effective_message.reply_text(update.effective_message.text)


def echo_app(server: SandboxServer) -> Application:  # type: ignore[type-arg]
    app = build_app(server)
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("edit", edit_twice))
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_handler(MessageHandler(filters.PHOTO, on_photo))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    return app


async def test_start_button_and_edit_in_place(server: SandboxServer,
                                              client: SandboxClient) -> None:
    async with running(echo_app(server)):
        user = await client.create_user("小明")
        await client.send_text(user["id"], "/start")
        welcome = await client.wait_for_bot_message(user["id"])
        assert welcome["text"] == "欢迎 welcome"
        assert welcome["entities"] == [{"type": "bold", "offset": 0, "length": 2}]
        data = button_data(welcome, "不合格")
        cb_id = await client.press(user["id"], user["id"], welcome["message_id"], data)
        answer = await client.wait_for_callback_answer(cb_id)
        assert answer["text"] == "got pick:bad"
        edited = await client.wait_for_bot_message(
            user["id"], predicate=lambda m: m["text"].startswith("You picked"))
        assert edited["message_id"] == welcome["message_id"]
        assert edited["text"] == "You picked pick:bad"
        assert "edit_date" in edited and "reply_markup" not in edited
        stats = await client.stats()
        assert stats["calls"]["answerCallbackQuery"] == 1


async def test_echo_and_not_modified(server: SandboxServer, client: SandboxClient) -> None:
    async with running(echo_app(server)):
        user = await client.create_user("Li")
        await client.send_text(user["id"], "123")
        reply = await client.wait_for_bot_message(user["id"])
        assert reply["text"] == "123"  # free text must stay a string
        await client.send_text(user["id"], "/edit")
        error = await client.wait_for_bot_message(
            user["id"], predicate=lambda m: m["text"].startswith("error"))
        assert "Message is not modified" in error["text"]
        texts = [m.get("text") for m in await client.bot_messages(user["id"])]
        assert texts == ["123", "v2", error["text"]]


async def test_user_photo_download_upload_and_album(server: SandboxServer,
                                                    client: SandboxClient) -> None:
    async with running(echo_app(server)):
        user = await client.create_user("Wang")
        original = image_bytes(1200, 900, "PNG")
        sent = await client.send_photo(user["id"], original, filename="p.png",
                                       content_type="image/png")
        assert [(p["width"], p["height"]) for p in sent["photo"]] == [
            (90, 68), (320, 240), (800, 600), (1200, 900)]
        # The bot downloads the photo as Telegram re-encoded it (a JPEG), not the PNG sent.
        served = await client.file_bytes(sent["photo"][-1]["file_id"])
        assert served != original
        digest = hashlib.sha256(served).hexdigest()[:16]
        reply = await client.wait_for_bot_message(user["id"])
        assert reply["text"] == f"got {len(served)} bytes sha={digest} 1200x900"
        transcript = await client.wait_for(
            user["id"], lambda ms: sum(1 for m in ms if m.get("media_group_id")) == 2)
        echoed = next(m for m in transcript if m.get("caption") == "echo")
        assert await client.uploaded_bytes(echoed["photo"][-1]["file_id"]) == served
        album = [m for m in transcript if m.get("media_group_id")]
        assert len({m["media_group_id"] for m in album}) == 1
        assert album[0]["caption"] == "first"
        assert album[1]["photo"][-1]["file_id"] == echoed["photo"][-1]["file_id"]
