"""Finding sites by name and by distance, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Site, Unit
from db.repositories import SiteRepository


async def seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s, s.begin():
        unit = Unit(code="u", name_zh="单位", name_en="Unit", kind="office")
        s.add(unit)
        await s.flush()
        s.add_all([
            Site(code="a", name="Crowne Plaza 皇冠假日", site_type="hotel", address="XX大道58号",
                 latitude=34.3790, longitude=107.2280, unit_id=unit.id),
            Site(code="b", name="100% Fresh Market", site_type="mall", address="东风路",
                 latitude=34.3800, longitude=107.2500, unit_id=unit.id),
            Site(code="c", name="Far Away Hotel", site_type="hotel", address="",
                 latitude=35.0, longitude=108.0, unit_id=unit.id),
        ])


async def test_search_ignores_letter_case_and_treats_wildcards_literally(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    async with sessions() as s:
        repo = SiteRepository(s)
        assert [x.code for x in await repo.search("crowne")] == ["a"]
        assert [x.code for x in await repo.search("皇冠 plaza")] == ["a"]
        # "%" typed by a person is a percent sign, not "anything".
        assert [x.code for x in await repo.search("100%")] == ["b"]
        assert [x.code for x in await repo.search("%")] == ["b"]
        assert await repo.search("_") == []


async def test_nearest_sites_in_order_with_distances(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    async with sessions() as s:
        pairs = await SiteRepository(s).nearest(34.3791, 107.2281)
    assert [site.code for site, _ in pairs] == ["a", "b"]  # the far one is beyond 5 km
    assert pairs[0][1] < 20 < pairs[1][1] < 5000
