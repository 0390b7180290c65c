"""Render's button rows as Telegram keyboards: the one place they become telegram objects."""

from __future__ import annotations

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from bot.render.buttons import Rows


def inline_markup(rows: Rows | None) -> InlineKeyboardMarkup | None:
    """The inline keyboard for these rows; None when there is no button."""
    buttons = [[InlineKeyboardButton(b.text, callback_data=b.data, url=b.url) for b in row]
               for row in rows or () if row]
    return InlineKeyboardMarkup(buttons) if buttons else None


def location_keyboard(label: str) -> ReplyKeyboardMarkup:
    """A one-time keyboard whose one button shares the sender's location."""
    return ReplyKeyboardMarkup([[KeyboardButton(label, request_location=True)]],
                               resize_keyboard=True, one_time_keyboard=True)
