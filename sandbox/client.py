"""Async client for the sandbox's user-side API (/_sandbox/...), for tests and tools.

    async with SandboxClient(server.url) as sb:
        alice = await sb.create_user("Alice")
        await sb.send_text(alice["id"], "/start")
        reply = await sb.wait_for_bot_message(alice["id"])
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from types import TracebackType
from typing import Any

import aiohttp

JSON = dict[str, Any]
MessagePredicate = Callable[[JSON], bool]
TranscriptPredicate = Callable[[list[JSON]], bool]


class SandboxError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status
        self.description = description


def buttons(message: JSON) -> list[tuple[str, str | None]]:
    """(text, callback_data) of every inline button of a message, row by row."""
    markup = message.get("reply_markup") or {}
    return [(b.get("text", ""), b.get("callback_data"))
            for row in markup.get("inline_keyboard", []) for b in row]


def button_data(message: JSON, text_contains: str) -> str:
    """callback_data of the first inline button whose visible text contains text_contains."""
    for text, data in buttons(message):
        if text_contains in text and data is not None:
            return data
    raise LookupError(f"no button containing {text_contains!r} in {buttons(message)!r}")


class SandboxClient:
    def __init__(self, url: str, *, request_timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SandboxClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def request(self, method: str, path: str, *, json: Any = None,
                      data: Any = None, params: dict[str, Any] | None = None) -> Any:
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        async with self.session.request(method, self.url + path, json=json, data=data,
                                        params=query) as resp:
            if resp.status >= 300:
                try:
                    body = await resp.json(content_type=None)
                    description = str(body.get("description", body))
                except (ValueError, aiohttp.ContentTypeError):
                    description = await resp.text()
                raise SandboxError(resp.status, description)
            if resp.content_type == "application/json":
                return await resp.json()
            return await resp.read()

    @staticmethod
    def _drop_none(**kwargs: Any) -> JSON:
        return {k: v for k, v in kwargs.items() if v is not None}

    # ---------------------------------------------------------------------- people & chats

    async def create_user(self, first_name: str = "User", *, user_id: int | None = None,
                          last_name: str | None = None, username: str | None = None,
                          language_code: str = "zh-hans", started: bool = False) -> JSON:
        body = self._drop_none(id=user_id, first_name=first_name, last_name=last_name,
                               username=username, language_code=language_code, started=started)
        result: JSON = await self.request("POST", "/_sandbox/users", json=body)
        return result

    async def users(self) -> list[JSON]:
        result: list[JSON] = await self.request("GET", "/_sandbox/users")
        return result

    async def block_user(self, user_id: int, blocked: bool = True) -> JSON:
        result: JSON = await self.request("POST", f"/_sandbox/users/{user_id}/block",
                                          json={"blocked": blocked})
        return result

    async def create_group(self, title: str = "Group", *, chat_id: int | None = None,
                           chat_type: str = "supergroup", creator_user_id: int | None = None
                           ) -> JSON:
        body = self._drop_none(id=chat_id, title=title, type=chat_type,
                               creator_user_id=creator_user_id)
        result: JSON = await self.request("POST", "/_sandbox/groups", json=body)
        return result

    async def chats(self) -> list[JSON]:
        result: list[JSON] = await self.request("GET", "/_sandbox/chats")
        return result

    async def add_bot(self, chat_id: int, by_user_id: int, *, as_admin: bool = False) -> JSON:
        result: JSON = await self.request("POST", f"/_sandbox/groups/{chat_id}/bot", json={
            "action": "add", "by_user_id": by_user_id, "as_admin": as_admin})
        return result

    async def remove_bot(self, chat_id: int, by_user_id: int) -> JSON:
        result: JSON = await self.request("POST", f"/_sandbox/groups/{chat_id}/bot", json={
            "action": "remove", "by_user_id": by_user_id})
        return result

    async def add_member(self, chat_id: int, user_id: int, *, status: str = "member") -> JSON:
        result: JSON = await self.request("POST", f"/_sandbox/groups/{chat_id}/members", json={
            "user_id": user_id, "status": status})
        return result

    async def remove_member(self, chat_id: int, user_id: int) -> JSON:
        result: JSON = await self.request("POST", f"/_sandbox/groups/{chat_id}/members", json={
            "user_id": user_id, "action": "remove"})
        return result

    # ---------------------------------------------------------------------------- messages

    async def send_text(self, user_id: int, text: str, chat_id: int | None = None, *,
                        reply_to_message_id: int | None = None) -> JSON:
        body = self._drop_none(from_user_id=user_id, chat_id=chat_id, text=text,
                               reply_to_message_id=reply_to_message_id)
        result: JSON = await self.request("POST", "/_sandbox/messages", json=body)
        return result

    def _form(self, user_id: int, chat_id: int | None, caption: str | None,
              as_document: bool) -> aiohttp.FormData:
        form = aiohttp.FormData()
        form.add_field("from_user_id", str(user_id))
        if chat_id is not None:
            form.add_field("chat_id", str(chat_id))
        if caption is not None:
            form.add_field("caption", caption)
        form.add_field("as_document", "true" if as_document else "false")
        return form

    async def send_photo(self, user_id: int, data: bytes, caption: str | None = None,
                         chat_id: int | None = None, as_document: bool = False,
                         filename: str = "photo.jpg", content_type: str = "image/jpeg") -> JSON:
        form = self._form(user_id, chat_id, caption, as_document)
        form.add_field("file", data, filename=filename, content_type=content_type)
        result: JSON = await self.request("POST", "/_sandbox/photos", data=form)
        return result

    async def send_album(self, user_id: int, items: list[bytes], chat_id: int | None = None,
                         caption: str | None = None, as_document: bool = False) -> list[JSON]:
        form = self._form(user_id, chat_id, caption, as_document)
        for i, data in enumerate(items):
            form.add_field("file", data, filename=f"photo{i}.jpg", content_type="image/jpeg")
        result: list[JSON] = await self.request("POST", "/_sandbox/albums", data=form)
        return result

    async def send_document(self, user_id: int, data: bytes, filename: str = "file.pdf", *,
                            content_type: str = "application/octet-stream",
                            caption: str | None = None, chat_id: int | None = None) -> JSON:
        form = self._form(user_id, chat_id, caption, True)
        form.add_field("file", data, filename=filename, content_type=content_type)
        result: JSON = await self.request("POST", "/_sandbox/documents", data=form)
        return result

    async def send_location(self, user_id: int, latitude: float, longitude: float,
                            chat_id: int | None = None) -> JSON:
        result: JSON = await self.request("POST", "/_sandbox/locations", json=self._drop_none(
            from_user_id=user_id, chat_id=chat_id, latitude=latitude, longitude=longitude))
        return result

    async def send_sticker(self, user_id: int, chat_id: int | None = None) -> JSON:
        result: JSON = await self.request("POST", "/_sandbox/stickers", json=self._drop_none(
            from_user_id=user_id, chat_id=chat_id))
        return result

    async def send_voice(self, user_id: int, chat_id: int | None = None,
                         duration: int = 3) -> JSON:
        result: JSON = await self.request("POST", "/_sandbox/voice", json=self._drop_none(
            from_user_id=user_id, chat_id=chat_id, duration=duration))
        return result

    async def press(self, user_id: int, chat_id: int, message_id: int, data: str) -> str:
        """Press an inline button; returns the callback_query_id."""
        result = await self.request("POST", "/_sandbox/callbacks", json={
            "from_user_id": user_id, "chat_id": chat_id, "message_id": message_id, "data": data})
        return str(result["callback_query_id"])

    async def callback(self, callback_query_id: str) -> JSON:
        result: JSON = await self.request("GET", f"/_sandbox/callbacks/{callback_query_id}")
        return result

    # ------------------------------------------------------------------------- inspection

    async def messages(self, chat_id: int, after_message_id: int = 0,
                       limit: int = 1000) -> list[JSON]:
        result: list[JSON] = await self.request(
            "GET", f"/_sandbox/chats/{chat_id}/messages",
            params={"after_message_id": after_message_id, "limit": limit})
        return result

    async def bot_messages(self, chat_id: int, after_message_id: int = 0) -> list[JSON]:
        return [m for m in await self.messages(chat_id, after_message_id)
                if m.get("from", {}).get("is_bot")]

    async def events(self, after: int = 0, timeout: float = 0,
                     chat_id: int | None = None) -> JSON:
        result: JSON = await self.request("GET", "/_sandbox/events", params={
            "after": after, "timeout": round(timeout, 3), "chat_id": chat_id})
        return result

    async def _cursor(self) -> int:
        return int((await self.events(after=2**62))["cursor"])

    async def wait_for(self, chat_id: int, predicate: TranscriptPredicate,
                       timeout: float = 10.0) -> list[JSON]:
        """Wait until predicate(transcript) is true; returns that transcript.

        Event-driven (long-polls /_sandbox/events), so it reacts to edits and deletions too.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        cursor = await self._cursor()
        while True:
            transcript = await self.messages(chat_id)
            if predicate(transcript):
                return transcript
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met in chat {chat_id} within {timeout}s; "
                                   f"transcript: {transcript[-5:]!r}")
            wait = min(5.0, remaining)
            cursor = int((await self.events(cursor, wait, chat_id))["cursor"])

    async def wait_for_bot_message(self, chat_id: int, *, after_message_id: int = 0,
                                   predicate: MessagePredicate | None = None,
                                   timeout: float = 10.0) -> JSON:
        """First bot message (as last edited) with id > after_message_id matching predicate."""
        def match(m: JSON) -> bool:
            return (m["message_id"] > after_message_id and bool(m.get("from", {}).get("is_bot"))
                    and (predicate is None or predicate(m)))

        transcript = await self.wait_for(chat_id, lambda ms: any(match(m) for m in ms), timeout)
        return next(m for m in transcript if match(m))

    async def wait_for_callback_answer(self, callback_query_id: str,
                                       timeout: float = 10.0) -> JSON:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            status = await self.callback(callback_query_id)
            if status["answered"]:
                return status
            if loop.time() > deadline:
                raise TimeoutError(f"callback {callback_query_id} not answered in {timeout}s")
            await asyncio.sleep(0.02)

    async def file_bytes(self, file_id: str) -> bytes:
        """A file as Telegram serves it (a photo re-encoded without metadata)."""
        result: bytes = await self.request("GET", f"/_sandbox/files/{file_id}")
        return result

    async def uploaded_bytes(self, file_id: str) -> bytes:
        """A photo as its sender uploaded it, before Telegram's re-encoding: what the bot
        itself sent. For a document, the same as file_bytes."""
        result: bytes = await self.request("GET", f"/_sandbox/files/{file_id}/upload")
        return result

    async def pending_updates(self) -> list[JSON]:
        result: list[JSON] = await self.request("GET", "/_sandbox/updates")
        return result

    async def commands(self) -> list[JSON]:
        result: list[JSON] = await self.request("GET", "/_sandbox/commands")
        return result

    # --------------------------------------------------------------------------- control

    async def inject_fault(self, method: str, *, count: int = 1, status: int | None = None,
                           description: str | None = None, retry_after: int | None = None,
                           drop: bool = False, hold_ms: int | None = None,
                           chat_id: int | None = None) -> JSON:
        body = self._drop_none(method=method, count=count, status=status,
                               description=description, retry_after=retry_after, drop=drop,
                               hold_ms=hold_ms, chat_id=chat_id)
        result: JSON = await self.request("POST", "/_sandbox/faults", json=body)
        return result

    async def clear_faults(self) -> None:
        await self.request("DELETE", "/_sandbox/faults")

    async def config(self) -> JSON:
        result: JSON = await self.request("GET", "/_sandbox/config")
        return result

    async def set_config(self, *, flood_control: bool | None = None,
                         latency_ms: int | None = None,
                         group_privacy: bool | None = None) -> JSON:
        result: JSON = await self.request("POST", "/_sandbox/config", json=self._drop_none(
            flood_control=flood_control, latency_ms=latency_ms, group_privacy=group_privacy))
        return result

    async def set_flood_control(self, enabled: bool) -> JSON:
        return await self.set_config(flood_control=enabled)

    async def set_latency(self, latency_ms: int) -> JSON:
        return await self.set_config(latency_ms=latency_ms)

    async def stats(self) -> JSON:
        result: JSON = await self.request("GET", "/_sandbox/stats")
        return result

    async def clock(self) -> JSON:
        """The sandbox's clock: {now, iso, offset_seconds, jumps: [{name, label, at}]}."""
        result: JSON = await self.request("GET", "/_sandbox/clock")
        return result

    async def advance_clock(self, *, seconds: float = 0, hours: float = 0,
                            days: float = 0) -> JSON:
        """Move the clock forward (an application under the sandbox follows it)."""
        result: JSON = await self.request("POST", "/_sandbox/clock", json={
            "advance_seconds": seconds + 3600 * hours + 86400 * days})
        return result

    async def jump_clock(self, name: str) -> JSON:
        """Move the clock to a moment the application named, e.g. "bulletin"."""
        result: JSON = await self.request("POST", "/_sandbox/clock", json={"jump": name})
        return result

    async def flood_history(self, chat_id: int | None = None) -> JSON:
        """Per chat, the 429s flood control gave and the calls it let through (with times)."""
        params = {} if chat_id is None else {"chat_id": chat_id}
        result: JSON = await self.request("GET", "/_sandbox/flood", params=params)
        return result

    async def reset(self) -> None:
        await self.request("POST", "/_sandbox/reset")


# A call refused within this many seconds of an earlier 429 was already on its way when that
# 429 was given (concurrent requests): the caller could not have known yet.
IN_FLIGHT = 0.25


def inside_retry_after(chat_history: JSON) -> list[tuple[float, float]]:
    """From one chat of `flood_history()`: (429 time, call time) of each call made before a
    retry_after given to that chat was over: let through, or refused again (a caller that
    retries inside the wait and keeps getting 429); [] when none was."""
    refused = chat_history["refused"]
    early = [(r["at"], a["at"]) for r in refused for a in chat_history["accepted"]
             if r["at"] < a["at"] < r["at"] + r["retry_after"]]
    early += [(r["at"], again["at"]) for r in refused for again in refused
              if r["at"] + IN_FLIGHT < again["at"] < r["at"] + r["retry_after"]]
    return sorted(early)


def b64(data: bytes) -> str:
    """Helper for JSON uploads (data_base64 fields)."""
    return base64.b64encode(data).decode("ascii")
