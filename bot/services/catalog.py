"""The standards in force, and every past version an inspection has pinned."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bot.domain.errors import DomainError
from bot.domain.standards import Standard, load_standards
from db.models import StandardVersion
from db.repositories import InspectionRepository
from db.types import utcnow


class StandardCatalog:
    def __init__(self, standards: Mapping[str, Standard]) -> None:
        self.current = dict(standards)
        self._by_hash = {s.content_hash: s for s in standards.values()}

    @classmethod
    def load(cls, directory: Path) -> StandardCatalog:
        return cls(load_standards(directory))

    def for_site_type(self, site_type: str) -> Standard:
        standard = self.current.get(site_type)
        if standard is None:
            raise DomainError("inspect.no_standard", site_type=site_type)
        return standard

    async def pin(self, repo: InspectionRepository, standard: Standard) -> None:
        """Keep a snapshot of the version an inspection is about to use."""
        if await repo.snapshot(standard.content_hash) is not None:
            return
        await repo.add_snapshot(
            StandardVersion(content_hash=standard.content_hash, standard_id=standard.id,
                            body=standard.to_dict(), created_at=utcnow())
        )

    async def resolve(self, repo: InspectionRepository, content_hash: str) -> Standard:
        """The exact version an inspection was started with, even if the YAML changed since."""
        standard = self._by_hash.get(content_hash)
        if standard is None:
            snapshot = await repo.snapshot(content_hash)
            if snapshot is None:
                raise DomainError("inspect.standard_missing")
            standard = Standard.from_dict(snapshot.body)
            self._by_hash[content_hash] = standard
        return standard
