"""Sites: assigned, searched by name, or nearest to a shared location."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Assignment, Site, SiteItem

EARTH_RADIUS_M = 6_371_000.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def escape_like(text: str) -> str:
    """Typed text matched literally inside LIKE: % and _ are not wildcards here."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SiteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, site_id: int) -> Site | None:
        return await self.session.get(Site, site_id)

    async def assigned_to(self, person_id: int) -> list[Site]:
        stmt = (
            select(Site)
            .join(Assignment, Assignment.site_id == Site.id)
            .where(Assignment.person_id == person_id)
            .order_by(Site.name)
        )
        return list((await self.session.scalars(stmt)).all())

    async def search(self, query: str, limit: int = 8) -> list[Site]:
        words = [w for w in query.split() if w]
        stmt = select(Site)
        for word in words:
            like = f"%{escape_like(word)}%"
            stmt = stmt.where(
                Site.name.ilike(like, escape="\\")
                | Site.address.ilike(like, escape="\\")
                | (Site.code == word)
            )
        return list((await self.session.scalars(stmt.order_by(Site.name).limit(limit))).all())

    async def names(self) -> list[tuple[int, str]]:
        """Every site's (id, name)."""
        return [(row.id, row.name)
                for row in (await self.session.execute(select(Site.id, Site.name))).all()]

    async def any_located(self) -> bool:
        """Whether any site has a location."""
        return bool(await self.session.scalar(
            select(func.count()).select_from(Site).where(Site.latitude.is_not(None))))

    async def nearest(
        self, lat: float, lon: float, limit: int = 6, within_m: float = 5000
    ) -> list[tuple[Site, float]]:
        # A bounding box narrows the candidates in SQL; exact distance is computed here.
        dlat = within_m / 111_000
        dlon = within_m / (111_000 * max(math.cos(math.radians(lat)), 0.01))
        stmt = select(Site).where(
            Site.latitude.between(lat - dlat, lat + dlat),
            Site.longitude.between(lon - dlon, lon + dlon),
        )
        sites = (await self.session.scalars(stmt)).all()
        ranked = sorted(
            ((s, distance_m(lat, lon, s.latitude or 0, s.longitude or 0)) for s in sites),
            key=lambda pair: pair[1],
        )
        return [pair for pair in ranked if pair[1] <= within_m][:limit]

    # ---- the site's current answers (site items) ----------------------------------------

    async def items(self, site_id: int) -> list[SiteItem]:
        """The site's current verdicts, most recently answered first."""
        return list((await self.session.scalars(
            select(SiteItem).where(SiteItem.site_id == site_id)
            .order_by(SiteItem.updated_at.desc()))).all())

    async def item(self, site_id: int, standard_id: str, item_key: str) -> SiteItem | None:
        return await self.session.get(SiteItem, (site_id, standard_id, item_key))

    async def set_items(self, site_id: int, standard_id: str, standard_hash: str,
                        verdicts: Mapping[str, str], *, source: str, source_id: int,
                        now: datetime) -> None:
        """Make these the site's current verdicts for these items.

        One read of the rows that exist, then the updates and the inserts each in one batch: a
        17-item inspection costs a handful of statements, not two or four per item.
        """
        session = self.session
        existing = {row.item_key: row for row in await session.scalars(
            select(SiteItem).where(SiteItem.site_id == site_id,
                                   SiteItem.standard_id == standard_id,
                                   SiteItem.item_key.in_(list(verdicts))))}
        missing: Collection[str] = [key for key in verdicts if key not in existing]

        def new_row(key: str) -> SiteItem:
            return SiteItem(site_id=site_id, standard_id=standard_id, item_key=key,
                            standard_hash=standard_hash, verdict=verdicts[key], source=source,
                            source_id=source_id, updated_at=now)

        if missing:
            try:
                async with session.begin_nested():
                    session.add_all(new_row(key) for key in missing)
            except IntegrityError:
                # Another inspection of the same site wrote some of them at the same moment.
                for key in missing:
                    row = await self.item(site_id, standard_id, key)
                    if row is None:
                        async with session.begin_nested():
                            session.add(new_row(key))
                    else:
                        existing[key] = row
        for key, row in existing.items():
            row.standard_hash, row.verdict, row.source, row.source_id, row.updated_at = (
                standard_hash, verdicts[key], source, source_id, now)
