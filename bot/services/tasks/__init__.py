"""Rectification task use cases (整改闭环): create, act on, list, escalate, score.

Every function takes a UnitOfWork and `now` and never commits: the caller commits once, then
talks to Telegram. Each transition bumps `Task.version` with a guarded UPDATE (… WHERE id = :id
AND version = :v), so of two people pressing the same button at the same moment exactly one
moves the task and the other is told who did it. Every transition writes a TaskEvent and
publishes "task.changed" (the reports feature tells residents from there).

The relapse window (反弹) is Settings.relapse_weeks (WENMING_RELAPSE_WEEKS), passed in by the
inspection service that creates tasks for failed items.
"""

from bot.domain.tasks import escalation_target
from bot.services.tasks.cards import (
    active_groups,
    card_delivered,
    chats_with_queued_edits,
    queue_card_edits,
    queue_cards,
    record_card,
)
from bot.services.tasks.constants import CARD_PURPOSE, NOTICE_PURPOSE
from bot.services.tasks.creation import create_task
from bot.services.tasks.escalation import escalate, reopen_task
from bot.services.tasks.findings import add_photo, finding_target, unattached_photos
from bot.services.tasks.inputs import (
    add_draft_photo,
    add_note,
    begin_input,
    cancel_input,
    drafts,
    drop_drafts,
)
from bot.services.tasks.lists import TaskList, list_tasks, may_see, tasks_for
from bot.services.tasks.notifications import last_return, remember_screen
from bot.services.tasks.permissions import check, is_unit_member
from bot.services.tasks.reads import get_task, history, reroute_claim, task_data
from bot.services.tasks.site_items import current_site_score, record_site_items
from bot.services.tasks.transitions import Outcome, act, note_reporter_confirmed

__all__ = [
    "CARD_PURPOSE",
    "NOTICE_PURPOSE",
    "Outcome",
    "TaskList",
    "act",
    "active_groups",
    "add_draft_photo",
    "add_note",
    "add_photo",
    "begin_input",
    "cancel_input",
    "card_delivered",
    "chats_with_queued_edits",
    "check",
    "create_task",
    "current_site_score",
    "drafts",
    "drop_drafts",
    "escalate",
    "escalation_target",
    "finding_target",
    "get_task",
    "history",
    "is_unit_member",
    "last_return",
    "list_tasks",
    "may_see",
    "note_reporter_confirmed",
    "queue_card_edits",
    "queue_cards",
    "record_card",
    "record_site_items",
    "remember_screen",
    "reopen_task",
    "reroute_claim",
    "task_data",
    "tasks_for",
    "unattached_photos",
]
