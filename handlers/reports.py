"""Residents' reports (随手拍). Being built."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler

from bot.context import WenmingContext


async def claim_text(update: Update, context: WenmingContext) -> bool:
    """A description or a typed address for the report being written."""
    return False


async def claim_photo(update: Update, context: WenmingContext) -> bool:
    """A photo starts a report, or adds to the one being written."""
    return False


async def claim_location(update: Update, context: WenmingContext) -> bool:
    """Where the reported problem is."""
    return False


HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = []
