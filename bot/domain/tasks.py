"""The rectification task lifecycle (整改闭环): states, actions, who may do what. Pure logic.

    open ──accept──▶ accepted ──submit_fix──▶ fix_submitted ──verify_pass──▶ closed
                        ▲                          │
                        └──── returned ◀──verify_return   (closed ──reopen──▶ returned)

`returned` is its own state rather than "accepted plus an event": the card, the lists and the
scheduler must tell "rework after a failed check" (返工) from "not yet fixed", and a returned
task needs no second 签收 — the unit goes straight to a new fix.

Side flows keep the main state and carry a pending flag instead of a state of their own, so a
task waiting for an admin's decision still counts as open for deadlines and escalation:

- request_extension sets `extension_until` (the date asked for); grant_extension moves `due_at`
  there, refuse_extension clears it.
- not_ours records the unit's claim; the admin re-routes (reroute: the task starts over, open,
  at the new unit) or keeps it where it is (refuse_reroute). Whether a claim is pending is
  derived from the events, so it needs no column.
- escalate is the scheduler's: it raises the escalation level and changes nothing else.

Rework gets a fresh deadline. A task returned by its verifier (verify_return) or reopened (an
admin's reopen, or the reporter disputing the fix) gets `due_at = now + allowance`, where the
allowance is the time the task was first given (its deadline at creation minus its creation
time, at least one day: see `rework_allowance`), and the scheduler's reminder marks are
cleared, so the unit is not told it is overdue for the time the check took. The escalation
level stays as it is: an escalation already announced is not taken back, and the scheduler
only escalates above the current level once the fresh deadline has passed.

Deadlines are days. A rectification deadline means "by 30 November", so every deadline is the
end (23:59:59) of a local day in the campaign's time zone (WENMING_TIMEZONE, default
Asia/Shanghai): create_task moves whatever `due_at` it is given there (`end_of_day`), an extension
keeps it there, and rework gets as many calendar days from today as the task was first given,
to the end of that day (`rework_due`, at least one day).

Extension requests say how many days in the unit's own words: "3天 人手不足", "人手不足，需要再给
三天", "两周" (`parse_extension`); with no number, or a vague one ("十几天"), they are asked again
— nothing is assumed.

Verification by the person who submitted the fix: an inspector may not check their own work;
an admin may (somebody has to when the admin is the only one around), and the event is marked
`self_verified` so the history and the card show it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from bot.domain.errors import DomainError, NotAllowed, NotFound
from bot.domain.roles import Role

DEFAULT_RELAPSE_WEEKS = 8
# The campaign's time zone unless Settings says otherwise (WENMING_TIMEZONE): the services are
# given Settings.tz; this default serves callers that give none (tests, tools).
DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_TZ = ZoneInfo(DEFAULT_TIMEZONE)
MAX_EXTENSION_DAYS = 60
MAX_TASK_DAYS = 90
MIN_REWORK_ALLOWANCE = timedelta(days=1)
# Numbers typed by people: ASCII digits only (str.isdigit() also takes ③ and ², which int()
# refuses), and at most 9 of them, so an id always fits the database's 32-bit integer.
_NUMBER = re.compile(r"[0-9]{1,9}")
_DIGITS = re.compile(r"[0-9]+")


def parse_number(text: str) -> int | None:
    """A small non-negative number typed as ASCII digits; None for anything else."""
    return int(text) if _NUMBER.fullmatch(text) else None


class TaskState(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    FIX_SUBMITTED = "fix_submitted"
    RETURNED = "returned"
    CLOSED = "closed"


ACTIVE_STATES = (TaskState.OPEN, TaskState.ACCEPTED, TaskState.RETURNED, TaskState.FIX_SUBMITTED)
# What the responsible unit still has to work on (fix_submitted waits for the verifier).
UNIT_TODO_STATES = (TaskState.OPEN, TaskState.ACCEPTED, TaskState.RETURNED)


class Action(StrEnum):
    ACCEPT = "accept"
    SUBMIT_FIX = "submit_fix"
    VERIFY_PASS = "verify_pass"
    VERIFY_RETURN = "verify_return"
    REQUEST_EXTENSION = "request_extension"
    GRANT_EXTENSION = "grant_extension"
    REFUSE_EXTENSION = "refuse_extension"
    NOT_OURS = "not_ours"
    REROUTE = "reroute"
    REFUSE_REROUTE = "refuse_reroute"
    REOPEN = "reopen"
    ESCALATE = "escalate"
    CLOSE_AS_DUPLICATE = "close_as_duplicate"


# What each action is called in the task's history (TaskEvent.action): past tense, as other
# features read them ("task.changed" subscribers key on these). "created" and "note" (a fix
# note written before the fix is submitted) are events without an action.
EVENTS: Mapping[Action, str] = {
    Action.ACCEPT: "accepted",
    Action.SUBMIT_FIX: "fix_submitted",
    Action.VERIFY_PASS: "verified",
    Action.VERIFY_RETURN: "returned",
    Action.REQUEST_EXTENSION: "extension_requested",
    Action.GRANT_EXTENSION: "extension_granted",
    Action.REFUSE_EXTENSION: "extension_refused",
    Action.NOT_OURS: "not_ours",
    Action.REROUTE: "rerouted",
    Action.REFUSE_REROUTE: "reroute_refused",
    Action.REOPEN: "reopened",
    Action.ESCALATE: "escalated",
    Action.CLOSE_AS_DUPLICATE: "closed_as_duplicate",
}
CREATED, NOTE = "created", "note"
# The reporter confirmed the problem is solved (written by the reports feature, data["by"] is
# "reporter"; bot.services.tasks.note_reporter_confirmed adds it and redraws the cards).
REPORTER_CONFIRMED = "reporter_confirmed"


class Who(StrEnum):
    UNIT = "unit"  # a member of the task's responsible unit, or an admin
    VERIFIER = "verifier"  # an inspector or an admin
    ADMIN = "admin"
    SYSTEM = "system"  # the scheduler


_ALL_ACTIVE = frozenset(ACTIVE_STATES)
_UNIT_TODO = frozenset(UNIT_TODO_STATES)


@dataclass(frozen=True)
class Rule:
    sources: frozenset[TaskState]
    target: TaskState | None  # None: the state does not change
    who: Who
    reason_required: bool = False


RULES: Mapping[Action, Rule] = {
    Action.ACCEPT: Rule(frozenset({TaskState.OPEN}), TaskState.ACCEPTED, Who.UNIT),
    Action.SUBMIT_FIX: Rule(frozenset({TaskState.ACCEPTED, TaskState.RETURNED}),
                            TaskState.FIX_SUBMITTED, Who.UNIT),
    Action.VERIFY_PASS: Rule(frozenset({TaskState.FIX_SUBMITTED}), TaskState.CLOSED,
                             Who.VERIFIER),
    Action.VERIFY_RETURN: Rule(frozenset({TaskState.FIX_SUBMITTED}), TaskState.RETURNED,
                               Who.VERIFIER, reason_required=True),
    Action.REQUEST_EXTENSION: Rule(_UNIT_TODO, None, Who.UNIT, reason_required=True),
    Action.GRANT_EXTENSION: Rule(_ALL_ACTIVE, None, Who.ADMIN),
    Action.REFUSE_EXTENSION: Rule(_ALL_ACTIVE, None, Who.ADMIN),
    Action.NOT_OURS: Rule(_UNIT_TODO, None, Who.UNIT, reason_required=True),
    Action.REROUTE: Rule(_ALL_ACTIVE, TaskState.OPEN, Who.ADMIN),
    Action.REFUSE_REROUTE: Rule(_ALL_ACTIVE, None, Who.ADMIN),
    Action.REOPEN: Rule(frozenset({TaskState.CLOSED}), TaskState.RETURNED, Who.ADMIN,
                        reason_required=True),
    Action.ESCALATE: Rule(_ALL_ACTIVE, None, Who.SYSTEM),
    Action.CLOSE_AS_DUPLICATE: Rule(_ALL_ACTIVE, TaskState.CLOSED, Who.ADMIN,
                                    reason_required=True),
}

VERIFY_ACTIONS = frozenset({Action.VERIFY_PASS, Action.VERIFY_RETURN})


def may(who: Who, actor_role: Role | None, actor_is_unit_member: bool) -> bool:
    """Whether someone with this role (None: the system) belongs to the group `who`."""
    if who is Who.SYSTEM:
        return actor_role is None
    if actor_role is None:
        return False
    if actor_role >= Role.ADMIN:
        return True
    if who is Who.UNIT:
        return actor_is_unit_member
    if who is Who.VERIFIER:
        return actor_role >= Role.INSPECTOR
    return False


def transition(
    state: TaskState | str,
    action: Action,
    actor_role: Role | None,
    actor_is_unit_member: bool,
    actor_fixed_it: bool,
    *,
    extension_pending: bool = False,
    reroute_pending: bool = False,
) -> TaskState:
    """The state after `action`, or DomainError naming why it is refused.

    The state is checked before the role, so someone pressing a button that no longer fits is
    told what happened to the task rather than that they lack a role.
    """
    state = TaskState(state)
    rule = RULES[action]
    if state not in rule.sources:
        raise DomainError("task.not_allowed_in_state", state=state.value, action=action.value)
    if not may(rule.who, actor_role, actor_is_unit_member):
        raise NotAllowed("task.not_your_role", action=action.value, who=rule.who.value)
    if action in VERIFY_ACTIONS and actor_fixed_it and actor_role is not Role.ADMIN:
        raise NotAllowed("task.not_own_fix")
    if action is Action.REQUEST_EXTENSION and extension_pending:
        raise DomainError("task.extension_pending")
    if action in (Action.GRANT_EXTENSION, Action.REFUSE_EXTENSION) and not extension_pending:
        raise DomainError("task.no_extension_pending")
    if action is Action.NOT_OURS and reroute_pending:
        raise DomainError("task.reroute_pending")
    if action is Action.REFUSE_REROUTE and not reroute_pending:
        raise DomainError("task.no_reroute_pending")
    return rule.target or state


def self_verified(action: Action, actor_fixed_it: bool) -> bool:
    """An admin checking a fix they submitted themselves: allowed, but said out loud."""
    return action in VERIFY_ACTIONS and actor_fixed_it


def require_reason(action: Action, reason: str | None) -> str | None:
    """The reason, trimmed; DomainError when the action needs one and none was given."""
    text = (reason or "").strip()
    if RULES[action].reason_required and not text:
        raise DomainError("task.reason_required")
    return text or None


def available(
    state: TaskState | str,
    actor_role: Role | None,
    actor_is_unit_member: bool,
    actor_fixed_it: bool,
    *,
    extension_pending: bool = False,
    reroute_pending: bool = False,
    candidates: Iterable[Action] = tuple(Action),
) -> list[Action]:
    """The actions this person could take now (the buttons that fit the state and person)."""
    out = []
    for action in candidates:
        try:
            transition(state, action, actor_role, actor_is_unit_member, actor_fixed_it,
                       extension_pending=extension_pending, reroute_pending=reroute_pending)
        except DomainError:
            continue
        out.append(action)
    return out


# ---- deadlines, relapses, escalation ------------------------------------------------------


def is_overdue(state: TaskState | str, due_at: datetime, now: datetime) -> bool:
    """Past the deadline and still the unit's to do (a submitted fix stops the clock)."""
    return TaskState(state) in _UNIT_TODO and due_at < now


def relapse_window(weeks: int) -> timedelta:
    return timedelta(weeks=weeks)


def is_relapse(closed_at: datetime | None, now: datetime, weeks: int) -> bool:
    """The same site and item failing again within `weeks` of its task being closed (反弹)."""
    return closed_at is not None and now - closed_at <= relapse_window(weeks)


def rework_allowance(created_at: datetime, first_due_at: datetime) -> timedelta:
    """The time a returned or reopened task gets again: what it was given when it was created
    (its first deadline minus its creation time), never less than MIN_REWORK_ALLOWANCE."""
    return max(first_due_at - created_at, MIN_REWORK_ALLOWANCE)


# Chinese numerals people type for a number of days: 一…九, 两, 十, and tens such as 十五, 二十.
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9}
_CN_NUMBER = r"[一二两三四五六七八九十]+"
_UNIT = r"(?:个)?(?:天|日|工作日|周|星期|礼拜|days?|weeks?)"
_WEEK_UNITS = ("周", "星期", "礼拜", "week")
# A vague amount ("十几天", "几天", "a few days"): refused, so the unit says how many.
_VAGUE = re.compile(r"[十]几|几(?:个)?(?:天|日|周)|数(?:天|日)|a few days|several days",
                    re.IGNORECASE)
_LEADING = re.compile(rf"^\s*(?P<n>[0-9]+|{_CN_NUMBER})\s*(?P<unit>{_UNIT})?(?:[\s,，。:：、]+|$)",
                      re.IGNORECASE)
_EMBEDDED = re.compile(rf"(?P<n>[0-9]+|{_CN_NUMBER})\s*(?P<unit>{_UNIT})", re.IGNORECASE)


def chinese_number(text: str) -> int | None:
    """一 → 1, 十 → 10, 十五 → 15, 二十 → 20, 三十五 → 35; None for anything else."""
    if not text or any(c not in _CN_DIGITS and c != "十" for c in text):
        return None
    if "十" not in text:
        return _CN_DIGITS[text] if len(text) == 1 else None
    tens, _, ones = text.partition("十")
    if len(tens) > 1 or len(ones) > 1 or "十" in ones:
        return None
    ten = _CN_DIGITS.get(tens, 0) if tens else 1
    if tens and ten == 0:
        return None
    one = _CN_DIGITS.get(ones, 0) if ones else 0
    if ones and one == 0:
        return None
    return ten * 10 + one


def _amount(number: str, unit: str | None) -> int | None:
    if _DIGITS.fullmatch(number):
        # More digits than any sane number of days: out of range, not missing.
        n: int | None = parse_number(number) or (0 if set(number) == {"0"} else 10**9)
    else:
        n = chinese_number(number)
    if n is None:
        return None
    if unit and unit.lower().lstrip("个").startswith(_WEEK_UNITS):
        n *= 7
    return n


def parse_extension(text: str) -> tuple[int, str]:
    """How many more days, and why: "7 等待材料" → (7, "等待材料"),
    "3天 人手不足" → (3, "人手不足"), "人手不足，需要再给三天" → (3, the whole text), "两周" → 14.

    DomainError "task.extension_days_missing" when no number of days can be found (the unit is
    asked again: nothing is assumed), "task.extension_days_vague" for "十几天", and
    "task.bad_extension_days" outside 1..MAX_EXTENSION_DAYS."""
    text = text.strip()
    if _VAGUE.search(text):
        raise DomainError("task.extension_days_vague", max=MAX_EXTENSION_DAYS)
    days: int | None = None
    reason = text
    leading = _LEADING.match(text)
    if leading is not None:
        days = _amount(leading.group("n"), leading.group("unit"))
        reason = text[leading.end():].strip()
    else:
        embedded = _EMBEDDED.search(text)
        if embedded is not None:
            days = _amount(embedded.group("n"), embedded.group("unit"))
    if days is None:
        raise DomainError("task.extension_days_missing", max=MAX_EXTENSION_DAYS)
    if not 1 <= days <= MAX_EXTENSION_DAYS:
        raise DomainError("task.bad_extension_days", max=MAX_EXTENSION_DAYS)
    return days, reason


# ---- deadlines are days --------------------------------------------------------------------


def end_of_day(when: datetime, tz: tzinfo) -> datetime:
    """The last second (23:59:59) of the local day `when` falls on, in `when`'s own zone: a
    rectification deadline is a day ("by 30 November"), never an odd clock time."""
    src = when.tzinfo or UTC
    local = when.replace(tzinfo=src).astimezone(tz)
    end = local.replace(hour=23, minute=59, second=59, microsecond=0)
    out = end.astimezone(src)
    return out if when.tzinfo is not None else out.replace(tzinfo=None)


def rework_due(created_at: datetime, first_due_at: datetime, now: datetime,
               tz: tzinfo) -> datetime:
    """The deadline of a returned or reopened task: as many days from today as the task was
    first given (local calendar days from its creation to its first deadline, at least one),
    at the end of that day."""
    first_days = (first_due_at.astimezone(tz).date() - created_at.astimezone(tz).date()).days
    days = max(first_days, MIN_REWORK_ALLOWANCE.days)
    return end_of_day(now + timedelta(days=days), tz)


class HasParent(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def parent_id(self) -> int | None: ...


U = TypeVar("U", bound=HasParent)


def escalation_chain(units: Mapping[int, U] | Iterable[U], unit: U) -> list[U]:
    """The unit and its ancestors up to the root (a cycle in bad data stops the walk)."""
    by_id = units if isinstance(units, Mapping) else {u.id: u for u in units}
    chain = [unit]
    seen = {unit.id}
    current = unit
    while current.parent_id is not None and current.parent_id not in seen:
        parent = by_id.get(current.parent_id)
        if parent is None:
            break
        chain.append(parent)
        seen.add(parent.id)
        current = parent
    return chain


def escalation_target(
    units: Mapping[int, U] | Iterable[U], unit: U, level: int
) -> U | None:
    """Level 1 is the unit's parent, level 2 its parent's parent, …, capped at the root.

    None for level 0 or below (nobody above is involved) and for a root unit (nobody above it).
    """
    if level <= 0:
        return None
    chain = escalation_chain(units, unit)
    if len(chain) == 1:
        return None
    return chain[min(level, len(chain) - 1)]


# ---- /tasks filters -----------------------------------------------------------------------


# The state names the cards show (zh-Hans) and words people use for them, besides the internal
# names: "/tasks state 待复核", "/tasks state Returned", "/tasks state awaiting-check".
STATE_NAMES_ZH = {
    TaskState.OPEN: "待签收", TaskState.ACCEPTED: "整改中", TaskState.FIX_SUBMITTED: "待复核",
    TaskState.RETURNED: "退回重改", TaskState.CLOSED: "已销号",
}
_STATE_WORDS: Mapping[str, TaskState] = {
    **{s.value: s for s in TaskState},
    **{name: s for s, name in STATE_NAMES_ZH.items()},
    "待签": TaskState.OPEN, "未签收": TaskState.OPEN, "new": TaskState.OPEN,
    "awaiting acceptance": TaskState.OPEN, "unaccepted": TaskState.OPEN,
    "已签收": TaskState.ACCEPTED, "整改": TaskState.ACCEPTED, "being fixed": TaskState.ACCEPTED,
    "in progress": TaskState.ACCEPTED, "fixing": TaskState.ACCEPTED,
    "复核": TaskState.FIX_SUBMITTED, "已提交": TaskState.FIX_SUBMITTED,
    "awaiting check": TaskState.FIX_SUBMITTED, "submitted": TaskState.FIX_SUBMITTED,
    "fixed": TaskState.FIX_SUBMITTED, "to check": TaskState.FIX_SUBMITTED,
    "退回": TaskState.RETURNED, "返工": TaskState.RETURNED,
    "returned for rework": TaskState.RETURNED, "rework": TaskState.RETURNED,
    "销号": TaskState.CLOSED, "已关闭": TaskState.CLOSED, "done": TaskState.CLOSED,
}


def parse_state(word: str) -> TaskState | None:
    """A state by its internal name, its name on the cards, or an English word for it;
    case, hyphens and underscores do not matter."""
    key = " ".join(word.strip().lower().replace("_", " ").replace("-", " ").split())
    return _STATE_WORDS.get(key) or _STATE_WORDS.get(key.replace(" ", "_"))


@dataclass(frozen=True)
class TaskFilter:
    unit_query: str | None = None
    states: tuple[TaskState, ...] = ()
    overdue: bool = False
    task_id: int | None = None


def parse_filter(args: Iterable[str]) -> TaskFilter:
    """"/tasks overdue", "/tasks unit 后祁街社区", "/tasks state fix_submitted", "/tasks 12"."""
    words = list(args)
    unit: str | None = None
    states: list[TaskState] = []
    overdue = False
    task_id: int | None = None
    i = 0
    while i < len(words):
        word = words[i].lower().lstrip("#")
        if word in ("overdue", "逾期"):
            overdue = True
        elif word in ("unit", "单位") and i + 1 < len(words):
            unit = words[i + 1]
            i += 1
        elif word in ("state", "状态") and i + 1 < len(words):
            state = parse_state(words[i + 1])
            if state is None:
                # The known states, each named in the reader's language (bot.render.refusals).
                raise DomainError("task.bad_state", state=words[i + 1],
                                  states=tuple(s.value for s in TaskState))
            states.append(state)
            i += 1
        elif _DIGITS.fullmatch(word):
            task_id = parse_number(word)
            if task_id is None:  # more digits than any task id has
                raise NotFound("task.not_found", id=word)
        else:
            raise DomainError("task.bad_filter")
        i += 1
    return TaskFilter(unit, tuple(states), overdue, task_id)
