"""Supervision plans in the bot: /today (an inspector's list for the day, with ticks) and
/plans (admins: the plans, today's progress, pause and resume). Thin: bot/services/plans.py."""

from __future__ import annotations

import datetime as dt

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.domain.errors import DomainError
from bot.domain.roles import Role, require, role_of
from bot.render import callbacks as cb
from bot.services import plans
from bot.services.people import attached
from bot.telegram.context import WenmingContext
from handlers.common import answer_query, reply, show


def _day(context: WenmingContext) -> dt.date:
    """Today, in the bot's time zone."""
    return context.deps.clock().astimezone(context.deps.settings.tz).date()


def _type_names(context: WenmingContext) -> dict[str, str]:
    """The site types' names in the reader's language (the standards' names)."""
    return {code: s.name.get(context.lang) for code, s in context.deps.catalog.current.items()}


async def today(update: Update, context: WenmingContext) -> None:
    """/today: my list for the day; a button per site still to do starts its inspection."""
    async with context.deps.uow.read() as uow:
        screen = await plans.today_screen(uow, context.me, _day(context), context.lang)
    await reply(update, *screen)


async def overview(update: Update, context: WenmingContext) -> None:
    """/plans (admins): every plan, paused or not, and today's occurrences done / due. It
    takes no arguments (pausing is by the screen's buttons): with some, a usage line."""
    if context.args:
        require(role_of(context.me), Role.ADMIN)
        raise DomainError("plans.admin.usage")
    async with context.deps.uow.read() as uow:
        screen = await plans.plans_overview(uow, context.me, _day(context), context.lang,
                                            _type_names(context))
    await reply(update, *screen)


async def on_toggle(update: Update, context: WenmingContext) -> None:
    """Pause or resume a plan; the screen is shown again with its new state."""
    query = update.callback_query
    assert query is not None and query.data is not None
    code, pause = cb.parse_plan(query.data)
    async with context.deps.uow() as uow:
        person = await attached(uow, context.me)
        withdrawn = await plans.set_paused(
            uow, person, code, pause, _day(context), context.deps.clock(),
            context.deps.settings.default_language)
        screen = await plans.plans_overview(uow, person, _day(context), context.lang,
                                            _type_names(context))
        await uow.commit()
    if not pause:
        toast = context.t("plans.admin.resumed_toast", code=code)
    elif withdrawn:
        toast = context.t("plans.admin.paused_withdrawn_toast", code=code, count=withdrawn)
    else:
        toast = context.t("plans.admin.paused_toast", code=code)
    await answer_query(update, toast)
    await show(update, *screen)


async def in_group(update: Update, context: WenmingContext) -> None:
    """/today and /plans name sites and people's lists: in private only, and a group is told
    so rather than left without an answer."""
    await reply(update, context.t("plans.private_only"))


PRIVATE = filters.ChatType.PRIVATE
HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [
    CommandHandler("today", today, filters=PRIVATE),
    CommandHandler("plans", overview, filters=PRIVATE),
    CommandHandler(["today", "plans"], in_group, filters=~PRIVATE),
    CallbackQueryHandler(on_toggle, pattern=rf"^{cb.PLAN}:"),
]
