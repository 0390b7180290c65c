"""Who sent this update, without a database round trip for every update.

The gatekeeper looks people up on every update. They change rarely, and almost always through
this process (a role from an invite, a language, a pending input); those changes evict the
entry when their transaction commits. Changes made elsewhere (`wenming import` run beside the
bot) are seen after at most TTL seconds.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from db.models import Person

TTL_SECONDS = 30.0
MAX_ENTRIES = 50_000


class PersonCache:
    """One per running bot (two bots in one process, as in tests, never share entries)."""

    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self._ttl = ttl
        self._entries: dict[int, tuple[float, Person]] = {}
        _CACHES.add(self)

    def get(self, person_id: int) -> Person | None:
        entry = self._entries.get(person_id)
        if entry is None:
            return None
        stored_at, person = entry
        if time.monotonic() - stored_at > self._ttl:
            del self._entries[person_id]
            return None
        return person

    def put(self, person: Person) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()  # crude, and rare: a city has far fewer active people
        self._entries[person.id] = (time.monotonic(), person)

    def evict(self, person_id: int) -> None:
        self._entries.pop(person_id, None)


_CACHES: weakref.WeakSet[PersonCache] = weakref.WeakSet()
_CHANGED = "wenming_people_changed"


@event.listens_for(Session, "after_flush")
def _note_people(session: Session, _context: Any) -> None:
    changed = session.info.setdefault(_CHANGED, set())
    for obj in (*session.new, *session.deleted):
        if isinstance(obj, Person):
            changed.add(obj.id)
    # `dirty` also holds objects whose attributes were set to the value they had.
    for obj in session.dirty:
        if isinstance(obj, Person) and session.is_modified(obj, include_collections=False):
            changed.add(obj.id)


@event.listens_for(Session, "after_commit")
def _evict_people(session: Session) -> None:
    for person_id in session.info.pop(_CHANGED, ()):
        for cache in list(_CACHES):
            cache.evict(person_id)


@event.listens_for(Session, "after_rollback")
def _forget_notes(session: Session) -> None:
    session.info.pop(_CHANGED, None)
