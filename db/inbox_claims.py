"""Pending inbox rows in a webhook replica's hands (PostgreSQL): claims with a lease.

Only the replica holding a chat (db/chat_locks.py) claims that chat's rows; the claim tells
the others the rows are in hand and, by its lease, when they no longer are: the holder renews
its claims while it lives, and a dead replica's run out, so a live one takes them over.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db.models import InboxUpdate

# An update whose handling crashed the process this many times is set aside, not retried.
MAX_ATTEMPTS = 3


def _free(now: datetime, mine: str | None) -> Any:
    """Rows no live replica has in hand (with `mine`: also this replica's, from a past life)."""
    free = or_(InboxUpdate.claimed_until.is_(None), InboxUpdate.claimed_until < now)
    return or_(free, InboxUpdate.claimed_by == mine) if mine is not None else free


async def claim_chat(session: AsyncSession, chat_key: int, *, owner: str, now: datetime,
                     until: datetime, mine: bool = False) -> list[InboxUpdate]:
    """Claim the chat's free pending rows, in update order; rows tried MAX_ATTEMPTS times are
    set aside. The caller commits."""
    held = aliased(InboxUpdate)
    ids = (select(InboxUpdate.id)
           .where(InboxUpdate.chat_key == chat_key, InboxUpdate.processed_at.is_(None),
                  _free(now, owner if mine else None),
                  # Another replica's live claim on a row of the chat: the chat's later rows
                  # wait for it (its lease runs out if that replica died), or order is lost.
                  ~exists().where(held.chat_key == chat_key, held.processed_at.is_(None),
                                  held.claimed_by != owner, held.claimed_until >= now))
           .order_by(InboxUpdate.update_id).with_for_update(skip_locked=True))
    rows = list((await session.scalars(
        update(InboxUpdate).where(InboxUpdate.id.in_(ids.scalar_subquery()))
        .values(claimed_by=owner, claimed_until=until, attempts=InboxUpdate.attempts + 1)
        .returning(InboxUpdate)
        .execution_options(synchronize_session=False))).all())
    kept = []
    for row in sorted(rows, key=lambda r: r.update_id):
        if row.attempts > MAX_ATTEMPTS:
            row.processed_at = now
            continue
        kept.append(row)
    return kept


async def free_chats(session: AsyncSession, *, now: datetime, owner: str | None = None,
                     limit: int = 500) -> list[int]:
    """Chats with pending rows no live replica has in hand (with `owner`: or this one's)."""
    return list((await session.scalars(
        select(InboxUpdate.chat_key).distinct()
        .where(InboxUpdate.processed_at.is_(None), _free(now, owner)).limit(limit))).all())


async def renew(session: AsyncSession, *, owner: str, until: datetime) -> None:
    await session.execute(
        update(InboxUpdate)
        .where(InboxUpdate.claimed_by == owner, InboxUpdate.processed_at.is_(None))
        .values(claimed_until=until))


async def give_back(session: AsyncSession, *, owner: str) -> None:
    """Drop this replica's claims on rows not handled: another replica takes them at once."""
    await session.execute(
        update(InboxUpdate)
        .where(and_(InboxUpdate.claimed_by == owner, InboxUpdate.processed_at.is_(None)))
        .values(claimed_by=None, claimed_until=None))
