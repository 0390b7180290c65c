"""Repositories: intent-named queries over one session; they never commit."""

from db.repositories.inspections import InspectionRepository
from db.repositories.outbox import OutboxRepository
from db.repositories.people import PeopleRepository
from db.repositories.sites import SiteRepository

__all__ = ["InspectionRepository", "OutboxRepository", "PeopleRepository", "SiteRepository"]
