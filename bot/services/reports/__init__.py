"""Residents' reports (随手拍): the draft, submitting, routing, the unit's decision, follow-up.

Every use case takes a unit of work and never commits; messages to groups and to residents are
queued in the outbox inside the same transaction, so they go out once, after it commits.

The use cases are ReportService's methods (service.py); each submodule holds the part of them it
is named after. Importing this package subscribes the service to "task.changed".
"""

from bot.render.reports import Candidate as Candidate
from bot.services.reports.blocking import USER_ID_RE as USER_ID_RE
from bot.services.reports.drafts import cancel_draft as cancel_draft
from bot.services.reports.followup import REPORTER_CONFIRMED as REPORTER_CONFIRMED
from bot.services.reports.numbers import next_counter as next_counter
from bot.services.reports.numbers import resident_number as resident_number
from bot.services.reports.results import DraftView as DraftView
from bot.services.reports.results import Followed as Followed
from bot.services.reports.results import PhotoAdded as PhotoAdded
from bot.services.reports.results import ReportLine as ReportLine
from bot.services.reports.results import Submitted as Submitted
from bot.services.reports.service import ReportService as ReportService
from bot.services.reports.service import default_config as default_config
from bot.services.reports.service import on_task_changed as on_task_changed
from bot.services.reports.service import service_from_env as service_from_env
