"""The assessment for admins: an .xlsx or .csv of external test scores (国测、省测、市测) sent
to the bot in private is imported (all or nothing); /assessment [year] shows the annual table."""

from __future__ import annotations

import re

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, MessageHandler, filters

from bot.domain.errors import DomainError
from bot.domain.roles import Role, require, role_of
from bot.render.assessment import annual_table, import_answer
from bot.services.assessment import MAX_BYTES, annual_assessment, import_scores
from bot.services.expectation import waits_for_file
from bot.telegram.context import WenmingContext
from handlers import inputs
from handlers.common import download_file, reply


async def on_table(update: Update, context: WenmingContext) -> None:
    """A spreadsheet in a private chat: an admin's test scores; anyone else's file goes where
    any other file goes."""
    msg = update.effective_message
    deps = context.deps
    if msg is None or msg.document is None or role_of(context.me) < Role.ADMIN \
            or deps.assessment is None:
        await inputs.on_photo(update, context)
        return
    doc = msg.document
    data = await download_file(update, context, doc, MAX_BYTES, "assessment.problem.too_large",
                               "assessment.problem.unreadable")
    if data is None:
        return
    async with deps.uow() as uow:
        outcome = await import_scores(uow, data, doc.file_name or "", deps.assessment.config,
                                      deps.clock(), context.me.id if context.me else None)
        if not outcome.problems:
            await uow.commit()
    await reply(update, import_answer(context.lang, outcome.imported, outcome.periods,
                                      outcome.problems, outcome.replaced))


async def on_other_file(update: Update, context: WenmingContext) -> None:
    """A file that is neither a spreadsheet nor an image, in a private chat: from an admin
    whom nothing else asked for a file, most likely scores in the wrong format (a .txt of
    csv text), so they are told which files are imported; anyone else's file goes where any
    other file goes."""
    me, deps = context.me, context.deps
    if me is not None and role_of(me) >= Role.ADMIN and deps.assessment is not None:
        async with deps.uow.read() as uow:
            busy = await waits_for_file(uow, me)
        if not busy:
            await reply(update, "\n".join((context.t("assessment.import.not_a_table"),
                                           context.t("assessment.import.layout"))))
            return
    await inputs.on_photo(update, context)


async def show_assessment(update: Update, context: WenmingContext) -> None:
    """/assessment [year]: every unit's annual assessment and how it was made."""
    require(role_of(context.me), Role.ADMIN)
    deps = context.deps
    args = list(context.args or [])
    if args and not re.fullmatch(r"20[0-9]{2}", args[0]):
        raise DomainError("assessment.annual.usage")
    year = int(args[0]) if args else deps.clock().astimezone(deps.settings.tz).year
    assert deps.assessment is not None
    async with deps.uow.read() as uow:
        block = await annual_assessment(uow, deps.assessment.config, year, deps.settings.tz,
                                        context.lang)
    await reply(update, annual_table(context.lang, year, block))


async def assessment_in_group(update: Update, context: WenmingContext) -> None:
    """/assessment in a group: the table ranks units by name, so it is asked for in private."""
    await reply(update, context.t("assessment.annual.private_only"))


PRIVATE = filters.ChatType.PRIVATE
TABLES = filters.Document.FileExtension("xlsx") | filters.Document.FileExtension("csv")
HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [
    CommandHandler("assessment", show_assessment, filters=PRIVATE),
    CommandHandler("assessment", assessment_in_group, filters=~PRIVATE),
    MessageHandler(PRIVATE & TABLES, on_table),
    # Images sent as files are photos (handlers/inputs.py); any other file may be an admin's
    # scores in a format not imported.
    MessageHandler(PRIVATE & filters.Document.ALL & ~filters.Document.IMAGE, on_other_file),
]
