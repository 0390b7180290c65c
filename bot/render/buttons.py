"""Buttons as plain data: a screen is HTML text plus rows of buttons, and the Telegram edge
(`bot.telegram.markup`) turns the rows into an inline keyboard. Nothing here knows Telegram."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Button:
    """An inline button: its label and either callback data (bot.render.callbacks) or a URL."""

    text: str
    data: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if (self.data is None) == (self.url is None):
            raise ValueError("a button has callback data or a URL, not both nor neither")

    def to_json(self) -> dict[str, str]:
        """The button as the Bot API's JSON (for messages queued in the outbox)."""
        if self.url is not None:
            return {"text": self.text, "url": self.url}
        assert self.data is not None
        return {"text": self.text, "callback_data": self.data}


Rows = list[list[Button]]


# What one message shows: its HTML text and its buttons (none: no keyboard).
Screen = tuple[str, Rows]


def rows(*labelled: Sequence[tuple[str, str]]) -> Rows:
    """Rows of callback buttons from (label, data) pairs; empty rows are left out."""
    return [[Button(text, data) for text, data in row] for row in labelled if row]


def keyboard_json(buttons: Rows) -> dict[str, object] | None:
    """An inline keyboard as the Bot API's JSON (for the outbox); None without buttons."""
    if not buttons:
        return None
    return {"inline_keyboard": [[b.to_json() for b in row] for row in buttons]}
