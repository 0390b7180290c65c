"""The press path's writes, prepared once as plain statements with bind parameters.

`PressRepository` (used by bot/services/press.py) hands them to the group committer
(db/group_commit.py), which runs the presses of many inspectors in one transaction; they bypass
the ORM on purpose (the press path is the one a city's morning rush loads). Parameters are
named b_* (SQLAlchemy reserves the column names for the values).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Table, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

from db.group_commit import GroupCommitter, WriteSet
from db.models import Answer, Inspection, Person
from db.uow import InboxMark

_inspections: Table = Inspection.__table__  # type: ignore[assignment]
_answers: Table = Answer.__table__  # type: ignore[assignment]
_people: Table = Person.__table__  # type: ignore[assignment]

# Only the row as it was read: a changed version means someone else wrote since.
STEP = (
    update(_inspections)
    .where(_inspections.c.id == bindparam("b_id"),
           _inspections.c.version == bindparam("b_version"),
           _inspections.c.status == "open")
    .values(step=bindparam("b_step"), awaiting=bindparam("b_awaiting"),
            updated_at=bindparam("b_now"), version=_inspections.c.version + 1)
)
ACTIVE = (
    update(_people)
    .where(_people.c.id == bindparam("b_id"))
    .values(active_inspection_id=bindparam("b_active"))
)
# Where the inspection's buttons are now: a fact about Telegram, not a judgement on the
# state read, so it need not be guarded; with a snapshot to keep current, it is.
MOVED = (
    update(_inspections)
    .where(_inspections.c.id == bindparam("b_id"))
    .values(chat_id=bindparam("b_chat"), message_id=bindparam("b_message"),
            version=_inspections.c.version + 1)
)
MOVED_FROM = MOVED.where(_inspections.c.version == bindparam("b_version"))


def upsert_answer(dialect: str) -> Executable:
    """INSERT … ON CONFLICT (inspection, item) DO UPDATE: the answer row may or may not exist."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_answers).values(
        inspection_id=bindparam("b_inspection"), item_key=bindparam("b_key"),
        verdict=bindparam("b_verdict"), skipped=bindparam("b_skipped"),
        remark=bindparam("b_remark"), answered_at=bindparam("b_now"),
    )
    return stmt.on_conflict_do_update(
        index_elements=[_answers.c.inspection_id, _answers.c.item_key],
        set_={"verdict": stmt.excluded.verdict, "skipped": stmt.excluded.skipped,
              "remark": stmt.excluded.remark, "answered_at": stmt.excluded.answered_at},
    )


# An answer row as the press path writes it: item key, verdict, skipped, remark.
AnswerRow = tuple[str, str | None, bool, str | None]


class PressRepository:
    """The press path's writes, committed by group commit: one per engine (bot/app.py).

    Each method returns once its writes are committed; a guarded write that finds its row
    changed since `version` was read raises db.group_commit.WriteConflict, and nothing of the
    call is applied."""

    def __init__(self, dialect: str, committer: GroupCommitter) -> None:
        self._committer = committer
        self._upsert = upsert_answer(dialect)

    async def press(
        self, *, inspection_id: int, version: int, step: int, awaiting: str | None,
        answers: Iterable[AnswerRow], person_id: int, active: int | None,
        handled: InboxMark | None, now: datetime,
    ) -> None:
        """The inspection's new step (guarded by `version`), its changed answers, the
        inspector's active inspection, and the update's "handled" mark when `handled`."""
        writes = WriteSet()
        writes.add(STEP, guarded=True, b_id=inspection_id, b_version=version, b_step=step,
                   b_awaiting=awaiting, b_now=now)
        for key, verdict, skipped, remark in answers:
            writes.add(self._upsert, b_inspection=inspection_id, b_key=key, b_verdict=verdict,
                       b_skipped=skipped, b_remark=remark, b_now=now)
        writes.add(ACTIVE, b_id=person_id, b_active=active)
        if handled is not None:
            statement, params = handled.handled_write()
            writes.add(statement, **params)
        await self._committer.commit(writes)

    async def moved(self, inspection_id: int, chat_id: int, message_id: int, *,
                    version: int | None = None) -> None:
        """The inspection's screen is now this message; guarded by `version` when given."""
        writes = WriteSet()
        if version is None:
            writes.add(MOVED, b_id=inspection_id, b_chat=chat_id, b_message=message_id)
        else:
            writes.add(MOVED_FROM, guarded=True, b_id=inspection_id, b_version=version,
                       b_chat=chat_id, b_message=message_id)
        await self._committer.commit(writes)
