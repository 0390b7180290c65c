"""In-memory world of the sandbox: users, chats, messages, files, callbacks, updates, events."""

from __future__ import annotations

import copy
import hashlib
import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sandbox.clock import SandboxClock
from sandbox.events import EventLog
from sandbox.files import FileStore
from sandbox.flood import FloodController
from sandbox.html_entities import u16len
from sandbox.updates import UpdateQueue
from sandbox.validation import bad_request, forbidden

JSON = dict[str, Any]
DEFAULT_BOT_ID = 1000000001


@dataclass
class UserRec:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "zh-hans"
    started: bool = False  # has written to the bot privately, so the bot may message them
    blocked: bool = False  # has blocked the bot

    def to_dict(self) -> JSON:
        out: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


@dataclass
class MessageRec:
    message: JSON
    from_bot: bool
    deleted: bool = False
    # Reply keyboards are not part of a Bot API Message (PTB would choke on them there), but
    # the web page wants to show them, so they live beside the message.
    keyboard: JSON | None = None

    def view(self) -> JSON:
        out = decorate(self.message)
        if self.keyboard is not None:
            out["reply_keyboard"] = self.keyboard
        return out

    @property
    def message_id(self) -> int:
        return int(self.message["message_id"])


@dataclass
class ChatRec:
    id: int
    type: str  # private | group | supergroup
    title: str | None = None
    user: UserRec | None = None  # the other party of a private chat
    bot_status: str = "left"  # member | administrator | left | kicked
    members: dict[int, str] = field(default_factory=dict)  # user id -> status
    messages: dict[int, MessageRec] = field(default_factory=dict)
    next_message_id: int = 1
    menu_button: JSON | None = None
    pinned_message_id: int | None = None

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")

    @property
    def bot_member(self) -> bool:
        return not self.is_group or self.bot_status in ("member", "administrator")

    @property
    def last_message_id(self) -> int:
        return self.next_message_id - 1

    def to_dict(self) -> JSON:
        if self.user is not None:
            out = self.user.to_dict()
            out.pop("is_bot", None)
            out.pop("language_code", None)
            out["type"] = "private"
            return out
        return {"id": self.id, "type": self.type, "title": self.title or ""}

    def live(self, message_id: int) -> MessageRec | None:
        rec = self.messages.get(message_id)
        return rec if rec is not None and not rec.deleted else None


@dataclass
class CallbackRec:
    id: str
    chat_id: int
    message_id: int
    user_id: int
    data: str
    answered: bool = False
    text: str | None = None
    show_alert: bool = False
    url: str | None = None

    def to_dict(self) -> JSON:
        return {"callback_query_id": self.id, "answered": self.answered, "text": self.text,
                "show_alert": self.show_alert, "url": self.url, "chat_id": self.chat_id,
                "message_id": self.message_id, "data": self.data}


_COMMAND_RE = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")
_MENTION_RE = re.compile(r"(?<!\w)@[A-Za-z0-9_]{5,32}")
_URL_RE = re.compile(r"https?://[^\s<>\"]+")
_HASHTAG_RE = re.compile(r"(?<![\w#])#\w+")


def detect_entities(text: str) -> list[JSON]:
    """Entities Telegram adds to a user's plain text (bot_command is the one bots rely on)."""
    found: list[JSON] = []
    for etype, rx in (("bot_command", _COMMAND_RE), ("url", _URL_RE), ("mention", _MENTION_RE),
                      ("hashtag", _HASHTAG_RE)):
        for m in rx.finditer(text):
            start = u16len(text[: m.start()])
            if any(e["offset"] <= start < e["offset"] + e["length"] for e in found):
                continue
            found.append({"type": etype, "offset": start, "length": u16len(m.group(0))})
    return sorted(found, key=lambda e: e["offset"])


def decorate(message: JSON) -> JSON:
    """Copy of a message for the web page: file objects gain a download "url"."""
    out = copy.deepcopy(message)
    for size in out.get("photo", []):
        size["url"] = f"/_sandbox/files/{size['file_id']}"
    for key in ("document", "sticker", "voice", "video", "audio", "animation"):
        if isinstance(out.get(key), dict):
            out[key]["url"] = f"/_sandbox/files/{out[key]['file_id']}"
    return out


class SandboxState:
    def __init__(self, bot_username: str = "wenming_bot",
                 bot_first_name: str = "文明督查") -> None:
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.bot_id = DEFAULT_BOT_ID
        self.users: dict[int, UserRec] = {}
        self.chats: dict[int, ChatRec] = {}
        self.files = FileStore()
        self.updates = UpdateQueue()
        self.events = EventLog()
        self.flood = FloodController()
        # Message dates follow it; never reset (time does not run backwards). A change is an
        # event (chat_id 0: no chat), so every open web page shows the new time.
        self.clock = SandboxClock()
        self.clock.on_change(self._clock_moved)
        self.callbacks: dict[str, CallbackRec] = {}
        self.commands: dict[tuple[str, str], list[JSON]] = {}
        self.default_menu_button: JSON = {"type": "default"}
        self.bot_profile: dict[str, str] = {}
        self.group_privacy = False  # real bots default to privacy mode; see README
        self.latency_ms = 0
        self.calls: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self._media_groups = itertools.count(13000000000000000)

    def _clock_moved(self) -> None:
        self.events.emit("clock", 0, {}, clock=self.clock.to_dict())

    def reset(self) -> None:
        self.users.clear()
        self.chats.clear()
        self.files.clear()
        self.updates.reset()
        self.events.clear()
        self.flood.reset()
        self.callbacks.clear()
        self.commands.clear()
        self.default_menu_button = {"type": "default"}
        self.calls.clear()
        self.errors.clear()

    # ---------------------------------------------------------------------------- identities

    def bot_user(self) -> JSON:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.bot_first_name,
                "username": self.bot_username}

    def get_me(self) -> JSON:
        return {**self.bot_user(), "can_join_groups": True, "can_read_all_group_messages":
                not self.group_privacy, "supports_inline_queries": False,
                "can_connect_to_business": False, "has_main_web_app": False}

    def create_user(self, first_name: str, *, user_id: int | None = None,
                    last_name: str | None = None, username: str | None = None,
                    language_code: str | None = "zh-hans", started: bool = False) -> UserRec:
        if user_id is None:
            user_id = 100000 + next(self._ids)
            while user_id in self.users:
                user_id = 100000 + next(self._ids)
        if user_id <= 0:
            raise bad_request("user id must be positive")
        user = UserRec(user_id, first_name, last_name, username, language_code, started)
        self.users[user_id] = user
        self.chats[user_id] = ChatRec(user_id, "private", user=user, bot_status="member")
        return user

    def user(self, user_id: int) -> UserRec:
        user = self.users.get(user_id)
        if user is None:
            raise bad_request(f"user {user_id} not found")
        return user

    def create_group(self, title: str, *, chat_id: int | None = None,
                     chat_type: str = "supergroup") -> ChatRec:
        if chat_type not in ("group", "supergroup"):
            raise bad_request("type must be group or supergroup")
        if chat_id is None:
            base = -1001000000000 if chat_type == "supergroup" else -4000000000
            chat_id = base - next(self._ids)
            while chat_id in self.chats:
                chat_id = base - next(self._ids)
        if chat_id >= 0:
            raise bad_request("group ids are negative")
        chat = ChatRec(chat_id, chat_type, title=title)
        self.chats[chat_id] = chat
        return chat

    def chat(self, chat_id: int | str) -> ChatRec:
        if isinstance(chat_id, str):
            name = chat_id.lstrip("@").lower()
            for chat in self.chats.values():
                if chat.user is not None and (chat.user.username or "").lower() == name:
                    return chat
            raise bad_request("chat not found")
        found = self.chats.get(chat_id)
        if found is None:
            raise bad_request("chat not found")
        return found

    def chat_for_bot_send(self, chat_id: int | str) -> ChatRec:
        """The chat, if the bot may post there; otherwise Telegram's 400/403."""
        chat = self.chat(chat_id)
        kind = "supergroup" if chat.type == "supergroup" else "group"
        if chat.is_group and chat.bot_status == "kicked":
            raise forbidden(f"bot was kicked from the {kind} chat")
        if chat.is_group and chat.bot_status == "left":
            raise forbidden(f"bot is not a member of the {kind} chat")
        if chat.user is not None:
            if chat.user.blocked:
                raise forbidden("bot was blocked by the user")
            if not chat.user.started:
                raise forbidden("bot can't initiate conversation with a user")
        return chat

    # ------------------------------------------------------------------------------ messages

    def _store(self, chat: ChatRec, sender: JSON, content: JSON, *, from_bot: bool,
               keyboard: JSON | None = None) -> MessageRec:
        message: JSON = {"message_id": chat.next_message_id, "from": sender, "chat":
                         chat.to_dict(), "date": self.clock.unix(), **content}
        chat.next_message_id += 1
        rec = MessageRec(message, from_bot, keyboard=keyboard)
        chat.messages[rec.message_id] = rec
        self.events.emit("message", chat.id, rec.view())
        return rec

    def reply_target(self, chat: ChatRec, reply_parameters: JSON | None,
                     reply_to_message_id: int | None) -> JSON | None:
        params = dict(reply_parameters or {})
        if reply_to_message_id is not None and "message_id" not in params:
            params["message_id"] = reply_to_message_id
        if not params.get("message_id"):
            return None
        target_chat = chat
        if params.get("chat_id") not in (None, chat.id):
            target_chat = self.chat(params["chat_id"])
        rec = target_chat.live(int(params["message_id"]))
        if rec is None:
            if params.get("allow_sending_without_reply"):
                return None
            raise bad_request("message to be replied not found")
        replied = dict(rec.message)
        replied.pop("reply_to_message", None)
        return replied

    def bot_message(self, chat: ChatRec, content: JSON, markup: JSON | None = None
                    ) -> MessageRec:
        keyboard = None
        if markup is not None and "inline_keyboard" in markup:
            content = {**content, "reply_markup": markup}
        elif markup is not None:
            keyboard = markup
        return self._store(chat, self.bot_user(), content, from_bot=True, keyboard=keyboard)

    def user_message(self, user: UserRec, chat: ChatRec, content: JSON) -> MessageRec:
        if chat.is_group:
            # Lenient: a user posting into a group joins it silently (see README).
            chat.members.setdefault(user.id, "member")
        elif chat.user is not None and chat.user.id != user.id:
            raise bad_request("a private chat belongs to its own user")
        else:
            user.started = True
        rec = self._store(chat, user.to_dict(), content, from_bot=False)
        if self._bot_sees(chat, rec.message):
            self.updates.push("message", rec.message)
        return rec

    def _bot_sees(self, chat: ChatRec, message: JSON) -> bool:
        if not chat.is_group:
            return not (chat.user is not None and chat.user.blocked)
        if not chat.bot_member:
            return False
        if not self.group_privacy:
            return True
        # Privacy mode: commands, replies to the bot, mentions and service messages only.
        text = str(message.get("text") or message.get("caption") or "")
        reply = message.get("reply_to_message") or {}
        return (text.startswith("/") or f"@{self.bot_username}".lower() in text.lower()
                or (reply.get("from") or {}).get("id") == self.bot_id
                or "new_chat_members" in message or "left_chat_member" in message)

    def edit_message(self, chat: ChatRec, rec: MessageRec, changes: JSON,
                     remove: tuple[str, ...] = ()) -> JSON:
        for key in remove:
            rec.message.pop(key, None)
        rec.message.update(changes)
        rec.message["edit_date"] = self.clock.unix()
        self.events.emit("edit", chat.id, rec.view())
        return rec.message

    def delete_message(self, chat: ChatRec, rec: MessageRec) -> None:
        rec.deleted = True
        self.events.emit("delete", chat.id, {"message_id": rec.message_id})

    def transcript(self, chat: ChatRec, after_message_id: int = 0, limit: int = 100
                   ) -> list[JSON]:
        out: list[JSON] = []
        for mid in sorted(chat.messages):
            rec = chat.messages[mid]
            if mid > after_message_id and not rec.deleted:
                out.append(rec.view())
                if len(out) >= limit:
                    break
        return out

    def new_media_group_id(self) -> str:
        return str(next(self._media_groups))

    def chat_instance(self, chat_id: int) -> str:
        return str(int(hashlib.sha1(f"{self.bot_id}:{chat_id}".encode()).hexdigest()[:15], 16))

    def new_callback_id(self) -> str:
        return str(4_000_000_000_000_000 + next(self._ids))

    # ---------------------------------------------------------------------------- membership

    def member_dict(self, chat: ChatRec, user: JSON, status: str) -> JSON:
        out: JSON = {"user": user, "status": status}
        if status == "kicked":
            out["until_date"] = 0
        elif status == "creator":
            out["is_anonymous"] = False
        elif status == "administrator":
            out.update(can_be_edited=False, is_anonymous=False, can_manage_chat=True,
                       can_delete_messages=True, can_manage_video_chats=True,
                       can_restrict_members=True, can_promote_members=False,
                       can_change_info=True, can_invite_users=True, can_post_stories=False,
                       can_edit_stories=False, can_delete_stories=False, can_pin_messages=True)
        elif status == "restricted":
            out.update(until_date=0, is_member=True, can_change_info=False,
                       can_invite_users=False, can_pin_messages=False, can_send_messages=False,
                       can_send_polls=False, can_send_other_messages=False,
                       can_add_web_page_previews=False, can_manage_topics=False,
                       can_send_audios=False, can_send_documents=False, can_send_photos=False,
                       can_send_videos=False, can_send_video_notes=False,
                       can_send_voice_notes=False, can_edit_tag=False)
        return out

    def set_bot_status(self, chat: ChatRec, status: str, by: JSON) -> None:
        """Change the bot's membership and tell the bot with a my_chat_member update."""
        old = chat.bot_status
        chat.bot_status = status
        bot = self.bot_user()
        self.updates.push("my_chat_member", {
            "chat": chat.to_dict(), "from": by, "date": self.clock.unix(),
            "old_chat_member": self.member_dict(chat, bot, old),
            "new_chat_member": self.member_dict(chat, bot, status)})

    def set_member_status(self, chat: ChatRec, user: UserRec, status: str, by: JSON) -> None:
        old = chat.members.get(user.id, "left")
        chat.members[user.id] = status
        if chat.bot_member:
            self.updates.push("chat_member", {
                "chat": chat.to_dict(), "from": by, "date": self.clock.unix(),
                "old_chat_member": self.member_dict(chat, user.to_dict(), old),
                "new_chat_member": self.member_dict(chat, user.to_dict(), status)})

    def service_message(self, user: UserRec, chat: ChatRec, content: JSON, *,
                        force_update: bool = False) -> MessageRec:
        """A service message (joins/leaves) sent "by" user, delivered if the bot can see it."""
        rec = self._store(chat, user.to_dict(), content, from_bot=False)
        if force_update or self._bot_sees(chat, rec.message):
            self.updates.push("message", rec.message)
        return rec

    def full_chat(self, chat: ChatRec) -> JSON:
        out = chat.to_dict()
        out.update(accent_color_id=0, max_reaction_count=11, accepted_gift_types={
            "unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
            "premium_subscription": False, "gifts_from_channels": False})
        if chat.pinned_message_id and chat.live(chat.pinned_message_id):
            rec = chat.live(chat.pinned_message_id)
            assert rec is not None
            out["pinned_message"] = rec.message
        return out
