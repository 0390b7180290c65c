"""Unit of work: one transaction per update or job; commit before talking to Telegram."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

from sqlalchemy import Table, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from db.models import InboxUpdate
from db.repositories.assessment import AssessmentRepository
from db.repositories.cards import TaskCardRepository
from db.repositories.draws import DrawRepository
from db.repositories.evidence import EvidenceRepository
from db.repositories.inspections import InspectionRepository
from db.repositories.inspector_stats import InspectorStatsRepository
from db.repositories.jobs import JobRunRepository
from db.repositories.org import OrgRepository
from db.repositories.outbox import OutboxRepository
from db.repositories.people import PeopleRepository
from db.repositories.plans import PlanRepository
from db.repositories.reports import ReportRepository
from db.repositories.retention import RetentionRepository
from db.repositories.sites import SiteRepository
from db.repositories.stats import StatsRepository
from db.repositories.tasks import TaskRepository
from db.types import utcnow

R = TypeVar("R")
P = ParamSpec("P")

_inbox: Table = InboxUpdate.__table__  # type: ignore[assignment]
# The "handled" mark as one statement, for writes that go through the group committer
# (db/group_commit.py): the press path, and updates whose handler committed nothing.
MARK_HANDLED = (
    update(_inbox)
    .where(_inbox.c.id == bindparam("b_id"), _inbox.c.processed_at.is_(None))
    .values(processed_at=bindparam("b_now"))
)


def _insert_inbox(dialect: str, *, handled: bool) -> Executable:
    """INSERT the row of an update taken by webhook; `handled`: as done (or mark the stored
    row done), else as pending unless it is stored already. Keyed on UNIQUE(update_id)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_inbox).values(
        update_id=bindparam("b_update_id"), chat_key=bindparam("b_chat_key"),
        payload=bindparam("b_payload"), received_at=bindparam("b_now"),
        processed_at=bindparam("b_now") if handled else None, attempts=0,
    )
    if not handled:
        return stmt.on_conflict_do_nothing(index_elements=[_inbox.c.update_id])
    return stmt.on_conflict_do_update(
        index_elements=[_inbox.c.update_id], set_={"processed_at": stmt.excluded.processed_at},
        where=_inbox.c.processed_at.is_(None))


# One prepared statement per dialect (the group committer batches equal statements).
INSERT_HANDLED = {d: _insert_inbox(d, handled=True) for d in ("sqlite", "postgresql")}
INSERT_PENDING = {d: _insert_inbox(d, handled=False) for d in ("sqlite", "postgresql")}
# Webhook replicas (PostgreSQL): pending rows claimed by one replica (b_owner, b_until) or
# free (both None); RETURNING the update_ids that were new, so a redelivery costs no read.
_pending = postgresql.insert(_inbox).values(
    update_id=bindparam("b_update_id"), chat_key=bindparam("b_chat_key"),
    payload=bindparam("b_payload"), received_at=bindparam("b_now"), attempts=0,
    claimed_by=bindparam("b_owner"), claimed_until=bindparam("b_until"))
INSERT_PENDING_CLAIMED = _pending.on_conflict_do_nothing(
    index_elements=[_inbox.c.update_id]).returning(_inbox.c.update_id)


@dataclass
class PendingRow:
    """An update taken by webhook whose inbox row may not exist yet: the first commit that
    marks it handled inserts it (an upsert on update_id), so handling it costs one write."""

    update_id: int
    chat_key: int
    payload: dict[str, Any]
    dialect: str
    stored: bool = False  # written as pending (the handler overran, or its chat was busy)
    handled: bool = False  # written as handled, by the handler's commit or after it

    @property
    def durable(self) -> bool:
        return self.stored or self.handled

    def params(self) -> dict[str, Any]:
        return {"b_update_id": self.update_id, "b_chat_key": self.chat_key,
                "b_payload": self.payload, "b_now": utcnow()}


@dataclass
class InboxMark:
    """The inbox row of the update being handled, and whether a commit has marked it done."""

    inbox_id: int | None
    marked: bool = False
    row: PendingRow | None = None  # instead of inbox_id: a webhook update, maybe not stored

    def done(self) -> None:
        """A commit carrying handled_write() succeeded."""
        self.marked = True
        if self.row is not None:
            self.row.handled = True

    def handled_write(self) -> tuple[Executable, dict[str, Any]]:
        """The statement and parameters that mark this update handled."""
        if self.row is None:
            return MARK_HANDLED, {"b_id": self.inbox_id, "b_now": utcnow()}
        return INSERT_HANDLED[self.row.dialect], self.row.params()

# The handler's own commit marks the update done, so an update's effects and its "handled"
# mark land together or not at all.
current_inbox: ContextVar[InboxMark | None] = ContextVar("current_inbox", default=None)


class Events(Protocol):
    """Where a unit of work's domain events go (bot/services/events.py's EventBus): the
    subscribers run inside the publishing unit of work's transaction."""

    async def publish(self, uow: UnitOfWork, name: str, **payload: Any) -> None: ...
class _Repository(Generic[R]):
    """A unit of work's repository, made over its session when asked for (it is cheap: a
    repository holds nothing but the session)."""

    def __init__(self, make: Callable[[AsyncSession], R]) -> None:
        self._make = make

    def __get__(self, uow: UnitOfWork, owner: type[UnitOfWork] | None = None) -> R:
        return self._make(uow.session)


class UnitOfWork:
    """`async with uow:` opens a session; `await uow.commit()` commits; leaving rolls back."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        read_only: bool = False,
        write_lock: TaskLock | None = None,
        events: Events | None = None,
    ) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self.read_only = read_only
        self._lock = None if read_only else write_lock
        self.events = events

    @classmethod
    def within(cls, session: AsyncSession, events: Events | None = None) -> UnitOfWork:
        """A unit of work inside a transaction someone else owns and commits (an outbox hook
        runs in the sender's); it cannot commit, nor be entered."""
        uow = cls(async_sessionmaker(), read_only=True, events=events)
        uow._session = session
        return uow

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside `async with`")
        return self._session

    # The repositories over this unit's session, one per aggregate: `uow.people.…`.
    people = _Repository(PeopleRepository)
    sites = _Repository(SiteRepository)
    inspections = _Repository(InspectionRepository)
    tasks = _Repository(TaskRepository)
    cards = _Repository(TaskCardRepository)  # where the tasks' cards are (task_cards)
    outbox = _Repository(OutboxRepository)
    org = _Repository(OrgRepository)  # what an organisation file imports
    reports = _Repository(ReportRepository)
    stats = _Repository(StatsRepository)
    jobs = _Repository(JobRunRepository)  # scheduled jobs' runs
    retention = _Repository(RetentionRepository)  # pruning handled updates, sent messages
    assessment = _Repository(AssessmentRepository)  # external test scores, special actions
    evidence = _Repository(EvidenceRepository)  # near-duplicate photos, where photos are used
    plans = _Repository(PlanRepository)  # supervision plans and their daily occurrences
    draws = _Repository(DrawRepository)  # the day's random spot checks (draws, draw_entries)
    inspector_stats = _Repository(InspectorStatsRepository)  # inspectors' own figures

    async def __aenter__(self) -> UnitOfWork:
        if self._lock is not None:
            await self._lock.acquire()
        self._session = self._sessions()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None
        # close() rolls back whatever was not committed but, unlike rollback(), leaves loaded
        # objects readable: handlers use them to render the reply after the transaction.
        try:
            await self._session.close()
        finally:
            self._session = None
            if self._lock is not None:
                self._lock.release()

    async def commit(self, *, mark_update_handled: bool = True) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        mark = current_inbox.get() if mark_update_handled else None
        if mark is not None and not mark.marked:
            await self.session.execute(*mark.handled_write())
        await self.session.commit()
        if mark is not None:
            mark.done()

    def add(self, *rows: object) -> None:
        """New rows the use case built, written at the next flush or commit."""
        self.session.add_all(rows)

    async def flush(self) -> None:
        """Write what is pending now (new rows get their ids), without committing."""
        await self.session.flush()

    async def rollback(self) -> None:
        await self.session.rollback()


def within_session(
    use_case: Callable[Concatenate[UnitOfWork, P], Awaitable[R]],
) -> Callable[Concatenate[AsyncSession, P], Awaitable[R]]:
    """A use case of a unit of work, called with a session whose transaction someone else
    owns and commits (an outbox hook runs in the sender's: bot/app.py wraps them so)."""

    async def call(session: AsyncSession, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await use_case(UnitOfWork.within(session), *args, **kwargs)

    return call


class TaskLock:
    """An asyncio lock the task holding it may take again (a unit of work opened inside another).

    SQLite has one writer at a time. Left to itself, every waiting writer polls for the lock
    from its thread with growing sleeps (the busy handler), which wastes CPU and stretches
    latency under load; queueing writers here, on the event loop, hands the lock over at once.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[object] | None = None
        self._depth = 0

    async def acquire(self) -> None:
        task = asyncio.current_task()
        if self._owner is task and task is not None:
            self._depth += 1
            return
        await self._lock.acquire()
        self._owner, self._depth = task, 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._lock.release()


class UnitOfWorkFactory:
    """What handlers and jobs receive: a way to open a unit of work (publishing its domain
    events on `events`, the application's bus)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        read_sessions: async_sessionmaker[AsyncSession] | None = None,
        *,
        serialize_writes: bool = False,
        events: Events | None = None,
    ) -> None:
        self.sessions = sessions
        self.read_sessions = read_sessions or sessions
        self._write_lock = TaskLock() if serialize_writes else None
        self.events = events

    @property
    def write_lock(self) -> TaskLock | None:
        """The lock SQLite writers queue on (None on PostgreSQL); the group committer takes it."""
        return self._write_lock

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, write_lock=self._write_lock, events=self.events)

    def read(self) -> UnitOfWork:
        """A unit of work that only reads (it cannot commit; on SQLite it takes no lock)."""
        return UnitOfWork(self.read_sessions, read_only=True, events=self.events)
