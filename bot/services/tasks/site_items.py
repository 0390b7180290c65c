"""The site's current answers and score (site items, pinned standards)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.domain.errors import DomainError
from bot.domain.scoring import Score, compute_score
from bot.domain.standards import Standard, Verdict
from db.models import Task
from db.uow import UnitOfWork


async def record_site_items(
    uow: UnitOfWork, *, site_id: int, standard_id: str, standard_hash: str,
    verdicts: Mapping[str, Verdict | str], source: str, source_id: int, now: datetime,
) -> None:
    """Make these the site's current verdicts for these items (inspection or re-check)."""
    values = {key: Verdict(v).value for key, v in verdicts.items()}
    if values:
        await uow.sites.set_items(site_id, standard_id, standard_hash, values, source=source,
                                  source_id=source_id, now=now)


async def _record_verification(uow: UnitOfWork, task: Task, verdict: Verdict,
                               now: datetime) -> None:
    inspection = (await uow.inspections.get(task.inspection_id)
                  if task.inspection_id is not None else None)
    if inspection is None or task.item_key is None or task.site_id is None:
        return
    row = await uow.sites.item(task.site_id, inspection.standard_id, task.item_key)
    if row is not None and row.source == "inspection" and row.source_id != inspection.id:
        # A later inspection has answered this item since: its answer is the current one.
        return
    await record_site_items(
        uow, site_id=task.site_id, standard_id=inspection.standard_id,
        standard_hash=inspection.standard_hash, verdicts={task.item_key: verdict},
        source="verification", source_id=task.id, now=now)


_standards: dict[str, Standard] = {}


async def standard_of(uow: UnitOfWork, content_hash: str) -> Standard:
    """A pinned standard version, from its snapshot (cached: versions never change)."""
    standard = _standards.get(content_hash)
    if standard is None:
        snapshot = await uow.inspections.snapshot(content_hash)
        if snapshot is None:
            raise DomainError("inspect.standard_missing")
        standard = _standards[content_hash] = Standard.from_dict(snapshot.body)
    return standard


async def current_site_score(uow: UnitOfWork, site_id: int) -> Score | None:
    """The site's score now: its current verdicts under the latest standard version used."""
    rows = await uow.sites.items(site_id)
    if not rows:
        return None
    latest = rows[0]
    standard = await standard_of(uow, latest.standard_hash)
    verdicts = {r.item_key: r.verdict for r in rows
                if r.standard_hash == latest.standard_hash and r.standard_id == standard.id}
    return compute_score(standard, verdicts)
