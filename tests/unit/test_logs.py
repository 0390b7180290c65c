"""Log lines (bot/observability/logs.py): one per event, JSON on request, with the update, chat
and replica; never a token, whatever library put it in a message or a traceback."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Settings, SettingsError
from bot.observability.logs import WENMING_HANDLER, build_handler, configure_logging
from bot.observability.scope import UpdateScope, current_update

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
URL = f"https://api.telegram.org/bot{TOKEN}/getUpdates"
Captured = tuple[logging.Logger, io.StringIO, logging.Handler]


@pytest.fixture
def captured() -> Iterator[Captured]:
    stream = io.StringIO()
    handler = build_handler("json", "replica-a", secrets=["s3cret-pass"], stream=stream)
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream, handler
    logger.removeHandler(handler)
    logger.propagate = True


def events(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_no_token_in_messages_arguments_or_tracebacks(captured: Captured) -> None:
    logger, stream, _handler = captured
    logger.info("HTTP Request: POST %s \"HTTP/1.1 200 OK\"", URL)  # as httpx says it
    try:
        raise ConnectionError(f"Cannot connect to host for url {URL}")  # as aiohttp says it
    except ConnectionError:
        logger.exception("request failed")
    logger.warning("postgresql://wenming:s3cret-pass@db/wenming unreachable")
    text = stream.getvalue()
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    assert "s3cret-pass" not in text
    first, second, third = events(stream)
    assert first["msg"] == ('HTTP Request: POST https://api.telegram.org/bot<redacted>/'
                            'getUpdates "HTTP/1.1 200 OK"')
    assert "ConnectionError: Cannot connect to host for url " \
        "https://api.telegram.org/bot<redacted>/getUpdates" in str(second["exc"])
    assert third["msg"] == "postgresql://wenming:<redacted>@db/wenming unreachable"


def test_one_json_object_per_line_with_update_chat_and_replica(captured: Captured) -> None:
    logger, stream, _handler = captured
    logger.info("outside any update")
    token = current_update.set(UpdateScope(update_id=4711, chat_id=-1001004))
    try:
        logger.warning("two\nlines in one event")
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            logger.exception("failed")
    finally:
        current_update.reset(token)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # a traceback and a newline stay inside their event's line
    outside, inside, failed = events(stream)
    assert outside["replica"] == "replica-a" and "update_id" not in outside
    assert inside["update_id"] == 4711 and inside["chat_id"] == -1001004
    assert inside["msg"] == "two\nlines in one event" and inside["level"] == "WARNING"
    assert failed["update_id"] == 4711 and "ZeroDivisionError" in str(failed["exc"])


def test_text_lines_name_the_replica_and_the_update() -> None:
    stream = io.StringIO()
    handler = build_handler("text", "replica-b", stream=stream)
    record = logging.LogRecord("bot.x", logging.INFO, __file__, 1, "sent %s", ("ok",), None)
    token = current_update.set(UpdateScope(update_id=7, chat_id=20001))
    try:
        handler.handle(record)
    finally:
        current_update.reset(token)
    assert stream.getvalue().rstrip().endswith(
        "INFO bot.x [replica-b update=7 chat=20001]: sent ok")


def test_log_settings_come_from_the_environment() -> None:
    settings = Settings.from_env({"WENMING_LOG_FORMAT": "JSON",
                                  "WENMING_REPLICA_NAME": "wenming-2"})
    assert settings.log_format == "json" and settings.replica_name == "wenming-2"
    assert Settings.from_env({}).log_format == "text"
    assert Settings.from_env({}).replica_name  # host-pid
    with pytest.raises(SettingsError, match="WENMING_LOG_FORMAT"):
        Settings.from_env({"WENMING_LOG_FORMAT": "xml"})
    with pytest.raises(SettingsError, match="WENMING_READY_OUTBOX_MAX_AGE"):
        Settings.from_env({"WENMING_READY_OUTBOX_MAX_AGE": "0"})


def test_the_wenming_command_writes_json_lines(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WENMING_", "TELEGRAM_"))}
    env.update(WENMING_LOG_FORMAT="json", WENMING_REPLICA_NAME="cli-1",
               TELEGRAM_BOT_TOKEN=TOKEN, DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/w.db")
    done = subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # Alembic's, as events
    assert lines and all(line["replica"] == "cli-1" for line in lines)
    assert any("Running upgrade" in str(line["msg"]) for line in lines)


def test_the_handler_follows_stderr_and_keeps_a_tests_capture(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`wenming …` run inside a test once installed a handler on the test's captured stderr;
    once that was closed, every later log line failed ("I/O operation on closed file"). The
    handler writes to sys.stderr as it is at each record, and configuring logging leaves
    handlers it did not install (pytest's capture) alone."""
    root = logging.getLogger()
    foreign = logging.NullHandler()  # as pytest's capture handlers are: someone else's
    root.addHandler(foreign)
    saved = sys.stderr
    try:
        first = io.StringIO()
        sys.stderr = first
        configure_logging()
        first.close()
        sys.stderr = second = io.StringIO()
        logging.getLogger("bot.test").warning("after the first stream closed")
        assert "after the first stream closed" in second.getvalue()
        assert foreign in root.handlers
    finally:
        sys.stderr = saved
        for handler in list(root.handlers):
            if handler is foreign or getattr(handler, WENMING_HANDLER, False):
                root.removeHandler(handler)
