"""A verdict press is the hottest path: keep its database work small (counted, not timed).

bench/inspection.py measures the speed; this test keeps a regression from creeping in: a
known person's press reads the person, the inspection, its answers and evidence counts, then
writes one answer and the step, in one transaction (the inbox mark comes on top in production).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.bot.conftest import Chat, data_where, open_hotel, verdict

PRESS_BUDGET = 7


async def test_a_verdict_press_stays_within_its_statement_budget(zhang: Chat) -> None:
    msg = await open_hotel(zhang)
    msg = await zhang.press(msg, data_where(msg, verdict("c")))  # warm the person cache
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split("\n", 1)[0])

    event.listen(Engine, "before_cursor_execute", count)
    try:
        await zhang.press(msg, data_where(msg, verdict("c")))
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    writes = [s for s in statements if s.split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert len(statements) <= PRESS_BUDGET, statements
    assert len(writes) == 2, writes  # the answer and the inspection's step
    # One transaction: the gatekeeper found the person in its cache, not in the database.
    # (SQLite shows the BEGIN IMMEDIATE this project issues; PostgreSQL's BEGIN is implicit.)
    selects = [s for s in statements if s.startswith("SELECT")]
    assert sum("FROM people" in s or s.startswith("SELECT people.") for s in selects) == 1
