"""Notices to residents and to the unit's groups, queued in the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.render.i18n import normalize_language
from bot.services.reports import queries
from bot.services.reports.context import ReportContext
from db.models import Person, Report
from db.uow import UnitOfWork


async def tell_residents(
    ctx: ReportContext, uow: UnitOfWork, report: Report, key: str, text: Any, *,
    photos: Sequence[str] = (), reporter_markup: Any = None, skip: int | None = None,
    reporter_text: Any = None,
) -> None:
    """`text(lang)` to the reporter and every follower; the reporter may get their own text
    (`reporter_text`) and buttons (`reporter_markup`), which followers do not have."""
    outbox = uow.outbox
    people = [report.reporter_id, *await queries.follower_ids(uow, report.id)]
    for pid in people:
        if pid == skip:
            continue
        person = await uow.session.get(Person, pid)
        if person is None or person.blocked:
            continue
        lang = person.language or normalize_language(person.telegram_language)
        base = f"report:{report.id}:{key}:to:{pid}"
        for i, path in enumerate(photos, 1):
            await outbox.enqueue(f"{base}:photo:{i}", pid, "sendPhoto", {"photo": path})
        reporter = pid == report.reporter_id
        said = reporter_text(lang) if reporter and reporter_text is not None else text(lang)
        params: dict[str, object] = {"text": said, "parse_mode": "HTML"}
        if reporter_markup is not None and reporter:
            params["reply_markup"] = reporter_markup(lang)
        await outbox.enqueue(base, pid, "sendMessage", params, purpose="report_push",
                             ref_id=report.id)


async def tell_unit(uow: UnitOfWork, report: Report, key: str, text: str) -> None:
    if report.unit_id is None:
        return
    for group in await uow.people.active_groups_of_unit(report.unit_id):
        await uow.outbox.enqueue(
            f"{key}:{group.chat_id}", group.chat_id, "sendMessage",
            {"text": text, "parse_mode": "HTML"})
