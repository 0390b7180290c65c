"""The unit of work hands out its repositories, each over the unit's own session; the use
cases reach the database through them only."""

from __future__ import annotations

import ast
from pathlib import Path

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
from db.repositories.org import OrgRepository
from db.repositories.reports import ReportRepository
from db.repositories.stats import StatsRepository
from db.repositories.tasks import TaskRepository
from db.uow import UnitOfWork

REPOSITORIES = {
    "people": PeopleRepository, "sites": SiteRepository, "inspections": InspectionRepository,
    "tasks": TaskRepository, "cards": TaskCardRepository, "outbox": OutboxRepository,
    "stats": StatsRepository, "jobs": JobRunRepository, "org": OrgRepository,
    "reports": ReportRepository,
}
SERVICES = Path(__file__).resolve().parents[2] / "bot" / "services"


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


@pytest.mark.parametrize("path", sorted(SERVICES.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(SERVICES)))
def test_use_cases_never_reach_past_the_unit_to_its_session(path: Path) -> None:
    """Queries and statements are the repositories' (db/repositories/); a use case that
    takes `uow.session` writes its own (sqlalchemy itself is kept out by .importlinter)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = [f"{path.name}:{node.lineno}" for node in ast.walk(tree)
           if isinstance(node, ast.Attribute) and node.attr == "session"]
    assert not bad
