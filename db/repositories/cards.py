"""Where the tasks' cards are: one row per task and chat (task_cards)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import OutboxMessage, TaskCard


class TaskCardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, task_id: int, chat_id: int, message_id: int, *, version: int,
                     has_photo: bool, now: datetime) -> TaskCard:
        """The task's card in this chat is now this message (it replaces an earlier one)."""
        row = await self.in_chat(task_id, chat_id)
        if row is None:
            row = TaskCard(task_id=task_id, chat_id=chat_id)
            self.session.add(row)
        row.message_id, row.version, row.has_photo, row.updated_at = (
            message_id, version, has_photo, now)
        return row

    async def in_chat(self, task_id: int, chat_id: int) -> TaskCard | None:
        return await self.session.scalar(
            select(TaskCard).where(TaskCard.task_id == task_id, TaskCard.chat_id == chat_id))

    async def of_task(self, task_id: int) -> list[TaskCard]:
        """Every card of the task, one per chat, oldest first."""
        return list((await self.session.scalars(
            select(TaskCard).where(TaskCard.task_id == task_id).order_by(TaskCard.id))).all())

    async def places(self, task_id: int) -> list[tuple[int, int]]:
        """Where the task's cards are, one per chat, oldest first: (chat_id, message_id)."""
        return [(c.chat_id, c.message_id) for c in await self.of_task(task_id)]

    async def drop_unsent(self, task_id: int, purpose: str) -> None:
        """Take the task's cards queued in the outbox (`purpose`) and not sent yet back out."""
        await self.session.execute(delete(OutboxMessage).where(
            OutboxMessage.purpose == purpose, OutboxMessage.ref_id == task_id,
            OutboxMessage.status == "pending"))
