"""Direct findings (/task): the unit or site named, and the photos sent for it."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.errors import DomainError
from db.models import Person, Photo, Site, Unit
from db.uow import UnitOfWork


@dataclass(frozen=True)
class FindingTarget:
    unit: Unit
    site: Site | None


async def finding_target(uow: UnitOfWork, query: str) -> FindingTarget:
    """A unit by name or code, or a site (whose unit is responsible for it)."""
    from bot.services.people import find_one_unit

    try:
        return FindingTarget(await find_one_unit(uow, query), None)
    except DomainError as unit_error:
        sites = await uow.sites.search(query)
        exact = [s for s in sites if s.name == query or s.code == query]
        chosen = exact[0] if len(exact) == 1 else sites[0] if len(sites) == 1 else None
        if chosen is None:
            raise unit_error
        unit = await uow.people.unit(chosen.unit_id)
        assert unit is not None
        return FindingTarget(unit, chosen)


async def unattached_photos(uow: UnitOfWork, person: Person, chat_id: int,
                            after_message_id: int) -> list[int]:
    """Photos this person sent in their chat after a prompt, not yet part of any task."""
    return await uow.tasks.unattached_photos(person.id, chat_id, after_message_id)


async def add_photo(uow: UnitOfWork, photo: Photo) -> Photo:
    """Store a photo row once per (chat, message): a redelivered message adds nothing."""
    existing = await uow.inspections.photo_from_message(photo.chat_id, photo.message_id)
    if existing is not None:
        return existing
    return await uow.inspections.add_photo(photo)
