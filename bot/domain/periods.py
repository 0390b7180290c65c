"""Calendar arithmetic in the configured zone: ISO weeks, local days, due instants.

Pure functions of (aware UTC instant, zone). Local wall times are turned into UTC through the
zone, so a week or a day that contains a daylight-saving change is 1 hour shorter or longer, and
"Monday 09:00" stays 09:00 on the wall on both sides of the change. A wall time that does not
exist (spring forward, e.g. 02:30 in Europe/Berlin on the last Sunday of March) resolves to the
instant one hour later, as zoneinfo's fold=0 does; one that happens twice (autumn) resolves to
the first.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

UTC = dt.UTC
_WEEK = re.compile(r"(\d{4})-W(\d{2})")


def at_local(day: dt.date, wall: dt.time, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant of a local wall time on a local date."""
    naive = dt.datetime.combine(day, wall)
    local = naive.replace(tzinfo=tz)
    # Round-trip through UTC: a non-existent wall time (in the spring gap) comes back shifted.
    return local.astimezone(UTC)


def local_date(instant: dt.datetime, tz: ZoneInfo) -> dt.date:
    return instant.astimezone(tz).date()


def day_bounds(day: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a local calendar day, in UTC (23 or 25 hours on DST days)."""
    return at_local(day, dt.time(0), tz), at_local(day + dt.timedelta(days=1), dt.time(0), tz)


def week_key(day: dt.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_monday(key: str) -> dt.date:
    """The Monday of an ISO week written 2026-W48; ValueError for anything else."""
    m = _WEEK.fullmatch(key.strip())
    if m is None:
        raise ValueError(f"a week looks like 2026-W48, got {key!r}")
    try:
        return dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
    except ValueError:
        raise ValueError(f"{key} is not a week of that year") from None


def previous_week(key: str) -> str:
    return week_key(week_monday(key) - dt.timedelta(days=7))


@dataclass(frozen=True)
class Week:
    key: str
    first: dt.date  # Monday
    last: dt.date   # Sunday
    start: dt.datetime  # UTC, local Monday 00:00
    end: dt.datetime    # UTC, local next Monday 00:00

    @classmethod
    def of(cls, key: str, tz: ZoneInfo) -> Week:
        first = week_monday(key)
        return cls(week_key(first), first, first + dt.timedelta(days=6),
                   day_bounds(first, tz)[0], day_bounds(first + dt.timedelta(days=7), tz)[0])

    def previous(self, tz: ZoneInfo) -> Week:
        return Week.of(previous_week(self.key), tz)


@dataclass(frozen=True)
class Due:
    """A period of a recurring job and the instant from which it should run."""

    period: str
    due_at: dt.datetime
    issue_date: dt.date  # the local date it is sent on


def latest_bulletin(now: dt.datetime, weekday: int, wall: dt.time, tz: ZoneInfo) -> Due:
    """The last weekly bulletin whose send time has passed; its period is the week it covers
    (the full week before the week it is sent in)."""
    today = local_date(now, tz)
    issue = today - dt.timedelta(days=(today.weekday() - weekday) % 7)
    if at_local(issue, wall, tz) > now:
        issue -= dt.timedelta(days=7)
    covered = issue - dt.timedelta(days=issue.weekday() + 1)  # Sunday before the issue week
    return Due(week_key(covered), at_local(issue, wall, tz), issue)


def next_bulletin(now: dt.datetime, weekday: int, wall: dt.time, tz: ZoneInfo) -> Due:
    """The first weekly bulletin whose send time is still to come."""
    ahead = 7
    while (due := latest_bulletin(now + dt.timedelta(days=ahead), weekday, wall, tz)).due_at \
            <= now:
        ahead += 1  # a week shortened by daylight saving
    return due


def bulletin_issue_date(week: str, weekday: int) -> dt.date:
    """The date the bulletin covering `week` is sent on (in the following week)."""
    return week_monday(week) + dt.timedelta(days=7 + weekday)


def latest_digest(now: dt.datetime, wall: dt.time, tz: ZoneInfo) -> Due:
    """The last daily digest whose send time has passed; its period is the date it is sent
    on, and it covers the day before."""
    today = local_date(now, tz)
    if at_local(today, wall, tz) > now:
        today -= dt.timedelta(days=1)
    return Due(today.isoformat(), at_local(today, wall, tz), today)


def digest_still_timely(due: Due, now: dt.datetime, tz: ZoneInfo) -> bool:
    """A missed digest goes out only on the local day it was due: it says "yesterday", and
    a day later that would be the day before yesterday."""
    return local_date(now, tz) == due.issue_date


def bulletin_still_timely(due: Due, now: dt.datetime, tz: ZoneInfo) -> bool:
    """A missed weekly bulletin goes out only within the ISO week it was due in (Monday's can
    still go out on Tuesday); by the next week the next bulletin is due."""
    return local_date(now, tz).isocalendar()[:2] == due.issue_date.isocalendar()[:2]


def latest_slot(now: dt.datetime, hour: int, tz: ZoneInfo) -> dt.datetime:
    """The last instant at the local hour `hour` that is not after `now`."""
    today = local_date(now, tz)
    slot = at_local(today, dt.time(hour), tz)
    if slot > now:
        slot = at_local(today - dt.timedelta(days=1), dt.time(hour), tz)
    return slot
