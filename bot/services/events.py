"""In-process domain events: one feature reacts to another's change inside the same transaction.

The task service publishes "task.changed" after every transition; the report side reacts to tell
the reporter and followers. bot/app.py builds one EventBus per application, subscribes the
handlers explicitly, and gives the bus to the unit-of-work factory, so every unit of work of that
application publishes on it. Subscribers run inside the publisher's unit of work, so their writes
(outbox rows, report states) commit or roll back together with the transition.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from db.uow import UnitOfWork

Subscriber = Callable[..., Awaitable[None]]


class EventBus:
    """Subscribers by event name; one per application, never shared between two."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = defaultdict(list)

    def subscribe(self, name: str, subscriber: Subscriber) -> None:
        if subscriber not in self._subscribers[name]:
            self._subscribers[name].append(subscriber)

    def subscribers(self, name: str) -> tuple[Subscriber, ...]:
        return tuple(self._subscribers.get(name, ()))

    async def publish(self, uow: UnitOfWork, name: str, **payload: Any) -> None:
        for subscriber in self.subscribers(name):
            await subscriber(uow, **payload)


async def publish(uow: UnitOfWork, name: str, **payload: Any) -> None:
    """Publish on the bus the unit of work was opened with (none: nobody listens)."""
    if uow.events is not None:
        await uow.events.publish(uow, name, **payload)
