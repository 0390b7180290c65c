"""Dates and times in words no reader can take the wrong way round: "12月7日" / "7 Dec",
"12月7日 09:30" / "7 Dec 09:30". One formatter for every screen, list and bulletin."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bot.render.i18n import t


def month_name(lang: str, month: int) -> str:
    """A month's short name: "12月", "Dec"."""
    months = t(lang, "dates.months").split()
    return months[month - 1] if len(months) == 12 else str(month)


def format_date(lang: str, day: dt.date) -> str:
    """A day: "12月7日", "7 Dec"."""
    return t(lang, "dates.day", day=day.day, month_name=month_name(lang, day.month))


def format_datetime(lang: str, instant: dt.datetime, tz: ZoneInfo) -> str:
    """A moment on the bot's wall clock: "12月7日 09:30", "7 Dec 09:30"."""
    local = instant.astimezone(tz)
    return t(lang, "dates.datetime", day=local.day, month_name=month_name(lang, local.month),
             time=local.strftime("%H:%M"))
