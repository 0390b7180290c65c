"""Notices to residents and to the unit's groups, queued in the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.render.i18n import normalize_language
from bot.services.reports.context import ReportContext
from db.models import Report
from db.outbox_keys import dedup_key
from db.uow import UnitOfWork


async def tell_residents(
    ctx: ReportContext, uow: UnitOfWork, report: Report, news: str, text: Any, *,
    photos: Sequence[str] = (), reporter_markup: Any = None, skip: int | None = None,
    reporter_text: Any = None,
) -> None:
    """`text(lang)` to the reporter and every follower; the reporter may get their own text
    (`reporter_text`) and buttons (`reporter_markup`), which followers do not have. `news`
    keys the messages (see report_push in db/outbox_keys.py)."""
    outbox = uow.outbox
    people = [report.reporter_id, *await uow.reports.follower_ids(report.id)]
    for pid in people:
        if pid == skip:
            continue
        person = await uow.people.get(pid)
        if person is None or person.blocked:
            continue
        lang = person.language or normalize_language(person.telegram_language)
        for i, path in enumerate(photos, 1):
            await outbox.enqueue(dedup_key("report_push_photo", report.id, news, pid, i), pid,
                                 "sendPhoto", {"photo": path})
        reporter = pid == report.reporter_id
        said = reporter_text(lang) if reporter and reporter_text is not None else text(lang)
        params: dict[str, object] = {"text": said, "parse_mode": "HTML"}
        if reporter_markup is not None and reporter:
            params["reply_markup"] = reporter_markup(lang)
        await outbox.enqueue(dedup_key("report_push", report.id, news, pid), pid,
                             "sendMessage", params, purpose="report_push",
                             ref_id=report.id)


async def tell_unit(uow: UnitOfWork, report: Report, text: str, kind: str,
                    *parts: object) -> None:
    """`text` to the report's unit's groups, keyed as `kind` (with `parts` after the
    report's id)."""
    if report.unit_id is None:
        return
    for group in await uow.people.active_groups_of_unit(report.unit_id):
        await uow.outbox.enqueue(
            dedup_key(kind, report.id, *parts, group.chat_id), group.chat_id, "sendMessage",
            {"text": text, "parse_mode": "HTML"})
