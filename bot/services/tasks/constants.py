"""Constants shared by the task use cases: outbox purposes, photo kinds, limits."""

from __future__ import annotations

from bot.domain.standards import Verdict
from bot.domain.tasks import DEFAULT_RELAPSE_WEEKS

RELAPSE_WEEKS_DEFAULT = DEFAULT_RELAPSE_WEEKS
CARD_PURPOSE = "task_card"
# A private message with buttons about a task (a fix to check, an extension or a claim to
# decide): its keyboard is taken away once anyone has acted on the task.
NOTICE_PURPOSE = "task_notice"
# TaskPhoto.kind: "before", "after", and "draft" for after-photos sent while a fix is being
# written (they become "after" when it is submitted; a cancelled fix leaves them unused).
# Drafts belong to whoever sent them (Photo.uploaded_by): two members writing a fix for the
# same task at once each see, drop and submit only their own.
BEFORE, AFTER, DRAFT = "before", "after", "draft"
LIST_LIMIT = 30
VERIFY_PASS_VERDICTS = (Verdict.COMPLIANT, Verdict.BASIC)
