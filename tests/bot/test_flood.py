"""Issue 11 item 1: replies honour each chat's flood wait (bot/telegram/flood.py),
against the sandbox.

A reply that meets 429 is sent once `retry_after` has passed, and nothing reaches that chat
before; other chats are not held up; the outbox's bot, sharing the deadlines, is refused at once
instead of waiting; a wait beyond the bound hands the reply to the outbox."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import RetryAfter
from telegram.ext import ExtBot

from bot.telegram.flood import ChatDeadlines, ChatLimiter, ReplyQueued, limited_chat, retry_seconds
from bot.telegram.outbox import _call, broadcast_rate_limiter
from sandbox.client import SandboxClient, inside_retry_after
from sandbox.server import SandboxServer

# PTB 22.2+ warns on RetryAfter.retry_after being an int; that is PTB's business, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
TOKEN = "123:ABCdef"
JSON = dict[str, Any]


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[SandboxServer, SandboxClient]]:
    async with SandboxServer() as server, SandboxClient(server.url) as client:
        yield server, client


def ext_bot(server: SandboxServer, limiter: ChatLimiter) -> ExtBot[None]:
    return ExtBot(TOKEN, base_url=server.api_base_url, base_file_url=server.file_base_url,
                  rate_limiter=limiter)


class FakeOutbox:
    """Records what is handed over; holds a chat until told the rows went out."""

    def __init__(self) -> None:
        self.queued: list[tuple[int, str, JSON]] = []
        self.queued_for: set[int] = set()

    async def hand_over(self, chat_id: int, method: str, params: JSON) -> None:
        self.queued.append((chat_id, method, params))
        self.queued_for.add(chat_id)

    def holding(self, chat_id: int) -> bool:
        return chat_id in self.queued_for


async def user(client: SandboxClient, name: str) -> int:
    return int((await client.create_user(name, started=True))["id"])


async def test_a_reply_waits_out_its_chats_429_and_other_chats_go_on(
    sandbox: tuple[SandboxServer, SandboxClient],
) -> None:
    _server, client = sandbox
    alice, bob = await user(client, "Alice"), await user(client, "Bob")
    async with ext_bot(_server, ChatLimiter(ChatDeadlines(), max_wait=10)) as bot:
        replies = asyncio.gather(*(bot.send_message(alice, f"reply {i}") for i in range(8)))
        await asyncio.sleep(0.3)  # Alice's burst is spent and her chat waits
        started = time.monotonic()
        await bot.send_message(bob, "not held up")
        assert time.monotonic() - started < 0.5
        sent = await replies  # every reply arrives, none raised
    assert sorted(m.text for m in sent) == [f"reply {i}" for i in range(8)]
    history = (await client.flood_history(alice))["chats"][str(alice)]
    assert history["refused"], "the sandbox's flood control was never met"
    assert inside_retry_after(history) == []
    assert len(await client.bot_messages(alice)) == 8


async def test_the_outbox_bot_shares_the_wait_and_is_refused_without_a_request(
    sandbox: tuple[SandboxServer, SandboxClient],
) -> None:
    server, client = sandbox
    alice = await user(client, "Alice")
    deadlines = ChatDeadlines()
    async with ext_bot(server, ChatLimiter(deadlines, max_wait=10)) as replies, \
            ext_bot(server, broadcast_rate_limiter(deadlines)) as outbox:
        await client.inject_fault("sendMessage", retry_after=2, chat_id=alice)
        reply = asyncio.create_task(replies.send_message(alice, "the reply"))
        await asyncio.sleep(0.3)  # the reply met its 429 and waits
        calls = (await client.stats())["calls"].get("sendMessage", 0)
        with pytest.raises(RetryAfter) as refused:
            await outbox.send_message(alice, "a notice")
        assert 1 <= retry_seconds(refused.value) <= 2
        assert (await client.stats())["calls"].get("sendMessage", 0) == calls
        assert not reply.done()
        assert (await reply).text == "the reply"
        assert (await outbox.send_message(alice, "a notice")).text == "a notice"


async def test_a_wait_beyond_the_bound_hands_the_reply_to_the_outbox(
    sandbox: tuple[SandboxServer, SandboxClient],
) -> None:
    server, client = sandbox
    alice = await user(client, "Alice")
    outbox = FakeOutbox()
    limiter = ChatLimiter(ChatDeadlines(), max_wait=1, handover=outbox)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("OK", callback_data="ok")]])
    async with ext_bot(server, limiter) as bot:
        await client.inject_fault("sendMessage", retry_after=30, chat_id=alice)
        started = time.monotonic()
        with pytest.raises(ReplyQueued):
            await bot.send_message(alice, "<b>the reply</b>", parse_mode="HTML",
                                   reply_markup=markup)
        assert time.monotonic() - started < 1
        # A later reply to the same chat is handed over too, without a request.
        with pytest.raises(ReplyQueued):
            await bot.edit_message_text("later", chat_id=alice, message_id=1)
        # Once the chat's wait is over, replies still follow the ones waiting in the outbox
        # (so none overtakes them), and go directly once those are out.
        limiter.deadlines = ChatDeadlines()
        with pytest.raises(ReplyQueued):
            await bot.send_message(alice, "after the wait")
        outbox.queued_for.clear()
        assert (await bot.send_message(alice, "direct")).text == "direct"
        # Without an outbox, the caller learns the wait.
        await client.inject_fault("sendMessage", retry_after=30, chat_id=alice)
        limiter.handover = None
        with pytest.raises(RetryAfter):
            await bot.send_message(alice, "nowhere to go")
        assert limiter.deadlines.remaining(alice) > 20
    # A callback's answer, a typing action, a delete: no per-chat limit, never held.
    assert limited_chat("answerCallbackQuery", {"callback_query_id": "7"}) is None
    assert limited_chat("sendChatAction", {"chat_id": alice, "action": "typing"}) is None
    assert limited_chat("deleteMessage", {"chat_id": alice, "message_id": 1}) is None
    assert limited_chat("editMessageReplyMarkup", {"chat_id": alice}) == alice
    assert outbox.queued == [
        (alice, "sendMessage", {"text": "<b>the reply</b>", "parse_mode": "HTML",
                                "reply_markup": markup.to_dict()}),
        (alice, "editMessageText", {"text": "later", "message_id": 1}),
        (alice, "sendMessage", {"text": "after the wait"}),
    ]
    assert [m["text"] for m in await client.bot_messages(alice)] == ["direct"]


async def test_a_handed_over_reply_keeps_its_kind_of_keyboard(
    sandbox: tuple[SandboxServer, SandboxClient],
) -> None:
    """A reply handed to the outbox may carry a reply keyboard (the location button): the
    outbox sends it as that keyboard, not as an inline one."""
    server, client = sandbox
    alice = await user(client, "Alice")
    keyboard = {"keyboard": [[{"text": "📍 位置", "request_location": True}]],
                "resize_keyboard": True, "one_time_keyboard": True}
    async with ext_bot(server, broadcast_rate_limiter()) as bot:
        await _call(bot, "sendMessage", alice, {"text": "where?", "reply_markup": keyboard})
        await _call(bot, "sendMessage", alice, {"text": "thanks",
                                                "reply_markup": {"remove_keyboard": True}})
    shown = await client.bot_messages(alice)
    assert shown[0]["reply_keyboard"]["keyboard"][0][0]["request_location"] is True
    assert "reply_markup" not in shown[0]


async def test_an_upload_under_a_long_wait_waits_and_never_overtakes_a_queued_reply(
    sandbox: tuple[SandboxServer, SandboxClient],
) -> None:
    """Issue 11 item 1: an upload (a generated photo, an album, editMessageMedia) cannot be
    stored as an outbox row. Under a wait beyond the handler's bound it was dropped (a bare
    RetryAfter), and while a queued reply waited it skipped the queue. Now it waits for the
    chat's deadline and for the replies queued ahead of it, then goes."""
    from tests.imagegen import jpeg_with_gps

    server, client = sandbox
    alice = await user(client, "Alice")
    outbox = FakeOutbox()
    limiter = ChatLimiter(ChatDeadlines(), max_wait=1, upload_max_wait=20, handover=outbox)
    async with ext_bot(server, limiter) as bot:
        await client.inject_fault("sendMessage", retry_after=2, chat_id=alice)
        with pytest.raises(ReplyQueued):
            await bot.send_message(alice, "the reply")
        started = time.monotonic()
        photo = asyncio.create_task(bot.send_photo(alice, jpeg_with_gps(64, 48, "#406080")))
        await asyncio.sleep(2.5)  # the chat's wait is over, but the reply is still queued
        assert not photo.done(), "the upload overtook the reply waiting in the outbox"
        outbox.queued_for.clear()  # the outbox delivered it
        sent = await photo
        assert sent.photo and time.monotonic() - started >= 2.5
        # A long wait of its own, with nothing queued: waited out, not dropped.
        await client.inject_fault("sendPhoto", retry_after=3, chat_id=alice)
        started = time.monotonic()
        assert (await bot.send_photo(alice, jpeg_with_gps(64, 48, "#608040"))).photo
        assert time.monotonic() - started >= 3
    assert [m.get("photo") is not None for m in await client.bot_messages(alice)] == [True, True]
