"""/actions: the special actions' battle map (挂图作战), a Gantt picture with a caption naming
the lagging actions and their leads. For admins in private, and for the campaign office's
group (schedule.yaml's office_unit, the groups bound to it); anyone else is refused."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatType, ParseMode
from telegram.ext import BaseHandler, CommandHandler

from bot.domain.roles import Role, require, role_of
from bot.media.battlemap import render_png
from bot.media.bulletin import is_tall
from bot.media.jobs import run_image_job
from bot.render.battlemap import caption
from bot.services.assessment import battle_map_view
from bot.services.bulletins import office_chats
from bot.telegram.context import WenmingContext
from handlers.common import queued, reply


async def show_actions(update: Update, context: WenmingContext) -> None:
    chat = update.effective_chat
    assert chat is not None
    deps = context.deps
    if chat.type == ChatType.PRIVATE:
        require(role_of(context.me), Role.ADMIN)
    async with deps.uow.read() as uow:
        if chat.type != ChatType.PRIVATE and chat.id not in await office_chats(
                uow, deps.office_unit):
            await reply(update, context.t("assessment.map.not_here"))
            return
        if deps.assessment is None or not deps.assessment.actions:
            await reply(update, context.t("assessment.map.none"))
            return
        view = await battle_map_view(uow, deps.assessment, deps.clock(), deps.settings.tz,
                                     context.lang)
    png = await run_image_job(render_png, view, deps.settings.cjk_font)
    filename = context.t("assessment.map.filename", date=view.day.isoformat())
    if is_tall(png):  # many actions: a document keeps it readable
        await queued(chat.send_document(png, filename=filename, caption=caption(view),
                                        parse_mode=ParseMode.HTML))
        return
    await queued(chat.send_photo(png, filename=filename, caption=caption(view),
                                 parse_mode=ParseMode.HTML))


HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [
    CommandHandler("actions", show_actions),
]
