"""/stats: inspectors' own figures, for admins, in a private chat only (they name people)."""

from __future__ import annotations

import re

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.domain.errors import DomainError
from bot.domain.roles import Role, require, role_of
from bot.services.inspector_stats import MAX_STATS_DAYS, STATS_DAYS, stats_text
from bot.telegram.context import WenmingContext
from handlers.common import reply


async def stats_command(update: Update, context: WenmingContext) -> None:
    """/stats [days]: per inspector, inspections done, time per item, items failed, and the
    re-checks that disagreed with them. Other roles are refused (by the error handler)."""
    require(role_of(context.me), Role.ADMIN)
    args = context.args or []
    days = STATS_DAYS
    if args:
        if not re.fullmatch(r"[0-9]{1,3}", args[0]) or not 1 <= int(args[0]) <= MAX_STATS_DAYS:
            raise DomainError("draw.stats.usage")
        days = int(args[0])
    deps = context.deps
    async with deps.uow.read() as uow:
        text = await stats_text(uow, context.lang, deps.clock(), days, tz=deps.settings.tz)
    await reply(update, text)


async def stats_in_group(update: Update, context: WenmingContext) -> None:
    await reply(update, context.t("draw.stats.private_only"))


PRIVATE = filters.ChatType.PRIVATE
HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [
    CommandHandler("stats", stats_command, filters=PRIVATE),
    CommandHandler("stats", stats_in_group, filters=~PRIVATE),
]
