"""Free input in a private chat (text, photos, locations) goes to whoever is waiting for it.

Several features take free input: an inspection waiting for evidence or a remark, a task
waiting for after-photos or a reason, a resident's report being written, a site search. Each
offers a `claim_*` function that handles the input and returns True, or returns False at once.
They are asked in this order; the first that claims it wins, and a helpful hint answers input
that nobody wanted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import BaseHandler, MessageHandler, filters

from bot.domain.roles import Role, role_of
from bot.telegram.context import WenmingContext
from handlers import inspect, reports, tasks
from handlers.common import reply

Claim = Callable[[Update, WenmingContext], Awaitable[bool]]

TEXT_CLAIMS: list[Claim] = [
    inspect.claim_text,  # a remark or note for the current inspection item
    tasks.claim_text,  # a reason (return, extension, not our unit) or a fix note
    # A search just asked for wins over a report draft left open in the background.
    inspect.claim_search,  # a site name being searched for
    reports.claim_text,  # a report's description or typed address
]
PHOTO_CLAIMS: list[Claim] = [
    inspect.claim_photo,  # evidence the current inspection item asked for
    tasks.claim_photo,  # after-photos of a fix
    # Inside an open inspection a photo belongs to it, asked for or not: never a report.
    inspect.claim_unasked_photo,  # extra evidence for the current inspection item
    reports.claim_photo,  # anything else starts (or adds to) a resident's report
]
LOCATION_CLAIMS: list[Claim] = [
    inspect.claim_location,  # "sites near me" was asked for
    reports.claim_location,  # where the reported problem is
    inspect.claim_nearest,  # an inspector sharing a location: the nearest sites
]


async def _route(claims: list[Claim], update: Update, context: WenmingContext, kind: str) -> None:
    for claim in claims:
        if await claim(update, context):
            return
    inspector = role_of(context.me) >= Role.INSPECTOR
    if kind == "location":
        hint = context.t("error.location_unexpected")
    elif kind == "photo":
        hint = context.t("inspect.photo_unexpected" if inspector else "error.photo_unexpected")
    else:
        hint = context.t("inspect.text_unexpected" if inspector else "error.text_unexpected")
    await reply(update, hint)


async def on_text(update: Update, context: WenmingContext) -> None:
    """Typed text in a private chat."""
    await _route(TEXT_CLAIMS, update, context, "text")


async def on_photo(update: Update, context: WenmingContext) -> None:
    """A photo, or any file (an image sent as a file is a photo too), in a private chat."""
    await _route(PHOTO_CLAIMS, update, context, "photo")


async def on_location(update: Update, context: WenmingContext) -> None:
    """A shared location in a private chat."""
    await _route(LOCATION_CLAIMS, update, context, "location")


PRIVATE = filters.ChatType.PRIVATE
HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [
    MessageHandler(PRIVATE & filters.LOCATION, on_location),
    MessageHandler(PRIVATE & (filters.PHOTO | filters.Document.ALL), on_photo),
    MessageHandler(PRIVATE & filters.TEXT & ~filters.COMMAND, on_text),
]
