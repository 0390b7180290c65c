"""The bot's Prometheus metrics, one registry per application (built by bot/app.py and handed
to whoever records): nothing is registered at import, and two applications in one process
count apart. Labels never carry a person, a chat or a name: kinds, methods, results, jobs,
roles and the replica's own name only."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import generate_latest

log = logging.getLogger(__name__)

# A press is answered in tens of milliseconds; a report with photos takes seconds.
HANDLER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SEND_RESULTS = ("ok", "429", "4xx", "5xx", "network")
REFRESH_TIMEOUT = 2.0


def send_result(status: int | None) -> str:
    """A Bot API answer's HTTP status as a result label; None is a network failure."""
    if status is None:
        return "network"
    if status < 300:
        return "ok"
    if status == 429:
        return "429"
    return "4xx" if status < 500 else "5xx"


class Metrics:
    def __init__(self, replica: str) -> None:
        self.replica = replica
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.updates = Counter(
            "wenming_updates_handled_total", "Updates handled, by kind and outcome "
            "(ok; refused: the person was told no; error: a handler failed).",
            ["kind", "outcome"], registry=r)
        self.handling = Histogram(
            "wenming_update_handling_seconds", "Time from dispatch to the handlers' end, by kind.",
            ["kind"], buckets=HANDLER_BUCKETS, registry=r)
        self.sends = Counter(
            "wenming_bot_api_requests_total", "Bot API requests by who made them (reply: "
            "handlers; outbox; intake: getUpdates), method and result (ok, 429, 4xx, 5xx, "
            "network).", ["via", "method", "result"], registry=r)
        self.scheduler_runs = Counter(
            "wenming_scheduler_runs_total", "Scheduler job runs by job and result.",
            ["job", "result"], registry=r)
        self.scheduler_tick = Gauge(
            "wenming_scheduler_last_tick_timestamp_seconds",
            "When the scheduler last finished a tick (Unix time).", registry=r)
        self.outbox_pending = Gauge(
            "wenming_outbox_pending", "Outbox messages waiting to be sent (read at scrape time).",
            registry=r)
        self.outbox_oldest_due = Gauge(
            "wenming_outbox_oldest_due_age_seconds", "How long the oldest due outbox message "
            "has waited (0 when none is due; read at scrape time).", registry=r)
        self.pool_size = Gauge("wenming_db_pool_size", "Database connections the pool keeps.",
                               registry=r)
        self.pool_checked_out = Gauge("wenming_db_pool_checked_out",
                                      "Database connections in use.", registry=r)
        self.pool_overflow = Gauge("wenming_db_pool_overflow",
                                   "Connections open beyond the pool's size.", registry=r)
        self.role = Gauge("wenming_replica_role", "1 while this replica holds the role.",
                          ["replica", "role"], registry=r)
        ProcessCollector(registry=r)
        self._refreshers: list[Callable[[], Awaitable[None]]] = []

    # ---- recording --------------------------------------------------------------------------

    def update_handled(self, kind: str, outcome: str, seconds: float) -> None:
        self.updates.labels(kind, outcome).inc()
        self.handling.labels(kind).observe(seconds)

    def bot_api_answered(self, via: str, method: str, status: int | None) -> None:
        self.sends.labels(via, method, send_result(status)).inc()

    def scheduler_ran(self, job: str, result: str) -> None:
        self.scheduler_runs.labels(job, result).inc()

    def set_role(self, role: str, held: bool) -> None:
        """This replica holds `role` ("poller", "webhook", a leader lock's name) or not."""
        self.role.labels(self.replica, role).set(1 if held else 0)

    def watch_pool(self, usage: Callable[[], tuple[float, float, float]]) -> None:
        """The database pool's (size, checked out, overflow), read at each scrape."""
        self.pool_size.set_function(lambda: usage()[0])
        self.pool_checked_out.set_function(lambda: usage()[1])
        self.pool_overflow.set_function(lambda: usage()[2])

    def refresh_on_scrape(self, refresh: Callable[[], Awaitable[None]]) -> None:
        """Something to read (from the database) before each scrape: the outbox's backlog."""
        self._refreshers.append(refresh)

    # ---- exposing ---------------------------------------------------------------------------

    async def render(self) -> bytes:
        """The text format. A refresher that fails leaves its gauges as they were (the
        database being down is /readyz's to say)."""
        for refresh in self._refreshers:
            try:
                await asyncio.wait_for(refresh(), REFRESH_TIMEOUT)
            except Exception as exc:  # a scrape still answers
                log.warning("metrics: %s", f"{type(exc).__name__}: {exc}".splitlines()[0])
        return generate_latest(self.registry)
