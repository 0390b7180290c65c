"""Unit of work: one transaction per update or job; commit before talking to Telegram."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import InboxUpdate
from db.types import utcnow


@dataclass
class InboxMark:
    """The inbox row of the update being handled, and whether a commit has marked it done."""

    inbox_id: int
    marked: bool = False


# The handler's own commit marks the update done, so an update's effects and its "handled"
# mark land together or not at all.
current_inbox: ContextVar[InboxMark | None] = ContextVar("current_inbox", default=None)


class UnitOfWork:
    """`async with uow:` opens a session; `await uow.commit()` commits; leaving rolls back."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, read_only: bool = False
    ) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self.read_only = read_only

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside `async with`")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
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

    async def commit(self, *, mark_update_handled: bool = True) -> None:
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        mark = current_inbox.get() if mark_update_handled else None
        if mark is not None and not mark.marked:
            await self.session.execute(
                update(InboxUpdate)
                .where(InboxUpdate.id == mark.inbox_id, InboxUpdate.processed_at.is_(None))
                .values(processed_at=utcnow())
            )
        await self.session.commit()
        if mark is not None:
            mark.marked = True

    async def rollback(self) -> None:
        await self.session.rollback()


class UnitOfWorkFactory:
    """What handlers and jobs receive: a way to open a unit of work."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        read_sessions: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.sessions = sessions
        self.read_sessions = read_sessions or sessions

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.sessions)

    def read(self) -> UnitOfWork:
        """A unit of work that only reads (it cannot commit; on SQLite it takes no lock)."""
        return UnitOfWork(self.read_sessions, read_only=True)
