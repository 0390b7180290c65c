"""Callback data, the one codec: compact, prefixed, under Telegram's 64 bytes; parsed strictly.

Every button's data is written by a function here and read back by its parser here, so a
button and the code that handles it never disagree. A malformed, foreign or outdated press
raises StaleAction (a polite "this button is out of date"), never a crash.

The formats are those of buttons already sitting in chats, kept byte for byte:

    v:<inspection>:<step>:<verdict code>         a verdict on the current item
    i:<inspection>:<step>:<action>[:<target>]    another step action (goto carries a target)
    s:<site>[:go]                                start or resume there (go: though it is held)
    r:<inspection>                               resume
    f:search | f:near | f:new                    find a site
    l:<language>                                 choose the language
    d:<inspection>[:yes|:no]                     discard: ask, or answer the question
    rp:<report>:<code>[:<arg>]                   the resident's report buttons
    rg:<report>:<code>[:<arg>]                   the unit group's report buttons
    t:<task>:<version>:<code>                    a task's buttons (card and private screens)
    pg:<occurrence>[:go]                         a site on an inspector's day list (go: inspect
                                                 again though it is done)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from bot.domain.errors import StaleAction
from bot.domain.standards import Verdict
from bot.domain.tasks import Action, parse_number

MAX_BYTES = 64
STALE = "error.stale_button"

# Prefixes, matched by handlers (never the visible, translated text).
VERDICT = "v"
STEP = "i"
SITE = "s"
SITE_ANYWAY = "go"
RESUME = "r"
FIND = "f"
FIND_MODES = ("search", "near", "new")
LANG = "l"
DISCARD = "d"
DISCARD_CHOICES = ("yes", "no")
RESIDENT = "rp"
GROUP = "rg"
TASK = "t"
PLAN = "pl"  # :p|r:<plan code>, an admin pauses or resumes a supervision plan
PLANNED = "pg"  # :<occurrence>[:go], a site on an inspector's list for the day
PLANNED_STALE = "plans.press.expired"

VERDICT_CODES = {
    Verdict.COMPLIANT: "c", Verdict.BASIC: "b", Verdict.NONCOMPLIANT: "n", Verdict.NA: "a",
}
CODE_VERDICTS = {code: v for v, code in VERDICT_CODES.items()}

# Ids and step numbers: ASCII digits, at most 9 of them, so every one fits the database's
# 32-bit integer columns (a forged 16-digit id reached PostgreSQL and failed there).
ID_RE = re.compile(r"[0-9]{1,9}")


def pack(*parts: object) -> str:
    data = ":".join(str(p) for p in parts)
    if len(data.encode()) > MAX_BYTES:
        raise ValueError(f"callback data too long: {data!r}")
    return data


def _parts(data: str, prefix: str, *counts: int, stale: str = STALE) -> list[str]:
    """The parts of a press with this prefix and one of these lengths, else stale."""
    parts = data.split(":")
    if parts[0] != prefix or len(parts) not in counts:
        raise StaleAction(stale)
    return parts


def number(text: str | None) -> int | None:
    """An id carried in callback data: ASCII digits only (never "③" or "٣"), at most 9."""
    return int(text) if text is not None and ID_RE.fullmatch(text) else None


def _id(text: str) -> int:
    """`number`, or a stale button (ValueError, which the parsers turn into one)."""
    value = number(text)
    if value is None:
        raise ValueError(text)
    return value


# ---- inspections ------------------------------------------------------------------------------


def verdict(inspection_id: int, step: int, v: Verdict) -> str:
    return pack(VERDICT, inspection_id, step, VERDICT_CODES[v])


def step_action(inspection_id: int, step: int, action: str, target: int | None = None) -> str:
    if target is None:
        return pack(STEP, inspection_id, step, action)
    return pack(STEP, inspection_id, step, action, target)


@dataclass(frozen=True)
class StepPress:
    inspection_id: int
    step: int
    action: str
    verdict: Verdict | None = None
    target: int | None = None


def parse_step(data: str) -> StepPress:
    """Parse a v: or i: press; anything malformed is a stale button, never a crash."""
    parts = data.split(":")
    try:
        if parts[0] == VERDICT and len(parts) == 4:
            return StepPress(_id(parts[1]), _id(parts[2]), "verdict", CODE_VERDICTS[parts[3]])
        if parts[0] == STEP and len(parts) in (4, 5):
            target = _id(parts[4]) if len(parts) == 5 else None
            return StepPress(_id(parts[1]), _id(parts[2]), parts[3], None, target)
    except (ValueError, KeyError):
        pass
    raise StaleAction(STALE)


def resume(inspection_id: int) -> str:
    return pack(RESUME, inspection_id)


def parse_int(data: str, prefix: str) -> int:
    parts = _parts(data, prefix, 2)
    try:
        return _id(parts[1])
    except ValueError:
        raise StaleAction(STALE) from None


def site(site_id: int, anyway: bool = False) -> str:
    return pack(SITE, site_id, SITE_ANYWAY) if anyway else pack(SITE, site_id)


def parse_site(data: str) -> tuple[int, bool]:
    """(site id, whether the inspector chose to go on though someone else has it open)."""
    parts = _parts(data, SITE, 2, 3)
    site_id = number(parts[1])
    if site_id is not None and (len(parts) == 2 or parts[2] == SITE_ANYWAY):
        return site_id, len(parts) == 3
    raise StaleAction(STALE)


def plan(code: str, pause: bool) -> str:
    return pack(PLAN, "p" if pause else "r", code)


def parse_plan(data: str) -> tuple[str, bool]:
    """(plan code, True to pause / False to resume)."""
    parts = _parts(data, PLAN, 3)
    if parts[1] not in ("p", "r") or not parts[2]:
        raise StaleAction(STALE)
    return parts[2], parts[1] == "p"


def planned(occurrence_id: int, again: bool = False) -> str:
    return pack(PLANNED, occurrence_id, SITE_ANYWAY) if again else pack(PLANNED, occurrence_id)


def parse_planned(data: str) -> tuple[int, bool]:
    """(occurrence id, whether the inspector chose to inspect again a site already done);
    malformed: the list's "button expired"."""
    parts = _parts(data, PLANNED, 2, 3, stale=PLANNED_STALE)
    occurrence_id = number(parts[1])
    if occurrence_id is not None and (len(parts) == 2 or parts[2] == SITE_ANYWAY):
        return occurrence_id, len(parts) == 3
    raise StaleAction(PLANNED_STALE)


def find(mode: str) -> str:
    assert mode in FIND_MODES, mode
    return pack(FIND, mode)


def parse_find(data: str) -> str:
    """"search", "near" or "new"."""
    mode = _parts(data, FIND, 2)[1]
    if mode not in FIND_MODES:
        raise StaleAction(STALE)
    return mode


def discard(inspection_id: int, choice: str | None = None) -> str:
    if choice is None:
        return pack(DISCARD, inspection_id)
    assert choice in DISCARD_CHOICES, choice
    return pack(DISCARD, inspection_id, choice)


def parse_discard(data: str) -> tuple[int, str | None]:
    """(inspection id, "yes" | "no" | None for the question); malformed is a stale button."""
    parts = _parts(data, DISCARD, 2, 3)
    choice = parts[2] if len(parts) == 3 else None
    if choice is None or choice in DISCARD_CHOICES:
        inspection_id = number(parts[1])
        if inspection_id is not None:
            return inspection_id, choice
    raise StaleAction(STALE)


def language(code: str) -> str:
    return pack(LANG, code)


def parse_language(data: str) -> str:
    """The language code chosen (checked against the catalogues by the caller)."""
    prefix, _, code = data.partition(":")
    if prefix != LANG:
        raise StaleAction(STALE)
    return code


# ---- reports ----------------------------------------------------------------------------------


class ReportPress(StrEnum):
    """The resident's buttons: rp:<report>:<code>[:<arg>]."""

    CATEGORY = "c"  # :<category code>
    SITE = "s"  # :<site id>, a known site picked from a list
    TYPED = "typed"  # the address as typed
    CHANGE_PLACE = "place"
    SITES = "list"  # the list of known sites
    SKIP = "skip"  # no description
    SUBMIT = "submit"
    CANCEL = "cancel"
    FOLLOW = "f"  # :<report id>, "me too" instead of a new report
    FIX_OK = "ok"
    FIX_STILL = "still"  # [:now] sends it back without a reason


class GroupPress(StrEnum):
    """The unit group's buttons on a report card: rg:<report>:<code>[:<arg>]."""

    ACCEPT = "acc"
    REJECT = "rej"  # opens the reasons
    DUPLICATE = "dup"  # opens the earlier tickets
    REROUTE = "rr"  # opens the units
    BACK = "back"  # back to the first level
    REASON = "why"  # :<reason code>, rejects
    DUPLICATE_OF = "of"  # :<report id>
    TO_UNIT = "to"  # :<unit id>


P = TypeVar("P", ReportPress, GroupPress)


def resident(report_id: int, action: ReportPress, arg: object | None = None) -> str:
    if arg is None:
        return pack(RESIDENT, report_id, action.value)
    return pack(RESIDENT, report_id, action.value, arg)


def group(report_id: int, action: GroupPress, arg: object | None = None) -> str:
    if arg is None:
        return pack(GROUP, report_id, action.value)
    return pack(GROUP, report_id, action.value, arg)


def parse_report(data: str, prefix: str) -> tuple[int, str, str | None]:
    """(report id, code, argument) of an rp: or rg: press; anything malformed is stale."""
    parts = _parts(data, prefix, 3, 4)
    if ID_RE.fullmatch(parts[1]) and parts[2]:
        return int(parts[1]), parts[2], parts[3] if len(parts) == 4 else None
    raise StaleAction(STALE)


def _report_press(data: str, prefix: str, kind: type[P]) -> tuple[int, P, str | None]:
    report_id, code, arg = parse_report(data, prefix)
    try:
        return report_id, kind(code), arg
    except ValueError:
        raise StaleAction(STALE) from None


def parse_resident(data: str) -> tuple[int, ReportPress, str | None]:
    """(report id, action, argument) of a resident's press; an unknown action is stale."""
    return _report_press(data, RESIDENT, ReportPress)


def parse_group(data: str) -> tuple[int, GroupPress, str | None]:
    """(report id, action, argument) of a group's press; an unknown action is stale."""
    return _report_press(data, GROUP, GroupPress)


# ---- tasks ------------------------------------------------------------------------------------

TASK_STALE = "task.stale"
# Short codes, so the data stays far below 64 bytes.
TASK_CODES: dict[str, Action] = {
    "a": Action.ACCEPT,
    "f": Action.SUBMIT_FIX,
    "x": Action.REQUEST_EXTENSION,
    "n": Action.NOT_OURS,
    "p": Action.VERIFY_PASS,
    "r": Action.VERIFY_RETURN,
    "g": Action.GRANT_EXTENSION,
    "d": Action.REFUSE_EXTENSION,
    "m": Action.REROUTE,
    "k": Action.REFUSE_REROUTE,
    "o": Action.REOPEN,
}
TASK_ACTION_CODES = {a: c for c, a in TASK_CODES.items()}
# Further codes that are not lifecycle actions of their own.
TASK_DONE = "done"  # the fix's after-photos are all sent: submit it
TASK_VERDICT_CODES = {"vc": "compliant", "vb": "basic", "vn": "noncompliant"}
TASK_CANCEL = "q"  # leave the input this person was asked for


def task(task_id: int, version: int, code: str) -> str:
    return pack(TASK, task_id, version, code)


def task_action(task_id: int, version: int, action: Action) -> str:
    return task(task_id, version, TASK_ACTION_CODES[action])


@dataclass(frozen=True)
class TaskPress:
    task_id: int
    version: int
    code: str

    @property
    def action(self) -> Action | None:
        return TASK_CODES.get(self.code)


def parse_task(data: str) -> TaskPress:
    """Parse t:<task>:<version>:<code>; anything else is a stale button, never a crash."""
    parts = _parts(data, TASK, 4, stale=TASK_STALE)
    task_id, version, code = parse_number(parts[1]), parse_number(parts[2]), parts[3]
    if (task_id is not None and version is not None
            and (code in TASK_CODES or code in TASK_VERDICT_CODES
                 or code in (TASK_DONE, TASK_CANCEL))):
        return TaskPress(task_id, version, code)
    raise StaleAction(TASK_STALE)
