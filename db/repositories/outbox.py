"""The outbox: messages decided inside a transaction, sent after it."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import OutboxMessage


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(
        self, dedup_key: str, chat_id: int, method: str, params: dict[str, object],
        *, purpose: str | None = None, ref_id: int | None = None,
        ref_version: int | None = None,
    ) -> bool:
        """Queue a message once per dedup key; returns False if it was queued before."""
        exists = await self.session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.dedup_key == dedup_key)
        )
        if exists is not None:
            return False
        self.session.add(
            OutboxMessage(dedup_key=dedup_key, chat_id=chat_id, method=method, params=params,
                          purpose=purpose, ref_id=ref_id, ref_version=ref_version)
        )
        return True

    async def due(self, now: datetime, limit: int = 50) -> list[OutboxMessage]:
        stmt = (
            select(OutboxMessage)
            .where(
                OutboxMessage.status == "pending",
                or_(OutboxMessage.not_before.is_(None), OutboxMessage.not_before <= now),
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())

    async def pending_chats(self, key_prefix: str) -> set[int]:
        """The chats of the pending rows whose dedup key starts with `key_prefix`."""
        rows = await self.session.scalars(
            select(OutboxMessage.chat_id)
            .where(OutboxMessage.dedup_key.startswith(key_prefix),
                   OutboxMessage.status == "pending"))
        return {int(chat_id) for chat_id in rows.all()}

    async def delivered(self, purpose: str, ref_id: int) -> list[tuple[int, int, int]]:
        """The delivered messages of this purpose about `ref_id`: (row id, chat, message)."""
        rows = await self.session.execute(
            select(OutboxMessage.id, OutboxMessage.chat_id, OutboxMessage.sent_message_id)
            .where(OutboxMessage.purpose == purpose, OutboxMessage.ref_id == ref_id,
                   OutboxMessage.status == "sent", OutboxMessage.sent_message_id.is_not(None)))
        return [(row_id, int(chat_id), int(message_id))
                for row_id, chat_id, message_id in rows.all() if message_id is not None]

    async def by_keys(self, keys: Collection[str], *, lock: bool = False
                      ) -> dict[str, OutboxMessage]:
        """The rows queued under these dedup keys, by key; `lock`: locked until the commit
        (a row about to be rewritten must not be recorded as sent meanwhile unseen)."""
        if not keys:
            return {}
        query = select(OutboxMessage).where(OutboxMessage.dedup_key.in_(list(keys)))
        if lock:  # in id order; and read anew, not from rows this session loaded before
            query = (query.order_by(OutboxMessage.id).with_for_update()
                     .execution_options(populate_existing=True))
        rows = await self.session.scalars(query)
        return {row.dedup_key: row for row in rows.all()}

    async def backlog(self, now: datetime) -> tuple[int, datetime | None]:
        """How many messages wait, and since when the longest-waiting due one has been due
        (its not_before, else when it was queued); None when none is due."""
        pending = OutboxMessage.status == "pending"
        count = await self.session.scalar(select(func.count()).where(pending))
        since = await self.session.scalar(
            select(func.min(func.coalesce(OutboxMessage.not_before, OutboxMessage.created_at)))
            .where(pending, or_(OutboxMessage.not_before.is_(None),
                                OutboxMessage.not_before <= now)))
        return int(count or 0), since
