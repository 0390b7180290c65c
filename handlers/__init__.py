"""All handlers, registered in one ordered block. Order matters: first match in a group wins."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application

from handlers import (
    actions,
    admin,
    assessment,
    fallback,
    gatekeeper,
    inputs,
    inspect,
    plan_files,
    plans,
    reports,
    start,
    stats,
    tasks,
)
from handlers.errors import on_error


def register(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    # -1: the gatekeeper identifies every sender (and stops blocked people) before anything.
    application.add_handlers(gatekeeper.HANDLERS, group=-1)
    # 0: the features' commands and buttons (each matches its own commands and prefixes).
    # Deep links first ("/start report", "/start task_<id>"): they must win over /start's
    # invite codes.
    application.add_handlers(reports.HANDLERS, group=0)
    application.add_handlers([tasks.START_HANDLER], group=0)
    application.add_handlers(start.HANDLERS, group=0)
    application.add_handlers(admin.HANDLERS, group=0)
    # An admin's plans file, then spreadsheet of test scores, before the inputs take either
    # for a photo (and before the assessment answers any other file with its table layout).
    application.add_handlers(plan_files.HANDLERS, group=0)
    application.add_handlers(assessment.HANDLERS, group=0)
    application.add_handlers(stats.HANDLERS, group=0)
    application.add_handlers(actions.HANDLERS, group=0)
    application.add_handlers(inspect.HANDLERS, group=0)
    application.add_handlers(tasks.HANDLERS, group=0)
    application.add_handlers(plans.HANDLERS, group=0)
    # 0, then: free input in private chats, routed to whichever feature is waiting for it.
    application.add_handlers(inputs.HANDLERS, group=0)
    # 0, last: whatever no feature wanted gets a helpful answer.
    application.add_handlers(fallback.HANDLERS, group=0)
    application.add_error_handler(on_error)
