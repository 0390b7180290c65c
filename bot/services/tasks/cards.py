"""The task's cards in its unit's groups: queueing, recording and editing them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.tasks import DEFAULT_TZ
from bot.media.store import MediaStore
from bot.render.tasks import Card, card
from bot.services.tasks.constants import CARD_PURPOSE
from bot.services.tasks.reads import task_data
from db.models import GroupBinding, OutboxMessage, Task
from db.repositories import OutboxRepository, PeopleRepository
from db.types import utcnow
from db.uow import UnitOfWork


async def queue_cards(uow: UnitOfWork, task: Task, now: datetime, *, tag: str = "new",
                      chats: Iterable[int] | None = None, tz: ZoneInfo = DEFAULT_TZ) -> int:
    """Queue the task's card for each active group of its unit (or only for those of `chats`,
    e.g. the groups whose card was deleted), its times in `tz` (Settings.tz); returns how
    many."""
    groups = await PeopleRepository(uow.session).active_groups_of_unit(task.unit_id)
    if chats is not None:
        wanted = set(chats)
        groups = [g for g in groups if g.chat_id in wanted]
    if not groups:
        return 0
    view = card(await task_data(uow, task.id), now, tz)
    outbox = OutboxRepository(uow.session)
    queued = 0
    for group in groups:
        method, params = card_message(view)
        key = f"task:{task.id}:card:{group.chat_id}:{tag}:{task.version}"
        if await outbox.enqueue(key, group.chat_id, method, params, purpose=CARD_PURPOSE,
                                ref_id=task.id):
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
        return "sendPhoto", params
    params["text"] = view.text
    return "sendMessage", params


async def record_card(uow: UnitOfWork, task_id: int, chat_id: int, message_id: int) -> None:
    """Remember where the task's card is (the outbox hook and the handlers call this)."""
    # Only the responsible unit's groups speak for the task; a late card in an old group
    # (re-routed meanwhile) must not take its place.
    await remember_card(uow.session, task_id, chat_id, message_id)


async def remember_card(session: AsyncSession, task_id: int, chat_id: int,
                        message_id: int) -> Task | None:
    """Record where the card is; the task, if that chat's group speaks for it."""
    task = await session.get(Task, task_id)
    if task is None:
        return None
    binding = await session.get(GroupBinding, chat_id)
    if binding is not None and binding.unit_id != task.unit_id:
        return None
    task.card_chat_id, task.card_message_id = chat_id, message_id
    return task


async def card_delivered(session: AsyncSession, row: OutboxMessage, chat_id: int,
                         message_id: int, *, tz: ZoneInfo = DEFAULT_TZ) -> None:
    """The outbox delivered a card (this runs in the transaction marking the row sent; bot/app.py
    gives the outbox this hook, with Settings.tz).

    A press or a job may have changed the task between queueing the card and now, and found no
    card to edit yet (the location is recorded only here). Such a card is stale the moment it
    lands: an edit to the current state is queued behind it, in the same chat.
    """
    assert row.ref_id is not None
    task = await remember_card(session, row.ref_id, chat_id, message_id)
    rendered_at = _card_version(row.dedup_key)
    if task is None or rendered_at is None or task.version <= rendered_at:
        return
    now = row.sent_at or utcnow()  # the outbox's clock, set just before this hook
    await queue_card_edits(UnitOfWork.within(session), task.id, now, chats=[chat_id],
                           tag="caught-up", tz=tz)


def _card_version(dedup_key: str) -> int | None:
    """The task version a queued card was rendered at: task:<id>:card:<chat>:<tag>:<version>."""
    try:
        return int(dedup_key.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


async def chats_with_queued_edits(uow: UnitOfWork, task_id: int) -> set[int]:
    """Chats where an edit of the task's card waits in the outbox. A handler edits such a card
    through the outbox too, behind it, so an older edit never lands after a newer one."""
    rows = await uow.session.scalars(
        select(OutboxMessage.chat_id)
        .where(OutboxMessage.dedup_key.startswith(f"task:{task_id}:edit:"),
               OutboxMessage.status == "pending")
    )
    return {int(chat_id) for chat_id in rows.all()}


async def active_groups(uow: UnitOfWork, unit_id: int) -> list[GroupBinding]:
    return await PeopleRepository(uow.session).active_groups_of_unit(unit_id)


async def cards_of(uow: UnitOfWork, task_id: int) -> list[tuple[int, int]]:
    """Every card of the task that was delivered, newest per chat: (chat_id, message_id)."""
    rows = await uow.session.execute(
        select(OutboxMessage.chat_id, OutboxMessage.sent_message_id)
        .where(OutboxMessage.purpose == CARD_PURPOSE, OutboxMessage.ref_id == task_id,
               OutboxMessage.status == "sent", OutboxMessage.sent_message_id.is_not(None))
        .order_by(OutboxMessage.id)
    )
    latest: dict[int, int] = {}
    for chat_id, message_id in rows.all():
        if message_id is not None:
            latest[int(chat_id)] = int(message_id)
    task = await uow.session.get(Task, task_id)
    if task is not None and task.card_chat_id is not None and task.card_message_id is not None:
        latest[task.card_chat_id] = task.card_message_id
    return list(latest.items())


async def queue_card_edits(uow: UnitOfWork, task_id: int, now: datetime, *,
                           chats: Iterable[int] | None = None, tag: str = "",
                           tz: ZoneInfo = DEFAULT_TZ) -> int:
    """Edit the cards (all of them, or those in `chats`) through the outbox: for changes made
    where no bot is at hand (a job, another feature's service), and for a card a handler
    could not edit directly (flood control, a network error), so it is retried.

    A card posted as a photo has a caption, one posted as a text message text; a card the
    outbox did not post (a handler's replacement photo card) goes by whether the task has
    photos."""
    data = await task_data(uow, task_id)
    view = card(data, now, tz)
    outbox = OutboxRepository(uow.session)
    wanted = set(chats) if chats is not None else None
    queued = 0
    for chat_id, message_id in await cards_of(uow, task_id):
        if wanted is not None and chat_id not in wanted:
            continue
        binding = await uow.session.get(GroupBinding, chat_id)
        if binding is not None and binding.unit_id != data.unit_id:
            continue
        params: dict[str, object] = {"message_id": message_id, "parse_mode": "HTML"}
        markup = view.markup()
        if markup is not None:
            params["reply_markup"] = markup
        posted_as = await uow.session.scalar(
            select(OutboxMessage.method)
            .where(OutboxMessage.chat_id == chat_id, OutboxMessage.sent_message_id == message_id,
                   OutboxMessage.purpose == CARD_PURPOSE, OutboxMessage.ref_id == task_id)
            .limit(1))
        photo_card = posted_as == "sendPhoto" if posted_as is not None else data.has_photos
        if photo_card:
            method, params["caption"] = "editMessageCaption", view.text
        else:
            method, params["text"] = "editMessageText", view.text
        key = f"task:{task_id}:edit:{chat_id}:{data.version}" + (f":{tag}" if tag else "")
        if await outbox.enqueue(key, chat_id,
                                method, params):
            queued += 1
    return queued
