"""Bot API method implementations (the bot's side of the sandbox)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from sandbox.files import StoredFile, document_dict
from sandbox.state import JSON, ChatRec, MessageRec, SandboxState
from sandbox.validation import (
    ApiError,
    Params,
    UploadedFile,
    bad_request,
    checked_caption,
    checked_reply_markup,
    checked_text,
)

Handler = Callable[["BotApi", Params], Awaitable[Any]]
METHODS: dict[str, tuple[str, Handler]] = {}  # lowercase name -> (canonical name, handler)

NOT_MODIFIED = ("message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message")
WRONG_FILE = "wrong file identifier/HTTP URL specified"
CHAT_ACTIONS = frozenset({"typing", "upload_photo", "record_video", "upload_video",
                          "record_voice", "upload_voice", "upload_document", "choose_sticker",
                          "find_location", "record_video_note", "upload_video_note"})
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
MEDIA_KEYS = ("text", "entities", "photo", "document", "caption", "caption_entities",
              "location", "venue", "sticker", "voice", "link_preview_options")


def method(name: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        METHODS[name.lower()] = (name, func)
        return func
    return register


def _ok_true(*names: str) -> None:
    """Methods the sandbox accepts and ignores."""
    async def accept(api: BotApi, p: Params) -> bool:
        return True
    for name in names:
        METHODS[name.lower()] = (name, accept)


_ok_true("logOut", "close", "setMyDefaultAdministratorRights", "setMessageReaction",
         "unpinAllChatMessages")


class BotApi:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # ------------------------------------------------------------------------------ helpers

    def flood(self, kind: str, chat_id: int, cost: int = 1) -> None:
        retry_after = self.state.flood.check(kind, chat_id, cost)
        if retry_after is not None:
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}",
                           {"retry_after": retry_after})

    def send(self, p: Params, build: Callable[[ChatRec], JSON]) -> JSON:
        """Common path of every send*: chat checks, content, markup, reply, flood, store."""
        chat = self.state.chat_for_bot_send(p.chat_id())
        content = build(chat)
        markup = checked_reply_markup(p.json_any("reply_markup"))
        reply = self.state.reply_target(chat, p.json_obj("reply_parameters"),
                                        p.opt_int("reply_to_message_id"))
        self.flood("send", chat.id)
        if reply is not None:
            content["reply_to_message"] = reply
        return self.state.bot_message(chat, content, markup).message

    def target(self, p: Params, what: str) -> tuple[ChatRec, MessageRec]:
        if p.has("inline_message_id") and not p.has("chat_id"):
            raise bad_request(f"message to {what} not found")
        chat = self.state.chat(p.chat_id())
        mid = p.req_int("message_id", missing="message identifier is not specified")
        rec = chat.live(mid)
        if rec is None:
            raise bad_request(f"message to {what} not found")
        return chat, rec

    def photo_set(self, value: UploadedFile | str | None) -> list[StoredFile]:
        if value is None or value == "":
            raise bad_request("there is no photo in the request")
        if isinstance(value, UploadedFile):
            return self.state.files.add_photo(value.data, strict=True)
        stored = self.state.files.get(value)
        if stored is None:
            raise bad_request(WRONG_FILE)
        if stored.kind != "photo":
            raise bad_request("type of file mismatch")
        return stored.photo_set or [stored]

    def document(self, value: UploadedFile | str | None) -> StoredFile:
        if value is None or value == "":
            raise bad_request("there is no document in the request")
        if isinstance(value, UploadedFile):
            return self.state.files.add_document(value.data, value.filename, value.content_type)
        stored = self.state.files.get(value)
        if stored is None:
            raise bad_request(WRONG_FILE)
        if stored.kind == "photo":
            raise bad_request("type of file mismatch")
        return stored

    @staticmethod
    def caption_content(p: Params) -> JSON:
        caption, ents = checked_caption(p.opt_str("caption"), p.opt_str("parse_mode"),
                                        p.json_any("caption_entities"))
        out: JSON = {}
        if caption is not None:
            out["caption"] = caption
        if ents:
            out["caption_entities"] = ents
        return out

    @staticmethod
    def not_modified_check(old: JSON, new: JSON, keys: tuple[str, ...]) -> None:
        if all(old.get(k) == new.get(k) for k in keys):
            raise bad_request(NOT_MODIFIED)


# ------------------------------------------------------------------------------- identity

@method("getMe")
async def get_me(api: BotApi, p: Params) -> JSON:
    return api.state.get_me()


# -------------------------------------------------------------------------------- updates

@method("getUpdates")
async def get_updates(api: BotApi, p: Params) -> list[JSON]:
    limit = max(1, min(100, p.opt_int("limit", default=100) or 100))
    timeout = max(0, min(50, p.opt_int("timeout", default=0) or 0))
    allowed = p.json_list("allowed_updates")
    return await api.state.updates.get_updates(p.opt_int("offset"), limit, timeout, allowed)


@method("setWebhook")
async def set_webhook(api: BotApi, p: Params) -> bool:
    url = (p.opt_str("url") or "").strip()
    if not url:
        api.state.updates.delete_webhook(p.flag("drop_pending_updates"))
        return True
    if not url.startswith(("http://", "https://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = p.opt_str("secret_token")
    if secret is not None and not _SECRET.match(secret):
        raise bad_request("secret token contains unallowed characters")
    max_conn = p.opt_int("max_connections", default=40) or 40
    api.state.updates.set_webhook(url, secret, p.json_list("allowed_updates"),
                                  p.flag("drop_pending_updates"), max(1, min(100, max_conn)))
    return True


@method("deleteWebhook")
async def delete_webhook(api: BotApi, p: Params) -> bool:
    api.state.updates.delete_webhook(p.flag("drop_pending_updates"))
    return True


@method("getWebhookInfo")
async def get_webhook_info(api: BotApi, p: Params) -> JSON:
    return api.state.updates.webhook_info()


# ------------------------------------------------------------------------ commands & profile

def _scope_key(p: Params) -> tuple[str, str]:
    scope = p.json_obj("scope") or {"type": "default"}
    if not isinstance(scope.get("type"), str):
        raise bad_request("can't parse BotCommandScope JSON object")
    return json.dumps(scope, sort_keys=True), p.opt_str("language_code") or ""


@method("setMyCommands")
async def set_my_commands(api: BotApi, p: Params) -> bool:
    commands = p.json_list("commands")
    if commands is None:
        raise bad_request("parameter \"commands\" is required")
    if len(commands) > 100:
        raise bad_request("too many commands")
    for cmd in commands:
        if not isinstance(cmd, dict) or not _COMMAND_NAME.match(str(cmd.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(cmd.get("description", ""))) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    key = _scope_key(p)
    if commands:
        api.state.commands[key] = [{"command": c["command"], "description": c["description"]}
                                   for c in commands]
    else:
        api.state.commands.pop(key, None)
    return True


@method("getMyCommands")
async def get_my_commands(api: BotApi, p: Params) -> list[JSON]:
    return list(api.state.commands.get(_scope_key(p), []))


@method("deleteMyCommands")
async def delete_my_commands(api: BotApi, p: Params) -> bool:
    api.state.commands.pop(_scope_key(p), None)
    return True


@method("setChatMenuButton")
async def set_chat_menu_button(api: BotApi, p: Params) -> bool:
    button = p.json_obj("menu_button") or {"type": "default"}
    if p.has("chat_id"):
        api.state.chat(p.chat_id()).menu_button = button
    else:
        api.state.default_menu_button = button
    return True


@method("getChatMenuButton")
async def get_chat_menu_button(api: BotApi, p: Params) -> JSON:
    if p.has("chat_id"):
        chat = api.state.chat(p.chat_id())
        if chat.menu_button is not None:
            return chat.menu_button
    return api.state.default_menu_button


def _profile_methods(field: str, limit: int) -> None:
    title = "".join(part.capitalize() for part in field.split("_"))

    async def setter(api: BotApi, p: Params) -> bool:
        value = p.opt_str(field) or ""
        if len(value) > limit:
            raise bad_request(f"{field} is too long")
        api.state.bot_profile[f"{field}:{p.opt_str('language_code') or ''}"] = value
        return True

    async def getter(api: BotApi, p: Params) -> JSON:
        key = f"{field}:{p.opt_str('language_code') or ''}"
        default = api.state.bot_first_name if field == "name" else ""
        return {field: api.state.bot_profile.get(key, default)}

    METHODS[f"setmy{title}".lower()] = (f"setMy{title}", setter)
    METHODS[f"getmy{title}".lower()] = (f"getMy{title}", getter)


_profile_methods("description", 512)
_profile_methods("short_description", 120)
_profile_methods("name", 64)


# ---------------------------------------------------------------------------------- sending

@method("sendMessage")
async def send_message(api: BotApi, p: Params) -> JSON:
    def build(chat: ChatRec) -> JSON:
        text, ents = checked_text(p)
        out: JSON = {"text": text}
        if ents:
            out["entities"] = ents
        return out
    return api.send(p, build)


@method("sendPhoto")
async def send_photo(api: BotApi, p: Params) -> JSON:
    def build(chat: ChatRec) -> JSON:
        caption = api.caption_content(p)
        sizes = api.photo_set(p.file("photo"))
        return {"photo": [s.photo_size() for s in sizes], **caption}
    return api.send(p, build)


@method("sendDocument")
async def send_document(api: BotApi, p: Params) -> JSON:
    def build(chat: ChatRec) -> JSON:
        caption = api.caption_content(p)
        return {"document": document_dict(api.document(p.file("document"))), **caption}
    return api.send(p, build)


@method("sendSticker")
async def send_sticker(api: BotApi, p: Params) -> JSON:
    def build(chat: ChatRec) -> JSON:
        value = p.file("sticker")
        if isinstance(value, str):
            stored = api.state.files.get(value)
            if stored is None or stored.kind != "sticker":
                raise bad_request(WRONG_FILE)
        elif value is None:
            raise bad_request("there is no sticker in the request")
        else:
            stored = api.state.files.add("sticker", value.data, "image/webp", "webp",
                                         width=512, height=512)
        return {"sticker": {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                            "type": "regular", "width": stored.width or 512,
                            "height": stored.height or 512, "is_animated": False,
                            "is_video": False, "file_size": stored.size}}
    return api.send(p, build)


def _location(p: Params) -> JSON:
    lat, lon = p.num("latitude"), p.num("longitude")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise bad_request("wrong coordinates")
    return {"latitude": lat, "longitude": lon}


@method("sendLocation")
async def send_location(api: BotApi, p: Params) -> JSON:
    return api.send(p, lambda chat: {"location": _location(p)})


@method("sendVenue")
async def send_venue(api: BotApi, p: Params) -> JSON:
    def build(chat: ChatRec) -> JSON:
        loc = _location(p)
        venue = {"location": loc, "title": p.req_str("title"), "address": p.req_str("address")}
        return {"location": loc, "venue": venue}
    return api.send(p, build)


@method("sendMediaGroup")
async def send_media_group(api: BotApi, p: Params) -> list[JSON]:
    chat = api.state.chat_for_bot_send(p.chat_id())
    media = p.json_list("media")
    if not media:
        raise bad_request("parameter \"media\" is required")
    if len(media) < 2:
        raise bad_request("too few media items")  # a 1-item album is rejected by Telegram
    if len(media) > 10:
        raise bad_request("too much messages to send as an album")
    kinds = {str(item.get("type")) if isinstance(item, dict) else "" for item in media}
    if not kinds <= {"photo", "document"} or len(kinds) != 1:
        raise bad_request("MEDIA_INVALID: the sandbox supports albums of only photos or only "
                          "documents")
    contents: list[JSON] = []
    for item in media:
        ref = item.get("media")
        value: UploadedFile | str | None = ref if isinstance(ref, str) else None
        if isinstance(ref, str) and ref.startswith("attach://"):
            value = p.file(ref[len("attach://"):])
            if not isinstance(value, UploadedFile):
                raise bad_request(WRONG_FILE)
        caption, ents = checked_caption(item.get("caption"), item.get("parse_mode"),
                                        item.get("caption_entities"))
        content: JSON = {}
        if item["type"] == "photo":
            content["photo"] = [s.photo_size() for s in api.photo_set(value)]
        else:
            content["document"] = document_dict(api.document(value))
        if caption is not None:
            content["caption"] = caption
        if ents:
            content["caption_entities"] = ents
        contents.append(content)
    reply = api.state.reply_target(chat, p.json_obj("reply_parameters"),
                                   p.opt_int("reply_to_message_id"))
    retry_after = api.state.flood.check("send", chat.id, cost=len(contents))
    if retry_after is not None:
        raise ApiError(429, f"Too Many Requests: retry after {retry_after}",
                       {"retry_after": retry_after})
    group_id = api.state.new_media_group_id()
    out = []
    for content in contents:
        content["media_group_id"] = group_id
        if reply is not None:
            content["reply_to_message"] = reply
        out.append(api.state.bot_message(chat, content).message)
    return out


@method("sendChatAction")
async def send_chat_action(api: BotApi, p: Params) -> bool:
    api.state.chat_for_bot_send(p.chat_id())
    if p.opt_str("action") not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    return True


def _copy_content(source: JSON) -> JSON:
    return {k: source[k] for k in MEDIA_KEYS if k in source}


@method("copyMessage")
async def copy_message(api: BotApi, p: Params) -> JSON:
    src_chat = api.state.chat(p.chat_id("from_chat_id"))
    src = src_chat.live(p.req_int("message_id"))
    if src is None:
        raise bad_request("message to copy not found")

    def build(chat: ChatRec) -> JSON:
        content = _copy_content(src.message)
        if p.has("caption") and ("photo" in content or "document" in content):
            content.pop("caption_entities", None)
            content.pop("caption", None)
            content.update(api.caption_content(p))
        return content
    return {"message_id": api.send(p, build)["message_id"]}


@method("forwardMessage")
async def forward_message(api: BotApi, p: Params) -> JSON:
    src_chat = api.state.chat(p.chat_id("from_chat_id"))
    src = src_chat.live(p.req_int("message_id"))
    if src is None:
        raise bad_request("message to forward not found")

    def build(chat: ChatRec) -> JSON:
        content = _copy_content(src.message)
        content["forward_origin"] = {"type": "user", "sender_user": src.message["from"],
                                     "date": src.message["date"]}
        return content
    return api.send(p, build)


# ---------------------------------------------------------------------------------- editing

def _edit_result(p: Params, message: JSON) -> JSON | bool:
    return True if p.has("inline_message_id") else message


@method("editMessageText")
async def edit_message_text(api: BotApi, p: Params) -> JSON | bool:
    chat, rec = api.target(p, "edit")
    if not rec.from_bot:
        raise bad_request("message can't be edited")
    if "text" not in rec.message:
        raise bad_request("there is no text in the message to edit")
    text, ents = checked_text(p)
    markup = checked_reply_markup(p.json_any("reply_markup"), inline_only=True)
    new: JSON = {"text": text, "entities": ents or None, "reply_markup": markup}
    api.not_modified_check(rec.message, new, ("text", "entities", "reply_markup"))
    api.flood("edit", chat.id)
    # Omitting reply_markup removes the inline keyboard, exactly as on Telegram.
    changes = {k: v for k, v in new.items() if v is not None}
    removed = tuple(k for k, v in new.items() if v is None)
    return _edit_result(p, api.state.edit_message(chat, rec, changes, removed))


@method("editMessageCaption")
async def edit_message_caption(api: BotApi, p: Params) -> JSON | bool:
    chat, rec = api.target(p, "edit")
    if not rec.from_bot:
        raise bad_request("message can't be edited")
    if not any(k in rec.message for k in ("photo", "document", "voice")):
        raise bad_request("there is no caption in the message to edit")
    caption = api.caption_content(p)
    markup = checked_reply_markup(p.json_any("reply_markup"), inline_only=True)
    new: JSON = {"caption": caption.get("caption"),
                 "caption_entities": caption.get("caption_entities"), "reply_markup": markup}
    api.not_modified_check(rec.message, new, ("caption", "caption_entities", "reply_markup"))
    api.flood("edit", chat.id)
    changes = {k: v for k, v in new.items() if v is not None}
    removed = tuple(k for k, v in new.items() if v is None)
    return _edit_result(p, api.state.edit_message(chat, rec, changes, removed))


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(api: BotApi, p: Params) -> JSON | bool:
    chat, rec = api.target(p, "edit")
    if not rec.from_bot:
        raise bad_request("message can't be edited")
    markup = checked_reply_markup(p.json_any("reply_markup"), inline_only=True)
    api.not_modified_check(rec.message, {"reply_markup": markup}, ("reply_markup",))
    api.flood("edit", chat.id)
    if markup is None:
        return _edit_result(p, api.state.edit_message(chat, rec, {}, ("reply_markup",)))
    return _edit_result(p, api.state.edit_message(chat, rec, {"reply_markup": markup}))


@method("editMessageMedia")
async def edit_message_media(api: BotApi, p: Params) -> JSON | bool:
    chat, rec = api.target(p, "edit")
    if not rec.from_bot:
        raise bad_request("message can't be edited")
    if not any(k in rec.message for k in ("photo", "document")):
        raise bad_request("there is no media in the message to edit")
    media = p.json_obj("media")
    if media is None or media.get("type") not in ("photo", "document"):
        raise bad_request("MEDIA_INVALID")
    ref = media.get("media")
    value: UploadedFile | str | None = ref if isinstance(ref, str) else None
    if isinstance(ref, str) and ref.startswith("attach://"):
        value = p.file(ref[len("attach://"):])
    caption, ents = checked_caption(media.get("caption"), media.get("parse_mode"),
                                    media.get("caption_entities"))
    markup = checked_reply_markup(p.json_any("reply_markup"), inline_only=True)
    changes: JSON = {}
    if media["type"] == "photo":
        changes["photo"] = [s.photo_size() for s in api.photo_set(value)]
    else:
        changes["document"] = document_dict(api.document(value))
    for key, val in (("caption", caption), ("caption_entities", ents or None),
                     ("reply_markup", markup)):
        if val is not None:
            changes[key] = val
    api.flood("edit", chat.id)
    removed = tuple(k for k in ("photo", "document", "caption", "caption_entities",
                                "reply_markup") if k not in changes)
    return _edit_result(p, api.state.edit_message(chat, rec, changes, removed))


@method("deleteMessage")
async def delete_message(api: BotApi, p: Params) -> bool:
    chat, rec = api.target(p, "delete")
    if chat.is_group and not rec.from_bot and chat.bot_status != "administrator":
        raise bad_request("message can't be deleted")
    api.state.delete_message(chat, rec)
    return True


@method("deleteMessages")
async def delete_messages(api: BotApi, p: Params) -> bool:
    chat = api.state.chat(p.chat_id())
    ids = p.json_list("message_ids")
    if not ids or len(ids) > 100:
        raise bad_request("message_ids must contain 1-100 identifiers")
    for mid in ids:
        rec = chat.live(int(mid))
        # Telegram skips messages that can't be found or deleted.
        if rec is not None and (rec.from_bot or not chat.is_group
                                or chat.bot_status == "administrator"):
            api.state.delete_message(chat, rec)
    return True


@method("answerCallbackQuery")
async def answer_callback_query(api: BotApi, p: Params) -> bool:
    cb = api.state.callbacks.get(p.opt_str("callback_query_id") or "")
    if cb is None or cb.answered:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    text = p.opt_str("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    cb.answered, cb.text = True, text
    cb.show_alert, cb.url = p.flag("show_alert"), p.opt_str("url")
    chat = api.state.chats.get(cb.chat_id)
    rec = chat.messages.get(cb.message_id) if chat else None
    api.state.events.emit("callback_answer", cb.chat_id, rec.view() if rec else {},
                          callback_query_id=cb.id, text=cb.text, show_alert=cb.show_alert,
                          url=cb.url)
    return True


@method("pinChatMessage")
async def pin_chat_message(api: BotApi, p: Params) -> bool:
    chat, rec = api.target(p, "pin")
    chat.pinned_message_id = rec.message_id
    return True


@method("unpinChatMessage")
async def unpin_chat_message(api: BotApi, p: Params) -> bool:
    chat = api.state.chat(p.chat_id())
    chat.pinned_message_id = None
    return True


# ------------------------------------------------------------------------------------ files

@method("getFile")
async def get_file(api: BotApi, p: Params) -> JSON:
    stored = api.state.files.get(p.opt_str("file_id") or "")
    if stored is None:
        raise bad_request("wrong file_id or the file is temporarily unavailable")
    if stored.size > 20 * 1024 * 1024:
        raise bad_request("file is too big")
    return stored.file_object()


# ------------------------------------------------------------------------------------ chats

@method("getChat")
async def get_chat(api: BotApi, p: Params) -> JSON:
    return api.state.full_chat(api.state.chat(p.chat_id()))


def _member_status(api: BotApi, chat: ChatRec, user_id: int) -> tuple[JSON, str]:
    if user_id == api.state.bot_id:
        return api.state.bot_user(), chat.bot_status
    user = api.state.users.get(user_id)
    if user is None:
        raise bad_request("user not found")
    if not chat.is_group:
        return user.to_dict(), "member" if chat.id == user_id else "left"
    return user.to_dict(), chat.members.get(user_id, "left")


@method("getChatMember")
async def get_chat_member(api: BotApi, p: Params) -> JSON:
    chat = api.state.chat(p.chat_id())
    user, status = _member_status(api, chat, p.req_int("user_id"))
    return api.state.member_dict(chat, user, status)


@method("getChatAdministrators")
async def get_chat_administrators(api: BotApi, p: Params) -> list[JSON]:
    chat = api.state.chat(p.chat_id())
    if not chat.is_group:
        raise bad_request("there are no administrators in the private chat")
    out = [api.state.member_dict(chat, api.state.users[uid].to_dict(), status)
           for uid, status in chat.members.items()
           if status in ("creator", "administrator") and uid in api.state.users]
    if chat.bot_status == "administrator":
        out.append(api.state.member_dict(chat, api.state.bot_user(), "administrator"))
    return out


@method("getChatMemberCount")
async def get_chat_member_count(api: BotApi, p: Params) -> int:
    chat = api.state.chat(p.chat_id())
    if not chat.is_group:
        return 2
    present = sum(1 for s in chat.members.values() if s not in ("left", "kicked"))
    return present + (1 if chat.bot_member else 0)


@method("leaveChat")
async def leave_chat(api: BotApi, p: Params) -> bool:
    chat = api.state.chat(p.chat_id())
    if not chat.is_group:
        raise bad_request("chat member status can't be changed in private chats")
    api.state.chat_for_bot_send(chat.id)  # 403 if the bot is not in the group anyway
    api.state.set_bot_status(chat, "left", api.state.bot_user())
    return True
