"""The one error handler: log first, show domain errors to the user, report the rest."""

from __future__ import annotations

import contextlib
import html
import logging
import traceback

from telegram import Update
from telegram.constants import MessageLimit, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.domain.errors import DomainError
from bot.render.i18n import current_language, t
from bot.render.refusals import explain
from bot.telegram.context import WenmingContext
from bot.telegram.flood import ReplyQueued

log = logging.getLogger(__name__)


async def on_error(update: object, context: WenmingContext) -> None:
    """Handle anything a handler raised; the process never dies on a bad update."""
    error = context.error
    if isinstance(error, BadRequest) and "not modified" in str(error).lower():
        return
    lang = current_language.get()
    if isinstance(error, DomainError):
        log.info("refused: %s", error.key)  # not its values: they may name people
        await _tell(update, explain(lang, error))
        return
    if isinstance(error, ReplyQueued):
        # The chat's flood wait was longer than a handler waits: the reply is in the outbox.
        log.info("update %s: %s", getattr(update, "update_id", "?"), error)
        return
    if isinstance(error, RetryAfter):
        # Flood control on something that cannot wait for its chat (a callback's answer, an
        # upload): Telegram's pacing, not a bug, and nothing may go to that chat yet.
        log.warning("flood control while handling update %s: %s",
                    getattr(update, "update_id", "?"), error)
        return
    if isinstance(error, NetworkError) and not isinstance(error, BadRequest):
        # Telegram unreachable or failing (5xx, a timeout): not a bug to report. What the
        # update changed is stored or not, by its own commit; a screen it could not update is
        # redrawn at the next press (handlers/inspect._refused), a card edit goes to the outbox.
        log.warning("the Bot API failed while handling update %s: %s",
                    getattr(update, "update_id", "?"), error)
        return
    # The update itself is not logged: it carries names, and whatever the person typed.
    log.error("unhandled error for update %s", getattr(update, "update_id", "?"),
              exc_info=error)
    if isinstance(error, Forbidden):
        return
    await _tell(update, t(lang, "error.internal"))
    chat_id = context.deps.settings.admin_chat_id if "deps" in context.bot_data else None
    if chat_id is not None and error is not None:
        trace = "".join(traceback.format_exception(None, error, error.__traceback__))
        limit = MessageLimit.MAX_TEXT_LENGTH - 200
        text = f"<b>Wenming error</b>\n<pre>{html.escape(trace[-limit:])}</pre>"
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML)


async def _tell(update: object, text: str) -> None:
    if not isinstance(update, Update):
        return
    with contextlib.suppress(TelegramError):
        if update.callback_query is not None:
            # A short refusal fits the toast; a long one needs the alert dialog (200 chars).
            await update.callback_query.answer(text[:200], show_alert=True)
            return
        if update.effective_chat is not None:
            await update.effective_chat.send_message(text, parse_mode=ParseMode.HTML)
