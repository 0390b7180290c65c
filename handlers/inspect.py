"""The inspection conversation: choose a site, answer item by item, evidence, review, submit."""

from __future__ import annotations

from telegram import Message, ReplyKeyboardRemove, Update
from telegram.constants import ParseMode
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.domain.errors import StaleAction
from bot.domain.expectation import (
    Expectation,
    Pending,
    SiteNear,
    SiteSearch,
    encode_pending,
)
from bot.domain.plans import DUE
from bot.domain.roles import Role, require, role_of
from bot.media.sanitize import ImageRejected
from bot.media.store import StoredImage
from bot.render import callbacks as cb
from bot.render import inspection as views
from bot.render import plans as plan_views
from bot.render.fit import fit, user
from bot.render.inspection import OpenInspection
from bot.render.refusals import explain
from bot.services import plans
from bot.services.evidence import captured_at
from bot.services.inspections import InspectionView, PhotoMeta, closed_key
from bot.services.people import attached
from bot.telegram.context import Deps, WenmingContext
from bot.telegram.markup import location_keyboard
from db.models import Person, Site
from db.uow import UnitOfWork
from handlers.common import answer_query, drop_keyboard, queued, reply, show

MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # Telegram's getFile limit


async def inspect(update: Update, context: WenmingContext) -> None:
    """/inspect: resume an open inspection, or choose a site."""
    require(role_of(context.me), Role.INSPECTOR)
    deps = context.deps
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        person.pending = None
        open_ones, sites = await _menu(uow, deps, person)
        await uow.commit()
    await show(update, *views.inspect_menu(open_ones, sites, context.lang))


async def _menu(uow: UnitOfWork, deps: Deps, person: Person
                ) -> tuple[list[OpenInspection], list[Site]]:
    """What /inspect offers: the open inspections, or else the assigned sites."""
    open_ones = await deps.inspections.open_inspections(uow, person)
    sites = await uow.sites.assigned_to(person.id) if not open_ones else []
    return open_ones, sites


async def _close_old_screen(update: Update, context: WenmingContext,
                            view: InspectionView) -> None:
    """The inspection's screen, if it is not the pressed message, loses its buttons."""
    query = update.callback_query
    chat_id, message_id = view.prompt
    pressed = query.message.message_id if query and query.message is not None else None
    if chat_id is not None and message_id is not None and message_id != pressed:
        await drop_keyboard(context, chat_id, message_id)


async def _offer_sites(update: Update, context: WenmingContext, sites: list[Site]) -> None:
    await show(update, *views.inspect_menu([], sites, context.lang))


# What the site-finding buttons ask for next (a new inspection asks for nothing).
_FIND_ASKS: dict[str, Pending] = {"search": SiteSearch(), "near": SiteNear()}


async def on_find(update: Update, context: WenmingContext) -> None:
    """The site-finding buttons: a new inspection, search by name, or nearest to me."""
    require(role_of(context.me), Role.INSPECTOR)
    query = update.callback_query
    assert query is not None and query.data is not None
    mode = cb.parse_find(query.data)
    deps = context.deps
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        sites = await uow.sites.assigned_to(person.id)
        person.pending = encode_pending(_FIND_ASKS.get(mode))
        await uow.commit()
    await answer_query(update)
    if mode == "search":
        await reply(update, context.t("inspect.type_site_name"))
    elif mode == "near":
        keyboard = location_keyboard(context.t("button.share_location"))
        chat = update.effective_chat
        assert chat is not None
        await queued(chat.send_message(context.t("inspect.share_location"),
                                        reply_markup=keyboard))
    else:
        await _offer_sites(update, context, sites)


async def take_location(update: Update, context: WenmingContext, _: Expectation) -> bool:
    """A location sent after "sites near me", or any other from an inspector: the nearest
    sites."""
    msg = update.effective_message
    assert msg is not None and msg.location is not None
    require(role_of(context.me), Role.INSPECTOR)
    deps = context.deps
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        person.pending = None
        pairs = await uow.sites.nearest(msg.location.latitude,
                                                          msg.location.longitude)
        await uow.commit()
    await queued(msg.reply_text(context.t("inspect.location_received"),
                                reply_markup=ReplyKeyboardRemove()))
    if not pairs:
        await reply(update, context.t("inspect.none_near"))
        return True
    await reply(update, *views.nearest_screen(pairs, context.lang))
    return True


async def on_site(update: Update, context: WenmingContext) -> None:
    """Start (or resume) an inspection at the chosen site."""
    data, chat_id = _pressed(update)
    site_id, anyway = cb.parse_site(data)
    deps = context.deps
    if not anyway:
        # Two inspections of one site at once score it twice: say who has it open first.
        async with deps.uow.read() as uow:
            held = await deps.inspections.held_by_others(uow, context.me, site_id)
            site = await uow.session.get(Site, site_id) if held else None
        if site is not None:
            await answer_query(update)
            await show(update, *views.site_held_screen(site, held, context.lang,
                                                       deps.settings.tz))
            return
    view = await _start(context, site_id, chat_id)
    await answer_query(update)
    await _present(update, context, view)


def _pressed(update: Update) -> tuple[str, int]:
    """The pressed button's data, and the chat it was pressed in."""
    query, chat = update.callback_query, update.effective_chat
    assert query is not None and query.data is not None and chat is not None
    return query.data, chat.id


async def _start(context: WenmingContext, site_id: int, chat_id: int) -> InspectionView:
    """Start (or resume) this person's inspection of a site, committed and remembered."""
    deps = context.deps
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        view = await deps.inspections.start(uow, person, site_id, chat_id, deps.clock())
        await uow.commit()
    deps.press.remember(view)
    return view


async def on_planned(update: Update, context: WenmingContext) -> None:
    """A site pressed on an inspector's list for a day (`pg:<occurrence>`): the list stays
    where it is, and the inspection starts in a new message below it, after a notice of what
    the inspector must know (a re-check's task and item; a past day's site counts as late).
    A site already done asks first; a button not theirs, or unknown, is refused."""
    data, chat_id = _pressed(update)
    occurrence_id, again = cb.parse_planned(data)
    deps = context.deps
    query = update.callback_query
    assert query is not None
    today = deps.clock().astimezone(deps.settings.tz).date()
    async with deps.uow.read() as uow:
        press = await plans.planned_press(uow, context.me, occurrence_id, today)
        occ = press.occurrence
        # The pressed list fell behind (the site was done since, or its day passed): redraw it.
        fresh = (await plans.today_screen(uow, context.me, occ.day, context.lang)
                 if not again and occ.status != DUE else None)
        held = await deps.inspections.held_by_others(uow, context.me, occ.site_id)
        site = await uow.session.get(Site, occ.site_id)
    if site is None:
        raise StaleAction(plan_views.EXPIRED)
    await answer_query(update)
    if fresh is not None:
        await show(update, *fresh)
    if again and query.message is not None:
        # The question is answered: its button must not start a second inspection.
        await drop_keyboard(context, chat_id, query.message.message_id)
    elif not again and press.counts_as == plan_views.AGAIN:
        await reply(update, *plan_views.done_question(
            context.lang, occ.id, occ.site_name, occ.site_name_en, occ.day, occ.status))
        return
    # The notice comes first, and stays above the inspection (whose message changes item by
    # item) or above the question of a site someone else has open.
    item = (press.item[1] if context.lang == "en" else press.item[0]) if press.item else None
    if item is None and occ.task_item_key:  # a task not from an inspection: today's standard
        standard = deps.catalog.for_site_type(site.site_type)
        item = next((f"{i.number} {i.text.get(context.lang)}" for i in standard.items
                     if i.key == occ.task_item_key), None)
    notice = plan_views.press_notice(
        context.lang, day=occ.day, counts_as=press.counts_as, kind=occ.kind,
        task_id=occ.task_id, task_title=occ.task_title, task_title_en=occ.task_title_en,
        item=item, counts_for=press.counts_for, for_whom=press.for_whom)
    if notice is not None:
        await reply(update, notice)
    if held:
        await reply(update, *views.site_held_screen(site, held, context.lang, deps.settings.tz))
        return
    view = await _start(context, occ.site_id, chat_id)
    await _present(update, context, view, new_message=True)


async def on_resume(update: Update, context: WenmingContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    inspection_id = cb.parse_int(query.data, cb.RESUME)
    deps = context.deps
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        view = await deps.inspections.view(uow, person, inspection_id)
        if view.status == "open":
            person.active_inspection_id = inspection_id
        await uow.commit()
    deps.press.remember(view)
    await answer_query(update)
    # The inspection moves to this message; its older copy must not stay answerable.
    await _close_old_screen(update, context, view)
    await _present(update, context, view)


async def on_discard(update: Update, context: WenmingContext) -> None:
    """🗑 on the list of open inspections: ask, then discard (or go back to the list)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    inspection_id, choice = cb.parse_discard(query.data)
    deps = context.deps
    if choice is None:
        async with deps.uow.read() as uow:
            view = await deps.inspections.view(uow, context.me, inspection_id)
        if view.status != "open":
            raise StaleAction(closed_key(view.status))
        await answer_query(update)
        await show(update, *views.discard_question_screen(view, context.lang))
        return
    note = None
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        if choice == "yes":
            view = await deps.inspections.discard(uow, person, inspection_id, deps.clock())
            note = views.discarded_screen(view, context.lang)
        open_ones, sites = await _menu(uow, deps, person)
        await uow.commit()
    await answer_query(update)
    if choice == "yes":
        # The inspection's own message must not stay answerable.
        await _close_old_screen(update, context, view)
    await show(update, *views.inspect_menu(open_ones, sites, context.lang, note))


async def on_step(update: Update, context: WenmingContext) -> None:
    """A press on the inspection message: a verdict or a navigation action."""
    query = update.callback_query
    assert query is not None and query.data is not None
    press = cb.parse_step(query.data)
    deps = context.deps
    now = deps.clock()
    if press.action == "submit":
        async with deps.uow() as uow:
            person = await attached(uow, context.me)
            result = await deps.inspections.submit(
                uow, person, press.inspection_id, press.step, now
            )
            await uow.commit()
        await answer_query(update, context.t("inspect.submitted_toast"))
        await show(update, views.submitted_screen(result.view, context.lang, result.tasks))
        sender = context.application.bot_data.get("outbox")
        if sender is not None:
            sender.wake()
        return
    # Every other press: the fast path (progress in memory, writes by group commit).
    try:
        view = await deps.press.press(
            context.me, press.inspection_id, press.step, press.action,
            verdict=press.verdict, target=press.target, now=now,
        )
    except StaleAction as exc:
        await _refused(update, context, press.inspection_id, exc)
        return
    await answer_query(update)
    if press.action == "pause":
        await show(update, views.paused_screen(view, context.lang))
        return
    await _present(update, context, view)


async def _refused(update: Update, context: WenmingContext, inspection_id: int,
                   exc: StaleAction) -> None:
    """Say why the press was refused; and if it was pressed on the inspection's own screen,
    show that screen as it stands. A screen can fall behind (its edit was lost to a network
    error after the answer was stored): its buttons must not stay dead."""
    await answer_query(update, explain(context.lang, exc)[:200], alert=True)
    query = update.callback_query
    assert query is not None
    current = await context.deps.press.current(context.me, inspection_id)
    if current is None or query.message is None:
        return
    if (query.message.chat.id, query.message.message_id) != current.prompt:
        return  # an older copy: the live screen is elsewhere
    await show(update, *views.inspection_screen(current, context.lang))  # (or unchanged)


async def take_text(update: Update, context: WenmingContext, _: Expectation) -> bool:
    """Typed text while the current inspection item waits for a remark or a note."""
    msg = update.effective_message
    assert msg is not None and msg.text is not None
    deps = context.deps
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        view = await deps.inspections.text(uow, person, msg.text, deps.clock())
        if view is None:
            return False
        await uow.commit()
    await _present(update, context, view, replace=True)
    return True


async def take_search(update: Update, context: WenmingContext, _: Expectation) -> bool:
    """Typed text after "search by name": the sites whose name contains it."""
    msg = update.effective_message
    assert msg is not None and msg.text is not None
    query = msg.text.strip()
    async with context.deps.uow() as uow:
        sites = await uow.sites.search(query)
    if not sites:
        await reply(update, fit(context.t("inspect.no_site_found", query=user(query))))
    else:
        await reply(update, *views.site_choice_screen(sites, context.lang, "inspect.found_sites"))
    return True


async def take_photo(update: Update, context: WenmingContext, _: Expectation) -> bool:
    """A photo (or an image sent as a file) the current item asked for: its evidence."""
    return await _take_photo(update, context, asked=True)


async def take_unasked_photo(update: Update, context: WenmingContext, _: Expectation) -> bool:
    """Any other photo during an open inspection belongs to it too: extra evidence for the
    current item, never a resident's report. (A fix's after-photos, asked for explicitly by
    a pending task input, go to the task; see bot.domain.expectation.)"""
    return await _take_photo(update, context, asked=False)


async def _take_photo(update: Update, context: WenmingContext, *, asked: bool) -> bool:
    msg = update.effective_message
    assert msg is not None
    deps = context.deps
    stored = await receive_image(msg, context)
    if stored is None:
        return True
    image, file_id = stored
    chat = update.effective_chat
    assert chat is not None
    meta = PhotoMeta(image.sha256, file_id, image.width, image.height, image.size,
                     image.phash, chat.id, msg.message_id,
                     captured_at(image, deps.settings.tz))
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        view = await deps.inspections.photo(uow, person, meta, deps.clock(), msg.caption)
        await uow.commit()
    if view is None:
        await reply(update, context.t("inspect.photo_in_review"))
        return True
    if not asked and not view.progress.in_review:
        item = view.progress.item
        st = view.progress.answers.get(item.key)
        await reply(update, context.t("inspect.photo_added", number=item.number,
                                      count=st.photos if st else 1))
    await _present(update, context, view, replace=True)
    return True


async def receive_image(
    msg: Message, context: WenmingContext
) -> tuple[StoredImage, str | None] | None:
    """Download, verify and store the image in a message; tell the user if it is refused.

    Returns None when the user has been told why the image was not taken.
    """
    data, file_id = await _download_image(msg, context)
    if data is None:
        return None
    try:
        stored = await context.deps.media.aput(data)
    except ImageRejected as exc:
        await queued(msg.reply_text(context.t(f"image.{exc.reason}"), parse_mode=ParseMode.HTML))
        return None
    return stored, file_id


async def _download_image(
    msg: Message, context: WenmingContext
) -> tuple[bytes | None, str | None]:
    if msg.photo:
        largest = max(msg.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        size, file_id = largest.file_size, largest.file_id
        getter = largest.get_file
    elif msg.document is not None:
        doc = msg.document
        if not (doc.mime_type or "").startswith("image/"):
            await queued(msg.reply_text(context.t("image.not_an_image")))
            return None, None
        size, file_id, getter = doc.file_size, doc.file_id, doc.get_file
    else:
        return None, None
    if size is not None and size > MAX_DOWNLOAD_BYTES:
        await queued(msg.reply_text(context.t("image.too_large")))
        return None, None
    tg_file = await getter()
    data = await tg_file.download_as_bytearray()
    return bytes(data), file_id


async def _present(
    update: Update, context: WenmingContext, view: InspectionView, replace: bool = False,
    new_message: bool = False,
) -> None:
    """Show the inspection's current screen and remember which message carries it.

    A button press edits its own message, unless it is a day list's (`new_message`: the list
    stays). Typed input (a remark, a photo) pushes the conversation down, so the screen is
    sent again below it (`replace`) and the older copy loses its buttons.
    """
    text, rows = views.inspection_screen(view, context.lang)
    if update.callback_query is not None and not new_message:
        sent = await show(update, text, rows)
    else:
        chat_id, message_id = view.prompt
        if (replace or new_message) and chat_id is not None and message_id is not None:
            await drop_keyboard(context, chat_id, message_id)
        sent = await reply(update, text, rows)
    if sent is None or (sent.chat_id, sent.message_id) == view.prompt:
        return  # edited in place: nothing new to remember
    await context.deps.press.moved(view.inspection_id, sent.chat_id, sent.message_id)


PRIVATE = filters.ChatType.PRIVATE
# Free input (text, photos, locations) reaches the take_* functions through handlers/inputs.
HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [
    CommandHandler("inspect", inspect, filters=PRIVATE),
    CallbackQueryHandler(on_find, pattern=rf"^{cb.FIND}:({'|'.join(cb.FIND_MODES)})$"),
    CallbackQueryHandler(on_site, pattern=rf"^{cb.SITE}:"),
    CallbackQueryHandler(on_planned, pattern=rf"^{cb.PLANNED}:"),
    CallbackQueryHandler(on_resume, pattern=rf"^{cb.RESUME}:"),
    CallbackQueryHandler(on_discard, pattern=rf"^{cb.DISCARD}:"),
    CallbackQueryHandler(on_step, pattern=rf"^({cb.VERDICT}|{cb.STEP}):"),
]
