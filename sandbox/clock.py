"""The sandbox's clock: real time plus an offset that only moves forward.

Reminders, escalations, digests and bulletins need days to pass. The sandbox keeps an offset
that a person (web page) or a test (user API) advances: by an hour, a day, or to a moment an
embedding application names (`add_jump`, e.g. "the next bulletin"). Message dates in the Bot
API follow it, and an application that runs under the sandbox reads `now()` as its own clock
and is told of every change (`on_change`), so it can look for due work at once. Time never runs
backwards: an offset that only grows keeps every "at most once per period" decision sound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_ADVANCE_SECONDS = 366 * 24 * 3600


class ClockError(ValueError):
    """A clock change the sandbox refuses (backwards, too far, unknown jump)."""


@dataclass(frozen=True)
class Jump:
    """A named moment to move to, computed from the sandbox's now (unix seconds)."""

    name: str
    label: str
    target: Callable[[float], float]


class SandboxClock:
    def __init__(self) -> None:
        self.offset = 0.0
        self._jumps: dict[str, Jump] = {}
        self._listeners: list[Callable[[], None]] = []

    def time(self) -> float:
        """Unix seconds on the sandbox's clock."""
        return time.time() + self.offset

    def unix(self) -> int:
        return int(self.time())

    def now(self) -> datetime:
        """The sandbox's now as an aware UTC datetime (an application's injectable clock)."""
        return datetime.fromtimestamp(self.time(), UTC)

    def add_jump(self, name: str, label: str, target: Callable[[float], float]) -> None:
        self._jumps[name] = Jump(name, label, target)

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def advance(self, seconds: float) -> None:
        if not 0 < seconds <= MAX_ADVANCE_SECONDS:
            raise ClockError(f"the clock moves forward by 1 s to 366 days, not {seconds} s")
        self.offset += seconds
        for listener in self._listeners:
            listener()

    def jump(self, name: str) -> None:
        jump = self._jumps.get(name)
        if jump is None:
            raise ClockError(f"no jump {name!r}; known: {', '.join(self._jumps) or 'none'}")
        self.advance(max(1.0, jump.target(self.time()) - self.time()))

    def to_dict(self) -> dict[str, Any]:
        now = self.time()
        return {
            "now": int(now), "iso": datetime.fromtimestamp(now, UTC).isoformat(),
            "offset_seconds": int(self.offset),
            "jumps": [{"name": j.name, "label": j.label, "at": int(j.target(now))}
                      for j in self._jumps.values()],
        }
