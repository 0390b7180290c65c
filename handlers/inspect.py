"""The inspection conversation: choose a site, answer item by item, evidence, review, submit."""

from __future__ import annotations

from telegram import (
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ParseMode
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.domain.errors import StaleAction
from bot.domain.roles import Role, require
from bot.media.images import ImageRejected, StoredImage
from bot.render import callbacks as cb
from bot.render import inspection as views
from bot.render.fit import fit, user
from bot.render.refusals import explain
from bot.services.inspections import InspectionView, OpenInspection, PhotoMeta, closed_key
from bot.services.people import attached, role_of
from bot.telegram.context import Deps, WenmingContext
from db.models import Person, Site
from db.repositories import SiteRepository
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
    sites = await SiteRepository(uow.session).assigned_to(person.id) if not open_ones else []
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


async def on_find(update: Update, context: WenmingContext) -> None:
    """The site-finding buttons: a new inspection, search by name, or nearest to me."""
    require(role_of(context.me), Role.INSPECTOR)
    query = update.callback_query
    assert query is not None and query.data is not None
    mode = query.data.split(":", 1)[1]
    deps = context.deps
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        sites = await SiteRepository(uow.session).assigned_to(person.id)
        person.pending = {"search": "site_search", "near": "site_near"}.get(mode)
        await uow.commit()
    await answer_query(update)
    if mode == "search":
        await reply(update, context.t("inspect.type_site_name"))
    elif mode == "near":
        keyboard = ReplyKeyboardMarkup(
            [[KeyboardButton(context.t("button.share_location"), request_location=True)]],
            resize_keyboard=True, one_time_keyboard=True,
        )
        chat = update.effective_chat
        assert chat is not None
        await queued(chat.send_message(context.t("inspect.share_location"),
                                        reply_markup=keyboard))
    else:
        await _offer_sites(update, context, sites)


async def claim_location(update: Update, context: WenmingContext) -> bool:
    """A location sent after "sites near me": the nearest sites."""
    if context.me.pending != "site_near":
        return False
    await _nearest(update, context)
    return True


async def claim_nearest(update: Update, context: WenmingContext) -> bool:
    """Any other location from an inspector: offer the nearest sites too."""
    if role_of(context.me) < Role.INSPECTOR:
        return False
    await _nearest(update, context)
    return True


async def _nearest(update: Update, context: WenmingContext) -> None:
    msg = update.effective_message
    assert msg is not None and msg.location is not None
    require(role_of(context.me), Role.INSPECTOR)
    deps = context.deps
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        person.pending = None
        pairs = await SiteRepository(uow.session).nearest(msg.location.latitude,
                                                          msg.location.longitude)
        await uow.commit()
    await queued(msg.reply_text(context.t("inspect.location_received"),
                                reply_markup=ReplyKeyboardRemove()))
    if not pairs:
        await reply(update, context.t("inspect.none_near"))
        return
    await reply(update, *views.nearest_screen(pairs, context.lang))


async def on_site(update: Update, context: WenmingContext) -> None:
    """Start (or resume) an inspection at the chosen site."""
    query = update.callback_query
    assert query is not None and query.data is not None
    site_id, anyway = cb.parse_site(query.data)
    deps = context.deps
    chat = update.effective_chat
    assert chat is not None
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
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        view = await deps.inspections.start(uow, person, site_id, chat.id, deps.clock())
        await uow.commit()
    deps.press.remember(view)
    await answer_query(update)
    await _present(update, context, view)


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


async def claim_text(update: Update, context: WenmingContext) -> bool:
    """Typed text while the current inspection item waits for a remark or a note."""
    msg = update.effective_message
    assert msg is not None and msg.text is not None
    if context.me.active_inspection_id is None:
        return False
    deps = context.deps
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        view = await deps.inspections.text(uow, person, msg.text, deps.clock())
        if view is None:
            return False
        await uow.commit()
    await _present(update, context, view, replace=True)
    return True


async def claim_search(update: Update, context: WenmingContext) -> bool:
    """Typed text after "search by name": the sites whose name contains it."""
    msg = update.effective_message
    assert msg is not None and msg.text is not None
    if context.me.pending != "site_search":
        return False
    query = msg.text.strip()
    async with context.deps.uow() as uow:
        sites = await SiteRepository(uow.session).search(query)
    if not sites:
        await reply(update, fit(context.t("inspect.no_site_found", query=user(query))))
    else:
        await reply(update, *views.site_choice_screen(sites, context.lang, "inspect.found_sites"))
    return True


async def claim_photo(update: Update, context: WenmingContext) -> bool:
    """A photo (or an image sent as a file) the current item asked for: its evidence."""
    return await _claim_photo(update, context, asked=True)


async def claim_unasked_photo(update: Update, context: WenmingContext) -> bool:
    """Any other photo during an open inspection belongs to it too: extra evidence for the
    current item, never a resident's report. (A fix's after-photos, asked for explicitly by
    a pending task input, are claimed before this; see handlers/inputs.)"""
    return await _claim_photo(update, context, asked=False)


async def _claim_photo(update: Update, context: WenmingContext, *, asked: bool) -> bool:
    msg = update.effective_message
    assert msg is not None
    if context.me.active_inspection_id is None:
        return False
    deps = context.deps
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        wanted = (await deps.inspections.wants_photo(uow, person) if asked
                  else await deps.inspections.in_inspection(uow, person))
    if not wanted:
        return False
    stored = await receive_image(msg, context)
    if stored is None:
        return True
    image, file_id = stored
    chat = update.effective_chat
    assert chat is not None
    meta = PhotoMeta(image.sha256, file_id, image.width, image.height, image.size,
                     image.phash, chat.id, msg.message_id)
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
    update: Update, context: WenmingContext, view: InspectionView, replace: bool = False
) -> None:
    """Show the inspection's current screen and remember which message carries it.

    A button press edits its own message. Typed input (a remark, a photo) pushes the
    conversation down, so the screen is sent again below it (`replace`) and the older copy
    loses its buttons.
    """
    text, markup = views.inspection_screen(view, context.lang)
    if update.callback_query is not None:
        sent = await show(update, text, markup)
    else:
        chat_id, message_id = view.prompt
        if replace and chat_id is not None and message_id is not None:
            await drop_keyboard(context, chat_id, message_id)
        sent = await reply(update, text, markup)
    if sent is None or (sent.chat_id, sent.message_id) == view.prompt:
        return  # edited in place: nothing new to remember
    await context.deps.press.moved(view.inspection_id, sent.chat_id, sent.message_id)


PRIVATE = filters.ChatType.PRIVATE
# Free input (text, photos, locations) reaches the claim_* functions through handlers/inputs.
HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [
    CommandHandler("inspect", inspect, filters=PRIVATE),
    CallbackQueryHandler(on_find, pattern=rf"^{cb.FIND}:(new|search|near)$"),
    CallbackQueryHandler(on_site, pattern=rf"^{cb.SITE}:"),
    CallbackQueryHandler(on_resume, pattern=rf"^{cb.RESUME}:"),
    CallbackQueryHandler(on_discard, pattern=rf"^{cb.DISCARD}:"),
    CallbackQueryHandler(on_step, pattern=rf"^({cb.VERDICT}|{cb.STEP}):"),
]
