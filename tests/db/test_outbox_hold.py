"""Issue 11 item 1: a reply handed to the outbox holds its chat (later replies follow it) only
while it is pending. One that fails (out of attempts, or its chat gone) no longer holds the
chat: otherwise every later reply to that chat would go through the outbox until a restart."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram.error import BadRequest, NetworkError

from bot.telegram import outbox as outbox_module
from bot.telegram.outbox import OutboxSender
from db.types import utcnow

CHAT = 5001


class FailingBot:
    """Answers every send with the error it was given."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    async def send_message(self, **_kwargs: Any) -> None:
        self.calls += 1
        raise self.error


@pytest.mark.parametrize("error", [NetworkError("connection reset"),
                                   BadRequest("Chat not found")],
                         ids=["out_of_attempts", "chat_gone"])
async def test_a_failed_handed_over_reply_no_longer_holds_its_chat(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    monkeypatch.setattr(outbox_module, "MAX_ATTEMPTS", 1)
    bot = FailingBot(error)
    sender = OutboxSender(bot, sessions, utcnow, chat_interval=0)  # type: ignore[arg-type]
    await sender.hand_over(CHAT, "sendMessage", {"text": "the reply"})
    await sender.hand_over(CHAT, "sendMessage", {"text": "the next reply"})
    assert sender.holding(CHAT)
    for _ in range(3):
        await sender.drain_once()
    assert bot.calls >= 1
    assert not sender.holding(CHAT)
