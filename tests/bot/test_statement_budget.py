"""A verdict press is the hottest path: keep its database work small (counted, not timed).

bench/inspection.py measures the speed; this test keeps a regression from creeping in. Once
the inspection is in the progress cache, a press reads nothing: it writes the step (an UPDATE
guarded by the inspection's version), the answer (an upsert) and the person's active
inspection, in one transaction that other inspectors' presses may share (the inbox mark comes
on top in production).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from bot.app import WenmingApplication
from bot.render.callbacks import parse_step
from tests.bot.conftest import Chat, data_where, deps_of, open_hotel, verdict

PRESS_BUDGET = 4  # SQLite's BEGIN IMMEDIATE, the step, the answer, the active inspection


def reads(statements: list[str], app: WenmingApplication) -> list[str]:
    """The SELECTs, but for the person's own on PostgreSQL: replicas may share that database,
    so the gatekeeper reads the person for each update (db/caches.py)."""
    shared = deps_of(app).uow.sessions.kw["bind"].dialect.name == "postgresql"
    return [s for s in statements if s.startswith("SELECT")
            and not (shared and s.startswith("SELECT people."))]


async def test_a_verdict_press_stays_within_its_statement_budget(
    zhang: Chat, app: WenmingApplication
) -> None:
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
    assert [w.split()[0:3] for w in writes] == [["UPDATE", "inspections", "SET"],
                                                ["INSERT", "INTO", "answers"],
                                                ["UPDATE", "people", "SET"]], writes
    assert not reads(statements, app), statements


async def test_a_press_after_a_restart_reads_the_inspection_once(
    zhang: Chat, app: WenmingApplication
) -> None:
    """A cold cache (a restart, an eviction) costs one read of the inspection, then none."""
    msg = await open_hotel(zhang)
    msg = await zhang.press(msg, data_where(msg, verdict("c")))
    deps_of(app).press.cache.evict(parse_step(data_where(msg, verdict("c"))).inspection_id)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split("\n", 1)[0])

    event.listen(Engine, "before_cursor_execute", count)
    try:
        msg = await zhang.press(msg, data_where(msg, verdict("c")))
        cold = list(statements)
        statements.clear()
        await zhang.press(msg, data_where(msg, verdict("c")))
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert len(reads(cold, app)) == 3, cold  # inspection, answers, photos
    assert not reads(statements, app), statements
