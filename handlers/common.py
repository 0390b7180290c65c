"""Small helpers shared by handlers: replying, editing in place, sending a screen."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from telegram import Document, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from bot.render.buttons import Rows
from bot.telegram.context import WenmingContext
from bot.telegram.flood import ReplyQueued
from bot.telegram.markup import inline_markup

T = TypeVar("T")


async def queued(send: Awaitable[T]) -> T | None:
    """Send; None when the chat's flood wait was long and the send went to the outbox
    (bot/telegram/flood.py). That is a normal outcome: the handler goes on, later sends to the
    chat queue behind it in order, and there is no message (no id) yet."""
    try:
        return await send
    except ReplyQueued:
        return None


async def reply(update: Update, text: str, rows: Rows | None = None) -> Message | None:
    """Answer in the chat the update came from, with these buttons (None: queued in the
    outbox, see `queued`)."""
    chat = update.effective_chat
    assert chat is not None
    return await queued(chat.send_message(text, parse_mode=ParseMode.HTML,
                                          reply_markup=inline_markup(rows)))


async def show(update: Update, text: str, rows: Rows | None = None) -> Message | None:
    """Edit the pressed message in place; for a typed message, send a new one."""
    markup = inline_markup(rows)
    query = update.callback_query
    if query is not None and query.message is not None:
        try:
            edited = await query.edit_message_text(text, parse_mode=ParseMode.HTML,
                                                   reply_markup=markup)
        except ReplyQueued:
            return None
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return None
            if "not found" not in str(exc).lower() and "can't be edited" not in str(exc).lower():
                raise
        else:
            return edited if isinstance(edited, Message) else None
    return await reply(update, text, rows)


async def edit_shown(context: WenmingContext, chat_id: int, message_id: int, text: str) -> None:
    """Redraw an earlier screen (not the one pressed) as `text`, without buttons. It is a
    courtesy: a screen Telegram no longer has, one not changed, or Telegram failing leaves it
    as it is, and whatever the handler answers next still goes."""
    with contextlib.suppress(TelegramError):
        await context.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id,
                                            parse_mode=ParseMode.HTML, reply_markup=None)


async def drop_keyboard(context: WenmingContext, chat_id: int, message_id: int) -> None:
    """Take the buttons off an older prompt so only the newest one can be pressed."""
    with contextlib.suppress(BadRequest, ReplyQueued):
        await context.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)


async def answer_query(update: Update, text: str | None = None, alert: bool = False) -> None:
    if update.callback_query is not None:
        with contextlib.suppress(BadRequest):
            await update.callback_query.answer(text, show_alert=alert)


async def download_file(update: Update, context: WenmingContext, doc: Document, max_bytes: int,
                        too_large: str, unreadable: str) -> bytes | None:
    """A sent file's bytes, or None once the sender was told it is over `max_bytes` or could
    not be downloaded (`too_large`, `unreadable`: catalogue keys)."""
    if doc.file_size is not None and doc.file_size > max_bytes:
        await reply(update, context.t(too_large))
        return None
    try:
        data = bytes(await (await doc.get_file()).download_as_bytearray())
    except TelegramError:
        await reply(update, context.t(unreadable))
        return None
    if len(data) > max_bytes:
        await reply(update, context.t(too_large))
        return None
    return data
