"""What the report use cases need besides a unit of work, built once by bot/app.py."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.domain.reports import Category, ReportingConfig
from bot.media.store import MediaStore
from bot.render.i18n import DEFAULT_LANGUAGE
from db.models import Report


@dataclass(frozen=True)
class ReportContext:
    """reporting.yaml, where photos are stored, the city's time zone, the groups' language."""

    config: ReportingConfig
    media: MediaStore
    tz: ZoneInfo
    group_lang: str = DEFAULT_LANGUAGE

    def category(self, report: Report) -> Category | None:
        return self.config.category(report.category)
