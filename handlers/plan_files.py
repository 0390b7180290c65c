"""An admin's plans file (plans.yaml) sent to the bot in private is checked and imported, all
or nothing, as `wenming plans import` does on the server: plans are managed without a shell.
Thin: bot/services/plan_files.py, bot/render/plan_files.py."""

from __future__ import annotations

import asyncio

from telegram import Update
from telegram.ext import BaseHandler, MessageHandler, filters

from bot.domain.plans import PlansConfig
from bot.domain.roles import Role, role_of
from bot.render.plan_files import import_answer
from bot.services import plan_files
from bot.telegram.context import WenmingContext
from handlers import inputs
from handlers.common import download_file, reply

MAX_BYTES = 256 * 1024  # a city's plans are a few kilobytes


async def on_plans_file(update: Update, context: WenmingContext) -> None:
    """A .yaml file in a private chat: an admin's plans; anyone else's file goes where any
    other file goes."""
    msg = update.effective_message
    deps = context.deps
    if msg is None or msg.document is None or role_of(context.me) < Role.ADMIN:
        await inputs.on_photo(update, context)
        return
    name = msg.document.file_name or "plans.yaml"
    data = await download_file(update, context, msg.document, MAX_BYTES, "plans.file.too_large",
                               "plans.file.unreadable")
    if data is None:
        return
    text = plan_files.decode(data, name)
    outcome = text if not isinstance(text, str) else await asyncio.to_thread(
        plan_files.check_text, text, name, set(deps.catalog.current))
    if isinstance(outcome, PlansConfig):
        async with deps.uow() as uow:
            outcome = await plan_files.import_checked(uow, outcome, name, deps.clock())
            if not outcome.problems:
                await uow.commit()
    await reply(update, import_answer(context.lang, name, outcome, deps.plans_morning))


PRIVATE = filters.ChatType.PRIVATE
PLANS_FILES = filters.Document.FileExtension("yaml") | filters.Document.FileExtension("yml")
HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [
    MessageHandler(PRIVATE & PLANS_FILES, on_plans_file),
]
