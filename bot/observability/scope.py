"""What the current asyncio task is handling: one update (set by bot/telegram/inbox.py while it
runs). Log lines read the ids from it; the error hook (bot/app.py) records how handling went."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

OK, REFUSED, ERROR = "ok", "refused", "error"


@dataclass
class UpdateScope:
    update_id: int
    chat_id: int | None
    outcome: str = OK


current_update: ContextVar[UpdateScope | None] = ContextVar("wenming_update", default=None)


def note_outcome(outcome: str) -> None:
    """Record how the update in hand ended (an error handler ran); the worst outcome stays."""
    scope = current_update.get()
    if scope is not None and scope.outcome != ERROR:
        scope.outcome = outcome
