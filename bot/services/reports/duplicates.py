"""Duplicates: open reports that look like the same problem, and "me too"."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain import reports as dom
from bot.domain.errors import StaleAction
from bot.domain.reports import DupFacts
from bot.media.phash import DUPLICATE_MAX_DISTANCE, hamming
from bot.render import reports as rv
from bot.render.reports import Candidate
from bot.services.reports import drafts, queries
from bot.services.reports.context import ReportContext
from bot.services.reports.results import Followed
from db.models import Person, Report
from db.outbox_keys import dedup_key
from db.repositories.sites import distance_m
from db.uow import UnitOfWork


async def candidates(
    ctx: ReportContext, uow: UnitOfWork, report: Report, person: Person, limit: int = 3
) -> list[Candidate]:
    """Open reports that look like the same problem: same category nearby, or same photo."""
    cat = ctx.config.category(report.category)
    since = report.updated_at - timedelta(days=ctx.config.duplicate_window_days)
    others = await uow.reports.open_since(since, excluding=report.id)
    if not others:
        return []
    hashes = await queries.phashes(uow, [report.id, *(o.id for o in others)])
    mine = DupFacts(report.category, report.latitude, report.longitude,
                    hashes.get(report.id, ()))
    out: list[Candidate] = []
    for other in others:
        radius = (ctx.config.category(other.category) or cat)
        facts = DupFacts(other.category, other.latitude, other.longitude,
                         hashes.get(other.id, ()))
        if dom.same_problem(mine, facts,
                            radius_m=radius.duplicate_radius_m if radius else 0.0,
                            max_distance=DUPLICATE_MAX_DISTANCE, distance=distance_m,
                            hamming=hamming):
            out.append(Candidate(other.id, other.ticket or "", other.category,
                                 await uow.reports.follower_count(other.id),
                                 other.reporter_id == person.id))
        if len(out) >= limit:
            break
    return out


async def follow(
    ctx: ReportContext, uow: UnitOfWork, person: Person, draft_id: int, target_id: int,
    now: datetime,
) -> Followed:
    """"Me too": the resident follows the earlier report instead of filing a new one."""
    draft = await uow.reports.get(draft_id)
    target = await uow.reports.get(target_id)
    if target is None or target.status not in dom.OPEN_STATUSES:
        raise StaleAction("reports.target_closed")
    if draft is None or draft.status != dom.DRAFT or draft.reporter_id != person.id:
        # Pressed again after it worked: the resident already follows it.
        if await uow.reports.is_follower(target.id, person.id) or (
                target.reporter_id == person.id):
            return Followed(target, await uow.reports.follower_count(target.id),
                            target.reporter_id == person.id)
        raise StaleAction("error.stale_button")
    drafts.drop(draft)
    if target.reporter_id == person.id:
        return Followed(target, await uow.reports.follower_count(target.id), True)
    if not await uow.reports.is_follower(target.id, person.id):
        await uow.reports.add_followers(target.id, [person.id], now)
    count = await uow.reports.follower_count(target.id)
    target.priority = dom.priority_for(count)
    target.updated_at = now
    if target.task_id is not None:
        task = await uow.tasks.get(target.task_id)
        if task is not None and task.priority < target.priority:
            task.priority = target.priority
    if target.unit_id is not None:
        text = rv.group_follow_notice(ctx.group_lang, target, ctx.category(target), count)
        for group in await uow.people.active_groups_of_unit(
                target.unit_id):
            await uow.outbox.enqueue(
                dedup_key("report_follow", target.id, person.id, group.chat_id), group.chat_id,
                "sendMessage", {"text": text, "parse_mode": "HTML"})
    return Followed(target, count, False)
