"""What the scheduler owes a task right now: pure decisions from its deadline and bookkeeping.

The task's own columns (reminded_before_at, reminded_due_at, last_overdue_reminder_at,
escalation_level) record what has been said, so the same decision is never taken twice, and a
bot that was down simply takes the decisions it missed, once, when it comes back:

* before the deadline (reminder_before_hours ahead): one reminder, unless the task was created
  inside that window (its creation message said the same thing a moment ago);
* at the deadline: one reminder; a bot that comes back days late says "overdue" instead;
* while overdue: one reminder a day at overdue_reminder_hour (local), from the day after the
  deadline, and never on the day the deadline reminder went out;
* escalation: every ladder step whose overdue time has passed and whose level is above the
  task's, in order (a bot down for a week still tells the parent before the office).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from bot.domain.periods import latest_slot, local_date
from bot.domain.schedule import EscalationStep, ScheduleConfig

Reminder = Literal["before", "due", "overdue"]


@dataclass(frozen=True)
class Deadline:
    """The part of a task the policy reads."""

    due_at: dt.datetime
    created_at: dt.datetime
    escalation_level: int
    reminded_before_at: dt.datetime | None
    reminded_due_at: dt.datetime | None
    last_overdue_reminder_at: dt.datetime | None


@dataclass(frozen=True)
class Decision:
    reminder: Reminder | None
    # A "before" window that opened before the task existed: mark it, say nothing.
    skip_before: bool
    escalations: tuple[EscalationStep, ...]

    @property
    def empty(self) -> bool:
        return self.reminder is None and not self.skip_before and not self.escalations


def decide(task: Deadline, now: dt.datetime, cfg: ScheduleConfig, tz: ZoneInfo) -> Decision:
    reminder: Reminder | None = None
    skip_before = False
    if now < task.due_at:
        window = task.due_at - dt.timedelta(hours=cfg.reminder_before_hours)
        if task.reminded_before_at is None and now >= window and cfg.reminder_before_hours > 0:
            if task.created_at < window:
                reminder = "before"
            else:
                skip_before = True
    elif task.reminded_due_at is None:
        reminder = "due"
    else:
        slot = latest_slot(now, cfg.overdue_reminder_hour, tz)
        if (local_date(slot, tz) > local_date(task.due_at, tz)
                and task.reminded_due_at < slot
                and (task.last_overdue_reminder_at is None
                     or task.last_overdue_reminder_at < slot)):
            reminder = "overdue"
    steps: tuple[EscalationStep, ...] = ()
    if now >= task.due_at:
        overdue = now - task.due_at
        steps = tuple(
            s for s in cfg.escalation
            if s.level > task.escalation_level
            and overdue >= dt.timedelta(hours=s.after_overdue_hours)
        )
    return Decision(reminder, skip_before, steps)


def overdue_days(due_at: dt.datetime, now: dt.datetime) -> int:
    """Whole days overdue, at least 1 once the deadline has passed."""
    return max(1, (now - due_at) // dt.timedelta(days=1))


def overdue_span(due_at: dt.datetime, now: dt.datetime) -> tuple[int, str]:
    """How long past its deadline, as a person would say it: whole days, or under a day
    whole hours (at least 1): (8, "hours") for a task due at 23:59 seen at 08:34."""
    late = now - due_at
    if late >= dt.timedelta(days=1):
        return late // dt.timedelta(days=1), "days"
    return max(1, late // dt.timedelta(hours=1)), "hours"
