"""Numbers: the ticket counter and a resident's stable public number."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from db.models import Counter, Person
from db.uow import UnitOfWork


async def next_counter(uow: UnitOfWork, name: str) -> int:
    """Increment a named counter atomically (one UPDATE … RETURNING) and return the value."""
    stmt = (update(Counter).where(Counter.name == name).values(value=Counter.value + 1)
            .returning(Counter.value))
    value = await uow.session.scalar(stmt)
    if value is not None:
        return int(value)
    try:
        async with uow.session.begin_nested():
            uow.session.add(Counter(name=name, value=1))
        return 1
    except IntegrityError:
        # Another transaction created it first; its row is there now.
        value = await uow.session.scalar(stmt)
        assert value is not None
        return int(value)


async def resident_number(uow: UnitOfWork, person_id: int) -> int:
    """A stable public number for a resident ("resident #12"): their order of first contact.

    Never the Telegram id. People are never deleted, so the number never changes.
    """
    me = await uow.session.get(Person, person_id)
    if me is None:
        return 0
    return int(await uow.session.scalar(
        select(func.count()).select_from(Person).where(or_(
            Person.created_at < me.created_at,
            and_(Person.created_at == me.created_at, Person.id <= me.id)))) or 0)
