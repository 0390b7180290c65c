"""The organisation an import file describes: units, sites, group bindings, people's roles and
assignments, and the assignments pending for people who have not met the bot yet."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Assignment, GroupBinding, PendingAssignment, Person, Site, Unit


class OrgRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def units_by_code(self) -> dict[str, Unit]:
        return {u.code: u for u in await self.session.scalars(select(Unit))}

    async def sites_by_code(self) -> dict[str, Site]:
        return {site.code: site for site in await self.session.scalars(select(Site))}

    async def site_ids(self, codes: Collection[str]) -> dict[str, int]:
        """The ids of the sites with these codes (unknown codes are left out)."""
        return {site.code: site.id for site in await self.session.scalars(
            select(Site).where(Site.code.in_(list(codes))))}

    async def groups_by_chat(self) -> dict[int, GroupBinding]:
        """Every group binding, active or not."""
        return {g.chat_id: g for g in await self.session.scalars(select(GroupBinding))}

    async def people(self, ids: Collection[int]) -> dict[int, Person]:
        return {p.id: p for p in await self.session.scalars(
            select(Person).where(Person.id.in_(list(ids))))}

    async def pending(self, telegram_ids: Collection[int]) -> dict[int, PendingAssignment]:
        return {p.telegram_id: p for p in await self.session.scalars(
            select(PendingAssignment).where(PendingAssignment.telegram_id.in_(
                list(telegram_ids))))}

    async def withdraw_pending_except(self, telegram_ids: Collection[int]) -> int:
        """Delete the pending assignments of everyone not in `telegram_ids`; how many went."""
        keep = set(telegram_ids)
        gone = [p for p in await self.session.scalars(select(PendingAssignment))
                if p.telegram_id not in keep]
        for row in gone:
            await self.session.delete(row)
        return len(gone)

    async def pending_of(self, telegram_id: int) -> PendingAssignment | None:
        return await self.session.get(PendingAssignment, telegram_id)

    async def assignments(self, person_ids: Collection[int]) -> dict[int, list[Assignment]]:
        """The people's site assignments, by person."""
        out: dict[int, list[Assignment]] = {}
        for a in await self.session.scalars(
                select(Assignment).where(Assignment.person_id.in_(list(person_ids)))):
            out.setdefault(a.person_id, []).append(a)
        return out

    async def replace_assignments(
        self, person_id: int, current: Iterable[Assignment], wanted: set[int]
    ) -> bool:
        """Make the person's assignments exactly `wanted` (site ids), `current` being those
        they have; True if anything changed."""
        changed = False
        kept: set[int] = set()
        for a in current:
            if a.site_id in wanted:
                kept.add(a.site_id)
            else:
                await self.session.delete(a)
                changed = True
        for site_id in sorted(wanted - kept):
            self.session.add(Assignment(person_id=person_id, site_id=site_id))
            changed = True
        return changed

    def add(self, row: Unit | Site | GroupBinding | PendingAssignment) -> None:
        self.session.add(row)

    async def remove(self, row: PendingAssignment) -> None:
        await self.session.delete(row)
