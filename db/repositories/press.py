"""The press path's writes, prepared once as plain statements with bind parameters.

bot/services/press.py hands them to the group committer (db/group_commit.py), which runs the
presses of many inspectors in one transaction; they bypass the ORM on purpose (the press path
is the one a city's morning rush loads). Parameters are named b_* (SQLAlchemy reserves the
column names for the values).
"""

from __future__ import annotations

from sqlalchemy import Table, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

from db.models import Answer, Inspection, Person

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
