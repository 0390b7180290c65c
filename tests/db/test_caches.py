"""The in-memory caches follow what commits, and only what commits."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.caches import PersonCache
from db.models import Person
from db.repositories import PeopleRepository

Sessions = async_sessionmaker[AsyncSession]


async def test_a_committed_change_replaces_the_entry_with_a_copy_of_the_row(
    sessions: Sessions,
) -> None:
    cache = PersonCache()
    cache.install(sessions)
    async with sessions() as s, s.begin():
        s.add(Person(id=42, first_name="张督查", role="inspector"))
    async with sessions() as s:
        person = await s.get(Person, 42)
        assert person is not None
        cache.put(person)

    async with sessions() as s:
        # Locked before the change (as attached() does): what commits is the whole row.
        mine = await PeopleRepository(s).get_to_change(42)
        assert mine is not None
        mine.language, mine.pending = "en", "site_search"
        await s.commit()
        mine.pending = "never committed"  # the handler's object goes on changing

    cached = cache.get(42)
    assert cached is not None and cached is not mine
    assert (cached.language, cached.pending, cached.role) == ("en", "site_search", "inspector")


async def test_a_change_to_a_row_not_locked_is_read_again_where_writers_overlap(
    sessions: Sessions,
) -> None:
    """On PostgreSQL another transaction may have changed other columns (an admin's /block)
    since this one read the row: the entry is evicted. SQLite's writers take turns."""
    if sessions.kw["bind"].dialect.name == "sqlite":
        pytest.skip("SQLite's writers take turns (BEGIN IMMEDIATE): the overlap cannot happen")
    cache = PersonCache()
    cache.install(sessions)
    async with sessions() as s, s.begin():
        s.add(Person(id=46, first_name="钱", role="resident"))
    async with sessions() as s:
        mine = await s.get(Person, 46)
        assert mine is not None
        cache.put(mine)
        async with sessions() as admin, admin.begin():
            other = await admin.get(Person, 46)
            assert other is not None
            other.blocked = True
        mine.pending = "report_photo"
        await s.commit()
    assert cache.get(46) is None


async def test_a_rolled_back_change_leaves_the_entry_alone(sessions: Sessions) -> None:
    cache = PersonCache()
    cache.install(sessions)
    async with sessions() as s, s.begin():
        s.add(Person(id=43, first_name="王", role="resident"))
    async with sessions() as s:
        before = await s.get(Person, 43)
        assert before is not None
        cache.put(before)
    async with sessions() as s:
        mine = await s.get(Person, 43)
        assert mine is not None
        mine.role = "admin"
        await s.flush()
        await s.rollback()
    cached = cache.get(43)
    assert cached is before and cached.role == "resident"


async def test_a_released_savepoint_is_not_a_commit(sessions: Sessions) -> None:
    """A change inside a transaction that later fails never reaches the cache."""
    cache = PersonCache()
    cache.install(sessions)
    async with sessions() as s, s.begin():
        s.add(Person(id=45, first_name="赵", role="inspector", active_inspection_id=None))
    async with sessions() as s:
        before = await s.get(Person, 45)
        assert before is not None
        cache.put(before)
    async with sessions() as s:
        mine = await s.get(Person, 45)
        assert mine is not None
        mine.pending = "never committed"
        async with s.begin_nested():  # e.g. record_site_items inside a submit
            await s.flush()
        await s.rollback()  # the submit fails after all
    assert cache.get(45) is before and before.pending is None


async def test_a_deleted_person_is_evicted(sessions: Sessions) -> None:
    cache = PersonCache()
    cache.install(sessions)
    async with sessions() as s, s.begin():
        s.add(Person(id=44, first_name="李"))
    async with sessions() as s:
        person = await s.get(Person, 44)
        assert person is not None
        cache.put(person)
        await s.delete(person)
        await s.commit()
    assert cache.get(44) is None


def test_the_progress_cache_is_bounded_and_expires() -> None:
    from bot.domain.standards import Standard
    from db.caches import ProgressCache, Snapshot
    from db.models import Site

    def snap(i: int) -> Snapshot:
        return Snapshot(inspection_id=i, inspector_id=1, status="open", version=1,
                        site=Site(id=1, name="酒店"), standard=Standard.__new__(Standard),
                        prompt=(None, None), step=0, awaiting=None)

    cache = ProgressCache(ttl=60, max_entries=2)
    for i in (1, 2):
        cache.put(snap(i))
    assert cache.get(1) is not None  # 1 is now the most recently used
    cache.put(snap(3))
    assert (cache.get(1) is not None, cache.get(2), cache.get(3) is not None) == (True, None, True)
    old = snap(4)
    old.loaded_at -= 61
    cache.put(old)
    assert cache.get(4) is None
