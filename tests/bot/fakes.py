"""A fake Telegram Bot API at PTB's own seam, `BaseRequest.do_request`.

PTB's test suite swaps the HTTP layer the same way (its `OfflineRequest` refuses the network;
tests then stub `Bot.request`). Here the fake goes one step further and *answers* like Telegram,
so that the real `ExtBot` parses real responses into real `Message` objects and the handlers
cannot tell the difference:

* every call is recorded with its parameters decoded from the wire form;
* sent messages get increasing ids per chat (shared with the user's own messages, as in
  Telegram) and are kept, so edits return the edited message and editing an unknown message
  fails with Telegram's own 400;
* an edit that changes nothing fails with "message is not modified", and a callback query can
  be answered once only, as in Telegram;
* files registered by the test are served by getFile and by the file download URL;
* a text over 4,096 characters or a caption over 1,024 (counted as Telegram counts them: UTF-16
  code units of the text after HTML parsing) fails with Telegram's own 400;
* any method not listed here answers 404 with a description naming it, so a handler that
  starts using a new API method fails its test loudly instead of passing on a guess.

Texts are stored as the bot sent them (HTML source, not the rendered text with entities), which
is what the tests compare with the catalogue.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any

from telegram.request import BaseRequest, RequestData

from sandbox.html_entities import parse_formatted, u16len

JSON = dict[str, Any]

BOT_ID = 123456789  # the id in tests.conftest.TEST_TOKEN
BOT_USERNAME = "wenming_bot"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)


@dataclass(frozen=True)
class ApiCall:
    """One request the bot made: the Bot API method and its decoded parameters."""

    method: str
    params: JSON


class ApiError(Exception):
    """Raised inside the fake to answer with Telegram's error shape."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


class FakeBotAPI(BaseRequest):
    """Answers the Bot API methods the bot uses, in-process, and keeps the transcript."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock
        self.log: list[ApiCall] = []
        self.bot_user: JSON = {
            "id": BOT_ID, "is_bot": True, "first_name": "文明助手", "username": BOT_USERNAME,
            "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self._messages: dict[int, dict[int, JSON]] = {}  # chat id -> message id -> message
        self._last_id: dict[int, int] = {}
        self._files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, bytes)
        self._open_queries: set[str] = set()
        self.answers: dict[str, JSON] = {}  # callback query id -> its answer's parameters
        self._methods: dict[str, Callable[[JSON], object]] = {
            "getMe": lambda _p: self.bot_user,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "editMessageText": self._edit_text,
            "editMessageCaption": self._edit_caption,
            "editMessageReplyMarkup": self._edit_markup,
            "answerCallbackQuery": self._answer_query,
            "setMyCommands": lambda _p: True,
            "deleteMyCommands": lambda _p: True,
            "sendChatAction": lambda _p: True,
            "getFile": self._get_file,
        }

    # ---- BaseRequest ---------------------------------------------------------------------

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = None,
        write_timeout: object = None,
        connect_timeout: object = None,
        pool_timeout: object = None,
    ) -> tuple[int, bytes]:
        if "/file/bot" in url:
            return self._download(url)
        api_method = url.rsplit("/", 1)[-1]
        params = _decode(request_data)
        self.log.append(ApiCall(api_method, params))
        handler = self._methods.get(api_method)
        if handler is None:
            return _error(HTTPStatus.NOT_FOUND,
                          f"Not Found: FakeBotAPI does not know the method {api_method!r}; "
                          "add it to tests/bot/fakes.py if the bot now needs it")
        try:
            result = handler(params)
        except ApiError as exc:
            return _error(exc.status, exc.description)
        return HTTPStatus.OK, json.dumps({"ok": True, "result": result}).encode()

    # ---- what the tests set up -------------------------------------------------------------

    def now(self) -> int:
        return int(self._clock().timestamp()) if self._clock else int(time.time())

    def next_message_id(self, chat_id: int) -> int:
        """Message ids are per chat and shared by both sides, as in a private chat."""
        self._last_id[chat_id] = self._last_id.get(chat_id, 0) + 1
        return self._last_id[chat_id]

    def add_file(self, file_id: str, data: bytes, file_path: str) -> None:
        """Make a file downloadable: getFile(file_id) and then GET on its path."""
        self._files[file_id] = (file_path, data)

    def delete(self, chat_id: int, message_id: int) -> None:
        """The message is gone (the user cleared it): editing it now fails as in Telegram."""
        del self._messages[chat_id][message_id]

    def open_query(self, query_id: str) -> None:
        """A callback query the user just sent, which the bot may answer once."""
        self._open_queries.add(query_id)

    # ---- reading the transcript -------------------------------------------------------------

    def sent(self, chat_id: int) -> list[JSON]:
        """The bot's messages in a chat, oldest first, each as last edited."""
        chat = self._messages.get(chat_id, {})
        return [copy.deepcopy(chat[i]) for i in sorted(chat)]

    def last(self, chat_id: int) -> JSON:
        messages = self.sent(chat_id)
        assert messages, f"the bot sent nothing to chat {chat_id}"
        return messages[-1]

    def message(self, chat_id: int, message_id: int) -> JSON:
        return copy.deepcopy(self._messages[chat_id][message_id])

    def calls(self, method: str | None = None) -> list[JSON]:
        """Parameters of every call of `method` (or of every call), in order."""
        return [c.params for c in self.log if method is None or c.method == method]

    # ---- the methods ----------------------------------------------------------------------

    def _chat(self, chat_id: int) -> JSON:
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"}
        return {"id": chat_id, "type": "supergroup", "title": f"group{chat_id}"}

    def _new_message(self, params: JSON, **content: object) -> JSON:
        chat_id = int(params["chat_id"])
        message: JSON = {
            "message_id": self.next_message_id(chat_id),
            "from": self.bot_user,
            "chat": self._chat(chat_id),
            "date": self.now(),
            **content,
        }
        markup = _inline_markup(params)
        if markup is not None:
            message["reply_markup"] = markup
        self._messages.setdefault(chat_id, {})[message["message_id"]] = message
        return message

    def _send_message(self, params: JSON) -> JSON:
        _check_length(params, "text")
        return self._new_message(params, text=params["text"])

    def _send_photo(self, params: JSON) -> JSON:
        _check_length(params, "caption")
        photo = params.get("photo")
        file_id = photo if isinstance(photo, str) else f"uploaded-{len(self.log)}"
        sizes = [{"file_id": file_id, "file_unique_id": f"u-{file_id}", "width": 1280,
                  "height": 960}]
        content: JSON = {"photo": sizes}
        if params.get("caption"):
            content["caption"] = params["caption"]
        return self._new_message(params, **content)

    def _stored(self, params: JSON) -> JSON:
        if "inline_message_id" in params:
            raise ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: MESSAGE_ID_INVALID")
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        message = self._messages.get(chat_id, {}).get(message_id)
        if message is None:
            raise ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: message to edit not found")
        return message

    def _edit(self, params: JSON, field: str | None) -> JSON:
        message = self._stored(params)
        after = dict(message)
        if field is not None:
            after[field] = params[field]
        # Telegram drops the inline keyboard of an edited message unless it is sent again.
        markup = _inline_markup(params)
        after.pop("reply_markup", None)
        if markup is not None:
            after["reply_markup"] = markup
        if _look(after) == _look(message):
            raise ApiError(HTTPStatus.BAD_REQUEST, NOT_MODIFIED)
        after["edit_date"] = self.now()
        message.clear()
        message.update(after)
        return copy.deepcopy(message)

    def _edit_text(self, params: JSON) -> JSON:
        _check_length(params, "text")
        if "text" not in self._stored(params):
            raise ApiError(HTTPStatus.BAD_REQUEST,
                           "Bad Request: there is no text in the message to edit")
        return self._edit(params, "text")

    def _edit_caption(self, params: JSON) -> JSON:
        _check_length(params, "caption")
        return self._edit(params, "caption")

    def _edit_markup(self, params: JSON) -> JSON:
        return self._edit(params, None)

    def _answer_query(self, params: JSON) -> bool:
        query_id = str(params["callback_query_id"])
        if query_id not in self._open_queries:
            raise ApiError(HTTPStatus.BAD_REQUEST, QUERY_INVALID)
        self._open_queries.discard(query_id)
        self.answers[query_id] = params
        return True

    def _get_file(self, params: JSON) -> JSON:
        file_id = str(params["file_id"])
        if file_id not in self._files:
            raise ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: invalid file_id")
        path, data = self._files[file_id]
        return {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_size": len(data),
                "file_path": path}

    def _download(self, url: str) -> tuple[int, bytes]:
        self.log.append(ApiCall("download", {"url": url}))
        for path, data in self._files.values():
            if url.endswith("/" + path):
                return HTTPStatus.OK, data
        return _error(HTTPStatus.NOT_FOUND, "Not Found: no such file")


def _check_length(params: JSON, field: str) -> None:
    """Telegram's limits, after entity parsing: 4,096 for a text, 1,024 for a caption."""
    value = params.get(field)
    if not isinstance(value, str):
        return
    # bot.render.fit's marks around user text must never reach Telegram (a screen not fitted).
    assert "\ufff9" not in value and "\ufffb" not in value, f"unfitted screen: {value!r}"
    shown, _ = parse_formatted(value, params.get("parse_mode"))
    if field == "text" and u16len(shown) > 4096:
        raise ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: message is too long")
    if field == "caption" and u16len(shown) > 1024:
        raise ApiError(HTTPStatus.BAD_REQUEST, "Bad Request: message caption is too long")


def _decode(request_data: RequestData | None) -> JSON:
    """Parameters as Telegram reads them: strings as sent, everything else JSON-decoded."""
    if request_data is None:
        return {}
    raw = request_data.parameters
    return {name: value if isinstance(raw[name], str) else json.loads(value)
            for name, value in request_data.json_parameters.items()}


def _inline_markup(params: JSON) -> JSON | None:
    # Messages carry only inline keyboards; a reply keyboard belongs to the chat, not to them.
    markup = params.get("reply_markup")
    if isinstance(markup, dict) and "inline_keyboard" in markup:
        return markup
    return None


def _look(message: JSON) -> tuple[object, ...]:
    return (message.get("text"), message.get("caption"),
            json.dumps(message.get("reply_markup"), sort_keys=True))


def _error(status: int, description: str) -> tuple[int, bytes]:
    body = {"ok": False, "error_code": int(status), "description": description}
    return int(status), json.dumps(body).encode()
