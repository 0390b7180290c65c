"""People, invites and group bindings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import GroupBinding, Invite, InviteUse, Person, Unit
from db.repositories.rows import add_or_find
from db.repositories.sites import escape_like

# session.info key: ids of the people this transaction locked (PeopleRepository.get_to_change).
LOCKED_PEOPLE = "wenming_locked_people"


class PeopleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, person_id: int) -> Person | None:
        return await self.session.get(Person, person_id)

    async def get_to_change(self, person_id: int) -> Person | None:
        """The person, locked until this transaction ends (FOR UPDATE; SQLite's writers take
        turns anyway): what it commits is then the whole row, and the person cache can take
        a copy of it instead of reading it again (db/caches.py)."""
        person = await self.session.get(Person, person_id, with_for_update=True,
                                        populate_existing=True)
        if person is not None:
            self.session.sync_session.info.setdefault(LOCKED_PEOPLE, set()).add(person_id)
        return person

    async def add(self, person: Person) -> tuple[Person, bool]:
        """A new person; or, when two first messages (say, from two chats) came at once, the
        one the other created. True when this call added them."""
        return await add_or_find(self.session, person, lambda: self.get(person.id))

    async def admins(self) -> list[Person]:
        rows = await self.session.scalars(select(Person).where(Person.role == "admin"))
        return list(rows.all())

    async def invite(self, code: str) -> Invite | None:
        return await self.session.get(Invite, code)

    async def add_invite(self, invite: Invite) -> None:
        self.session.add(invite)

    async def invite_used_by(self, code: str, person_id: int) -> bool:
        return await self.session.get(InviteUse, (code, person_id)) is not None

    async def record_invite_use(self, invite: Invite, person_id: int) -> bool:
        """Count one use, atomically: False if the last use was taken meanwhile."""
        result = await self.session.execute(
            update(Invite)
            .where(Invite.code == invite.code, Invite.uses < Invite.max_uses)
            .values(uses=Invite.uses + 1)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        invite.uses += 1
        self.session.add(InviteUse(code=invite.code, person_id=person_id))
        return True

    async def first_contact_rank(self, person_id: int) -> int:
        """The person's place in the order of first contact (1 for the first; 0 if unknown).
        People are never deleted, so it never changes."""
        me = await self.session.get(Person, person_id)
        if me is None:
            return 0
        return int(await self.session.scalar(
            select(func.count()).select_from(Person).where(or_(
                Person.created_at < me.created_at,
                and_(Person.created_at == me.created_at, Person.id <= me.id)))) or 0)

    async def first_names(self, ids: Iterable[int]) -> dict[int, str]:
        """First names by person id."""
        wanted = set(ids)
        if not wanted:
            return {}
        rows = await self.session.execute(
            select(Person.id, Person.first_name).where(Person.id.in_(wanted)))
        return {pid: name for pid, name in rows.all()}

    async def units(self) -> dict[int, Unit]:
        """Every unit by id (the unit tree)."""
        return {u.id: u for u in (await self.session.scalars(select(Unit))).all()}

    async def unit(self, unit_id: int) -> Unit | None:
        return await self.session.get(Unit, unit_id)

    async def unit_by_code(self, code: str) -> Unit | None:
        return await self.session.scalar(select(Unit).where(Unit.code == code))

    async def find_units(self, query: str, limit: int = 10) -> list[Unit]:
        like = f"%{escape_like(query)}%"
        stmt = (
            select(Unit)
            .where(
                (Unit.code == query)
                | Unit.name_zh.ilike(like, escape="\\")
                | Unit.name_en.ilike(like, escape="\\")
            )
            .order_by(Unit.id)
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())

    async def group(self, chat_id: int) -> GroupBinding | None:
        return await self.session.get(GroupBinding, chat_id)

    async def bind_group(
        self, chat_id: int, unit_id: int, title: str, by: int, now: datetime
    ) -> GroupBinding:
        binding = await self.group(chat_id)
        if binding is None:
            binding = GroupBinding(chat_id=chat_id, unit_id=unit_id, title=title, bound_by=by,
                                   bound_at=now, active=True)
            self.session.add(binding)
        else:
            binding.unit_id, binding.title, binding.bound_by = unit_id, title, by
            binding.bound_at, binding.active = now, True
        return binding

    async def active_groups(self) -> list[GroupBinding]:
        """Every active group, by chat id."""
        return list((await self.session.scalars(
            select(GroupBinding).where(GroupBinding.active.is_(True))
            .order_by(GroupBinding.chat_id))).all())

    async def groups_by_chat(self, chat_ids: Iterable[int]) -> list[GroupBinding]:
        """These chats' groups (active or not), by chat id."""
        return list((await self.session.scalars(
            select(GroupBinding).where(GroupBinding.chat_id.in_(list(chat_ids)))
            .order_by(GroupBinding.chat_id))).all())

    async def active_groups_of_unit(self, unit_id: int) -> list[GroupBinding]:
        stmt = select(GroupBinding).where(
            GroupBinding.unit_id == unit_id, GroupBinding.active.is_(True)
        )
        return list((await self.session.scalars(stmt)).all())
