"""`GET /metrics` on the running bot (issue 13), read with prometheus_client's own parser: the
counters move when an update is handled and when Telegram answers a send with 429, the outbox
and pool gauges are read at scrape time, and no label carries a person or a chat."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import Wenming
from db.models import OutboxMessage
from db.types import utcnow
from tests.conftest import Harness, wait_until

# PTB 22.2+ warns on RetryAfter.retry_after being an int; that is PTB's business, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

PERSON = 29101
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(harness: Harness) -> Samples:
    assert isinstance(harness.bot, Wenming) and harness.bot.http is not None
    async with aiohttp.ClientSession() as session, \
            session.get(f"{harness.bot.http.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over samples of `name` whose labels include `labels` (0 when none)."""
    return sum(v for (n, ls), v in samples.items()
               if n == name and set(labels.items()) <= set(ls))


async def test_handling_an_update_and_a_429_move_the_counters(harness: Harness) -> None:
    sb: Any = harness.sb
    await sb.create_user("钱测试", user_id=PERSON, started=True)
    before = await scrape(harness)
    await sb.send_text(PERSON, "/help")
    await sb.wait_for_bot_message(PERSON)

    async def handled() -> bool:
        now = await scrape(harness)
        return value(now, "wenming_updates_handled_total", kind="message", outcome="ok") > \
            value(before, "wenming_updates_handled_total", kind="message", outcome="ok")

    await wait_until(handled, timeout=5)
    after = await scrape(harness)
    assert value(after, "wenming_update_handling_seconds_count", kind="message") >= \
        value(before, "wenming_update_handling_seconds_count", kind="message") + 1
    assert value(after, "wenming_bot_api_requests_total", via="reply", method="sendMessage",
                 result="ok") > value(before, "wenming_bot_api_requests_total", via="reply",
                                      method="sendMessage", result="ok")
    assert value(after, "wenming_bot_api_requests_total", via="intake", method="getUpdates",
                 result="ok") >= 1

    # Telegram says 429 to the next reply: counted as such, and the reply still arrives.
    last = (await sb.bot_messages(PERSON))[-1]["message_id"]
    await sb.inject_fault("sendMessage", retry_after=1, chat_id=PERSON)
    await sb.send_text(PERSON, "/help")
    await sb.wait_for_bot_message(PERSON, after_message_id=last, timeout=15)
    limited = await scrape(harness)
    assert value(limited, "wenming_bot_api_requests_total", method="sendMessage",
                 result="429") == value(before, "wenming_bot_api_requests_total",
                                        method="sendMessage", result="429") + 1

    # The polling replica says so; the pool is read at scrape time.
    replica = harness.settings.replica_name
    assert value(limited, "wenming_replica_role", replica=replica, role="poller") == 1
    assert value(limited, "wenming_db_pool_checked_out") >= 0
    assert value(limited, "process_resident_memory_bytes") > 0

    # No label names a person or a chat.
    ids = {str(PERSON), "钱测试", "20001", "-1001004"}
    for (_name, labels), _v in limited.items():
        assert not ids & {v for _k, v in labels}, labels


async def test_the_outbox_backlog_and_scheduler_runs(harness: Harness) -> None:
    assert isinstance(harness.bot, Wenming)
    await harness.bot.scheduler.tick()
    ticked = await scrape(harness)
    assert value(ticked, "wenming_scheduler_runs_total", job="reminders", result="ok") == 1
    assert value(ticked, "wenming_scheduler_last_tick_timestamp_seconds") > 0
    await harness.bot.outbox.stop()
    async with harness.sessions() as session, session.begin():
        session.add(OutboxMessage(dedup_key="test:waiting", chat_id=PERSON, method="sendMessage",
                                  params={"text": "x"},
                                  created_at=utcnow() - timedelta(seconds=120)))
    samples = await scrape(harness)
    assert value(samples, "wenming_outbox_pending") == 1
    assert 119 <= value(samples, "wenming_outbox_oldest_due_age_seconds") < 200


async def test_a_failing_reply_counts_as_an_error_and_a_5xx(harness: Harness) -> None:
    sb: Any = harness.sb
    await sb.create_user("吴测试", user_id=PERSON + 1, started=True)
    before = await scrape(harness)
    await sb.inject_fault("sendMessage", status=502, chat_id=PERSON + 1)
    await sb.send_text(PERSON + 1, "/help")

    async def counted() -> bool:
        now = await scrape(harness)
        return value(now, "wenming_updates_handled_total", outcome="error") > \
            value(before, "wenming_updates_handled_total", outcome="error")

    await wait_until(counted, timeout=10)
    after = await scrape(harness)
    assert value(after, "wenming_bot_api_requests_total", via="reply", method="sendMessage",
                 result="5xx") == value(before, "wenming_bot_api_requests_total", via="reply",
                                        method="sendMessage", result="5xx") + 1
