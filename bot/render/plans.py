"""Texts and buttons of supervision plans: an inspector's list for the day, the admins' plan
screen, the digest's missed rounds. Plain data in, (html, button rows) out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.domain.plans import LATE, RECHECK, ROUND, SPOT, Text
from bot.render import callbacks as cb
from bot.render.buttons import Button, Rows, Screen
from bot.render.dates import format_date
from bot.render.fit import fit, user
from bot.render.i18n import Html, h, local_name, t
from bot.render.tasks import clip

MAX_ROWS = 40  # a list longer than this says "and N more" (Telegram's 4096 characters)
MAX_BUTTONS = 30
TITLE_CHARS = 60  # a re-check's task title on a list row (the press's notice has it whole)
MARKS = {"due": "plans.mark.due", "done": "plans.mark.done", "late": "plans.mark.late",
         "missed": "plans.mark.missed"}
EXPIRED = cb.PLANNED_STALE  # a list's button whose occurrence is gone (or never was)
# What an inspection started from a list counts as, besides done and late: today's
# occurrence at the site (not the pressed one), nothing of the plans' (over a week old), or
# a site already done inspected again.
TODAY, LATER, NOTHING, AGAIN = "today", "later", "nothing", "again"


@dataclass(frozen=True)
class ListRow:
    site_id: int
    site: str
    site_en: str
    kind: str
    plan: str
    status: str
    occurrence_id: int = 0  # 0: a row not stored (its button is the site's, as /inspect's)
    task_id: int | None = None  # a re-check's task
    task_title: str = ""
    task_title_en: str | None = None


_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def _join(lang: str, words: Sequence[str]) -> str:
    if len(words) < 2:
        return "".join(words)
    return t(lang, "plans.rule.sep").join(words[:-1]) + t(lang, "plans.rule.last_sep") + \
        words[-1]


def rule_words(lang: str, rule: str, start: dt.date) -> str:
    """An RRULE in words: "每周二、五" / "Tue and Fri weekly", "每月第1个周一"; the rule itself
    when it says more than these words can (BYSETPOS, BYMONTH, yearly, ...)."""
    parts: dict[str, str] = {}
    for part in rule.strip().removeprefix("RRULE:").split(";"):
        key, _, value = part.partition("=")
        if key:
            parts[key.upper()] = value.upper()
    freq = parts.pop("FREQ", "")
    every = parts.pop("INTERVAL", "1")
    parts.pop("WKST", None)
    parts.pop("UNTIL", None)
    parts.pop("COUNT", None)
    names = t(lang, "plans.rule.weekdays").split()
    if not every.isdigit() or int(every) < 1 or len(names) != 7:
        return rule
    n = int(every)
    days = [d for d in parts.pop("BYDAY", "").split(",") if d]
    monthday = parts.pop("BYMONTHDAY", "")
    if parts:
        return rule
    if freq in ("DAILY", "WEEKLY") and not monthday:
        if freq == "WEEKLY" and not days:
            days = [_WEEKDAYS[start.weekday()]]
        if any(d not in _WEEKDAYS for d in days):
            return rule
        listed = _join(lang, [names[_WEEKDAYS.index(d)] for d in
                              sorted(days, key=_WEEKDAYS.index)])
        if freq == "DAILY" and not days:
            return t(lang, "plans.rule.daily") if n == 1 else \
                t(lang, "plans.rule.every_days", n=n)
        if freq == "DAILY" and n > 1:
            return rule
        return t(lang, "plans.rule.weekly", days=listed) if n == 1 else \
            t(lang, "plans.rule.every_weeks", days=listed, n=n)
    if freq == "MONTHLY" and n == 1:
        if monthday and not days and monthday.lstrip("-").isdigit():
            return t(lang, "plans.rule.monthly_day", day=monthday) if int(monthday) > 0 \
                else rule
        if len(days) == 1 and not monthday and days[0][-2:] in _WEEKDAYS:
            nth, weekday = days[0][:-2], names[_WEEKDAYS.index(days[0][-2:])]
            if nth == "-1":
                return t(lang, "plans.rule.monthly_last", weekday=weekday)
            if nth.isdigit() and 1 <= int(nth) <= 5:
                return t(lang, "plans.rule.monthly_nth", weekday=weekday,
                         nth=t(lang, "plans.rule.ordinals").split()[int(nth) - 1])
        if not days and not monthday:
            return t(lang, "plans.rule.monthly_day", day=start.day)
    return rule


def target_words(lang: str, site_types: Sequence[str], sites: Sequence[str],
                 units: Sequence[str]) -> str:
    """A plan's target in names (already looked up): "社区、社区综合文化服务中心 · 卧龙寺街道"."""
    sep = t(lang, "plans.rule.sep")
    return " · ".join(sep.join(v) for v in (site_types, sites, units) if v)


def what(lang: str, kind: str, plan: str, names: Mapping[str, Text]) -> str:
    """What an occurrence is: its plan's name, or the draw's kind."""
    if kind == ROUND:
        name = names.get(plan)
        return name.get(lang) if name else plan
    return t(lang, "plans.kind.spot" if kind == SPOT else "plans.kind.recheck")


def _row_what(lang: str, row: ListRow, names: Mapping[str, Text]) -> Html:
    """What a list's row is, as HTML with its free texts marked for `fit`: a re-check names
    its task (number and title, clipped: the press's notice gives it whole), a round its
    plan (a name an admin wrote)."""
    if row.kind == RECHECK and row.task_id is not None:
        title = clip(local_name(lang, row.task_title, row.task_title_en or ""), TITLE_CHARS)
        return Html(t(lang, "plans.kind.recheck_task", id=row.task_id, title=user(title)))
    if row.kind == ROUND:
        return user(what(lang, row.kind, row.plan, names))
    return h(what(lang, row.kind, row.plan, names))


def day_list(lang: str, day: dt.date, rows: Sequence[ListRow],
             names: Mapping[str, Text]) -> Screen:
    """An inspector's list for the day: each site with its mark; one button per site still
    to do, carrying its occurrence (`pg:<id>`): pressed, it starts (or resumes) the
    inspection in a new message below, the list staying as it is."""
    lines = [t(lang, "plans.list.title", date=format_date(lang, day))]
    if not rows:
        lines.append(t(lang, "plans.list.empty"))
        return "\n".join(lines), []
    for row in rows[:MAX_ROWS]:
        lines.append(t(lang, "plans.list.row", mark=Html(t(lang, MARKS[row.status])),
                       site=local_name(lang, row.site, row.site_en),
                       what=_row_what(lang, row, names)))
    if len(rows) > MAX_ROWS:
        lines.append(t(lang, "plans.list.more", count=len(rows) - MAX_ROWS))
    # A site listed twice (its round and a re-check) gets one button, the re-check's: its
    # press names the task to re-check, and the inspection ticks both off.
    todo: dict[int, ListRow] = {}
    for row in rows:
        if row.status in ("due", "missed") and (
                row.site_id not in todo or (row.kind == RECHECK
                                            and todo[row.site_id].kind != RECHECK)):
            todo[row.site_id] = row
    buttons: Rows = []
    for row in todo.values():
        buttons.append([Button(t(lang, "plans.list.button",
                                 site=local_name(lang, row.site, row.site_en)),
                               cb.planned(row.occurrence_id) if row.occurrence_id
                               else cb.site(row.site_id))])
    if buttons:
        lines.append("")
        lines.append(t(lang, "plans.list.hint"))
    return fit("\n".join(lines)), buttons[:MAX_BUTTONS]


def press_notice(lang: str, *, day: dt.date, counts_as: str, kind: str,
                 task_id: int | None = None, task_title: str = "",
                 task_title_en: str | None = None, item: str | None = None,
                 counts_for: dt.date | None = None, for_whom: str | None = None
                 ) -> str | None:
    """What an inspector must know before an inspection started from a list: which task a
    re-check is for and its item; that a past day's site counts as late (or for today's
    list, or not at all; `for_whom`: for another inspector's occurrence, while this one stays
    missed). None when there is nothing to say."""
    lines = []
    if kind == RECHECK and task_id is not None:
        lines.append(t(lang, "plans.press.recheck", id=task_id,
                       title=local_name(lang, task_title, task_title_en or "")))
        if item:
            lines.append(t(lang, "plans.press.recheck_item", item=item))
    date = format_date(lang, day)
    if counts_as == LATE:
        lines.append(t(lang, "plans.press.late", date=date))
    elif counts_as == LATER and counts_for is not None and for_whom:
        lines.append(t(lang, "plans.press.for_later_other", date=date, who=for_whom,
                       later=format_date(lang, counts_for)))
    elif counts_as == LATER and counts_for is not None and for_whom == "":
        lines.append(t(lang, "plans.press.for_later_unlisted", date=date,
                       later=format_date(lang, counts_for)))
    elif counts_as == LATER and counts_for is not None:
        lines.append(t(lang, "plans.press.for_later", date=date,
                       later=format_date(lang, counts_for)))
    elif counts_as == TODAY and for_whom:
        lines.append(t(lang, "plans.press.for_today_other", date=date, who=for_whom))
    elif counts_as == TODAY and for_whom == "":
        lines.append(t(lang, "plans.press.for_today_unlisted", date=date))
    elif counts_as == TODAY:
        lines.append(t(lang, "plans.press.for_today", date=date))
    elif counts_as == NOTHING:
        lines.append(t(lang, "plans.press.too_old", date=date))
    return "\n".join(lines) or None


def done_question(lang: str, occurrence_id: int, site: str, site_en: str, day: dt.date,
                  status: str) -> Screen:
    """A list's site already done: say so, and offer to inspect it again anyway."""
    key = "plans.press.done_late" if status == LATE else "plans.press.done"
    return (t(lang, key, site=local_name(lang, site, site_en), date=format_date(lang, day)),
            [[Button(t(lang, "plans.press.again"), cb.planned(occurrence_id, again=True))]])


@dataclass(frozen=True)
class PlanLine:
    code: str
    name: Text
    rule: str
    target: str  # in words (target_words)
    paused: bool
    due: int
    done: int
    start: dt.date = dt.date(2026, 1, 1)  # a weekly rule without BYDAY falls on its weekday


def plans_screen(lang: str, day: dt.date, plans: Sequence[PlanLine], draw: tuple[int, int],
                 unassigned: int, waiting: Sequence[str] = ()) -> Screen:
    """The admins' screen: each plan, its state and today's progress; pause/resume buttons."""
    lines = [t(lang, "plans.admin.title", date=format_date(lang, day))]
    if not plans:
        lines.append(t(lang, "plans.admin.none"))
    buttons: Rows = []
    for p in plans:
        lines.append(t(lang, "plans.admin.row",
                       state=Html(t(lang, "plans.admin.paused" if p.paused
                                    else "plans.admin.active")),
                       name=user(p.name.get(lang)), code=p.code,
                       rule=rule_words(lang, p.rule, p.start), target=user(p.target),
                       done=p.done, due=p.due))
        key = "plans.admin.resume" if p.paused else "plans.admin.pause"
        buttons.append([Button(t(lang, key, code=p.code), cb.plan(p.code, not p.paused))])
    if draw[1]:
        lines.append(t(lang, "plans.admin.draw", done=draw[0], due=draw[1]))
    if unassigned:
        lines.append(t(lang, "plans.admin.unassigned", count=unassigned))
    lines += waiting_lines(lang, waiting)
    if plans:
        lines.append(t(lang, "plans.admin.file_hint"))
    return fit("\n".join(lines)), buttons


@dataclass(frozen=True)
class MissedRow:
    site: str
    site_en: str
    kind: str
    plan: str
    who: str | None


def waiting_lines(lang: str, names: Sequence[str], max_names: int = 8) -> list[str]:
    """The inspectors named in the organisation file who have never written to the bot: a
    bot may not start a chat, so they get no list and no rounds until they send it /start.
    `names`: one per person, "" where the file gives no name (counted, never shown by id)."""
    if not names:
        return []
    named = [n for n in names if n][:max_names]
    if not named:
        return [t(lang, "plans.waiting_unnamed", count=len(names))]
    shown = t(lang, "plans.rule.sep").join(user(n) for n in named)
    if len(names) > len(named):
        shown += t(lang, "plans.waiting_more", count=len(names) - len(named))
    return [t(lang, "plans.waiting", count=len(names), names=Html(shown))]


def missed_lines(lang: str, rows: Sequence[MissedRow], names: Mapping[str, Text],
                 max_rows: int = 10) -> list[str]:
    """The digest's lines on yesterday's rounds that were not done on their day."""
    if not rows:
        return [t(lang, "plans.digest.missed_none")]
    out = [t(lang, "plans.digest.missed", count=len(rows))]
    for r in rows[:max_rows]:
        out.append(t(lang, "plans.digest.missed_row", site=local_name(lang, r.site, r.site_en),
                     what=what(lang, r.kind, r.plan, names),
                     who=r.who or t(lang, "plans.digest.nobody")))
    if len(rows) > max_rows:
        out.append(t(lang, "plans.list.more", count=len(rows) - max_rows))
    return out

