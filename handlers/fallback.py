"""Last in line: unknown commands and messages nobody else wanted get a helpful answer."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, MessageHandler, filters

from bot.domain.expectation import Input, Taker
from bot.domain.roles import role_of
from bot.services.expectation import expected
from bot.telegram.context import WenmingContext
from handlers.common import answer_query, reply


async def unknown_command(update: Update, context: WenmingContext) -> None:
    """A command this bot does not have (in a private chat)."""
    await reply(update, context.t("error.unknown_command") + "\n\n"
                + context.t(f"help.{role_of(context.me).key}"))


async def unsupported(update: Update, context: WenmingContext) -> None:
    """Stickers, voice, video, contacts… in a private chat. When a photo is awaited (an
    inspection's evidence, a fix's after-photos), the answer says that a photo is what is
    waited for, not the generic list of what the bot takes."""
    async with context.deps.uow.read() as uow:
        taker, _ = await expected(uow, context.me, Input.PHOTO)
    awaited = taker in (Taker.INSPECTION, Taker.TASK_INPUT)
    await reply(update, context.t("error.photo_awaited" if awaited
                                  else "error.unsupported_message"))


async def stale_button(update: Update, context: WenmingContext) -> None:
    """A button whose data no handler recognises (an old version of the bot, or forged)."""
    await answer_query(update, context.t("error.stale_button"), alert=True)


PRIVATE = filters.ChatType.PRIVATE
HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [
    MessageHandler(PRIVATE & filters.COMMAND, unknown_command),
    CallbackQueryHandler(stale_button),
    MessageHandler(PRIVATE & ~filters.COMMAND & ~filters.StatusUpdate.ALL, unsupported),
]
