"""Logging, configured in one place (the `wenming` command calls `configure_logging`).

Each event is one record carrying the replica's name and, while an update is handled, its
update id and chat id (scope.py). `json` writes one JSON object per line (a traceback is a
field of it); `text` is for people. Tokens never get out: the Bot API's URLs carry the token
(`.../bot<token>/getMe`), and PTB, httpx and aiohttp put URLs in messages and exceptions, so a
filter on the handler rewrites every record, traceback included, before it is written.
Residents' names and phone numbers are kept out by what our own log calls say (ids, never
people), and third-party loggers, whose debug lines carry whole updates, stay at INFO even in
verbose mode.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

from bot.observability.scope import current_update

FORMATS = ("text", "json")
# Our packages; `verbose` lowers these to DEBUG and no one else.
OWN_LOGGERS = ("bot", "handlers", "scheduler", "web", "db", "sandbox")
# One line per request, the token in its URL: never wanted at INFO.
CHATTY = ("httpx", "httpcore", "aiohttp.access")
# A Bot API token: the bot's numeric id, a colon, 30-odd URL-safe characters.
TOKEN = re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{20,}")
REDACTED = "<redacted>"


class RedactTokens(logging.Filter):
    """Rewrites a record's message, traceback and stack so that no token survives: any
    token-shaped string, and the configured secrets verbatim."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return TOKEN.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it when it formats
            return True
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class EventContext(logging.Filter):
    """Adds `replica`, `update_id` and `chat_id` (None outside an update) to every record."""

    def __init__(self, replica: str) -> None:
        super().__init__()
        self.replica = replica

    def filter(self, record: logging.LogRecord) -> bool:
        scope = current_update.get()
        record.replica = self.replica
        record.update_id = scope.update_id if scope is not None else None
        record.chat_id = scope.chat_id if scope is not None else None
        ids = "" if scope is None else f" update={scope.update_id} chat={scope.chat_id}"
        record.event_context = f"[{self.replica}{ids}]"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, replica, update_id, chat_id, exc."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "replica": getattr(record, "replica", None),
        }
        for key in ("update_id", "chat_id"):
            value = getattr(record, key, None)
            if value is not None:
                event[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            event["exc"] = record.exc_text
        if record.stack_info:
            event["stack"] = record.stack_info
        return json.dumps(event, ensure_ascii=False, default=str)


WENMING_HANDLER = "wenming_handler"  # marks the handler configure_logging installed
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(event_context)s: %(message)s"


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record comes (as the standard library's
    last-resort handler does), not to the stream it was when the handler was made: a stream
    swapped out and closed meanwhile (a test's captured stderr) is never written to."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def build_handler(log_format: str, replica: str, secrets: Iterable[str] = (),
                  stream: TextIO | None = None) -> logging.Handler:
    """A handler writing `log_format` lines to `stream` (stderr), context added, tokens out."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}, got {log_format!r}")
    handler: logging.Handler = (logging.StreamHandler(stream) if stream is not None
                                else StderrHandler())
    handler.addFilter(EventContext(replica))
    handler.addFilter(RedactTokens(secrets))
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    return handler


def configure_logging(log_format: str = "text", *, replica: str = "", verbose: bool = False,
                      secrets: Iterable[str] = (), stream: TextIO | None = None) -> None:
    """The process's logging: one handler on the root logger, INFO (our own loggers at DEBUG
    when verbose)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, WENMING_HANDLER, False) or type(old) is logging.StreamHandler:
            root.removeHandler(old)  # ours from before, or basicConfig's: not a test's capture
    handler = build_handler(log_format, replica, secrets, stream)
    setattr(handler, WENMING_HANDLER, True)
    root.addHandler(handler)
    set_levels(verbose)


def set_levels(verbose: bool) -> None:
    """INFO; our own loggers at DEBUG when verbose, never a library's (PTB's debug lines
    carry whole updates: names, texts); the per-request loggers at WARNING."""
    logging.getLogger().setLevel(logging.INFO)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.NOTSET)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)
