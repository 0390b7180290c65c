"""Callback data: compact, prefixed, under Telegram's 64 bytes; parsed strictly."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.errors import StaleAction
from bot.domain.standards import Verdict

MAX_BYTES = 64
VERDICT_CODES = {
    Verdict.COMPLIANT: "c", Verdict.BASIC: "b", Verdict.NONCOMPLIANT: "n", Verdict.NA: "a",
}
CODE_VERDICTS = {code: v for v, code in VERDICT_CODES.items()}

# Prefixes, matched by handlers (never the visible, translated text).
VERDICT = "v"  # v:<inspection>:<step>:<verdict code>
STEP = "i"  # i:<inspection>:<step>:<action>[:<target>]
SITE = "s"  # s:<site id>[:go]    start or resume an inspection there (go: though it is held)
SITE_ANYWAY = "go"
RESUME = "r"  # r:<inspection>
FIND = "f"  # f:search | f:near | f:new
LANG = "l"  # l:<language>
DISCARD = "d"  # d:<inspection> asks; d:<inspection>:yes discards; d:<inspection>:no goes back
DISCARD_CHOICES = ("yes", "no")


def pack(*parts: object) -> str:
    data = ":".join(str(p) for p in parts)
    if len(data.encode()) > MAX_BYTES:
        raise ValueError(f"callback data too long: {data!r}")
    return data


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
            return StepPress(int(parts[1]), int(parts[2]), "verdict", CODE_VERDICTS[parts[3]])
        if parts[0] == STEP and len(parts) in (4, 5):
            target = int(parts[4]) if len(parts) == 5 else None
            return StepPress(int(parts[1]), int(parts[2]), parts[3], None, target)
    except (ValueError, KeyError):
        pass
    raise StaleAction("error.stale_button")


def parse_int(data: str, prefix: str) -> int:
    parts = data.split(":")
    if len(parts) == 2 and parts[0] == prefix:
        try:
            return int(parts[1])
        except ValueError:
            pass
    raise StaleAction("error.stale_button")


def parse_site(data: str) -> tuple[int, bool]:
    """(site id, whether the inspector chose to go on though someone else has it open)."""
    parts = data.split(":")
    if parts[0] == SITE and len(parts) in (2, 3) and parts[1].isdigit():
        if len(parts) == 2 or parts[2] == SITE_ANYWAY:
            return int(parts[1]), len(parts) == 3
    raise StaleAction("error.stale_button")


def parse_discard(data: str) -> tuple[int, str | None]:
    """(inspection id, "yes" | "no" | None for the question); malformed is a stale button."""
    parts = data.split(":")
    try:
        if parts[0] == DISCARD and len(parts) in (2, 3):
            choice = parts[2] if len(parts) == 3 else None
            if choice is None or choice in DISCARD_CHOICES:
                return int(parts[1]), choice
    except ValueError:
        pass
    raise StaleAction("error.stale_button")
