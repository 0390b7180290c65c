"""User-side JSON API under /_sandbox/: simulated people, groups, and inspection hooks.

The web page (sandbox/web/) and sandbox.client.SandboxClient are written against this contract;
see sandbox/README.md. Errors use the Bot API envelope shape with a 4xx status.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web
from PIL import Image

from sandbox.botapi import METHODS
from sandbox.clock import ClockError
from sandbox.faults import FaultInjector
from sandbox.files import document_dict, guess_document_name
from sandbox.html_entities import u16len
from sandbox.state import (
    JSON,
    CallbackRec,
    ChatRec,
    MessageRec,
    SandboxState,
    UserRec,
    detect_entities,
)
from sandbox.validation import MAX_CAPTION, MAX_TEXT, ApiError, UploadedFile, bad_request

_dumps = partial(json.dumps, ensure_ascii=False)
RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def ok(body: Any) -> web.Response:
    return web.json_response(body, dumps=_dumps)


def not_found(what: str) -> ApiError:
    return ApiError(404, f"Not Found: {what}")


class Body:
    """A user-side request body: JSON, urlencoded or multipart, with any uploaded files."""

    def __init__(self, fields: dict[str, Any], files: list[UploadedFile]) -> None:
        self.fields = fields
        self.files = files

    @classmethod
    async def read(cls, request: web.Request) -> Body:
        try:
            return await cls._read(request)
        except ApiError:
            raise
        except Exception as exc:  # malformed multipart/urlencoded bodies are client errors
            raise bad_request(f"can't parse request body: {exc}") from exc

    @classmethod
    async def _read(cls, request: web.Request) -> Body:
        fields: dict[str, Any] = dict(request.query)
        files: list[UploadedFile] = []
        if request.can_read_body:
            if request.content_type == "multipart/form-data" or (
                    request.content_type == "application/x-www-form-urlencoded"
                    and not (await request.read()).lstrip().startswith(b"{")):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files.append(UploadedFile(value.filename, value.content_type,
                                                  value.file.read()))
                    else:
                        fields[key] = str(value)
            else:
                raw = await request.read()
                if raw.strip():
                    try:
                        data = json.loads(raw)
                    except ValueError as exc:
                        raise bad_request(f"body is not valid JSON: {exc}") from exc
                    if not isinstance(data, dict):
                        raise bad_request("JSON body must be an object")
                    fields.update(data)
        return cls(fields, files)

    def get(self, name: str, default: Any = None) -> Any:
        value = self.fields.get(name)
        return default if value is None or value == "" else value

    def opt_int(self, name: str, default: int | None = None) -> int | None:
        value = self.get(name)
        if value is None:
            return default
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise bad_request(f"{name} must be an integer") from exc

    def req_int(self, name: str) -> int:
        value = self.opt_int(name)
        if value is None:
            raise bad_request(f"{name} is required")
        return value

    def opt_str(self, name: str, default: str | None = None) -> str | None:
        value = self.get(name)
        return default if value is None else str(value)

    def flag(self, name: str) -> bool:
        value = self.get(name, False)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes", "on")
        return bool(value)

    def num(self, name: str) -> float:
        try:
            return float(self.get(name))
        except (TypeError, ValueError) as exc:
            raise bad_request(f"{name} must be a number") from exc

    def uploads(self) -> list[UploadedFile]:
        """Files from multipart parts, or base64 from JSON (data_base64: str | list)."""
        if self.files:
            return self.files
        raw = self.fields.get("data_base64")
        items = raw if isinstance(raw, list) else ([raw] if raw else [])
        items += [f for f in self.fields.get("files") or [] if f]
        default_name = self.opt_str("filename", "photo.jpg") or "photo.jpg"
        default_type = self.opt_str("mime_type", "") or ""
        out = []
        for item in items:
            name, ctype, b64 = default_name, default_type, item
            if isinstance(item, dict):
                name = str(item.get("filename") or default_name)
                ctype = str(item.get("mime_type") or default_type)
                b64 = item.get("data_base64")
            try:
                data = base64.b64decode(str(b64), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise bad_request("data_base64 is not valid base64") from exc
            out.append(UploadedFile(name, ctype, data))
        return out


class UserApi:
    def __init__(self, state: SandboxState, faults: FaultInjector) -> None:
        self.state = state
        self.faults = faults

    # ------------------------------------------------------------------------------ helpers

    def sender(self, body: Body) -> tuple[UserRec, ChatRec]:
        user = self.state.user(body.req_int("from_user_id"))
        chat_id = body.opt_int("chat_id", user.id)
        assert chat_id is not None
        return user, self.state.chat(chat_id)

    def reply(self, chat: ChatRec, body: Body) -> JSON:
        mid = body.opt_int("reply_to_message_id")
        if mid is None:
            return {}
        target = self.state.reply_target(chat, None, mid)
        return {"reply_to_message": target} if target else {}

    def caption(self, body: Body) -> JSON:
        caption = body.opt_str("caption")
        if not caption:
            return {}
        if u16len(caption) > MAX_CAPTION:
            raise bad_request("message caption is too long")
        out: JSON = {"caption": caption}
        ents = _entities(caption)
        if ents:
            out["caption_entities"] = ents
        return out

    def media_content(self, upload: UploadedFile, as_document: bool) -> JSON:
        if as_document:
            name = guess_document_name(upload.filename, upload.content_type)
            stored = self.state.files.add_document(upload.data, name, upload.content_type)
            return {"document": document_dict(stored)}
        sizes = self.state.files.add_photo(upload.data, strict=False)
        return {"photo": [s.photo_size() for s in sizes]}

    def chat_summary(self, chat: ChatRec) -> JSON:
        out: JSON = {"id": chat.id, "type": chat.type, "bot_member": chat.bot_member,
                     "bot_status": chat.bot_status, "last_message_id": chat.last_message_id}
        if chat.user is not None:
            out["first_name"] = chat.user.first_name
            if chat.user.last_name:
                out["last_name"] = chat.user.last_name
            if chat.user.username:
                out["username"] = chat.user.username
        else:
            out["title"] = chat.title
            out["members"] = [{"user_id": uid, "status": st} for uid, st in chat.members.items()]
        return out

    # ------------------------------------------------------------------------ people & chats

    async def create_user(self, request: web.Request) -> web.StreamResponse:
        body = await Body.read(request)
        user_id = body.opt_int("id")
        if user_id is not None and user_id in self.state.users:
            raise bad_request(f"user {user_id} already exists")
        user = self.state.create_user(
            body.opt_str("first_name", "User") or "User", user_id=user_id,
            last_name=body.opt_str("last_name"), username=body.opt_str("username"),
            language_code=body.opt_str("language_code", "zh-hans"), started=body.flag("started"))
        return ok(user.to_dict())

    async def list_users(self, request: web.Request) -> web.StreamResponse:
        return ok([{**u.to_dict(), "started": u.started, "blocked": u.blocked}
                   for u in self.state.users.values()])

    async def block_user(self, request: web.Request) -> web.StreamResponse:
        body = await Body.read(request)
        user = self.state.user(int(request.match_info["user_id"]))
        user.blocked = body.flag("blocked") if "blocked" in body.fields else True
        return ok({**user.to_dict(), "blocked": user.blocked})

    async def create_group(self, request: web.Request) -> web.StreamResponse:
        body = await Body.read(request)
        chat_id = body.opt_int("id")
        if chat_id is not None and chat_id in self.state.chats:
            raise bad_request(f"chat {chat_id} already exists")
        chat = self.state.create_group(
            body.opt_str("title", "Group") or "Group", chat_id=chat_id,
            chat_type=body.opt_str("type", "supergroup") or "supergroup")
        creator = body.opt_int("creator_user_id")
        if creator is not None:
            chat.members[self.state.user(creator).id] = "creator"
        return ok(chat.to_dict())

    async def list_chats(self, request: web.Request) -> web.StreamResponse:
        return ok([self.chat_summary(c) for c in self.state.chats.values()])

    async def group_bot(self, request: web.Request) -> web.StreamResponse:
        body = await Body.read(request)
        chat = self.state.chat(int(request.match_info["chat_id"]))
        if not chat.is_group:
            raise bad_request("not a group")
        by = self.state.user(body.req_int("by_user_id"))
        action = body.opt_str("action", "add")
        bot = self.state.bot_user()
        chat.members.setdefault(by.id, "member")
        if action == "add":
            if chat.bot_member:
                raise bad_request("the bot is already a member")
            status = "administrator" if body.flag("as_admin") else "member"
            self.state.set_bot_status(chat, status, by.to_dict())
            self.state.service_message(by, chat, {"new_chat_members": [bot],
                                                  "new_chat_member": bot,
                                                  "new_chat_participant": bot})
        elif action == "remove":
            if not chat.bot_member:
                raise bad_request("the bot is not a member")
            self.state.set_bot_status(chat, "kicked", by.to_dict())
            self.state.service_message(by, chat, {"left_chat_member": bot,
                                                  "left_chat_participant": bot},
                                       force_update=True)
        elif action == "promote":
            self.state.set_bot_status(chat, "administrator", by.to_dict())
        else:
            raise bad_request("action must be add, remove or promote")
        return ok(self.chat_summary(chat))

    async def group_members(self, request: web.Request) -> web.StreamResponse:
        body = await Body.read(request)
        chat = self.state.chat(int(request.match_info["chat_id"]))
        if not chat.is_group:
            raise bad_request("not a group")
        user = self.state.user(body.req_int("user_id"))
        by_id = body.opt_int("by_user_id", user.id)
        by = self.state.user(by_id) if by_id is not None else user
        action = body.opt_str("action", "add")
        if action == "add":
            self.state.set_member_status(chat, user, body.opt_str("status", "member") or "member",
                                         by.to_dict())
            content: JSON = {"new_chat_members": [user.to_dict()],
                             "new_chat_member": user.to_dict(),
                             "new_chat_participant": user.to_dict()}
        elif action == "remove":
            self.state.set_member_status(chat, user, "left", by.to_dict())
            content = {"left_chat_member": user.to_dict(),
                       "left_chat_participant": user.to_dict()}
        else:
            raise bad_request("action must be add or remove")
        rec = self.state.service_message(by, chat, content)
        return ok(rec.view())

    # ----------------------------------------------------------------------------- messages

    async def send_message(self, request: web.Request) -> web.StreamResponse:
        body = await Body.read(request)
        user, chat = self.sender(body)
        text = body.opt_str("text", "") or ""
        if not text.strip():
            raise bad_request("message text is empty")
        if u16len(text) > MAX_TEXT:
            raise bad_request("message is too long")
        content: JSON = {"text": text, **self.reply(chat, body)}
        ents = _entities(text)
        if ents:
            content["entities"] = ents
        return ok(self.state.user_message(user, chat, content).view())

    async def send_photo(self, request: web.Request) -> web.StreamResponse:
        body = await Body.read(request)
        user, chat = self.sender(body)
        uploads = body.uploads()
        if not uploads:
            raise bad_request("no file: send a multipart part named 'file' or data_base64")
        content = {**self.media_content(uploads[0], body.flag("as_document")),
                   **self.caption(body), **self.reply(chat, body)}
        return ok(self.state.user_message(user, chat, content).view())

    async def send_document(self, request: web.Request) -> web.StreamResponse:
        body = await Body.read(request)
        user, chat = self.sender(body)
        uploads = body.uploads()
        if not uploads:
            raise bad_request("no file: send a multipart part named 'file' or data_base64")
        content = {**self.media_content(uploads[0], True), **self.caption(body),
                   **self.reply(chat, body)}
        return ok(self.state.user_message(user, chat, content).view())

    async def send_album(self, request: web.Request) -> web.StreamResponse:
        body = await Body.read(request)
        user, chat = self.sender(body)
        uploads = body.uploads()
        if not 2 <= len(uploads) <= 10:
            raise bad_request("an album has 2-10 files")
        as_document = body.flag("as_document")
        contents = [self.media_content(u, as_document) for u in uploads]
        contents[0].update(self.caption(body))  # Telegram shows the album caption on item 1
        group_id = self.state.new_media_group_id()
        out = []
        for content in contents:
            content["media_group_id"] = group_id
            out.append(self.state.user_message(user, chat, content).view())
        return ok(out)

    async def send_location(self, request: web.Request) -> web.StreamResponse:
        body = await Body.read(request)
        user, chat = self.sender(body)
        lat, lon = body.num("latitude"), body.num("longitude")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise bad_request("wrong coordinates")
        content = {"location": {"latitude": lat, "longitude": lon}, **self.reply(chat, body)}
        return ok(self.state.user_message(user, chat, content).view())

    async def send_sticker(self, request: web.Request) -> web.StreamResponse:
        body = await Body.read(request)
        user, chat = self.sender(body)
        buf = io.BytesIO()
        Image.new("RGBA", (512, 512), (255, 200, 0, 255)).save(buf, "WEBP")
        stored = self.state.files.add("sticker", buf.getvalue(), "image/webp", "webp",
                                      width=512, height=512)
        sticker = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                   "type": "regular", "width": 512, "height": 512, "is_animated": False,
                   "is_video": False, "emoji": body.opt_str("emoji", "😀"),
                   "file_size": stored.size}
        return ok(self.state.user_message(user, chat, {"sticker": sticker}).view())

    async def send_voice(self, request: web.Request) -> web.StreamResponse:
        body = await Body.read(request)
        user, chat = self.sender(body)
        uploads = body.uploads()
        data = uploads[0].data if uploads else b"OggS" + bytes(2048)
        stored = self.state.files.add("voice", data, "audio/ogg", "oga")
        voice = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                 "duration": body.opt_int("duration", 3), "mime_type": "audio/ogg",
                 "file_size": stored.size}
        return ok(self.state.user_message(user, chat, {"voice": voice}).view())

    # ----------------------------------------------------------------------------- callbacks

    async def press(self, request: web.Request) -> web.StreamResponse:
        body = await Body.read(request)
        user = self.state.user(body.req_int("from_user_id"))
        chat = self.state.chat(body.opt_int("chat_id", user.id) or user.id)
        rec = chat.live(body.req_int("message_id"))
        if rec is None:
            raise bad_request("message not found")
        data = body.opt_str("data", "") or ""
        if not _has_button(rec, data):
            raise bad_request(f"message has no inline button with callback_data {data!r}")
        if chat.is_group and not chat.bot_member:
            raise bad_request("the bot is not a member of this group")
        if chat.user is not None:
            user.started = True
        cb = CallbackRec(self.state.new_callback_id(), chat.id, rec.message_id, user.id, data)
        self.state.callbacks[cb.id] = cb
        self.state.updates.push("callback_query", {
            "id": cb.id, "from": user.to_dict(), "message": rec.message,
            "chat_instance": self.state.chat_instance(chat.id), "data": data})
        return ok({"callback_query_id": cb.id})

    async def callback_status(self, request: web.Request) -> web.StreamResponse:
        cb = self.state.callbacks.get(request.match_info["cb_id"])
        if cb is None:
            raise not_found("no such callback query")
        return ok(cb.to_dict())

    # ---------------------------------------------------------------------------- inspection

    async def transcript(self, request: web.Request) -> web.StreamResponse:
        chat = self.state.chat(_int_arg(request.match_info["chat_id"], "chat_id"))
        after = _int_arg(request.query.get("after_message_id", "0"), "after_message_id")
        limit = _int_arg(request.query.get("limit", "100"), "limit")
        return ok(self.state.transcript(chat, after, max(1, min(limit, 1000))))

    async def events(self, request: web.Request) -> web.StreamResponse:
        after = _int_arg(request.query.get("after", "0"), "after")
        try:
            timeout = min(60.0, max(0.0, float(request.query.get("timeout", "0"))))
        except ValueError as exc:
            raise bad_request("timeout must be a number") from exc
        chat_raw = request.query.get("chat_id")
        chat_id = _int_arg(chat_raw, "chat_id") if chat_raw else None
        cursor, events = await self.state.events.wait(after, timeout, chat_id)
        return ok({"cursor": cursor, "events": events})

    async def file(self, request: web.Request) -> web.StreamResponse:
        stored = self.state.files.get(request.match_info["file_id"])
        if stored is None:
            raise not_found("no such file")
        return web.Response(body=stored.data, content_type=stored.mime_type)

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """A photo's bytes as they were uploaded, before the re-encoding Telegram does (so a
        test can check what the bot sent, not only what Telegram would show)."""
        stored = self.state.files.get(request.match_info["file_id"])
        if stored is None:
            raise not_found("no such file")
        data = stored.upload if stored.upload is not None else stored.data
        return web.Response(body=data, content_type="application/octet-stream")

    async def updates(self, request: web.Request) -> web.StreamResponse:
        return ok(self.state.updates.pending())

    async def commands(self, request: web.Request) -> web.StreamResponse:
        return ok([{"scope": json.loads(scope), "language_code": lang, "commands": cmds}
                   for (scope, lang), cmds in self.state.commands.items()])

    async def add_fault(self, request: web.Request) -> web.StreamResponse:
        body = await Body.read(request)
        name = body.opt_str("method")
        if not name:
            raise bad_request("method is required")
        if name != "*" and name.lower() not in METHODS:
            raise bad_request(f"unknown Bot API method {name!r}")
        fault = self.faults.add(
            name, count=body.opt_int("count", 1) or 1, status=body.opt_int("status"),
            description=body.opt_str("description"), retry_after=body.opt_int("retry_after"),
            drop=body.flag("drop"), hold_ms=body.opt_int("hold_ms"),
            chat_id=body.opt_int("chat_id"))
        return ok(fault.to_dict())

    async def clear_faults(self, request: web.Request) -> web.StreamResponse:
        self.faults.clear()
        return ok({"ok": True})

    async def list_faults(self, request: web.Request) -> web.StreamResponse:
        return ok(self.faults.list())

    def config_dict(self) -> JSON:
        return {"flood_control": self.state.flood.enabled, "latency_ms": self.state.latency_ms,
                "group_privacy": self.state.group_privacy,
                "bot": self.state.bot_user()}

    async def get_config(self, request: web.Request) -> web.StreamResponse:
        return ok(self.config_dict())

    async def set_config(self, request: web.Request) -> web.StreamResponse:
        body = await Body.read(request)
        if "flood_control" in body.fields:
            self.state.flood.enabled = body.flag("flood_control")
            self.state.flood.reset()
        if "latency_ms" in body.fields:
            self.state.latency_ms = max(0, body.opt_int("latency_ms", 0) or 0)
        if "group_privacy" in body.fields:
            self.state.group_privacy = body.flag("group_privacy")
        return ok(self.config_dict())

    async def stats(self, request: web.Request) -> web.StreamResponse:
        return ok({"calls": dict(self.state.calls), "errors": dict(self.state.errors),
                   "pending_updates": self.state.updates.pending_count()})

    async def get_clock(self, request: web.Request) -> web.StreamResponse:
        return ok(self.state.clock.to_dict())

    async def move_clock(self, request: web.Request) -> web.StreamResponse:
        """{"advance_seconds": n} or {"jump": name}: the clock moves forward only."""
        body = await Body.read(request)
        try:
            if "jump" in body.fields:
                self.state.clock.jump(str(body.get("jump")))
            else:
                self.state.clock.advance(body.num("advance_seconds"))
        except ClockError as exc:
            raise bad_request(str(exc)) from exc
        return ok(self.state.clock.to_dict())

    async def flood(self, request: web.Request) -> web.StreamResponse:
        """Per chat, the 429s flood control gave and the calls it let through, with their
        times in seconds on one monotonic clock (`now` is the same clock's present)."""
        flood = self.state.flood
        only = request.query.get("chat_id")
        chat = _int_arg(only, "chat_id") if only else None
        return ok({"enabled": flood.enabled, "now": flood.clock(),
                   "chats": {str(c): h.to_dict() for c, h in flood.history.items()
                             if chat is None or c == chat}})

    async def reset(self, request: web.Request) -> web.StreamResponse:
        self.state.reset()
        self.faults.clear()
        return ok({"ok": True})


def _int_arg(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise bad_request(f"{name} must be an integer") from exc


def _entities(text: str) -> list[JSON]:
    return detect_entities(text)


def _has_button(rec: MessageRec, data: str) -> bool:
    markup = rec.message.get("reply_markup") or {}
    return any(isinstance(b, dict) and b.get("callback_data") == data
               for row in markup.get("inline_keyboard", []) for b in row)


def setup_user_routes(app: web.Application, state: SandboxState, faults: FaultInjector) -> None:
    api = UserApi(state, faults)
    routes: list[tuple[str, str, RouteHandler]] = [
        ("POST", "/_sandbox/users", api.create_user),
        ("GET", "/_sandbox/users", api.list_users),
        ("POST", "/_sandbox/users/{user_id}/block", api.block_user),
        ("POST", "/_sandbox/groups", api.create_group),
        ("GET", "/_sandbox/chats", api.list_chats),
        ("POST", "/_sandbox/groups/{chat_id}/bot", api.group_bot),
        ("POST", "/_sandbox/groups/{chat_id}/members", api.group_members),
        ("POST", "/_sandbox/messages", api.send_message),
        ("POST", "/_sandbox/photos", api.send_photo),
        ("POST", "/_sandbox/albums", api.send_album),
        ("POST", "/_sandbox/documents", api.send_document),
        ("POST", "/_sandbox/locations", api.send_location),
        ("POST", "/_sandbox/stickers", api.send_sticker),
        ("POST", "/_sandbox/voice", api.send_voice),
        ("POST", "/_sandbox/callbacks", api.press),
        ("GET", "/_sandbox/callbacks/{cb_id}", api.callback_status),
        ("GET", "/_sandbox/chats/{chat_id}/messages", api.transcript),
        ("GET", "/_sandbox/events", api.events),
        ("GET", "/_sandbox/files/{file_id}", api.file),
        ("GET", "/_sandbox/files/{file_id}/upload", api.upload),
        ("GET", "/_sandbox/updates", api.updates),
        ("GET", "/_sandbox/commands", api.commands),
        ("POST", "/_sandbox/faults", api.add_fault),
        ("GET", "/_sandbox/faults", api.list_faults),
        ("DELETE", "/_sandbox/faults", api.clear_faults),
        ("GET", "/_sandbox/config", api.get_config),
        ("POST", "/_sandbox/config", api.set_config),
        ("GET", "/_sandbox/stats", api.stats),
        ("GET", "/_sandbox/flood", api.flood),
        ("POST", "/_sandbox/reset", api.reset),
        ("GET", "/_sandbox/clock", api.get_clock),
        ("POST", "/_sandbox/clock", api.move_clock),
    ]
    for verb, path, handler in routes:
        app.router.add_route(verb, path, handler)
