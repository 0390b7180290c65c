"""Flood control modelled with token buckets, tuned to Telegram's published guidance.

Telegram does not publish exact numbers; these follow the Bot FAQ ("about 1 msg/s per chat with
short bursts", "20 messages per minute to the same group", "30 messages per second overall").
A request is only charged when every bucket it touches has room, so a 429 costs nothing.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# (capacity, refill per second). Documented in sandbox/README.md; keep the two in sync.
PER_CHAT = (5.0, 1.0)
PER_GROUP = (20.0, 20.0 / 60.0)
GLOBAL = (30.0, 30.0)
EDITS_PER_CHAT = (10.0, 2.0)
HISTORY = 2000  # calls remembered per chat for /_sandbox/flood


@dataclass
class TokenBucket:
    capacity: float
    rate: float
    tokens: float
    updated: float

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def wait_time(self, now: float, cost: float) -> float:
        """Seconds until `cost` tokens are available (0 if they are now)."""
        self._refill(now)
        cost = min(cost, self.capacity)
        if self.tokens >= cost:
            return 0.0
        return (cost - self.tokens) / self.rate

    def take(self, cost: float) -> None:
        self.tokens -= min(cost, self.capacity)


@dataclass
class ChatHistory:
    """What flood control did in one chat: each 429 it gave and each call it let through."""

    refused: deque[tuple[float, int, str]] = field(default_factory=lambda: deque(maxlen=HISTORY))
    accepted: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=HISTORY))

    def to_dict(self) -> dict[str, Any]:
        return {"refused": [{"at": at, "retry_after": wait, "kind": kind}
                            for at, wait, kind in self.refused],
                "accepted": [{"at": at, "kind": kind} for at, kind in self.accepted]}


class FloodController:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.enabled = True
        self._buckets: dict[tuple[str, int], TokenBucket] = {}
        self.history: dict[int, ChatHistory] = {}

    def reset(self) -> None:
        self._buckets.clear()
        self.history.clear()

    def _bucket(self, kind: str, key: int, spec: tuple[float, float], now: float) -> TokenBucket:
        bucket = self._buckets.get((kind, key))
        if bucket is None:
            bucket = TokenBucket(spec[0], spec[1], spec[0], now)
            self._buckets[(kind, key)] = bucket
        return bucket

    def refused_by_fault(self, chat_id: int, retry_after: int) -> None:
        """An injected 429 (sandbox/faults.py) told the chat to wait: recorded like flood
        control's own (kind "fault"), so a call inside that wait shows in the history too."""
        history = self.history.setdefault(chat_id, ChatHistory())
        history.refused.append((self.clock(), retry_after, "fault"))

    def check(self, kind: str, chat_id: int, cost: int = 1) -> int | None:
        """Charge one call; return retry_after seconds (>= 1) if it must be refused.

        kind is "send" (messages, copies, forwards, albums) or "edit".
        """
        if not self.enabled:
            return None
        now = self.clock()
        charges: list[tuple[TokenBucket, float]] = []
        if kind == "edit":
            charges.append((self._bucket("edit", chat_id, EDITS_PER_CHAT, now), 1.0))
        else:
            # An album counts once against the chat buckets (Telegram sends it as one request)
            # but once per item against the global one.
            charges.append((self._bucket("chat", chat_id, PER_CHAT, now), 1.0))
            if chat_id < 0:
                charges.append((self._bucket("group", chat_id, PER_GROUP, now), 1.0))
            charges.append((self._bucket("global", 0, GLOBAL, now), float(cost)))
        wait = max(bucket.wait_time(now, c) for bucket, c in charges)
        history = self.history.setdefault(chat_id, ChatHistory())
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            history.refused.append((now, retry_after, kind))
            return retry_after
        for bucket, c in charges:
            bucket.take(c)
        history.accepted.append((now, kind))
        return None
