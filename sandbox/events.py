"""Event log the web page long-polls: new messages, edits, deletions, callback answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

Event = dict[str, Any]
MAX_EVENTS = 50_000  # old events are trimmed; a client that fell that far behind resyncs


class EventLog:
    def __init__(self) -> None:
        self._events: list[Event] = []
        self._last = 0
        self._changed = asyncio.Event()
        self._closing = False
        # In-process hooks (the benchmark uses them for precise timestamps).
        self.listeners: list[Callable[[Event], None]] = []

    @property
    def cursor(self) -> int:
        return self._last

    def clear(self) -> None:
        self._events.clear()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        self._closing = True
        self._notify()

    def emit(self, etype: str, chat_id: int, message: dict[str, Any], **extra: Any) -> Event:
        self._last += 1
        event: Event = {"id": self._last, "type": etype, "chat_id": chat_id, "time": time.time(),
                        "message": message, **extra}
        self._events.append(event)
        if len(self._events) > MAX_EVENTS:
            del self._events[: len(self._events) - MAX_EVENTS]
        for listener in list(self.listeners):
            listener(event)
        self._notify()
        return event

    def since(self, after: int, chat_id: int | None = None) -> list[Event]:
        # Events are ordered by id, so scan from the end for the common "only a few new" case.
        idx = len(self._events)
        while idx > 0 and self._events[idx - 1]["id"] > after:
            idx -= 1
        return [e for e in self._events[idx:] if chat_id is None or e["chat_id"] == chat_id]

    async def wait(self, after: int, wait_s: float, chat_id: int | None = None
                   ) -> tuple[int, list[Event]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, wait_s)
        while True:
            changed = self._changed
            events = self.since(after, chat_id)
            remaining = deadline - loop.time()
            if events or remaining <= 0 or self._closing:
                return self._last, events
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                pass
