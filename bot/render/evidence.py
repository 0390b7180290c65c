"""Evidence notes on a task's card and history, and the words of a photo's stamp (水印)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.domain.evidence import DUPLICATE, NO_CAPTURE_TIME, OLD
from bot.render.i18n import t

# At most this many strong notes on a card (a caption has 1,024 characters); the history and
# /task show every fix's notes by count.
CARD_NOTES = 2


def _flags(data: Mapping[str, object]) -> list[Mapping[str, object]]:
    raw = data.get("evidence")
    if not isinstance(raw, list):
        return []
    return [f for f in raw if isinstance(f, Mapping)]


def flag_line(lang: str, flag: Mapping[str, object], tz: ZoneInfo) -> str | None:
    """One strong note in words: what the after-photo matched (a task, inspection or report
    number; never who took it), or when it was taken."""
    kind = flag.get("flag")
    if kind == DUPLICATE:
        if isinstance(flag.get("task"), int):
            return t(lang, "evidence.card.duplicate_task", id=flag["task"])
        if isinstance(flag.get("inspection"), int):
            return t(lang, "evidence.card.duplicate_inspection", id=flag["inspection"])
        if isinstance(flag.get("report"), str):
            return t(lang, "evidence.card.duplicate_report", ticket=flag["report"])
        return t(lang, "evidence.card.duplicate_other")
    if kind == OLD:
        raw = flag.get("captured")
        try:
            at = datetime.fromisoformat(str(raw)).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            at = "—"
        return t(lang, "evidence.card.old", at=at)
    return None


def card_lines(lang: str, fix_data: Mapping[str, object] | None, tz: ZoneInfo) -> list[str]:
    """The notes of the fix now waiting for the checker (`fix_data`: its event's data)."""
    if fix_data is None:
        return []
    flags = _flags(fix_data)
    strong: list[str] = []
    for flag in flags:
        line = flag_line(lang, flag, tz)
        if line is not None and line not in strong:
            strong.append(line)
    missing = sum(1 for f in flags if f.get("flag") == NO_CAPTURE_TIME)
    lines = strong[:CARD_NOTES]
    if missing:
        lines.append(t(lang, "evidence.card.no_capture_time", count=missing))
    return [t(lang, "evidence.card.title"), *lines] if lines else []


def history_suffix(lang: str, data: Mapping[str, object]) -> str:
    """" ⚠️ 2 evidence notes" after a fix's line in the history; "" when it has none."""
    count = len(_flags(data))
    return t(lang, "evidence.history.flags", count=count) if count else ""


def stamp_lines(lang: str, *, site: str | None, received: datetime | None, tz: ZoneInfo,
                task_id: int | None = None, inspection_id: int | None = None,
                after: bool = False, resident: bool = False) -> list[str]:
    """The stamp on a photo shown in a group, as an inspector's 水印相机 draws it: site, when
    the bot received it (local time), the task or inspection number, 整改前 / 整改后.

    A resident's photo (`resident`) gets a neutral stamp: no time of day (in a small place the
    minute a photo came in can point at who stood there), nothing about the sender."""
    number = (t(lang, "evidence.stamp.task", id=task_id) if task_id is not None
              else t(lang, "evidence.stamp.inspection", id=inspection_id)
              if inspection_id is not None else "")
    stage = t(lang, "evidence.stamp.after" if after else "evidence.stamp.before")
    first = " · ".join(p for p in (number, stage) if p)
    lines = [first]
    if site:
        lines.append(site)
    if resident:
        lines.append(t(lang, "evidence.stamp.report"))
    elif received is not None:
        at = received.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        lines.append(t(lang, "evidence.stamp.received", at=at))
    return lines


def latest_fix(events: Sequence[tuple[str, Mapping[str, object]]], fix_action: str
               ) -> Mapping[str, object] | None:
    """The data of the latest fix event among (action, data) pairs."""
    for action, data in reversed(events):
        if action == fix_action:
            return data
    return None
