"""Two replicas on one PostgreSQL database (issue 13): an in-memory cache never makes one act
on what the other changed. Two cores (`build_core` twice) stand for the two processes: each
has its own caches, following only its own commits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import Core, build_core
from bot.services.people import TelegramUser, attached, find_person
from db.models import Person
from tests.conftest import make_settings

USER = TelegramUser(4601, "钱", None, "zh-hans")


@pytest.fixture
async def replicas(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Core, Core]]:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serves one process (db/single_process.py)")
    a = build_core(make_settings(database_url, tmp_path / "a"))
    b = build_core(make_settings(database_url, tmp_path / "b"))
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def who_is_it(core: Core) -> Person:
    """What the gatekeeper does for each update (handlers/gatekeeper.py): the cache first."""
    person = core.people.get(USER.id)
    if person is None:
        async with core.uow.read() as uow:
            person = await find_person(uow, USER, frozenset())
        assert person is not None
        core.people.put(person)
    return person


async def test_a_person_blocked_on_one_replica_is_blocked_on_the_other(
    replicas: tuple[Core, Core],
) -> None:
    a, b = replicas
    async with a.uow() as uow:
        uow.session.add(Person(id=USER.id, first_name=USER.first_name, role="inspector",
                               telegram_language="zh-hans"))
        await uow.commit(mark_update_handled=False)
    assert not (await who_is_it(a)).blocked  # replica a has seen the person
    async with b.uow() as uow:  # an admin's /block, handled by replica b
        person = await attached(uow, await who_is_it(b))
        person.blocked, person.role = True, "resident"
        await uow.commit(mark_update_handled=False)
    seen = await who_is_it(a)  # the person's next update reaches replica a
    assert seen.blocked and seen.role == "resident"
