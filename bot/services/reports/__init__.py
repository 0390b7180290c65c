"""Residents' reports (随手拍): the draft, submitting, routing, the unit's decision, follow-up.

Every use case takes a unit of work and never commits; messages to groups and to residents are
queued in the outbox inside the same transaction, so they go out once, after it commits.

Each submodule holds the use cases it is named after, as functions taking a ReportContext
(context.py: the configuration, media store, time zone and group language bot/app.py builds once)
and a unit of work. bot/app.py subscribes followup.on_task_changed to "task.changed".
"""

from bot.render.reports import Candidate as Candidate
from bot.services.reports.blocking import USER_ID_RE as USER_ID_RE
from bot.services.reports.context import ReportContext as ReportContext
from bot.services.reports.drafts import cancel_draft as cancel_draft
from bot.services.reports.followup import REPORTER_CONFIRMED as REPORTER_CONFIRMED
from bot.services.reports.results import DraftView as DraftView
from bot.services.reports.results import Followed as Followed
from bot.services.reports.results import PhotoAdded as PhotoAdded
from bot.services.reports.results import ReportLine as ReportLine
from bot.services.reports.results import Submitted as Submitted
