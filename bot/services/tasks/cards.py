"""The task's cards in its unit's groups: queueing, recording and editing them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.domain.tasks import DEFAULT_TZ
from bot.media.store import MediaStore
from bot.render.tasks import Card, card
from bot.services.tasks.constants import CARD_PURPOSE
from bot.services.tasks.reads import task_data
from db.models import GroupBinding, OutboxMessage, Task
from db.outbox_keys import dedup_key, dedup_prefix
from db.types import utcnow
from db.uow import UnitOfWork


async def queue_cards(uow: UnitOfWork, task: Task, now: datetime, *, tag: str = "new",
                      chats: Iterable[int] | None = None, tz: ZoneInfo = DEFAULT_TZ) -> int:
    """Queue the task's card for each active group of its unit (or only for those of `chats`,
    e.g. the groups whose card was deleted), its times in `tz` (Settings.tz); returns how
    many."""
    groups = await uow.people.active_groups_of_unit(task.unit_id)
    if chats is not None:
        wanted = set(chats)
        groups = [g for g in groups if g.chat_id in wanted]
    if not groups:
        return 0
    view = card(await task_data(uow, task.id), now, tz)
    outbox = uow.outbox
    queued = 0
    for group in groups:
        method, params = card_message(view)
        key = dedup_key("task_card", task.id, group.chat_id, tag, task.version)
        if await outbox.enqueue(key, group.chat_id, method, params, purpose=CARD_PURPOSE,
                                ref_id=task.id, ref_version=task.version):
            queued += 1
    return queued


def card_message(view: Card) -> tuple[str, dict[str, object]]:
    """The Bot API call that posts a card: a photo with a caption, or a text message."""
    params: dict[str, object] = {"parse_mode": "HTML"}
    markup = view.markup()
    if markup is not None:
        params["reply_markup"] = markup
    if view.photo_sha:
        # The outbox uploads the stored copy once and re-sends the bot's own file id after.
        params.update(file=MediaStore.relpath(view.photo_sha), file_param="photo",
                      filename="photo.jpg", caption=view.text)
        if view.stamp:  # drawn on the copy the outbox uploads; the stored file stays bare
            params["stamp"] = list(view.stamp)
        return "sendPhoto", params
    params["text"] = view.text
    return "sendMessage", params


async def record_card(uow: UnitOfWork, task_id: int, chat_id: int, message_id: int) -> None:
    """A handler replaced a text card with a photo card itself (a card cannot gain a photo by
    an edit): that message is the card in its chat now, at the task's current version."""
    task = await uow.tasks.get(task_id)
    if task is not None:
        await uow.cards.record(task_id, chat_id, message_id, version=task.version,
                               has_photo=True, now=utcnow())


async def card_delivered(uow: UnitOfWork, row: OutboxMessage, chat_id: int,
                         message_id: int, *, tz: ZoneInfo = DEFAULT_TZ) -> None:
    """The outbox delivered a card (this runs in the transaction marking the row sent; bot/app.py
    gives the outbox this hook, with Settings.tz, through db.uow.within_session): it is the
    task's card in that chat from now on.
    A press or a job may have changed the task between queueing the card and now, and found no
    card to edit yet (the location is recorded only here). Such a card is stale the moment it
    lands: an edit to the current state is queued behind it, in the same chat. A card that
    lands in a group of another unit (re-routed meanwhile) is recorded but left as it is.
    """
    assert row.ref_id is not None
    task = await uow.tasks.get(row.ref_id)
    if task is None:
        return
    now = row.sent_at or utcnow()  # the outbox's clock, set just before this hook
    rendered_at = row.ref_version if row.ref_version is not None else task.version
    await uow.cards.record(task.id, chat_id, message_id, version=rendered_at,
                           has_photo=row.method == "sendPhoto", now=now)
    binding = await uow.people.group(chat_id)
    if binding is not None and binding.unit_id != task.unit_id:
        return
    if task.version <= rendered_at:
        return
    await queue_card_edits(uow, task.id, now, chats=[chat_id], tag="caught-up",
                           tz=tz)


async def chats_with_queued_edits(uow: UnitOfWork, task_id: int) -> set[int]:
    """Chats where an edit of the task's card waits in the outbox. A handler edits such a card
    through the outbox too, behind it, so an older edit never lands after a newer one."""
    return await uow.outbox.pending_chats(dedup_prefix("task_edit", task_id))


async def active_groups(uow: UnitOfWork, unit_id: int) -> list[GroupBinding]:
    return await uow.people.active_groups_of_unit(unit_id)


async def queue_card_edits(uow: UnitOfWork, task_id: int, now: datetime, *,
                           chats: Iterable[int] | None = None, tag: str = "",
                           tz: ZoneInfo = DEFAULT_TZ) -> int:
    """Edit the cards (all of them, or those in `chats`) through the outbox: for changes made
    where no bot is at hand (a job, another feature's service), and for a card a handler
    could not edit directly (flood control, a network error), so it is retried.

    A photo card has a caption to edit, a text card text."""
    data = await task_data(uow, task_id)
    view = card(data, now, tz)
    outbox = uow.outbox
    wanted = set(chats) if chats is not None else None
    queued = 0
    for placed in await uow.cards.of_task(task_id):
        chat_id = placed.chat_id
        if wanted is not None and chat_id not in wanted:
            continue
        binding = await uow.people.group(chat_id)
        if binding is not None and binding.unit_id != data.unit_id:
            continue
        params: dict[str, object] = {"message_id": placed.message_id, "parse_mode": "HTML"}
        markup = view.markup()
        if markup is not None:
            params["reply_markup"] = markup
        if placed.has_photo:
            method, params["caption"] = "editMessageCaption", view.text
        else:
            method, params["text"] = "editMessageText", view.text
        key = (dedup_key("task_edit_again", task_id, chat_id, data.version, tag) if tag
               else dedup_key("task_edit", task_id, chat_id, data.version))
        if await outbox.enqueue(key, chat_id, method, params):
            queued += 1
    return queued
