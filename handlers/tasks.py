"""Rectification tasks in the units' groups (issue: the closed loop). Being built."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler

from bot.context import WenmingContext


async def claim_text(update: Update, context: WenmingContext) -> bool:
    """A reason or a fix note typed for a task this person is acting on."""
    return False


async def claim_photo(update: Update, context: WenmingContext) -> bool:
    """An after-photo for a fix this person is submitting."""
    return False


HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = []
