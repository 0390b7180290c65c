"""Last in line: unknown commands and messages nobody else wanted get a helpful answer."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, MessageHandler, filters

from bot.domain.roles import role_of
from bot.telegram.context import WenmingContext
from handlers.common import answer_query, reply


async def unknown_command(update: Update, context: WenmingContext) -> None:
    """A command this bot does not have (in a private chat)."""
    await reply(update, context.t("error.unknown_command") + "\n\n"
                + context.t(f"help.{role_of(context.me).key}"))


async def unsupported(update: Update, context: WenmingContext) -> None:
    """Stickers, voice, video, contacts… in a private chat."""
    await reply(update, context.t("error.unsupported_message"))


async def stale_button(update: Update, context: WenmingContext) -> None:
    """A button whose data no handler recognises (an old version of the bot, or forged)."""
    await answer_query(update, context.t("error.stale_button"), alert=True)


PRIVATE = filters.ChatType.PRIVATE
HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [
    MessageHandler(PRIVATE & filters.COMMAND, unknown_command),
    CallbackQueryHandler(stale_button),
    MessageHandler(PRIVATE & ~filters.COMMAND & ~filters.StatusUpdate.ALL, unsupported),
]
