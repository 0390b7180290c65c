"""What the running bot writes to its log (issue 13): JSON lines naming the update, the chat
and the replica; no token, even from a library that logs the Bot API's URLs; and no resident's
name or phone number after a report and an inspection, with our own loggers at DEBUG."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from bot.observability.logs import CHATTY, OWN_LOGGERS, build_handler, set_levels
from tests.conftest import TEST_TOKEN, Harness
from tests.e2e.chat import Chat, data_where
from tests.e2e.test_inspection import INSPECTOR, open_hotel, verdict
from tests.e2e.test_reports import RESIDENT, file_report

# PTB 22.2+ warns on RetryAfter.retry_after being an int; that is PTB's business, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

PERSON = 29301
PHONE = "13912345678"


class Captured:
    def __init__(self, log_format: str, replica: str, verbose: bool) -> None:
        self.stream = io.StringIO()
        self.handler = build_handler(log_format, replica, secrets=[TEST_TOKEN],
                                     stream=self.stream)
        self.verbose = verbose

    def __enter__(self) -> Captured:
        self._levels = {name: logging.getLogger(name).level
                        for name in (*OWN_LOGGERS, *CHATTY, "")}
        logging.getLogger().addHandler(self.handler)
        set_levels(self.verbose)  # as `wenming -v run` sets them
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self.handler)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)

    @property
    def text(self) -> str:
        return self.stream.getvalue()


async def test_json_lines_carry_update_chat_and_replica_and_never_the_token(
    harness: Harness,
) -> None:
    # httpx, PTB's default transport, logs each request's URL (the token in it) at INFO.
    await harness.restart(http_transport="httpx", replica_name="wenming-test-1")
    sb: Any = harness.sb
    await sb.create_user("周测试", user_id=PERSON, started=True)
    with Captured("json", "wenming-test-1", verbose=False) as log:
        logging.getLogger("httpx").setLevel(logging.INFO)  # as if someone turned it up
        # Telegram tells the reply to wait: the flood limiter says so while handling it.
        await sb.inject_fault("sendMessage", retry_after=1, chat_id=PERSON)
        await sb.send_text(PERSON, "/help")
        await sb.wait_for_bot_message(PERSON, timeout=15)
    events = [json.loads(line) for line in log.text.splitlines()]  # every line is one event
    assert events
    assert all(e["replica"] == "wenming-test-1" for e in events)
    flood = [e for e in events if "flood control" in e["msg"]]
    assert flood, events
    assert flood[0]["chat_id"] == PERSON and isinstance(flood[0]["update_id"], int)
    requests = [e for e in events if e["logger"] == "httpx"]
    assert requests and all("/bot<redacted>/" in e["msg"] for e in requests)
    assert TEST_TOKEN not in log.text and TEST_TOKEN.split(":")[1] not in log.text


async def test_a_report_and_an_inspection_log_no_name_or_phone_number(harness: Harness) -> None:
    with Captured("text", "r", verbose=True) as log:
        await file_report(harness, RESIDENT, "parking",
                          description=f"赵居民报告：人行道停满了车，电话 {PHONE}")
        chat = Chat(harness.sb, INSPECTOR)
        msg = await open_hotel(chat)
        msg = await chat.press(msg, data_where(msg, verdict("c")))
        msg = await chat.press(msg, data_where(msg, verdict("b")))
        await chat.say(f"店长电话 {PHONE}")
    assert "update=" in log.text  # the handlers did log
    for private in ("赵居民", "张督查", PHONE, "Alice"):
        assert private not in log.text, [line for line in log.text.splitlines()
                                         if private in line]
