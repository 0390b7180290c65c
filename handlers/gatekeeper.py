"""Runs first for every update: who is this, in which language, are they allowed in at all."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ApplicationHandlerStop, BaseHandler, TypeHandler

from bot.render.i18n import current_language, normalize_language
from bot.services.people import TelegramUser, ensure_person, find_person, is_current
from bot.telegram.context import WenmingContext
from handlers.common import answer_query, reply


async def identify(update: Update, context: WenmingContext) -> None:
    """Load or create the person; stop here for blocked people."""
    if update.edited_message is not None or update.edited_channel_post is not None:
        # Polling never asks for edits; a webhook or another deployment might deliver them.
        # Editing an old message is not new input (it would answer whatever is asked now).
        raise ApplicationHandlerStop
    user = update.effective_user
    if user is None or user.is_bot:
        return
    deps = context.deps
    seen = TelegramUser(user.id, user.first_name, user.username, user.language_code)
    # Most updates come from people the bot knows, unchanged: from the cache, or a read
    # without a write lock.
    person = deps.people.get(user.id)
    if person is None or not is_current(person, seen, deps.settings.admin_ids):
        async with deps.uow.read() as uow:
            person = await find_person(uow, seen, deps.settings.admin_ids)
    if person is None:
        async with deps.uow() as uow:
            person, changed = await ensure_person(uow, seen, deps.settings.admin_ids,
                                                  deps.clock())
            if changed:
                # Not the update's own effect: the handler's commit marks it handled.
                await uow.commit(mark_update_handled=False)
    deps.people.put(person)
    context.person = person
    context.lang = person.language or normalize_language(
        user.language_code, deps.settings.default_language
    )
    current_language.set(context.lang)
    if person.blocked:
        if update.effective_chat is not None and update.effective_chat.type == "private":
            await answer_query(update)
            await reply(update, context.t("error.blocked"))
        raise ApplicationHandlerStop


HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [TypeHandler(Update, identify)]
