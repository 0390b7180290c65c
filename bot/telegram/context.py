"""The typed callback context: `.deps` for services; `.person` and `.lang` from the gatekeeper."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.config import Settings
from bot.media.store import MediaStore
from bot.render.i18n import DEFAULT_LANGUAGE
from bot.services.assessment import AssessmentSetup
from bot.services.catalog import StandardCatalog
from bot.services.inspections import InspectionService
from bot.services.press import PressService
from bot.services.reports import ReportContext
from db.caches import PersonCache
from db.group_commit import GroupCommitter
from db.models import Person
from db.uow import UnitOfWorkFactory


@dataclass
class Deps:
    settings: Settings
    uow: UnitOfWorkFactory
    catalog: StandardCatalog
    inspections: InspectionService
    media: MediaStore
    clock: Callable[[], datetime]
    reports: ReportContext
    press: PressService
    committer: GroupCommitter
    people: PersonCache
    # assessment.yaml and special_actions.yaml (imports, /assessment, /actions)
    assessment: AssessmentSetup | None = None
    # schedule.yaml's office_unit: the unit whose groups are the campaign office's (/actions)
    office_unit: str | None = None
    # plans.yaml's hour for the daily lists (the scheduler's; an uploaded file cannot move it)
    plans_morning: dt.time | None = None


Data = dict[Any, Any]


class WenmingContext(CallbackContext[ExtBot[None], Data, Data, Data]):
    """Per-update context. The gatekeeper fills `person` and `lang` before any handler runs."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)
        self.person: Person | None = None
        self.lang: str = DEFAULT_LANGUAGE

    @property
    def deps(self) -> Deps:
        deps = self.application.bot_data["deps"]
        assert isinstance(deps, Deps)
        return deps

    @property
    def me(self) -> Person:
        if self.person is None:
            raise RuntimeError("no person: the gatekeeper did not run for this update")
        return self.person

    def t(self, key: str, /, **values: object) -> str:
        from bot.render.i18n import t

        return t(self.lang, key, **values)
