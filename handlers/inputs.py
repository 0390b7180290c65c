"""Free input in a private chat (text, photos, locations) goes to whoever is waiting for it.

Several features take free input: an inspection waiting for evidence or a remark, a task
waiting for after-photos or a reason, a /task finding, a resident's report being written or
disputed, a site search. What this person is expected to send next is one model
(bot.domain.expectation, read by bot.services.expectation); it names the feature that takes the
message, and the router hands the message straight to that feature's `take_*`. Input nobody
waits for (or that a taker finds, after all, nothing to do with) gets a helpful hint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import BaseHandler, MessageHandler, filters

from bot.domain.expectation import Expectation, Input, Taker
from bot.services.expectation import expected
from bot.telegram.context import WenmingContext
from handlers import inspect, reports, tasks
from handlers.common import reply

Take = Callable[[Update, WenmingContext, Expectation], Awaitable[bool]]

TAKERS: dict[Input, dict[Taker, Take]] = {
    Input.TEXT: {
        Taker.INSPECTION: inspect.take_text,  # a remark or note for the current item
        Taker.FINDING: tasks.take_finding_line,  # the line that files a /task finding
        Taker.TASK_INPUT: tasks.take_text,  # a reason (return, extension, not our unit), a note
        Taker.SITE_SEARCH: inspect.take_search,  # a site name being searched for
        Taker.DISPUTE_REASON: reports.take_dispute_reason,  # after 👎 "still there"
        Taker.REPORT: reports.take_text,  # a report's description or typed address
    },
    Input.PHOTO: {
        Taker.INSPECTION: inspect.take_photo,  # evidence the current item asked for
        Taker.FINDING: tasks.take_photo,  # a /task finding's photos
        Taker.TASK_INPUT: tasks.take_photo,  # after-photos of a fix
        Taker.INSPECTION_EXTRA: inspect.take_unasked_photo,  # more evidence for the item
        Taker.REPORT: reports.take_photo,  # starts (or adds to) a resident's report
    },
    Input.LOCATION: {
        Taker.SITE_NEAR: inspect.take_location,  # "sites near me" was asked for
        Taker.REPORT: reports.take_location,  # where the reported problem is
        Taker.NEAREST: inspect.take_location,  # an inspector's location: the nearest sites
    },
}

async def _route(kind: Input, update: Update, context: WenmingContext) -> None:
    async with context.deps.uow.read() as uow:
        taker, expectation = await expected(uow, context.me, kind)
    take = TAKERS[kind].get(taker)
    if take is not None and await take(update, context, expectation):
        return
    inspector = expectation.inspector
    if kind is Input.LOCATION:
        hint = context.t("error.location_unexpected")
    elif kind is Input.PHOTO:
        hint = context.t("inspect.photo_unexpected" if inspector else "error.photo_unexpected")
    else:
        hint = context.t("inspect.text_unexpected" if inspector else "error.text_unexpected")
    await reply(update, hint)


async def on_text(update: Update, context: WenmingContext) -> None:
    """Typed text in a private chat."""
    await _route(Input.TEXT, update, context)


async def on_photo(update: Update, context: WenmingContext) -> None:
    """A photo, or any file (an image sent as a file is a photo too), in a private chat."""
    await _route(Input.PHOTO, update, context)


async def on_location(update: Update, context: WenmingContext) -> None:
    """A shared location in a private chat."""
    await _route(Input.LOCATION, update, context)


PRIVATE = filters.ChatType.PRIVATE
HANDLERS: list[BaseHandler[Update, WenmingContext, None]] = [
    MessageHandler(PRIVATE & filters.LOCATION, on_location),
    MessageHandler(PRIVATE & (filters.PHOTO | filters.Document.ALL), on_photo),
    MessageHandler(PRIVATE & filters.TEXT & ~filters.COMMAND, on_text),
]
