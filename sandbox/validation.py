"""Request parameters, typed accessors and Telegram's validation rules and error texts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sandbox.html_entities import EntityParseError, parse_formatted, u16len

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64

# String parameters that must never be JSON-decoded: `text="123"` has to stay a string, and
# `text="true"` must not become a bool. Everything else in a form body is JSON-decoded the way
# the real Bot API does it (PTB json.dumps()es every non-string value).
FREE_TEXT_PARAMS = frozenset({
    "text", "caption", "parse_mode", "description", "short_description", "name", "title",
    "question", "explanation", "address", "first_name", "last_name", "url", "secret_token",
    "callback_query_id", "inline_message_id", "emoji", "action", "query", "switch_pm_text",
    "switch_pm_parameter", "performer", "foursquare_id", "foursquare_type", "google_place_id",
    "google_place_type", "payload", "provider_token", "currency", "start_parameter",
    "message_effect_id", "business_connection_id", "language_code", "custom_title",
    "sticker_set_name", "game_short_name", "ip_address", "photo", "document", "video", "audio",
    "voice", "animation", "sticker", "video_note", "thumbnail", "file_id", "vcard",
    "phone_number", "error_message", "next_offset", "label", "quote", "quote_parse_mode",
    "text_parse_mode", "question_parse_mode", "explanation_parse_mode", "gift_id",
})


class ApiError(Exception):
    """An error answered with HTTP status == error_code, like the real Bot API."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(message: str) -> ApiError:
    return ApiError(400, f"Bad Request: {message}")


def forbidden(message: str) -> ApiError:
    return ApiError(403, f"Forbidden: {message}")


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


def decode_form_value(name: str, value: str) -> Any:
    if name in FREE_TEXT_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


class Params:
    """Typed, validating access to one call's parameters (already merged from all sources)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def has(self, name: str) -> bool:
        return self.values.get(name) is not None

    def raw(self, name: str) -> Any:
        return self.values.get(name)

    def opt_str(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None:
            if required:
                raise bad_request(f"{name} is empty")
            return None
        if isinstance(value, UploadedFile):
            raise bad_request(f"{name} must be a string")
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def req_str(self, name: str) -> str:
        value = self.opt_str(name, required=True)
        assert value is not None
        return value

    def opt_int(self, name: str, *, default: int | None = None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise bad_request(f"invalid {name} specified")

    def req_int(self, name: str, *, missing: str | None = None) -> int:
        value = self.opt_int(name)
        if value is None:
            raise bad_request(missing or f"{name} is empty")
        return value

    def num(self, name: str) -> float:
        value = self.values.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise bad_request(f"invalid {name} specified" if value is not None else f"{name} is empty")

    def flag(self, name: str, *, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return bool(value)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes", "on")
        return bool(value)

    def json_any(self, name: str) -> Any:
        value = self.values.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise bad_request(f"can't parse {name} JSON object") from exc
        return value

    def json_obj(self, name: str) -> dict[str, Any] | None:
        value = self.json_any(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise bad_request(f"field \"{name}\" must be of type Object")
        return value

    def json_list(self, name: str) -> list[Any] | None:
        value = self.json_any(name)
        if value is None:
            return None
        if not isinstance(value, list):
            raise bad_request(f"field \"{name}\" must be of type Array")
        return value

    def chat_id(self, name: str = "chat_id") -> int | str:
        value = self.values.get(name)
        if value is None or value == "":
            raise bad_request(f"{name} is empty")
        if isinstance(value, bool) or isinstance(value, (dict, list, UploadedFile)):
            raise bad_request("chat not found")
        if isinstance(value, (int, float)):
            return int(value)
        text = str(value).strip()
        try:
            return int(text)
        except ValueError:
            return text  # "@username"; resolved (or rejected) by the state

    def file(self, name: str) -> UploadedFile | str | None:
        value = self.values.get(name)
        if value is None or isinstance(value, UploadedFile):
            return value
        return str(value)


# ------------------------------------------------------------------------------ text validation

def parse_entities(text: str, parse_mode: str | None, entities: Any) -> tuple[
    str, list[dict[str, Any]]
]:
    mode = (parse_mode or "").strip()
    if mode and mode.lower() not in ("html", "markdown", "markdownv2"):
        raise bad_request("unsupported parse_mode")
    try:
        plain, ents = parse_formatted(text, mode or None)
    except EntityParseError as exc:
        raise bad_request(f"can't parse entities: {exc}") from exc
    if not mode and isinstance(entities, list):
        ents = [e for e in entities if isinstance(e, dict)]
    return plain, ents


def checked_text(p: Params) -> tuple[str, list[dict[str, Any]]]:
    raw = p.opt_str("text")
    if raw is None or raw == "":
        raise bad_request("message text is empty")
    text, ents = parse_entities(raw, p.opt_str("parse_mode"), p.json_any("entities"))
    if not text.strip():
        raise bad_request("message text is empty")
    if u16len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    return text, ents


def checked_caption(
    caption: str | None, parse_mode: str | None, entities: Any = None
) -> tuple[str | None, list[dict[str, Any]]]:
    if caption is None or caption == "":
        return None, []
    text, ents = parse_entities(caption, parse_mode, entities)
    if u16len(text) > MAX_CAPTION:
        raise bad_request("message caption is too long")
    return (text if text else None), ents


def checked_reply_markup(markup: Any, *, inline_only: bool = False) -> dict[str, Any] | None:
    """Validate reply_markup the way Telegram does for the parts bots get wrong most often."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or any(not isinstance(r, list) for r in rows):
            raise bad_request("field \"inline_keyboard\" of the InlineKeyboardMarkup must be an "
                              "Array of Arrays")
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise bad_request("can't find field \"text\"")
                if "callback_data" in button:
                    data = button["callback_data"]
                    if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= \
                            MAX_CALLBACK_DATA:
                        raise bad_request("BUTTON_DATA_INVALID")
                elif "url" in button:
                    if not isinstance(button["url"], str) or not button["url"].strip():
                        raise bad_request("BUTTON_URL_INVALID")
                elif not any(k in button for k in (
                    "web_app", "login_url", "switch_inline_query",
                    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat",
                    "callback_game", "pay", "copy_text",
                )):
                    raise bad_request("can't find field \"callback_data\"")
        return markup
    if inline_only:
        raise bad_request("inline keyboard expected")
    if "keyboard" in markup or "remove_keyboard" in markup or "force_reply" in markup:
        return markup
    raise bad_request("can't parse reply keyboard markup JSON object")
