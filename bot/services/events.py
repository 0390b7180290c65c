"""In-process domain events: one feature reacts to another's change inside the same transaction.

The task service publishes "task.changed" after every transition; the report service subscribes
to tell the reporter and followers. Subscribers run inside the publisher's unit of work, so their
writes (outbox rows, report states) commit or roll back together with the transition.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from db.uow import UnitOfWork

Subscriber = Callable[..., Awaitable[None]]
_subscribers: dict[str, list[Subscriber]] = defaultdict(list)


def subscribe(name: str, subscriber: Subscriber) -> None:
    if subscriber not in _subscribers[name]:
        _subscribers[name].append(subscriber)


async def publish(uow: UnitOfWork, name: str, **payload: Any) -> None:
    for subscriber in list(_subscribers[name]):
        await subscriber(uow, **payload)
