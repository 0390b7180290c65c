"""Open inspections' progress in memory, so that a press reads nothing from the database.

An entry is a copy of what the database holds for one inspection (its row, its answers, its
evidence counts), taken in one read transaction, and kept up to date by the press path, which
writes it (bot/services/press.py). Any other write to an inspection, an answer or an evidence
row goes through the ORM; such a commit evicts the entry, and the next press reads it again.
The database stays the truth: the press path's UPDATE is guarded by the row's version, so a
stale entry can cost a re-read, never a lost write. Entries are per process; replicas sharing
a PostgreSQL database each keep their own, and another replica's write (which bumps the
version) is caught by that guard the same way. They also expire after TTL seconds (a renamed
site shows its new name).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from bot.domain.checklist import Awaiting, ItemState, Progress
from bot.domain.standards import Standard
from db.models import Answer, Evidence, Inspection, Site
from db.session import follow_commits

TTL_SECONDS = 300.0
MAX_ENTRIES = 10_000


@dataclass
class Snapshot:
    """One inspection as the database holds it, at `version`."""

    inspection_id: int
    inspector_id: int
    status: str
    version: int
    site: Site  # detached, its columns loaded (the screens show its name)
    standard: Standard
    prompt: tuple[int | None, int | None]
    step: int
    awaiting: Awaiting | None
    answers: dict[str, ItemState] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.monotonic)

    def progress(self) -> Progress:
        """A private copy to work on: the snapshot changes only once a write is committed."""
        return Progress(standard=self.standard, step=self.step, awaiting=self.awaiting,
                        answers={k: replace(v) for k, v in self.answers.items()})


class ProgressCache:
    """Snapshots by inspection id: bounded, expiring, evicted by other writers' commits (those
    of the session factories it is installed on: bot/app.py installs it on the bot's)."""

    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[int, Snapshot] = OrderedDict()
        self._changed = f"wenming_inspections_changed_{id(self)}"

    def install(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Evict what the sessions of `sessions` commit."""
        follow_commits(sessions, after_flush=self._note_inspections,
                       after_commit=self._evict_inspections,
                       after_rollback=self._forget_inspections)

    def get(self, inspection_id: int) -> Snapshot | None:
        snap = self._entries.get(inspection_id)
        if snap is None:
            return None
        if time.monotonic() - snap.loaded_at > self._ttl:
            del self._entries[inspection_id]
            return None
        self._entries.move_to_end(inspection_id)
        return snap

    def put(self, snap: Snapshot) -> None:
        self._entries[snap.inspection_id] = snap
        self._entries.move_to_end(snap.inspection_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def evict(self, inspection_id: int) -> None:
        self._entries.pop(inspection_id, None)

    def __len__(self) -> int:
        return len(self._entries)

    def _note_inspections(self, session: Session, _context: Any) -> None:
        changed = session.info.setdefault(self._changed, set())
        for obj in (*session.new, *session.deleted, *session.dirty):
            inspection_id = _inspection_of(obj)
            if inspection_id is not None:
                changed.add(inspection_id)

    def _evict_inspections(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint released: evict at the real commit
        for inspection_id in session.info.pop(self._changed, ()):
            self.evict(inspection_id)

    def _forget_inspections(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint rolled back: the outer transaction's notes still count
        session.info.pop(self._changed, None)


def _inspection_of(obj: object) -> int | None:
    if isinstance(obj, Inspection):
        return obj.id
    if isinstance(obj, Answer | Evidence):
        return obj.inspection_id
    return None
