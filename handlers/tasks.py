"""Rectification tasks in the units' groups (整改闭环): cards, buttons, /tasks, /task.

Thin: each callback runs one unit of work through bot.services.tasks, commits, and only then
talks to Telegram (answers the press, edits the cards, sends prompts). A button that needs
more than a press (after-photos, a reason, a unit) asks for it in a private chat and marks the
person's `pending` input (bot.domain.expectation.TaskInput); take_text / take_photo take it.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from typing import Literal

from telegram import (
    Bot,
    InputMediaPhoto,
    Message,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.domain.errors import DomainError, StaleAction
from bot.domain.expectation import (
    Expectation,
    Finding,
    TaskInput,
    decode_pending,
    encode_pending,
)
from bot.domain.roles import Role, require, role_of
from bot.domain.standards import Verdict
from bot.domain.tasks import (
    MAX_TASK_DAYS,
    Action,
    TaskState,
    available,
    parse_extension,
    parse_filter,
    parse_number,
)
from bot.media.collage import side_by_side
from bot.media.jobs import run_image_job
from bot.media.phash import signed64
from bot.media.sanitize import ImageRejected
from bot.media.stamp import stamp
from bot.render import callbacks as cb
from bot.render import tasks as tv
from bot.render.buttons import Rows
from bot.render.fit import CAPTION_LIMIT, fit, shown_length
from bot.render.i18n import t
from bot.render.refusals import explain
from bot.services import tasks as svc
from bot.services.evidence import captured_at
from bot.services.people import attached, find_one_unit, group_unit
from bot.services.tasks import Outcome
from bot.telegram.context import Deps, WenmingContext
from bot.telegram.flood import ReplyQueued
from bot.telegram.markup import inline_markup
from db.models import GroupBinding, Person, Photo, Unit
from db.uow import UnitOfWork
from handlers.common import answer_query, queued, reply
from handlers.inspect import receive_image

log = logging.getLogger(__name__)

# Buttons that need something typed or sent in a private chat before they act.
INPUT_ACTIONS = {Action.SUBMIT_FIX, Action.VERIFY_RETURN, Action.REQUEST_EXTENSION,
                 Action.NOT_OURS, Action.REROUTE, Action.REOPEN}
ASK_KEYS = {
    Action.SUBMIT_FIX: "task.ask.fix",
    Action.VERIFY_RETURN: "task.ask.return_reason",
    Action.REQUEST_EXTENSION: "task.ask.extension",
    Action.NOT_OURS: "task.ask.not_ours",
    Action.REROUTE: "task.ask.reroute",
    Action.REOPEN: "task.ask.reopen",
}


# ---- /tasks --------------------------------------------------------------------------------


async def tasks_command(update: Update, context: WenmingContext) -> None:
    """/tasks: the list that fits the person (or the group's unit); /tasks <id>: one task."""
    chat = update.effective_chat
    assert chat is not None
    deps = context.deps
    now = deps.clock()
    if chat.type != "private":
        async with deps.uow() as uow:
            unit = await group_unit(uow, chat.id)
            listing = (await svc.tasks_for(uow, context.me, parse_filter([]), now,
                                           group_unit_id=unit.id) if unit else None)
        if listing is None:
            await reply(update, context.t("task.group_unbound"))
            return
        await reply(update, _list_text(context, listing, now))
        return
    flt = parse_filter(context.args or [])
    if flt.task_id is not None:
        async with deps.uow() as uow:
            person = await attached(uow, context.me)
            task = await svc.get_task(uow, flt.task_id)
            if not await svc.may_see(uow, person, task):
                raise StaleAction("task.not_visible")
            data = await svc.task_data(uow, task.id)
            actions = await _actions_for(uow, person, task.id)
        await show_task(update, context, data, actions)
        return
    async with deps.uow() as uow:
        listing = await svc.tasks_for(uow, await attached(uow, context.me), flt, now)
    await reply(update, _list_text(context, listing, now))


async def show_task(update: Update, context: WenmingContext, data: tv.TaskData,
                    actions: list[Action]) -> None:
    """One task in private: 整改前/整改后 side by side (or its one stored photo) with the
    history as the caption, or the photo and then the text when the text is too long."""
    deps = context.deps
    text = tv.history_text(context.lang, data, deps.clock(), deps.settings.tz)
    rows = tv.rows_for_private(data, actions, context.lang)
    chat = update.effective_chat
    assert chat is not None
    sent = await send_private(context.bot, deps, chat.id, data, text, rows)
    if rows and sent is not None:  # None: queued in the outbox (no message id yet)
        # Its buttons go as soon as the task moves on (as a notice's do).
        async with deps.uow() as uow:
            await svc.remember_screen(uow, data.id, sent.chat_id, sent.message_id, deps.clock())
            await uow.commit()


async def send_private(bot: Bot, deps: Deps, chat_id: int, data: tv.TaskData, text: str,
                       rows: Rows) -> Message | None:
    """A private message about a task, with its photos when it has any: always the stored
    copies (never a user's file_id), side by side when there are before and after photos.
    Returns the message that carries the buttons, None when it went to the outbox (a long
    flood wait, handlers/common.queued). Forbidden propagates (the person never opened the
    private chat)."""
    media = await _card_media(deps, data) if data.has_photos else None
    markup = inline_markup(rows)
    if media is None:
        return await queued(bot.send_message(chat_id, text, parse_mode=ParseMode.HTML,
                                             reply_markup=markup))
    if shown_length(text) <= CAPTION_LIMIT:
        return await queued(bot.send_photo(chat_id, media, caption=text,
                                           parse_mode=ParseMode.HTML, reply_markup=markup))
    await queued(bot.send_photo(chat_id, media))
    return await queued(bot.send_message(chat_id, text, parse_mode=ParseMode.HTML,
                                         reply_markup=markup))


def _list_text(context: WenmingContext, listing: svc.TaskList, now: datetime) -> str:
    tz = context.deps.settings.tz
    lines = [context.t(listing.title_key, unit=listing.unit_in(context.lang) or "—",
                       count=len(listing.tasks))]
    if not listing.tasks:
        lines.append(context.t("task.list.empty"))
    lines += [tv.list_line(context.lang, d, now, tz) for d in listing.tasks]
    if listing.tasks:
        lines += ["", context.t("task.list.hint")]
    return fit("\n".join(lines))


async def _actions_for(uow: UnitOfWork, person: Person, task_id: int) -> list[Action]:
    task = await svc.get_task(uow, task_id)
    claim = await svc.reroute_claim(uow, task_id)
    return available(task.status, role_of(person), svc.is_unit_member(person, task),
                     task.fixed_by == person.id,
                     extension_pending=task.extension_until is not None,
                     reroute_pending=claim is not None,
                     candidates=[a for a in tv.BUTTON_KEYS])


# ---- button presses ------------------------------------------------------------------------


async def on_press(update: Update, context: WenmingContext) -> None:
    """Any t:<task>:<version>:<code> button, on a card in a group or in a private chat."""
    query = update.callback_query
    assert query is not None and query.data is not None
    try:
        await _press(update, context, cb.parse_task(query.data))
    except DomainError as exc:
        await answer_query(update, explain(context.lang, exc)[:200], alert=True)
        if isinstance(exc, StaleAction):
            await _refresh_private_buttons(update, context, query.data)


async def _refresh_private_buttons(update: Update, context: WenmingContext, value: str) -> None:
    """A refused press on an old private screen: its buttons become the ones valid now (none
    once the task is closed), so the screen no longer offers what the task has moved past."""
    chat, query = update.effective_chat, update.callback_query
    if chat is None or chat.type != "private" or query is None or query.message is None:
        return
    try:
        task_id = cb.parse_task(value).task_id
        async with context.deps.uow.read() as uow:
            data = await svc.task_data(uow, task_id)
            actions = await _actions_for(uow, context.me, task_id)
    except DomainError:
        return
    with contextlib.suppress(BadRequest):
        await queued(query.edit_message_reply_markup(
            inline_markup(tv.rows_for_private(data, actions, context.lang))))


async def _press(update: Update, context: WenmingContext, press: cb.TaskPress) -> None:
    deps = context.deps
    now = deps.clock()
    if press.code == cb.TASK_CANCEL:
        async with deps.uow() as uow:
            person = await attached(uow, context.me)
            cancelled = await svc.cancel_input(uow, person, press.task_id)
            await uow.commit()
        if not cancelled:  # an old prompt: nothing of it is waiting any more
            await answer_query(update, context.t(cb.STALE), alert=True)
            return
        await answer_query(update)
        await _edit_pressed(update, context.t("task.cancelled"))
        return
    if press.code in cb.TASK_VERDICT_CODES:
        verdict = Verdict(cb.TASK_VERDICT_CODES[press.code])
        if verdict is Verdict.NONCOMPLIANT:
            await _ask(update, context, press.task_id, Action.VERIFY_RETURN, press.version)
            return
        await _act(update, context, press.task_id, Action.VERIFY_PASS, press.version,
                   verdict=verdict)
        return
    if press.code == cb.TASK_DONE:
        await _act(update, context, press.task_id, Action.SUBMIT_FIX, press.version)
        return
    action = press.action
    assert action is not None
    if action in INPUT_ACTIONS:
        await _ask(update, context, press.task_id, action, press.version)
        return
    if action is Action.VERIFY_PASS:
        async with deps.uow() as uow:
            person = await attached(uow, context.me)
            task = await svc.get_task(uow, press.task_id)
            await svc.check(uow, person, task, action, press.version)
            checklist_task = task.inspection_id is not None
            data = await svc.task_data(uow, task.id, with_item=True) if checklist_task else None
        if data is not None:
            # A checklist task is verified by answering the same item again, in its words.
            await _ask_verdict(update, context, data)
            return
    await _act(update, context, press.task_id, action, press.version, now=now)


async def _act(
    update: Update, context: WenmingContext, task_id: int, action: Action, version: int, *,
    verdict: Verdict | None = None, now: datetime | None = None,
) -> None:
    deps = context.deps
    now = now or deps.clock()
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        outcome = await svc.act(uow, person, task_id, action, expected_version=version,
                                verdict=verdict, tz=deps.settings.tz, now=now)
        person.pending = None
        await uow.commit()
    toast = context.t("task.done_toast", action=context.t(tv.ACTION_KEYS[action]))
    if outcome.warning:
        toast += "\n" + context.t(outcome.warning)
    await answer_query(update, toast, alert=outcome.warning is not None)
    await after_transition(context, outcome, pressed=_pressed_card(update))
    chat = update.effective_chat
    if chat is not None and chat.type == "private":
        await _edit_pressed(update, tv.done_private(context.lang, task_id, action))


async def _ask(update: Update, context: WenmingContext, task_id: int, action: Action,
               version: int) -> None:
    """Check the person may, remember what we wait for, and ask in the private chat."""
    deps = context.deps
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        task = await svc.begin_input(uow, person, task_id, action, version)
        data = await svc.task_data(uow, task.id)
        returned = (await svc.last_return(uow, task.id)
                    if action is Action.SUBMIT_FIX and data.state is TaskState.RETURNED
                    else None)
        await uow.commit()
    context.person = person
    text = context.t(ASK_KEYS[action], id=data.id, title=tv.clip(data.title_in(context.lang), 80),
                     due=data.due_at.astimezone(deps.settings.tz).strftime("%Y-%m-%d"))
    if returned is not None and returned.reason:
        # Fixing again: what was wrong last time, in the prompt itself.
        text += "\n" + context.t("task.ask.returned_because",
                                 reason=tv.clip(returned.reason, 300))
    rows = tv.input_rows(context.lang, data.id, data.version,
                         done=action is Action.SUBMIT_FIX)
    if not await _dm(update, context, text, rows, task_id=data.id):
        return
    chat = update.effective_chat
    private = chat is not None and chat.type == "private"
    await answer_query(update, None if private else context.t("task.see_private"))


async def _ask_verdict(update: Update, context: WenmingContext, data: tv.TaskData) -> None:
    text = context.t("task.ask.verdict", id=data.id, item=data.item_in(context.lang),
                     site=data.site_name or "—")
    rows = tv.verdict_rows(context.lang, data)
    # The verifier sees what they check: 整改前 | 整改后, from the stored copies.
    if not await _dm(update, context, text, rows, task_id=data.id, task=data):
        return
    chat = update.effective_chat
    private = chat is not None and chat.type == "private"
    await answer_query(update, None if private else context.t("task.see_private"))


async def _dm(update: Update, context: WenmingContext, text: str, rows: Rows, *,
              task_id: int, task: tv.TaskData | None = None) -> bool:
    """Message the person privately (with the task's photos when `task` is given). If they
    never opened a chat with the bot, the press is answered with a link that opens it with
    /start task_<id>, which continues from here (start_task)."""
    try:
        if task is not None:
            await send_private(context.bot, context.deps, context.me.id, task, text, rows)
        else:
            await queued(context.bot.send_message(context.me.id, text, parse_mode=ParseMode.HTML,
                                                  reply_markup=inline_markup(rows)))
    except Forbidden:
        username = context.bot.username
        query = update.callback_query
        if username and query is not None:
            with contextlib.suppress(BadRequest):
                await query.answer(url=f"https://t.me/{username}?start={START_PREFIX}{task_id}")
            return False
        await answer_query(update, context.t("task.open_private_first", bot=username or ""),
                           alert=True)
        return False
    return True


async def _edit_pressed(update: Update, text: str) -> None:
    """Replace a private prompt's buttons with what came of them."""
    query = update.callback_query
    if query is None or query.message is None:
        return
    chat = update.effective_chat
    if chat is None or chat.type != "private":
        return
    with contextlib.suppress(BadRequest):
        if getattr(query.message, "photo", None):  # a prompt sent with the task's photos
            await queued(query.edit_message_caption(caption=text, parse_mode=ParseMode.HTML))
        else:
            await queued(query.edit_message_text(text, parse_mode=ParseMode.HTML))


# ---- free input in the private chat --------------------------------------------------------


async def take_finding_line(update: Update, context: WenmingContext,
                            expected: Expectation) -> bool:
    """The line that files a /task finding whose photos were sent first."""
    msg = update.effective_message
    assert msg is not None and msg.text is not None
    assert isinstance(expected.pending, Finding)
    await _finding_line(update, context, msg.text, expected.pending.since)
    return True


async def take_text(update: Update, context: WenmingContext, expected: Expectation) -> bool:
    """A reason or a fix note typed for a task this person is acting on."""
    msg = update.effective_message
    assert msg is not None and msg.text is not None
    wanted = expected.pending
    assert isinstance(wanted, TaskInput)
    try:
        await _typed(update, context, wanted, msg.text)
    except StaleAction as exc:
        await _clear_pending(context)
        await reply(update, explain(context.lang, exc))
    except DomainError as exc:
        # Something to correct (an unknown unit, a bad number of days): ask again.
        await reply(update, explain(context.lang, exc))
    return True


async def _typed(update: Update, context: WenmingContext, wanted: TaskInput,
                 text: str) -> None:
    deps = context.deps
    now = deps.clock()
    if wanted.action is Action.SUBMIT_FIX:
        async with deps.uow() as uow:
            person = await attached(uow, context.me)
            await svc.add_note(uow, person, wanted.task_id, text, now)
            count = len(await svc.drafts(uow, wanted.task_id, person.id))
            await uow.commit()
        await _fix_prompt(update, context, wanted, count, noted=True)
        return
    reason: str | None = text
    new_due = None
    new_unit_id = None
    verdict = None
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        task = await svc.get_task(uow, wanted.task_id)
        if wanted.action is Action.REQUEST_EXTENSION:
            days, reason = parse_extension(text)
            new_due = task.due_at + timedelta(days=days)
        elif wanted.action is Action.REROUTE:
            query, _, rest = text.strip().partition(" ")
            new_unit_id = (await find_one_unit(uow, query)).id
            reason = rest.strip() or None
        elif wanted.action is Action.VERIFY_RETURN and task.inspection_id is not None:
            verdict = Verdict.NONCOMPLIANT
        outcome = await svc.act(uow, person, wanted.task_id, wanted.action,
                                expected_version=wanted.version, reason=reason,
                                new_due=new_due, new_unit_id=new_unit_id, verdict=verdict,
                                tz=deps.settings.tz, now=now)
        person.pending = None
        await uow.commit()
    context.person = person
    if wanted.action is Action.REQUEST_EXTENSION and outcome.task.extension_until is not None:
        local = outcome.task.extension_until.astimezone(deps.settings.tz)
        until = context.t("task.date", month=local.month, day=local.day)
        await reply(update, context.t("task.extension_requested", id=wanted.task_id,
                                      until=until))
    else:
        await reply(update, tv.done_private(context.lang, wanted.task_id, wanted.action))
    await after_transition(context, outcome)


async def take_photo(update: Update, context: WenmingContext, expected: Expectation) -> bool:
    """An after-photo for a fix this person is submitting, or a photo for a /task finding."""
    msg = update.effective_message
    assert msg is not None
    pending = expected.pending
    assert isinstance(pending, Finding | TaskInput)
    stored = await receive_image(msg, context)
    if stored is None:
        return True
    image, file_id = stored
    chat = update.effective_chat
    assert chat is not None
    deps = context.deps
    now = deps.clock()
    photo = Photo(sha256=image.sha256, telegram_file_id=file_id, width=image.width,
                  height=image.height, size=image.size, phash=signed64(image.phash),
                  chat_id=chat.id, message_id=msg.message_id, uploaded_by=context.me.id,
                  created_at=now, captured_at=captured_at(image, deps.settings.tz))
    async with deps.uow() as uow:
        person = await attached(uow, context.me)
        if isinstance(pending, Finding):
            await svc.add_photo(uow, photo)
            count = len(await svc.unattached_photos(uow, person, chat.id, pending.since))
        else:
            count = await svc.add_draft_photo(uow, person, pending.task_id, photo)
        await uow.commit()
    caption = (msg.caption or "").strip()
    if isinstance(pending, Finding):
        if caption:  # the photo's caption is the line that files the finding, as if typed
            await _finding_line(update, context, caption, pending.since)
            return True
        await reply(update, context.t("task.finding_photo", count=count))
        return True
    wanted = pending
    if caption:
        # A caption on an after-photo is the fix note (as in the inspection flow).
        async with deps.uow() as uow:
            person = await attached(uow, context.me)
            await svc.add_note(uow, person, wanted.task_id, caption, now)
            await uow.commit()
    await _fix_prompt(update, context, wanted, count, noted=bool(caption))
    return True


async def _fix_prompt(update: Update, context: WenmingContext, wanted: TaskInput,
                      count: int, *, noted: bool) -> None:
    key = "task.fix_noted" if noted else "task.fix_photo"
    rows = tv.input_rows(context.lang, wanted.task_id, wanted.version, done=True)
    await reply(update, context.t(key, count=count), rows)


async def _clear_pending(context: WenmingContext) -> None:
    async with context.deps.uow() as uow:
        person = await attached(uow, context.me)
        person.pending = None
        await uow.commit()
    context.person = person


# ---- /task: a finding filed directly -------------------------------------------------------


async def task_command(update: Update, context: WenmingContext) -> None:
    """/task <unit or site> <days> <problem>; /task alone first collects photos."""
    require(role_of(context.me), Role.INSPECTOR)
    msg = update.effective_message
    assert msg is not None
    if context.args:
        pending = decode_pending(context.me.pending)
        since = pending.since if isinstance(pending, Finding) else msg.message_id
        await _finding_line(update, context, " ".join(context.args), since)
        return
    async with context.deps.uow() as uow:
        person = await attached(uow, context.me)
        person.pending = encode_pending(Finding(msg.message_id))
        await uow.commit()
    await reply(update, context.t("task.finding_start", days=MAX_TASK_DAYS))


async def _finding_line(update: Update, context: WenmingContext, text: str, since: int) -> None:
    parts = text.split(maxsplit=2)
    days = parse_number(parts[1]) if len(parts) == 3 else None
    if days is None or not 1 <= days <= MAX_TASK_DAYS:
        await reply(update, context.t("task.finding_usage", days=MAX_TASK_DAYS))
        return
    target_query, problem = parts[0], parts[2].strip()
    chat = update.effective_chat
    assert chat is not None
    deps = context.deps
    now = deps.clock()
    try:
        async with deps.uow() as uow:
            person = await attached(uow, context.me)
            target = await svc.finding_target(uow, target_query)
            photos = await svc.unattached_photos(uow, person, chat.id, since)
            task = await svc.create_task(
                uow, source="finding", unit_id=target.unit.id, title=problem[:500],
                due_at=now + timedelta(days=days), created_by=person.id,
                site_id=target.site.id if target.site else None,
                latitude=target.site.latitude if target.site else None,
                longitude=target.site.longitude if target.site else None,
                before_photo_ids=photos, tz=deps.settings.tz, now=now)
            person.pending = None
            unit_name = target.unit.name_zh
            groups = len(await svc.active_groups(uow, target.unit.id))
            await uow.commit()
    except DomainError as exc:
        await reply(update, explain(context.lang, exc))
        return
    context.person = person
    key = "task.finding_created" if groups else "task.finding_created_no_group"
    await reply(update, context.t(key, id=task.id, unit=unit_name, photos=len(photos),
                                  due=task.due_at.astimezone(deps.settings.tz)
                                  .strftime("%Y-%m-%d %H:%M")))
    _wake(context)


# ---- keeping the cards true ----------------------------------------------------------------


def _pressed_card(update: Update) -> tuple[int, int] | None:
    """The group card a button was pressed on. It is edited even if the outbox has not yet
    recorded its delivery (a press can arrive in the moment between the two)."""
    query = update.callback_query
    chat = update.effective_chat
    if query is None or query.message is None or chat is None or chat.type == "private":
        return None
    return chat.id, query.message.message_id


async def after_transition(context: WenmingContext, outcome: Outcome,
                           pressed: tuple[int, int] | None = None) -> None:
    """Edit the task's cards to its new state; queue what could not be edited."""
    await edit_cards_in_place(context.bot, context.deps, outcome.task.id,
                        new_media=outcome.action is Action.SUBMIT_FIX, pressed=pressed)
    _wake(context)


def _wake(context: WenmingContext) -> None:
    sender = context.application.bot_data.get("outbox")
    if sender is not None:
        sender.wake()


async def edit_cards_in_place(bot: Bot, deps: Deps, task_id: int, *, new_media: bool = False,
                              pressed: tuple[int, int] | None = None) -> None:
    """Edit every card of the task in place (the scheduler may call this after escalate()).

    The direct edit is the fast path. A card that could not be edited (flood control, a network
    error, …) is edited through the outbox instead, which retries it; so is a card that already
    has an edit waiting there (the outbox keeps a chat's edits in order). A card whose message
    is gone is posted again through the outbox, in that group only. A card in a group that no
    longer speaks for the task (it was re-routed) says where the task went, without buttons.
    """
    now = deps.clock()
    async with deps.uow() as uow:
        data = await svc.task_data(uow, task_id)
        cards = await uow.cards.places(task_id)
        if pressed is not None and pressed[0] not in {chat for chat, _ in cards}:
            cards.append(pressed)
        bound: dict[int, Unit | None] = {}
        for chat_id, _ in cards:
            binding = await uow.session.get(GroupBinding, chat_id)
            bound[chat_id] = (await uow.session.get(Unit, binding.unit_id)
                              if binding is not None else None)
        queued_before = await svc.chats_with_queued_edits(uow, task_id)
    view = tv.card(data, now, deps.settings.tz)
    media = await _card_media(deps, data) if new_media else None
    lost: set[int] = set()
    retry: set[int] = set(queued_before) & {chat for chat, _ in cards}
    for chat_id, message_id in cards:
        unit = bound.get(chat_id)
        if unit is not None and unit.id != data.unit_id:
            moved = tv.moved_card(data, unit.name_zh, deps.settings.tz)
            await _edit(bot, chat_id, message_id, tv.Card(moved, [], None), None)
            continue
        if chat_id in retry:
            continue
        outcome = await _edit(bot, chat_id, message_id, view, media)
        if outcome == "gone":
            lost.add(chat_id)
        elif outcome == "failed":
            retry.add(chat_id)
        elif isinstance(outcome, Message):
            async with deps.uow() as uow:
                await svc.record_card(uow, task_id, outcome.chat_id, outcome.message_id)
                await uow.commit(mark_update_handled=False)
    if retry:
        async with deps.uow() as uow:
            await svc.queue_card_edits(uow, task_id, now, chats=retry, tz=deps.settings.tz)
            await uow.commit(mark_update_handled=False)
    if lost:
        async with deps.uow() as uow:
            task = await svc.get_task(uow, task_id)
            await svc.queue_cards(uow, task, now, tag="again", chats=lost,
                                  tz=deps.settings.tz)
            await uow.commit(mark_update_handled=False)


async def _stamped(deps: Deps, data: tv.TaskData, sha: str) -> bytes:
    """The stored photo with its stamp drawn on a copy (site, when received, task number,
    整改前/整改后: bot/media/stamp.py); the stored file stays as it is."""
    lines = tv.photo_stamp(tv.GROUP_LANG, data, sha, deps.settings.tz)
    return await run_image_job(stamp, deps.media.read(sha), lines,
                               font=deps.settings.cjk_font)


async def _card_media(deps: Deps, data: tv.TaskData) -> bytes | str | None:
    """整改前 | 整改后 side by side when both exist; otherwise the newest photo; each stamped."""
    if data.before_shas and data.after_shas:
        try:
            before = await _stamped(deps, data, data.before_shas[0])
            after = await _stamped(deps, data, data.after_shas[0])
            return await run_image_job(side_by_side, before, after,
                                       before_label=t(tv.GROUP_LANG, "task.card.before"),
                                       after_label=t(tv.GROUP_LANG, "task.card.after"),
                                       font=deps.settings.cjk_font)
        except (OSError, ImageRejected):
            log.warning("task %s: cannot render the before/after image", data.id,
                        exc_info=True)
    # The stored copy, never the file_id of what a user uploaded (it may carry EXIF and GPS).
    sha = (data.after_shas or data.before_shas or (None,))[0]
    if sha is None:
        return None
    try:
        return await _stamped(deps, data, sha)
    except OSError:
        log.warning("task %s: stored photo %s is missing", data.id, sha)
        return None
    except ImageRejected:
        log.warning("task %s: stored photo %s cannot be stamped", data.id, sha, exc_info=True)
        return deps.media.read(sha)


EditOutcome = Literal["edited", "gone", "failed"]


async def _edit(
    bot: Bot, chat_id: int, message_id: int, view: tv.Card, media: bytes | str | None
) -> Message | EditOutcome:
    """Edit one card. Returns "edited" (or unchanged: "message is not modified"), "gone" when
    the message no longer exists, "failed" when the edit did not happen for any other reason
    (flood control, a network error, …; the caller retries it through the outbox), or a new
    Message when a text card had to become a photo card."""
    markup = inline_markup(view.rows)
    try:
        if media is not None:
            try:
                await bot.edit_message_media(
                    InputMediaPhoto(media, caption=view.text, parse_mode=ParseMode.HTML),
                    chat_id=chat_id, message_id=message_id, reply_markup=markup)
                return "edited"
            except BadRequest as exc:
                if "no media" not in str(exc).lower():
                    raise
            # A text card cannot take a photo: replace it with a photo card.
            sent = await bot.send_photo(chat_id, media, caption=view.text,
                                        parse_mode=ParseMode.HTML, reply_markup=markup)
            with contextlib.suppress(TelegramError):
                await bot.delete_message(chat_id, message_id)
            return sent
        try:
            await bot.edit_message_caption(chat_id=chat_id, message_id=message_id,
                                           caption=view.text, parse_mode=ParseMode.HTML,
                                           reply_markup=markup)
        except BadRequest as exc:
            if "no caption" not in str(exc).lower():
                raise
            await bot.edit_message_text(fit(view.text),
                                        chat_id=chat_id, message_id=message_id,
                                        parse_mode=ParseMode.HTML, reply_markup=markup)
    except BadRequest as exc:
        text = str(exc).lower()
        if "not modified" in text:
            return "edited"
        if "not found" in text or "can't be edited" in text:
            return "gone"
        log.warning("task card %s/%s could not be edited now: %s", chat_id, message_id, exc)
        return "failed"
    except Forbidden:
        log.warning("task card %s/%s: the bot is no longer in the chat", chat_id, message_id)
        return "failed"
    except ReplyQueued:
        return "edited"  # the chat must wait long: the outbox makes this very edit
    except TelegramError as exc:  # RetryAfter, NetworkError, TimedOut, …
        log.warning("task card %s/%s could not be edited now: %s", chat_id, message_id, exc)
        return "failed"
    return "edited"



# ---- /start task_<id>: the private chat opened from a button ------------------------------

START_PREFIX = "task_"


async def start_task(update: Update, context: WenmingContext) -> None:
    """/start task_<id>: someone pressed a task button before ever opening the private chat;
    Telegram opened it for them. Continue what they started: the prompt for the input the task
    waits for from them (photos, a reason, …), or else the task itself with its buttons (the
    verifier's 通过/退回 among them)."""
    payload = (context.args or [""])[0]
    task_id = parse_number(payload.removeprefix(START_PREFIX))
    if task_id is None:
        await reply(update, explain(context.lang, StaleAction("task.stale")))
        return
    try:
        async with context.deps.uow() as uow:
            person = await attached(uow, context.me)
            task = await svc.get_task(uow, task_id)
            if not await svc.may_see(uow, person, task):
                raise StaleAction("task.not_visible")
            wanted = decode_pending(person.pending)
            data = await svc.task_data(uow, task.id)
            actions = await _actions_for(uow, person, task.id)
    except DomainError as exc:
        await reply(update, explain(context.lang, exc))
        return
    if (isinstance(wanted, TaskInput) and wanted.task_id == task_id
            and wanted.version == data.version):
        rows = tv.input_rows(context.lang, task_id, wanted.version,
                             done=wanted.action is Action.SUBMIT_FIX)
        text = context.t(ASK_KEYS[wanted.action], id=data.id,
                         title=tv.clip(data.title_in(context.lang), 80),
                         due=data.due_at.astimezone(context.deps.settings.tz)
                         .strftime("%Y-%m-%d"))
        await reply(update, text, rows)
        return
    await show_task(update, context, data, actions)


# Must come before handlers.start's /start (whose payload is an invite code).
START_HANDLER: BaseHandler[Update, WenmingContext, None] = CommandHandler(
    "start", start_task,
    filters=filters.ChatType.PRIVATE & filters.Regex(rf"^/start {START_PREFIX}\d+$"))

HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [
    START_HANDLER,
    CommandHandler("tasks", tasks_command),
    CommandHandler("task", task_command, filters=filters.ChatType.PRIVATE),
    CallbackQueryHandler(on_press, pattern=rf"^{cb.TASK}:"),
]
