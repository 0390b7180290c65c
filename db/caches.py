"""Per-process caches that follow the commits of the session factories they are installed on
(bot/app.py installs both on the bot's): who sent an update, and open inspections' progress.

PersonCache: who sent this update, without a database round trip for every update.

The gatekeeper looks people up on every update. They change rarely, and almost always through
this process (a role from an invite, a language, a pending input); when such a change
commits, a copy of the committed row replaces the entry when that copy is the row (SQLite,
whose writers take turns, or a row locked before the change), and evicts it otherwise.
Changes made elsewhere (`wenming import` run beside the bot) are seen after at most TTL
seconds. That holds where the bot is one process: SQLite (db/single_process.py refuses a
second). On PostgreSQL several replicas may share the database, and another replica's change
(an admin's /block, a new role) would not be seen here for TTL seconds: there the cache keeps
nothing across transactions (`ttl` 0; bot/app.py), and each update reads its person.

ProgressCache: open inspections' progress in memory, so that a press reads nothing from the
database.

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

import copy
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, make_transient_to_detached

from bot.domain.checklist import Awaiting, ItemState, Progress
from bot.domain.standards import Standard
from db.models import Answer, Evidence, Inspection, Person, Site
from db.repositories.people import LOCKED_PEOPLE
from db.session import follow_commits

# ---- who sent this update --------------------------------------------------------------------

PERSON_TTL_SECONDS = 30.0
MAX_PEOPLE = 50_000


class PersonCache:
    """One per running bot (two bots in one process, as in tests, never share entries).

    It follows the commits of the session factories it is installed on (bot/app.py installs it
    on the bot's), and of no others."""

    def __init__(self, ttl: float = PERSON_TTL_SECONDS) -> None:
        self._ttl = ttl
        self._entries: dict[int, tuple[float, Person]] = {}
        self._changed = f"wenming_people_changed_{id(self)}"

    def install(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Follow what the sessions of `sessions` commit."""
        follow_commits(sessions, after_flush=self._note_people, after_commit=self._refresh_people,
                       after_rollback=self._forget_notes)

    def get(self, person_id: int) -> Person | None:
        if self._ttl <= 0:
            return None
        entry = self._entries.get(person_id)
        if entry is None:
            return None
        stored_at, person = entry
        if time.monotonic() - stored_at > self._ttl:
            del self._entries[person_id]
            return None
        return person

    def put(self, person: Person) -> None:
        if self._ttl <= 0:
            return
        if len(self._entries) >= MAX_PEOPLE:
            self._entries.clear()  # crude, and rare: a city has far fewer active people
        self._entries[person.id] = (time.monotonic(), person)

    def evict(self, person_id: int) -> None:
        self._entries.pop(person_id, None)


    def _note_people(self, session: Session, _context: Any) -> None:
        changed: dict[int, Person | None] = session.info.setdefault(self._changed, {})
        for obj in session.new:
            if isinstance(obj, Person):
                changed[obj.id] = obj
        for obj in session.deleted:
            if isinstance(obj, Person):
                changed[obj.id] = None
        # `dirty` also holds objects whose attributes were set to the value they had.
        for obj in session.dirty:
            if isinstance(obj, Person) and session.is_modified(obj, include_collections=False):
                changed[obj.id] = obj

    def _refresh_people(self, session: Session) -> None:
        """The committed row replaces the entry: the person's next update reads nothing.

        Only when the session's view of the row is the row: on SQLite, whose writers take
        turns, or when this transaction locked the row before changing it (`attached()` does).
        Otherwise another transaction may have changed other columns meanwhile (an admin's
        /block), and the entry is evicted and read again.
        """
        if session.in_nested_transaction():
            return  # a savepoint released: the real commit comes later, or never
        serialised = session.get_bind().dialect.name == "sqlite"
        locked = session.info.pop(LOCKED_PEOPLE, set())
        for person_id, obj in session.info.pop(self._changed, {}).items():
            whole = serialised or person_id in locked
            fresh = _committed_copy(obj) if obj is not None and whole else None
            if fresh is None:
                self.evict(person_id)
            else:
                self.put(fresh)

    def _forget_notes(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint rolled back: the outer transaction's notes still count
        session.info.pop(self._changed, None)
        session.info.pop(LOCKED_PEOPLE, None)


def _committed_copy(person: Person) -> Person | None:
    """A detached copy of the row as committed, or None if not every column is at hand.

    A copy, not the session's object: the handler may go on changing that one (and never
    commit it), and the cache must only ever show what the database holds.
    """
    state = sa_inspect(person)
    if state.was_deleted or not state.persistent:  # e.g. added in a savepoint rolled back
        return None
    values = {}
    for attr in state.mapper.column_attrs:
        if attr.key not in state.dict:  # e.g. a server default not fetched back
            return None
        values[attr.key] = copy.deepcopy(state.dict[attr.key])
    fresh = Person(**values)
    make_transient_to_detached(fresh)
    return fresh


# ---- open inspections' progress --------------------------------------------------------------

PROGRESS_TTL_SECONDS = 300.0
MAX_INSPECTIONS = 10_000


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

    def __init__(self, ttl: float = PROGRESS_TTL_SECONDS,
                 max_entries: int = MAX_INSPECTIONS) -> None:
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
