"""Supervision plans and their occurrences (plan_occurrences): what is due on a day, who has
it, what fulfilled it. A day's rows are inserted with ON CONFLICT DO NOTHING on their unique
key, so two replicas expanding the same morning create each occurrence once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, Table, case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import (
    Assignment,
    Inspection,
    PendingAssignment,
    Person,
    PlanOccurrence,
    Site,
    SupervisionPlan,
    Task,
)


@dataclass(frozen=True)
class SiteRef:
    id: int
    code: str
    site_type: str
    unit_id: int


@dataclass(frozen=True)
class InspectorRef:
    id: int
    role: str
    unit_id: int | None


@dataclass(frozen=True)
class OccurrenceRow:
    """An occurrence with its site's names, for lists and digests."""

    id: int
    day: date
    kind: str
    plan: str
    site_id: int
    site_name: str
    site_name_en: str
    unit_id: int
    inspector_id: int | None
    status: str
    created_at: datetime | None = None  # after its day ended: recorded for a skipped morning
    # A re-check's task: its id, title (zh, en) and checklist item (an inspection's task).
    task_id: int | None = None
    task_title: str = ""
    task_title_en: str | None = None
    task_item_key: str | None = None


class PlanRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ---- plans -------------------------------------------------------------------------

    async def plans(self) -> list[SupervisionPlan]:
        return list(await self.session.scalars(
            select(SupervisionPlan).order_by(SupervisionPlan.code)))

    async def plan(self, code: str) -> SupervisionPlan | None:
        return await self.session.get(SupervisionPlan, code)

    async def replace_plans(self, plans: Sequence[SupervisionPlan], now: datetime
                            ) -> tuple[int, int, int]:
        """The plans become `plans` (by code): new ones added, known ones rewritten with
        their paused state kept, others deleted. (added, updated, removed)."""
        known = {p.code: p for p in await self.plans()}
        added = updated = 0
        for new in plans:
            old = known.pop(new.code, None)
            if old is None:
                new.updated_at = now
                self.session.add(new)
                added += 1
            elif (old.body, old.name_zh, old.name_en) != (new.body, new.name_zh, new.name_en):
                old.body, old.name_zh, old.name_en = new.body, new.name_zh, new.name_en
                old.updated_at = now
                updated += 1
        for gone in known.values():
            await self.session.delete(gone)
        await self.session.flush()
        return added, updated, len(known)

    # ---- what plans resolve against ----------------------------------------------------

    async def sites(self) -> list[SiteRef]:
        rows = await self.session.execute(
            select(Site.id, Site.code, Site.site_type, Site.unit_id).order_by(Site.id))
        return [SiteRef(*r) for r in rows.all()]

    async def site_names(self, codes: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Sites' (zh, en) names by code."""
        wanted = list(set(codes))
        if not wanted:
            return {}
        rows = await self.session.execute(
            select(Site.code, Site.name, Site.name_en).where(Site.code.in_(wanted)))
        return {code: (zh, en) for code, zh, en in rows.all()}

    async def inspectors(self) -> list[InspectorRef]:
        """People who may be given rounds: inspectors and admins, not blocked."""
        rows = await self.session.execute(
            select(Person.id, Person.role, Person.unit_id)
            .where(Person.role.in_(("inspector", "admin")), Person.blocked.is_(False))
            .order_by(Person.id))
        return [InspectorRef(*r) for r in rows.all()]

    async def waiting_inspectors(self) -> list[str]:
        """The inspectors the organisation file names who have not yet met the bot (it may
        not write to them first): their names ("" where the file gives none: a Telegram id is
        not for the office's group)."""
        rows = await self.session.execute(
            select(PendingAssignment.telegram_id, PendingAssignment.name)
            .where(PendingAssignment.role == "inspector")
            .order_by(PendingAssignment.name, PendingAssignment.telegram_id))
        return [name for _, name in rows.all()]

    async def people(self, ids: Iterable[int]) -> dict[int, Person]:
        """People by id (the inspectors a day's lists go to), in one query."""
        wanted = list(set(ids))
        if not wanted:
            return {}
        rows = await self.session.scalars(select(Person).where(Person.id.in_(wanted)))
        return {p.id: p for p in rows}

    async def site_inspectors(self, site_ids: Iterable[int]) -> dict[int, set[int]]:
        """Each site's own inspectors (assignments)."""
        ids = list(set(site_ids))
        out: dict[int, set[int]] = {}
        for start in range(0, len(ids), 500):
            rows = await self.session.execute(
                select(Assignment.site_id, Assignment.person_id)
                .where(Assignment.site_id.in_(ids[start:start + 500])))
            for site_id, person_id in rows.all():
                out.setdefault(site_id, set()).add(person_id)
        return out

    # ---- occurrences -------------------------------------------------------------------

    async def add_occurrences(self, rows: Sequence[Mapping[str, object]]) -> int:
        """Insert (day, kind, plan, site_id, task_id) rows as due; a row whose key exists is
        left alone. How many were new."""
        if not rows:
            return 0
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table: Table = PlanOccurrence.__table__  # type: ignore[assignment]
        added = 0
        for start in range(0, len(rows), 500):
            stmt = insert(table).on_conflict_do_nothing(
                index_elements=["day", "kind", "plan", "site_id"]).returning(table.c.id)
            result = await self.session.execute(stmt, list(rows[start:start + 500]))
            added += len(result.all())  # RETURNING: the rows that were new
        return added

    @staticmethod
    def _rows() -> Select[*tuple[Any, ...]]:
        return (select(PlanOccurrence.id, PlanOccurrence.day, PlanOccurrence.kind,
                       PlanOccurrence.plan, PlanOccurrence.site_id, Site.name, Site.name_en,
                       Site.unit_id, PlanOccurrence.inspector_id, PlanOccurrence.status,
                       PlanOccurrence.created_at, PlanOccurrence.task_id,
                       func.coalesce(Task.title, ""), Task.title_en, Task.item_key)
                .join(Site, Site.id == PlanOccurrence.site_id)
                .outerjoin(Task, Task.id == PlanOccurrence.task_id))

    async def of_day(self, day: date, *, inspector_id: int | None = None
                     ) -> list[OccurrenceRow]:
        stmt = (self._rows().where(PlanOccurrence.day == day)
                .order_by(PlanOccurrence.kind.desc(), Site.name, PlanOccurrence.id))
        if inspector_id is not None:
            stmt = stmt.where(PlanOccurrence.inspector_id == inspector_id)
        rows: list[tuple[Any, ...]] = list((await self.session.execute(stmt)).all())
        return [OccurrenceRow(*r) for r in rows]

    async def occurrence(self, occurrence_id: int) -> OccurrenceRow | None:
        """One occurrence with its site's names (a list's button names it)."""
        row = (await self.session.execute(
            self._rows().where(PlanOccurrence.id == occurrence_id))).first()
        return OccurrenceRow(*row) if row is not None else None

    async def set_inspectors(self, day: date, assigned: dict[int, int], now: datetime) -> None:
        by_person: dict[int, list[int]] = {}
        for occ, person in assigned.items():
            by_person.setdefault(person, []).append(occ)
        for person, occs in by_person.items():
            for start in range(0, len(occs), 500):
                await self.session.execute(
                    update(PlanOccurrence)
                    .where(PlanOccurrence.id.in_(occs[start:start + 500]),
                           PlanOccurrence.day == day, PlanOccurrence.inspector_id.is_(None))
                    .values(inspector_id=person, assigned_at=now)
                    .execution_options(synchronize_session=False))

    async def withdraw_due(self, plan: str, since: date) -> list[tuple[date, int | None]]:
        """Delete the plan's rounds from `since` on that are still due (a paused plan asks
        them of nobody any more); the (day, inspector) of each, for their lists."""
        rows = (await self.session.execute(
            delete(PlanOccurrence)
            .where(PlanOccurrence.plan == plan, PlanOccurrence.kind == "round",
                   PlanOccurrence.status == "due", PlanOccurrence.day >= since)
            .returning(PlanOccurrence.day, PlanOccurrence.inspector_id)
            .execution_options(synchronize_session=False))).all()
        return [(day, inspector) for day, inspector in rows]

    async def mark_missed(self, before: date) -> int:
        """Occurrences still due on a day before `before` become missed; how many."""
        result = await self.session.execute(
            update(PlanOccurrence)
            .where(PlanOccurrence.status == "due", PlanOccurrence.day < before)
            .values(status="missed").execution_options(synchronize_session=False))
        return max(result.rowcount or 0, 0)  # type: ignore[attr-defined]

    async def not_done_between(self, first: date, last: date) -> int:
        """How many occurrences from `first` to `last` were not done on their day."""
        return int(await self.session.scalar(
            select(func.count()).select_from(PlanOccurrence)
            .where(PlanOccurrence.day >= first, PlanOccurrence.day <= last,
                   PlanOccurrence.status != "done")) or 0)

    async def open_at_site(self, site_id: int, since: date, until: date, *, lock: bool = False
                           ) -> list[PlanOccurrence]:
        """The site's occurrences from `since` to `until` not yet fulfilled, newest first;
        `lock`: locked until the commit (for ticking them off)."""
        query = (select(PlanOccurrence)
                 .where(PlanOccurrence.site_id == site_id, PlanOccurrence.day >= since,
                        PlanOccurrence.day <= until,
                        PlanOccurrence.status.in_(("due", "missed")))
                 .order_by(PlanOccurrence.day.desc(), PlanOccurrence.id))
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        return list(await self.session.scalars(query))

    async def per_inspector(self, first: date, last: date) -> dict[int, tuple[int, int]]:
        """Per inspector: (occurrences their own inspections fulfilled, on time or late;
        occurrences assigned to them) whose day is from first to last (rounds, spot checks and
        re-checks alike). A round one inspector had and another did counts as done for the
        one who did it, not for the one who had it (tryout 14, defect 10)."""
        span = (PlanOccurrence.day >= first, PlanOccurrence.day <= last)
        assigned = await self.session.execute(
            select(PlanOccurrence.inspector_id, func.count())
            .where(*span, PlanOccurrence.inspector_id.is_not(None))
            .group_by(PlanOccurrence.inspector_id))
        done = await self.session.execute(
            select(Inspection.inspector_id, func.count())
            .select_from(PlanOccurrence)
            .join(Inspection, Inspection.id == PlanOccurrence.inspection_id)
            .where(*span, PlanOccurrence.status.in_(("done", "late")))
            .group_by(Inspection.inspector_id))
        out = {int(pid or 0): (0, int(n)) for pid, n in assigned.all()}
        for pid, n in done.all():
            out[int(pid)] = (int(n), out.get(int(pid), (0, 0))[1])
        return out

    async def completion_by_unit(self, first: date, last: date) -> dict[int, tuple[int, int]]:
        """Per unit of the sites: (rounds done on their day, rounds due) from first to last."""
        done = func.sum(case((PlanOccurrence.status == "done", 1), else_=0))
        rows = await self.session.execute(
            select(Site.unit_id, done, func.count())
            .join(Site, Site.id == PlanOccurrence.site_id)
            .where(PlanOccurrence.day >= first, PlanOccurrence.day <= last,
                   PlanOccurrence.kind == "round")
            .group_by(Site.unit_id))
        return {uid: (int(d or 0), int(n)) for uid, d, n in rows.all()}

