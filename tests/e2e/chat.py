"""Reading a chat transcript the way a person reads the screen."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from sandbox.client import SandboxClient

JSON = dict[str, Any]


def buttons(message: JSON) -> list[tuple[str, str]]:
    markup = message.get("reply_markup") or {}
    return [(b["text"], b.get("callback_data", "")) for row in markup.get("inline_keyboard", [])
            for b in row]


def data_where(message: JSON, predicate: Any) -> str:
    for text, data in buttons(message):
        if predicate(text, data):
            return data
    raise AssertionError(f"no such button in {buttons(message)!r}")


def _look(m: JSON) -> tuple[object, ...]:
    return (m.get("edit_date"), body(m), json.dumps(m.get("reply_markup"), sort_keys=True))


def body(message: JSON) -> str:
    return str(message.get("text") or message.get("caption") or "")


class Chat:
    """One person's private chat with the bot."""

    def __init__(self, sb: SandboxClient, user_id: int, chat_id: int | None = None) -> None:
        self.sb = sb
        self.user_id = user_id
        self.chat_id = chat_id if chat_id is not None else user_id

    async def last_id(self) -> int:
        msgs = await self.sb.messages(self.chat_id)
        return msgs[-1]["message_id"] if msgs else 0

    async def say(self, text: str, timeout: float = 10.0) -> JSON:
        """Send text and wait for the bot's next message."""
        sent = await self.sb.send_text(self.user_id, text, self.chat_id)
        return await self.sb.wait_for_bot_message(
            self.chat_id, after_message_id=sent["message_id"], timeout=timeout)

    async def send_photo(self, data: bytes, *, as_document: bool = False,
                         caption: str | None = None, timeout: float = 10.0) -> JSON:
        sent = await self.sb.send_photo(self.user_id, data, caption, chat_id=self.chat_id,
                                        as_document=as_document)
        return await self.sb.wait_for_bot_message(
            self.chat_id, after_message_id=sent["message_id"], timeout=timeout)

    async def press(self, message: JSON, data: str, timeout: float = 10.0) -> JSON:
        """Press a button and wait until the bot answered the press; returns the message then."""
        before = await self.sb.messages(self.chat_id)
        edit_before = {m["message_id"]: _look(m) for m in before}
        qid = await self.sb.press(self.user_id, self.chat_id, message["message_id"], data)
        await self.sb.wait_for_callback_answer(qid, timeout)

        def changed(transcript: list[JSON]) -> bool:
            for m in transcript:
                if m["message_id"] not in edit_before and m.get("from", {}).get("is_bot"):
                    return True
                if m["message_id"] == message["message_id"] and (
                        _look(m) != edit_before[m["message_id"]]):
                    return True
            return False

        transcript = await self.sb.wait_for(self.chat_id, changed, timeout)
        # A new message from the bot wins; otherwise the pressed message, as edited.
        fresh = [m for m in transcript if m["message_id"] not in edit_before
                 and m.get("from", {}).get("is_bot")]
        if fresh:
            return fresh[-1]
        return next(m for m in transcript if m["message_id"] == message["message_id"])

    async def press_expect_alert(self, message: JSON, data: str) -> JSON:
        qid = await self.sb.press(self.user_id, self.chat_id, message["message_id"], data)
        return await self.sb.wait_for_callback_answer(qid)

    async def prompt(self) -> JSON:
        """The newest bot message that carries buttons."""
        for m in reversed(await self.sb.messages(self.chat_id)):
            if m.get("from", {}).get("is_bot") and buttons(m):
                return m
        raise AssertionError("no bot message with buttons")


def shown(html_text: str) -> str:
    """What a catalogue text looks like on screen: tags gone, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_text))
