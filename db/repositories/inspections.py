"""Inspections, their answers and evidence, standard snapshots and the tasks they raise."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Answer, Evidence, Inspection, Person, Photo, StandardVersion, Task
from db.repositories.rows import add_or_find


class InspectionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, inspection_id: int) -> Inspection | None:
        return await self.session.get(Inspection, inspection_id)

    async def open_of(self, inspector_id: int) -> list[Inspection]:
        stmt = (
            select(Inspection)
            .where(Inspection.inspector_id == inspector_id, Inspection.status == "open")
            .order_by(Inspection.updated_at.desc())
        )
        return list((await self.session.scalars(stmt)).all())

    async def open_at(self, inspector_id: int, site_id: int) -> Inspection | None:
        return await self.session.scalar(
            select(Inspection).where(
                Inspection.inspector_id == inspector_id,
                Inspection.site_id == site_id,
                Inspection.status == "open",
            )
        )

    async def open_by_others(self, site_id: int, inspector_id: int
                             ) -> list[tuple[Inspection, Person]]:
        """Open inspections of a site by other inspectors, oldest first, with who has them."""
        stmt = (
            select(Inspection, Person)
            .join(Person, Person.id == Inspection.inspector_id)
            .where(Inspection.site_id == site_id, Inspection.status == "open",
                   Inspection.inspector_id != inspector_id)
            .order_by(Inspection.started_at)
        )
        return [(i, p) for i, p in (await self.session.execute(stmt)).all()]

    async def answers(self, inspection_id: int) -> dict[str, Answer]:
        rows = await self.session.scalars(
            select(Answer).where(Answer.inspection_id == inspection_id)
        )
        return {a.item_key: a for a in rows}

    async def evidence_counts(self, inspection_id: int) -> dict[str, int]:
        rows = await self.session.execute(
            select(Evidence.item_key, func.count())
            .where(Evidence.inspection_id == inspection_id)
            .group_by(Evidence.item_key)
        )
        return {key: int(n) for key, n in rows.all()}

    async def evidence_photos(self, inspection_id: int) -> dict[str, list[Photo]]:
        rows = await self.session.execute(
            select(Evidence.item_key, Photo)
            .join(Photo, Photo.id == Evidence.photo_id)
            .where(Evidence.inspection_id == inspection_id)
            .order_by(Photo.id)
        )
        out: dict[str, list[Photo]] = {}
        for key, photo in rows.all():
            out.setdefault(key, []).append(photo)
        return out

    async def photo_from_message(self, chat_id: int, message_id: int) -> Photo | None:
        return await self.session.scalar(
            select(Photo).where(Photo.chat_id == chat_id, Photo.message_id == message_id)
        )

    async def add_photo(self, photo: Photo) -> Photo:
        self.session.add(photo)
        await self.session.flush()
        return photo

    async def attach(self, inspection_id: int, item_key: str, photo_id: int) -> bool:
        if await self.session.get(Evidence, (inspection_id, item_key, photo_id)) is not None:
            return False
        self.session.add(Evidence(inspection_id=inspection_id, item_key=item_key,
                                  photo_id=photo_id))
        return True

    async def snapshot(self, content_hash: str) -> StandardVersion | None:
        return await self.session.get(StandardVersion, content_hash)

    async def add_snapshot(self, version: StandardVersion) -> None:
        """Keep a standard version's snapshot (another inspection may pin the same version at
        the same moment: same content, kept once)."""
        await add_or_find(self.session, version, lambda: self.snapshot(version.content_hash))

    async def add_open(self, inspection: Inspection) -> Inspection:
        """A new open inspection; or, when the same start was pressed twice at once, the one
        the other press created."""
        found, _ = await add_or_find(self.session, inspection, lambda: self.open_at(
            inspection.inspector_id, inspection.site_id))
        return found

    async def task_for(self, inspection_id: int, item_key: str) -> Task | None:
        return await self.session.scalar(
            select(Task).where(Task.inspection_id == inspection_id, Task.item_key == item_key)
        )

    async def add_task(self, task: Task) -> Task:
        self.session.add(task)
        await self.session.flush()
        return task
