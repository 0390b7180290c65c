"""The unit of work hands out its repositories, each over the unit's own session."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from db.repositories import (
    InspectionRepository,
    OutboxRepository,
    PeopleRepository,
    SiteRepository,
)
from db.repositories.cards import TaskCardRepository
from db.repositories.jobs import JobRunRepository
from db.repositories.stats import StatsRepository
from db.repositories.tasks import TaskRepository
from db.uow import UnitOfWork

REPOSITORIES = {
    "people": PeopleRepository, "sites": SiteRepository, "inspections": InspectionRepository,
    "tasks": TaskRepository, "cards": TaskCardRepository, "outbox": OutboxRepository,
    "stats": StatsRepository, "jobs": JobRunRepository,
}


async def test_each_repository_works_on_the_units_session() -> None:
    async with UnitOfWork(async_sessionmaker()) as uow:
        for name, kind in REPOSITORIES.items():
            repo = getattr(uow, name)
            assert isinstance(repo, kind)
            assert repo.session is uow.session


async def test_no_repository_outside_the_unit() -> None:
    uow = UnitOfWork(async_sessionmaker())
    with pytest.raises(RuntimeError):
        _ = uow.people
