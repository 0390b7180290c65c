"""/start (with invite links), /help, /lang, /cancel."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.domain.roles import Role, role_of
from bot.render import callbacks as cb
from bot.render import inspection as views
from bot.render.buttons import Button, Rows
from bot.render.i18n import LANGUAGES, Html, local_name
from bot.services.people import attached, redeem_invite
from bot.services.reports import drafts
from bot.telegram.commands import publish_for
from bot.telegram.context import WenmingContext
from db.models import Unit
from handlers.common import answer_query, edit_shown, reply, show


async def start(update: Update, context: WenmingContext) -> None:
    """Greet by role; a deep-link payload is an invite code."""
    deps = context.deps
    code = context.args[0] if context.args else None
    granted = None
    if code:
        async with deps.uow() as uow:
            person = await attached(uow, context.me)
            role, unit, new = await redeem_invite(uow, person, code, deps.clock())
            await uow.commit()
        context.person = person
        granted = (role, unit, new)
    role = role_of(context.me)
    # Roles also come from the organisation file, from the first update on, and change: the
    # person's own menu (a unit member's /tasks, an inspector's /inspect, or none of them for
    # someone demoted to resident) is set at every /start.
    await publish_for(context.bot, context.me.id, role, context.lang)
    unit_name = await _unit_name(context)
    lines = [context.t(f"start.greeting.{role.key}", name=context.me.first_name,
                       unit=unit_name or "—")]
    if granted is not None:
        g_role, unit, new = granted
        key = "start.invite_granted" if new else "start.invite_already"
        suffix = context.t("start.unit_suffix", unit=_name(unit, context.lang)) if unit else ""
        lines.append(context.t(key, role=context.t(f"role.{g_role.key}"), unit=Html(suffix)))
    lines.append(context.t(f"help.{role.key}"))
    rows: Rows = []
    if role >= Role.INSPECTOR:
        # An inspection left open (paused, or in the middle of an item) is mentioned first,
        # with a button to go on with it.
        async with deps.uow.read() as uow:
            open_ones = await deps.inspections.open_inspections(uow, context.me)
        if open_ones:
            text, rows = views.open_inspections_note(open_ones, context.lang)
            lines.insert(1, text)
    await reply(update, "\n\n".join(lines), rows)


async def _unit_name(context: WenmingContext) -> str | None:
    if context.me.unit_id is None:
        return None
    async with context.deps.uow.read() as uow:
        unit = await uow.session.get(Unit, context.me.unit_id)
    return _name(unit, context.lang) if unit else None


def _name(unit: Unit, lang: str) -> str:
    return local_name(lang, unit.name_zh, unit.name_en)


async def help_command(update: Update, context: WenmingContext) -> None:
    """What this person can do here."""
    chat = update.effective_chat
    if chat is not None and chat.type != "private":
        await reply(update, context.t("help.group"))
        return
    await reply(update, context.t(f"help.{role_of(context.me).key}"))


async def lang_command(update: Update, context: WenmingContext) -> None:
    """Offer the languages."""
    buttons = [Button(context.t(f"lang.name.{code}"), cb.language(code)) for code in LANGUAGES]
    await reply(update, context.t("lang.choose"), [buttons])


async def on_lang(update: Update, context: WenmingContext) -> None:
    """Remember the chosen language."""
    query = update.callback_query
    assert query is not None and query.data is not None
    code = cb.parse_language(query.data)
    if code not in LANGUAGES:
        await answer_query(update, context.t("error.stale_button"))
        return
    async with context.deps.uow() as uow:
        person = await attached(uow, context.me)
        person.language = code
        await uow.commit()
    context.lang = code
    await answer_query(update)
    await show(update, context.t("lang.set"))
    await publish_for(context.bot, person.id, role_of(person), code)


async def cancel(update: Update, context: WenmingContext) -> None:
    """Leave whatever input is awaited; nothing entered is lost."""
    deps = context.deps
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        person.pending = None
        dropped = await drafts.cancel_draft(uow, person)
        insp = await deps.inspections.active(uow, person)
        paused = insp is not None
        screen_at = None
        if insp is not None:
            view = await deps.inspections.view(uow, person, insp.id)
            if view.progress.awaiting is not None and not view.progress.in_review:
                view = await deps.inspections.act(uow, person, insp.id, view.step, "cancel",
                                                  now=deps.clock())
            person.active_inspection_id = None
            if insp.chat_id is not None and insp.message_id is not None:
                screen_at = (insp.chat_id, insp.message_id)
        await uow.commit()
    if paused:
        if screen_at is not None:
            # The inspection's screen shows the pause, as the pause button leaves it: no
            # prompt (a note, a reason, a photo) is left on it that the bot no longer takes.
            await edit_shown(context, *screen_at, views.paused_screen(view, context.lang))
        await reply(update, context.t("cancel.paused"))
    else:
        await reply(update, context.t("cancel.report_dropped" if dropped else "cancel.done"))


PRIVATE = filters.ChatType.PRIVATE
HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [
    CommandHandler("start", start, filters=PRIVATE),
    CommandHandler("help", help_command),
    CommandHandler("lang", lang_command, filters=PRIVATE),
    CommandHandler("cancel", cancel, filters=PRIVATE),
    CallbackQueryHandler(on_lang, pattern=rf"^{cb.LANG}:"),
]
