"""Residents' reports (随手拍): the resident's conversation and the unit group's buttons.

Thin: each callback opens one unit of work, calls the report service, commits, and only then
talks to Telegram. Messages to groups and pushes to residents go through the outbox.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import (
    Message,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.domain import reports as dom
from bot.domain.errors import DomainError
from bot.domain.expectation import Expectation
from bot.domain.roles import Role, require, role_of
from bot.render import callbacks as cb
from bot.render import reports as rv
from bot.render.buttons import Button, Rows, Screen
from bot.render.callbacks import GroupPress
from bot.render.callbacks import ReportPress as Press
from bot.render.i18n import Html, h
from bot.render.refusals import explain
from bot.services.evidence import captured_at
from bot.services.inspections import PhotoMeta
from bot.services.people import attached
from bot.services.reports import (
    DraftView,
    ReportContext,
    blocking,
    decisions,
    drafts,
    duplicates,
    followup,
    queries,
    routing,
    submitting,
)
from bot.telegram.context import WenmingContext
from bot.telegram.markup import inline_markup, location_keyboard
from db.models import Person, Report
from db.uow import UnitOfWork
from handlers.common import answer_query, queued, reply, show
from handlers.inspect import receive_image

log = logging.getLogger(__name__)
Callback = Callable[[Update, WenmingContext], Coroutine[Any, Any, None]]
Take = Callable[[Update, WenmingContext, Expectation], Coroutine[Any, Any, bool]]


async def _refuse(update: Update, context: WenmingContext, exc: DomainError) -> None:
    """Say why, in the person's language (the global error handler's context has lost it)."""
    log.info("refused: %s", exc.key)  # not its values: they may name people
    # Every refusal, the task feature's too (a reopened or verified task), through the
    # catalogues: its values are translated, never shown as raw state or action names.
    text = explain(context.lang, exc)
    if update.callback_query is not None:
        await answer_query(update, text[:200], alert=True)
    else:
        await reply(update, text)


def speaks(fn: Callback) -> Callback:
    @functools.wraps(fn)
    async def wrapper(update: Update, context: WenmingContext) -> None:
        try:
            await fn(update, context)
        except DomainError as exc:
            await _refuse(update, context, exc)

    return wrapper


def claims(fn: Take) -> Take:
    @functools.wraps(fn)
    async def wrapper(update: Update, context: WenmingContext, expected: Expectation) -> bool:
        try:
            return await fn(update, context, expected)
        except DomainError as exc:
            await _refuse(update, context, exc)
            return True

    return wrapper


def reporting(context: WenmingContext) -> ReportContext:
    """What the report use cases need, built once by bot/app.py."""
    return context.deps.reports


def _wake_outbox(context: WenmingContext) -> None:
    sender = context.application.bot_data.get("outbox")
    if sender is not None:
        sender.wake()


async def _present(update: Update, context: WenmingContext, view: DraftView,
                   *, edit: bool = False) -> None:
    """Show the draft's current step; asking for the place also offers the location button."""
    rc = reporting(context)
    lang = context.lang
    if view.report.step == dom.STEP_PLACE and view.photos:
        chat = update.effective_chat
        assert chat is not None
        if edit and update.callback_query is not None:
            # The pressed message keeps what was chosen; the place question comes below it.
            await show(update, rv.photos_done_text(lang, view))
        await queued(chat.send_message(
            context.t("reports.location_hint"),
            reply_markup=location_keyboard(context.t("button.share_location"))))
        await reply(update, *rv.place_screen(lang, view))
        return
    text, rows = rv.draft_screen(lang, view, rc.config)
    if edit:
        await show(update, text, rows)
    else:
        await reply(update, text, rows)


# ---- commands ---------------------------------------------------------------------------------


@speaks
async def report_command(update: Update, context: WenmingContext) -> None:
    """/report: start a report, or show the one being written."""
    deps = context.deps
    rc = reporting(context)
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        report = await drafts.start(rc, uow, person, deps.clock())
        view = await drafts.view(rc, uow, person, report)
        await uow.commit()
    await _present(update, context, view)


async def report_in_group(update: Update, context: WenmingContext) -> None:
    """/report in a group: reports are made in private (the photos, the place, the answers are
    the resident's own); a deep link opens the private chat and starts one (/start report)."""
    username = context.bot.username
    url = f"https://t.me/{username}?start={START_PAYLOAD}"
    button = Button(context.t("reports.group_report_button"), url=url)
    await reply(update, context.t("reports.group_report", url=Html(h(url))), [[button]])


@speaks
async def myreports_command(update: Update, context: WenmingContext) -> None:
    """/myreports: the resident's reports and those they follow, with their state."""
    deps = context.deps
    rc = reporting(context)
    async with deps.uow.read() as uow:
        lines = await queries.mine(uow, await attached(uow, context.me))
    await reply(update, rv.my_reports_text(context.lang, lines, rc.config, deps.settings.tz,
                                           deps.clock()))


async def _set_blocked(update: Update, context: WenmingContext, blocked: bool) -> None:
    require(role_of(context.me), Role.ADMIN)
    if not context.args:
        await reply(update, context.t("reports.block_usage"))
        return
    deps = context.deps
    async with deps.uow() as uow:
        admin = await attached(uow, context.me)
        person, number = await blocking.set_blocked(reporting(context), uow, admin,
                                                    context.args[0], blocked)
        await uow.commit()
    key = "reports.blocked_done" if blocked else "reports.unblocked_done"
    await reply(update, context.t(key, number=number, user_id=person.id))


async def private_only(update: Update, context: WenmingContext) -> None:
    """/block, /unblock, /reroute outside a private chat: their answers name residents (and
    /block's names the Telegram account), which every member of a group would read. Say
    where to use them instead, naming nobody."""
    msg = update.effective_message
    command = "block"
    if msg is not None and msg.text:
        command = msg.text.split()[0].lstrip("/").split("@")[0][:32] or command
    await reply(update, context.t("reports.private_only", command=command))


@speaks
async def block_command(update: Update, context: WenmingContext) -> None:
    """/block <user id | ticket>: refuse that person's reports (and everything else)."""
    await _set_blocked(update, context, True)


@speaks
async def unblock_command(update: Update, context: WenmingContext) -> None:
    """/unblock <user id | ticket>."""
    await _set_blocked(update, context, False)


@speaks
async def reroute_command(update: Update, context: WenmingContext) -> None:
    """/reroute <ticket> <unit>: an admin sends a report to another unit."""
    require(role_of(context.me), Role.ADMIN)
    args = context.args or []
    if len(args) < 2:
        await reply(update, context.t("reports.reroute_usage"))
        return
    deps = context.deps
    async with deps.uow() as uow:
        admin = await attached(uow, context.me)
        report, unit, _old = await routing.reroute(reporting(context),
            uow, admin, args[0], " ".join(args[1:]), deps.clock())
        await uow.commit()
    _wake_outbox(context)
    await reply(update, context.t("reports.rerouted", ticket=report.ticket or "",
                                  unit=unit.name_zh))


# ---- free input (through handlers/inputs.py) --------------------------------------------------


@claims
async def take_photo(update: Update, context: WenmingContext, _: Expectation) -> bool:
    """A photo starts a report, or adds to the one being written."""
    msg = update.effective_message
    chat = update.effective_chat
    assert msg is not None and chat is not None
    deps = context.deps
    rc = reporting(context)
    stored = await receive_image(msg, context)
    if stored is None:
        return True
    image, file_id = stored
    meta = PhotoMeta(image.sha256, file_id, image.width, image.height, image.size,
                     image.phash, chat.id, msg.message_id,
                     captured_at(image, deps.settings.tz))
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        added = await drafts.add_photo(rc, uow, person, meta, msg.media_group_id, deps.clock(),
                                    caption=msg.caption)
        view = await drafts.view(rc, uow, person, added.report)
        await uow.commit()
    if not added.new:
        return True  # the same message again: it was answered the first time
    if msg.media_group_id is not None:
        _answer_album_later(context, chat.id, person.id, msg.media_group_id,
                            dropped=frozenset({msg.message_id} if added.dropped else ()))
        return True
    await _present(update, context, view)
    return True


def _answer_album_later(context: WenmingContext, chat_id: int, person_id: int,
                        media_group_id: str, *, dropped: frozenset[int]) -> None:
    """An album's photos arrive one by one: answer once, when they have stopped coming,
    counting the photos the draft had no room for (by message: one delivered twice counts
    once)."""
    jq = context.application.job_queue
    name = f"report-album:{chat_id}:{media_group_id}"
    if jq is None:
        return
    for job in jq.get_jobs_by_name(name):
        assert isinstance(job.data, tuple)
        dropped |= job.data[3]
        job.schedule_removal()
    jq.run_once(
        _album_done,  # type: ignore[arg-type]  # the application's job queue is untyped here
        reporting(context).config.album_wait_seconds, name=name,
        data=(chat_id, person_id, context.lang, dropped))


async def _album_done(context: WenmingContext) -> None:
    """The album is complete: show the draft (re-read from the database)."""
    job = context.job
    assert job is not None and isinstance(job.data, tuple)
    chat_id, person_id, lang, dropped = job.data
    rc = reporting(context)
    async with context.deps.uow() as uow:
        person = await uow.session.get(Person, person_id)
        report = None if person is None else await drafts.draft(uow, person)
        if person is None or report is None:
            return
        view = await drafts.view(rc, uow, person, report)
    text, rows = rv.album_screen(lang, view, rc.config, len(dropped))
    await queued(context.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML,
                                          reply_markup=inline_markup(rows)))


@claims
async def take_dispute_reason(update: Update, context: WenmingContext, _: Expectation) -> bool:
    """The reason a reporter gives after 👎 ("still there"). A reason that can no longer be
    taken (too late, answered meanwhile) is not asked for again; the text may then be meant
    for a draft, and only when no draft wants it is the refusal shown."""
    msg = update.effective_message
    assert msg is not None and msg.text is not None
    deps = context.deps
    rc = reporting(context)
    view: DraftView | None = None
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        refused: DomainError | None = None
        try:
            disputed = await followup.dispute_reason(rc, uow, person, msg.text, deps.clock())
        except DomainError as exc:
            person.pending = None
            disputed, refused = None, exc
        if disputed is None:
            report = await drafts.text(rc, uow, person, msg.text, deps.clock())
            if report is None:
                if refused is not None:  # no draft wants it: it was the reason, say why not
                    await uow.commit()
                    raise refused
                return False
            view = await drafts.view(rc, uow, person, report)
        await uow.commit()
    if view is not None:
        await _present(update, context, view)
        return True
    _wake_outbox(context)
    await reply(update, context.t("reports.fix_still"))
    return True


@claims
async def take_text(update: Update, context: WenmingContext, _: Expectation) -> bool:
    """A description or a typed address for the report being written."""
    msg = update.effective_message
    assert msg is not None and msg.text is not None
    text, now = msg.text, context.deps.clock()
    view = await _draft_input(
        context, lambda rc, uow, person: drafts.text(rc, uow, person, text, now))
    if view is None:
        return False
    await _present(update, context, view)
    return True


@claims
async def take_location(update: Update, context: WenmingContext, _: Expectation) -> bool:
    """Where the reported problem is."""
    msg = update.effective_message
    assert msg is not None and msg.location is not None
    lat, lon, now = msg.location.latitude, msg.location.longitude, context.deps.clock()
    view = await _draft_input(
        context, lambda rc, uow, person: drafts.set_location(rc, uow, person, lat, lon, now))
    if view is None:
        return False
    await queued(msg.reply_text(context.t("reports.location_received"),
                                reply_markup=ReplyKeyboardRemove()))
    await _present(update, context, view)
    return True


DraftChange = Callable[[ReportContext, UnitOfWork, Person], Awaitable[Report | None]]


async def _draft_input(context: WenmingContext, change: DraftChange) -> DraftView | None:
    """Apply typed or shared input to the draft; its new view, or None if no draft wants it."""
    rc = reporting(context)
    async with context.deps.uow() as uow:
        person = await attached(uow, context.me)
        report = await change(rc, uow, person)
        if report is None:
            return None
        view = await drafts.view(rc, uow, person, report)
        await uow.commit()
    return view


# ---- the resident's buttons -------------------------------------------------------------------


@speaks
async def on_resident_press(update: Update, context: WenmingContext) -> None:
    """rp:<report>:<action>[:<arg>] — the draft's buttons, and confirming a fix."""
    query = update.callback_query
    assert query is not None and query.data is not None
    report_id, action, arg = cb.parse_resident(query.data)
    deps = context.deps
    rc = reporting(context)
    lang = context.lang
    now = deps.clock()
    screen: Screen | None = None
    view: DraftView | None = None
    wake = False
    # Decide what to show inside the unit of work; talk to Telegram only after leaving it.
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        if action is Press.SUBMIT:
            done = await submitting.submit(rc, uow, person, report_id, now)
            await uow.commit()
            screen, wake = (rv.submitted_text(lang, done.report, done.unit), []), True
        elif action is Press.CANCEL:
            # Only the draft this button was made for (an old prompt's is refused as stale).
            await drafts.cancel_draft(uow, person, report_id)
            await uow.commit()
            screen = (context.t("reports.cancelled"), [])
        elif action is Press.FOLLOW and cb.number(arg) is not None:
            followed = await duplicates.follow(rc, uow, person, report_id, cb.number(arg) or 0,
                                               now)
            await uow.commit()
            screen, wake = (rv.followed_text(lang, followed), []), True
        elif action is Press.FIX_STILL and arg is None:
            # What is still wrong? Typed next (or the button below: without a reason).
            report = await followup.ask_dispute(rc, uow, person, report_id, now)
            await uow.commit()
            screen = rv.ask_dispute_screen(lang, report)
        elif action is Press.FIX_OK or (action is Press.FIX_STILL and arg == "now"):
            if action is Press.FIX_OK:
                await followup.confirm_fix(rc, uow, person, report_id, now)
            else:
                await followup.dispute_fix(rc, uow, person, report_id, now)
            await uow.commit()
            screen = (context.t("reports.fix_ok" if action is Press.FIX_OK
                                else "reports.fix_still"), [])
            wake = True
        elif action is Press.SITES:
            report = await drafts.own_draft(uow, person, report_id,
                                         (dom.STEP_PLACE, dom.STEP_PLACE_PICK))
            sites = await uow.sites.search("", limit=rv.MAX_SITES)
            screen = rv.site_list_screen(lang, report, sites, typed=False)
        else:
            if action is Press.CATEGORY and arg is not None:
                report = await drafts.choose_category(rc, uow, person, report_id, arg, now)
            elif action is Press.SKIP:
                report = await drafts.skip_description(rc, uow, person, report_id, now)
            elif action in rv.PLACE_CHOICES:
                report = await drafts.place_action(rc, uow, person, report_id,
                                                rv.PLACE_CHOICES[action], cb.number(arg), now)
            else:
                raise DomainError("error.stale_button")
            view = await drafts.view(rc, uow, person, report)
            await uow.commit()
    await answer_query(update)
    if wake:
        _wake_outbox(context)
    if screen is not None:
        await show(update, *screen)
    elif view is not None:
        await _present(update, context, view, edit=True)


# ---- the unit group's buttons -----------------------------------------------------------------


def _card_html(message: Message | None) -> str:
    if message is None:
        return ""
    return message.text_html or message.caption_html or ""


@speaks
async def on_group_press(update: Update, context: WenmingContext) -> None:
    """rg:<report>:<action>[:<arg>] — accept, reject with a reason, duplicate, re-route."""
    query = update.callback_query
    assert query is not None and query.data is not None
    report_id, action, arg = cb.parse_group(query.data)
    deps = context.deps
    rc = reporting(context)
    lang = rc.group_lang
    now = deps.clock()
    message = query.message if isinstance(query.message, Message) else None
    card = _card_html(message).split("\n\n")[0]
    if action in MENU_ACTIONS:
        # The second level of the card's buttons only reads: no write lock, and Telegram is
        # answered after the unit of work is left.
        async with deps.uow.read() as uow:
            actor = await attached(uow, context.me)
            rows = await _group_menu(rc, uow, actor, report_id, action)
        if rows is None:
            await answer_query(update, context.t("reports.no_earlier"), alert=True)
            return
        await answer_query(update)
        with contextlib.suppress(BadRequest):
            await queued(query.edit_message_reply_markup(reply_markup=inline_markup(rows)))
        return
    target = cb.number(arg)
    async with deps.uow() as uow:
        actor = await attached(uow, context.me)
        if action is GroupPress.ACCEPT:
            report, task = await decisions.accept(rc, uow, actor, report_id, now)
            await uow.commit()
            text = rv.decided_text(card, lang, "reports.group.accepted", by=actor.first_name,
                                   due=rv.fmt_time(task.due_at, rc.tz), task=task.id)
        elif action is GroupPress.REASON and arg is not None:
            report = await decisions.reject(rc, uow, actor, report_id, arg, now)
            await uow.commit()
            text = rv.decided_text(card, lang, "reports.group.rejected", by=actor.first_name,
                                   reason=rv.reject_reason(lang, report.reason))
        elif action is GroupPress.DUPLICATE_OF and target is not None:
            report, original = await decisions.mark_duplicate(rc, uow, actor, report_id, target,
                                                              now)
            await uow.commit()
            text = rv.decided_text(card, lang, "reports.group.duplicate", by=actor.first_name,
                                   original=original.ticket or "")
        elif action is GroupPress.TO_UNIT and target is not None:
            report, unit, _old = await routing.reroute(rc, uow, actor, report_id, target, now)
            await uow.commit()
            text = rv.decided_text(card, lang, "reports.group.rerouted", by=actor.first_name,
                                   unit=unit.name_zh)
        else:
            raise DomainError("error.stale_button")
    await answer_query(update)
    _wake_outbox(context)
    if message is not None:
        with contextlib.suppress(BadRequest):
            await message.edit_text(text, parse_mode=ParseMode.HTML, reply_markup=None)


MENU_ACTIONS = (GroupPress.REJECT, GroupPress.DUPLICATE, GroupPress.REROUTE, GroupPress.BACK)


async def _group_menu(rc: ReportContext, uow: UnitOfWork, actor: Person, report_id: int,
                      action: GroupPress) -> Rows | None:
    """The keyboard for the card's second level: reasons, earlier tickets, units (no writes).
    None when there is no earlier ticket to mark it a duplicate of."""
    lang = rc.group_lang
    if action is GroupPress.REJECT:
        await decisions.decidable(uow, actor, report_id)
        return rv.reject_keyboard(lang, report_id)
    if action is GroupPress.DUPLICATE:
        _report, found = await decisions.duplicate_choices(rc, uow, actor, report_id)
        return rv.duplicate_keyboard(lang, report_id, found) if found else None
    if action is GroupPress.REROUTE:
        _report, units = await routing.reroute_choices(rc, uow, actor, report_id)
        return rv.reroute_keyboard(lang, report_id, units)
    if action is GroupPress.BACK:
        report = await decisions.decidable(uow, actor, report_id)
        if report.status != dom.SUBMITTED:
            raise DomainError("reports.already_decided", ticket=report.ticket or "")
        return rv.group_keyboard(lang, report_id)
    raise DomainError("error.stale_button")


PRIVATE = filters.ChatType.PRIVATE
START_PAYLOAD = "report"  # https://t.me/<bot>?start=report: the private chat starts a report
# Free input (photos, text, locations) reaches the claim_* functions through handlers/inputs.
HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [
    CommandHandler("report", report_command, filters=PRIVATE),
    CommandHandler("report", report_in_group, filters=~PRIVATE),
    # The deep link from a group. It only takes effect when these handlers are registered
    # before handlers/start.py's CommandHandler("start"), which would take it for an invite.
    CommandHandler("start", report_command,
                   filters=PRIVATE & filters.Regex(rf"^/start {START_PAYLOAD}$")),
    CommandHandler("myreports", myreports_command, filters=PRIVATE),
    CommandHandler("block", block_command, filters=PRIVATE),
    CommandHandler("unblock", unblock_command, filters=PRIVATE),
    CommandHandler("reroute", reroute_command, filters=PRIVATE),
    CommandHandler(["block", "unblock", "reroute"], private_only, filters=~PRIVATE),
    CallbackQueryHandler(on_resident_press, pattern=rf"^{cb.RESIDENT}:"),
    CallbackQueryHandler(on_group_press, pattern=rf"^{cb.GROUP}:"),
]
