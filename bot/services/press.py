"""A button press on an inspection: read from memory, written by group commit.

This is the path an inspector walks seventeen times per site, and the one a city's morning rush
of inspectors loads. The rules are those of `InspectionService.act` (the same
`checklist.apply_press`), and so is the durability: the press's answer, the inspection's new
step and the update's "handled" mark are committed together before the reply goes out. What
differs is the cost. The inspection is read from a `ProgressCache` snapshot (db/caches.py)
instead of three SELECTs; the writes are plain statements (an UPDATE guarded by the inspection's
version, an upsert of the changed answers, the inbox mark) that `PressRepository`
(db/repositories/press.py) hands to the `GroupCommitter`, which commits the presses of many
inspectors in one transaction.

A snapshot that turns out stale (another writer bumped the version) costs one re-read and a
second try; a press is never applied on top of state it did not see.
"""

from __future__ import annotations

import weakref
from asyncio import Lock
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.domain import checklist
from bot.domain.checklist import ItemState, Progress
from bot.domain.errors import StaleAction
from bot.domain.standards import Verdict
from bot.services.catalog import StandardCatalog
from bot.services.inspections import InspectionView, closed_key, load_progress
from db.caches import PersonCache, ProgressCache, Snapshot
from db.group_commit import WriteConflict
from db.models import Inspection, Person
from db.repositories.press import PressRepository
from db.uow import UnitOfWorkFactory, current_inbox


class PressService:
    def __init__(
        self,
        catalog: StandardCatalog,
        uow: UnitOfWorkFactory,
        writes: PressRepository,
        people: PersonCache,
        cache: ProgressCache,
    ) -> None:
        self._catalog = catalog
        self._uow = uow  # its read units of work, for a snapshot not in the cache
        self._writes = writes
        self._people = people
        self.cache = cache  # installed on the sessions that write inspections (bot/app.py)
        # One press per inspection at a time (the chat's own order already ensures it; this
        # keeps it true for any caller).
        self._locks: weakref.WeakValueDictionary[int, Lock] = weakref.WeakValueDictionary()

    async def press(
        self,
        person: Person,
        inspection_id: int,
        step: int,
        action: str,
        *,
        verdict: Verdict | None = None,
        target: int | None = None,
        now: datetime,
    ) -> InspectionView:
        """Apply a press; a press Telegram delivers twice changes nothing the second time."""
        async with self._lock(inspection_id):
            for tries_left in (1, 0):
                try:
                    return await self._apply(person, inspection_id, step, action, verdict,
                                             target, now)
                except WriteConflict as exc:
                    # Someone else wrote this inspection since it was cached: read it again.
                    self.cache.evict(inspection_id)
                    if not tries_left:
                        raise StaleAction("error.stale_button") from exc
        raise AssertionError("unreachable")

    def _lock(self, inspection_id: int) -> Lock:
        lock = self._locks.get(inspection_id)
        if lock is None:
            lock = self._locks[inspection_id] = Lock()
        return lock

    async def _apply(
        self, person: Person, inspection_id: int, step: int, action: str,
        verdict: Verdict | None, target: int | None, now: datetime,
    ) -> InspectionView:
        snap = await self._snapshot(inspection_id)
        if snap.inspector_id != person.id:
            raise StaleAction("inspect.not_yours")
        if snap.status != "open":
            raise StaleAction(closed_key(snap.status))
        progress = snap.progress()
        if not checklist.apply_press(progress, step, action, verdict, target):
            return _view(snap)
        active = None if action == "pause" else inspection_id
        mark = current_inbox.get()
        await self._writes.press(
            inspection_id=inspection_id, version=snap.version, step=progress.step,
            awaiting=progress.awaiting.value if progress.awaiting else None,
            answers=[(key, st.verdict.value if st.verdict else None, st.skipped, st.remark)
                     for key, st in progress.answers.items()
                     if _stored(st) != _stored(snap.answers.get(key))],
            # Always: the cached person may be behind, and the write costs one batched row.
            person_id=person.id, active=active,
            handled=mark if mark is not None and not mark.marked else None, now=now)
        if mark is not None:
            mark.done()
        if person.active_inspection_id != active:
            self._people.evict(person.id)  # the cached copy says otherwise now
        snap.version += 1
        snap.step, snap.awaiting, snap.answers = progress.step, progress.awaiting, progress.answers
        return _view(snap)

    async def moved(self, inspection_id: int, chat_id: int, message_id: int) -> None:
        """The inspection's screen is now this message (it was sent anew, not edited)."""
        async with self._lock(inspection_id):
            snap = self.cache.get(inspection_id)
            if snap is not None:
                try:
                    await self._writes.moved(inspection_id, chat_id, message_id,
                                             version=snap.version)
                except WriteConflict:
                    self.cache.evict(inspection_id)
                else:
                    snap.prompt, snap.version = (chat_id, message_id), snap.version + 1
                    return
            await self._writes.moved(inspection_id, chat_id, message_id)

    async def current(self, person: Person, inspection_id: int) -> InspectionView | None:
        """The inspection as it stands, if it is this person's."""
        async with self._lock(inspection_id):
            try:
                snap = await self._snapshot(inspection_id)
            except StaleAction:
                return None
        return _view(snap) if snap.inspector_id == person.id else None

    def remember(self, view: InspectionView) -> None:
        """Start the cache from a view an ORM path has just committed (a start, a resume).

        The first press then reads nothing either. Call it only after the commit: the row's
        version is the committed one then.
        """
        if view.record is not None and view.status == "open":
            self.cache.put(_snapshot_of(view.record, view.progress))

    async def _snapshot(self, inspection_id: int) -> Snapshot:
        snap = self.cache.get(inspection_id)
        if snap is not None:
            return snap
        async with self._uow.read() as uow:
            repo = uow.inspections
            insp = await repo.get(inspection_id)
            if insp is None:
                raise StaleAction("error.stale_button")
            progress, _ = await load_progress(self._catalog, repo, insp)
        snap = _snapshot_of(insp, progress)
        self.cache.put(snap)
        return snap


def _snapshot_of(insp: Inspection, progress: Progress) -> Snapshot:
    """The row and its progress, as the cache keeps them (a copy of the answers)."""
    return Snapshot(
        inspection_id=insp.id, inspector_id=insp.inspector_id, status=insp.status,
        version=insp.version, site=insp.site, standard=progress.standard,
        prompt=(insp.chat_id, insp.message_id), step=progress.step, awaiting=progress.awaiting,
        answers={k: replace(v) for k, v in progress.answers.items()})


def _stored(st: ItemState | None) -> tuple[Any, ...]:
    """What the answers table holds of an item's state (photos live in the evidence table)."""
    if st is None:
        return (None, False, None)
    return (st.verdict, st.skipped, st.remark)


def _view(snap: Snapshot) -> InspectionView:
    return InspectionView(snap.inspection_id, snap.site, snap.standard, snap.progress(),
                          snap.status, snap.prompt)
