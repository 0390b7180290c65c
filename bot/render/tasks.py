"""What a task looks like: its card in the unit's group, its history, the /tasks list.

Pure rendering (no Telegram objects): a card is HTML text plus rows of buttons, so the service
can queue it through the outbox as JSON and the handlers can turn it into an inline keyboard.
Cards in groups are in Chinese, the campaign's working language (as the inspection notice
was); private replies use the reader's language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain.privacy import mask_optional, mask_personal
from bot.domain.tasks import (
    CREATED,
    DEFAULT_TZ,
    EVENTS,
    NOTE,
    REPORTER_CONFIRMED,
    Action,
    TaskState,
    is_overdue,
)
from bot.render import callbacks as cb
from bot.render import evidence
from bot.render.buttons import Button, Rows, keyboard_json
from bot.render.callbacks import task_action
from bot.render.fit import CAPTION_LIMIT, TEXT_LIMIT, fit_history, user
from bot.render.i18n import Html, h, local_name, t

GROUP_LANG = "zh-hans"

STATE_ICONS = {
    TaskState.OPEN: "🔴", TaskState.ACCEPTED: "🟠", TaskState.FIX_SUBMITTED: "🔵",
    TaskState.RETURNED: "🟣", TaskState.CLOSED: "🟢",
}

# Catalogue keys, spelled out so a test can check every one exists in both languages.
STATE_KEYS = {
    TaskState.OPEN: "task.state.open",
    TaskState.ACCEPTED: "task.state.accepted",
    TaskState.FIX_SUBMITTED: "task.state.fix_submitted",
    TaskState.RETURNED: "task.state.returned",
    TaskState.CLOSED: "task.state.closed",
}
ACTION_KEYS = {
    Action.ACCEPT: "task.action.accept",
    Action.SUBMIT_FIX: "task.action.submit_fix",
    Action.VERIFY_PASS: "task.action.verify_pass",
    Action.VERIFY_RETURN: "task.action.verify_return",
    Action.REQUEST_EXTENSION: "task.action.request_extension",
    Action.GRANT_EXTENSION: "task.action.grant_extension",
    Action.REFUSE_EXTENSION: "task.action.refuse_extension",
    Action.NOT_OURS: "task.action.not_ours",
    Action.REROUTE: "task.action.reroute",
    Action.REFUSE_REROUTE: "task.action.refuse_reroute",
    Action.REOPEN: "task.action.reopen",
    Action.ESCALATE: "task.action.escalate",
    Action.CLOSE_AS_DUPLICATE: "task.action.close_as_duplicate",
}
EVENT_KEYS = {**{EVENTS[a]: k for a, k in ACTION_KEYS.items()},
              CREATED: "task.action.created", NOTE: "task.action.note",
              REPORTER_CONFIRMED: "task.action.reporter_confirmed"}
BUTTON_KEYS = {
    Action.ACCEPT: "task.button.accept",
    Action.SUBMIT_FIX: "task.button.submit_fix",
    Action.REQUEST_EXTENSION: "task.button.request_extension",
    Action.NOT_OURS: "task.button.not_ours",
    Action.VERIFY_PASS: "task.button.verify_pass",
    Action.VERIFY_RETURN: "task.button.verify_return",
    Action.GRANT_EXTENSION: "task.button.grant_extension",
    Action.REFUSE_EXTENSION: "task.button.refuse_extension",
    Action.REROUTE: "task.button.reroute",
    Action.REFUSE_REROUTE: "task.button.refuse_reroute",
    Action.REOPEN: "task.button.reopen",
}
WHO_KEYS = {"unit": "task.who.unit", "verifier": "task.who.verifier",
            "admin": "task.who.admin", "system": "task.who.system",
            "resident": "task.who.resident"}
SOURCE_KEYS = {"inspection": "task.source.inspection", "report": "task.source.report",
               "finding": "task.source.finding"}
VERDICT_KEYS = {"compliant": "verdict.compliant", "basic": "verdict.basic",
                "noncompliant": "verdict.noncompliant"}



def default_tz() -> ZoneInfo:
    """Settings' default time zone, for renderings not given one (the services pass
    Settings.tz; rendering reads no environment)."""
    return DEFAULT_TZ


@dataclass(frozen=True)
class EventLine:
    at: datetime
    actor: str | None  # a name; None for the system or a resident (never named)
    actor_id: int | None
    action: str
    reason: str | None
    data: dict[str, object]
    # The actor filed or followed the task's report: shown as "a resident" whatever their role.
    resident: bool = False

    @property
    def anonymous(self) -> bool:
        """Whether the actor must not be named: a reporter or follower of the task's report,
        or an event the reporter caused (a disputed fix: data["by"] == "reporter")."""
        return self.resident or self.data.get("by") == "reporter"


@dataclass(frozen=True)
class TaskData:
    """A task with everything its card and history need, read inside one unit of work."""

    id: int
    version: int
    state: TaskState
    source: str
    title: str
    description: str
    unit_name: str
    unit_id: int
    site_name: str | None
    due_at: datetime
    extension_until: datetime | None
    escalation_level: int
    escalation_unit: str | None
    reopen_count: int
    relapse_of_id: int | None
    relapse_closed_at: datetime | None
    inspector: str | None  # for inspection tasks only (inspectors' names are fine in groups)
    before_file_ids: tuple[str, ...]
    after_file_ids: tuple[str, ...]
    before_shas: tuple[str, ...]
    after_shas: tuple[str, ...]
    reroute_claim: str | None
    events: tuple[EventLine, ...] = field(default_factory=tuple)
    item_text: str | None = None  # the checklist item, for re-asking at verification
    # English beside the Chinese, when there is one (English readers see it).
    title_en: str | None = None
    item_text_en: str | None = None
    escalation_unit_en: str = ""
    unit_name_en: str = ""
    site_name_en: str = ""
    # When the bot received each photo (by stored sha256), for the stamp on group copies.
    photo_received: Mapping[str, datetime] = field(default_factory=dict)

    def title_in(self, lang: str) -> str:
        return local_name(lang, self.title, self.title_en)

    def item_in(self, lang: str) -> str:
        """The checklist item (re-asked at verification), else the title."""
        if self.item_text is None:
            return self.title_in(lang)
        return local_name(lang, self.item_text, self.item_text_en)

    def unit_in(self, lang: str) -> str:
        return local_name(lang, self.unit_name, self.unit_name_en)

    def site_in(self, lang: str) -> str | None:
        return local_name(lang, self.site_name, self.site_name_en) if self.site_name else None

    @property
    def has_photos(self) -> bool:
        return bool(self.before_file_ids or self.after_file_ids)


@dataclass(frozen=True)
class Card:
    text: str
    rows: Rows
    # The stored (metadata-free) photo the first card shows; None: a text message. Never a
    # file_id from a user's upload: a photo sent as a file keeps its EXIF and GPS there.
    photo_sha: str | None
    # The stamp drawn on that photo's copy in the group (bot/media/stamp.py); () for none.
    stamp: tuple[str, ...] = ()

    def markup(self) -> dict[str, object] | None:
        """The inline keyboard as the Bot API's JSON (for the outbox)."""
        return keyboard_json(self.rows)


def _local(when: datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _short(when: datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%m-%d %H:%M")


def clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def time_left(lang: str, task: TaskData, now: datetime) -> str:
    if task.state is TaskState.CLOSED:
        return ""
    if task.state is TaskState.FIX_SUBMITTED:
        return t(lang, "task.card.awaiting_check")
    delta = task.due_at - now
    if is_overdue(task.state, task.due_at, now):
        return t(lang, "task.card.overdue", span=_span(lang, -delta))
    return t(lang, "task.card.left", span=_span(lang, delta))


def _span(lang: str, delta: timedelta) -> str:
    hours = max(int(delta.total_seconds() // 3600), 0)
    days, hours = divmod(hours, 24)
    if days:
        return t(lang, "task.span.days_hours", days=days, hours=hours)
    minutes = max(int(delta.total_seconds() // 60), 0)
    if hours:
        return t(lang, "task.span.hours", hours=hours)
    return t(lang, "task.span.minutes", minutes=minutes)


def state_label(lang: str, state: TaskState | str) -> str:
    state = TaskState(state)
    return f"{STATE_ICONS[state]} {t(lang, STATE_KEYS[state])}"


def event_line(lang: str, e: EventLine, tz: ZoneInfo, *, reason_chars: int = 60) -> str:
    key = EVENT_KEYS.get(e.action)
    label = t(lang, key) if key else h(e.action)
    if e.anonymous:
        # Whoever reported the problem is never named (cards are read in the unit's group),
        # also when they are staff and also when the name was handed in by mistake.
        who = t(lang, "task.who.resident")
    elif e.actor_id is None:
        who = t(lang, "task.who.system")
    else:
        who = h(e.actor) if e.actor else t(lang, "task.who.resident")
    line = f"{_short(e.at, tz)} {who} {label}"
    if e.action == EVENTS[Action.ESCALATE] and "level" in e.data:
        line += " " + t(lang, "task.card.level", level=str(e.data["level"]))
    verdict = e.data.get("verdict")
    if isinstance(verdict, str) and verdict in VERDICT_KEYS:
        line += t(lang, "task.card.verdict", verdict=t(lang, VERDICT_KEYS[verdict]))
    if e.data.get("self_verified"):
        line += " " + t(lang, "task.card.self_verified")
    photos = e.data.get("photos")
    if isinstance(photos, list) and photos:
        # The catalogue carries its own spacing: "（1 张照片）" takes no space before it.
        line += t(lang, "task.card.photos_short", count=len(photos))
    line += evidence.history_suffix(lang, e.data)
    if e.reason and e.action == EVENTS[Action.SUBMIT_FIX]:
        # The unit's note about its fix, on its own labelled line: after the evidence hints'
        # count it read as their content (tryout 14, defect 19).
        line += "\n" + t(lang, "task.card.fix_note", note=user(clip(e.reason, reason_chars)))
    elif e.reason:
        line += t(lang, "task.card.reason", reason=user(clip(e.reason, reason_chars)))
    return line


def shown_events(events: Sequence[EventLine]) -> list[EventLine]:
    """The events worth a line: a fix note is folded into the "fix submitted" event that took it
    (its reason), so a note shows only while its fix is still being written."""
    out = []
    for i, e in enumerate(events):
        if e.action == NOTE and any(
                later.action == EVENTS[Action.SUBMIT_FIX] and later.actor_id == e.actor_id
                for later in events[i + 1:]):
            continue
        out.append(e)
    return out


def card_text(lang: str, task: TaskData, now: datetime, tz: ZoneInfo, limit: int, *,
              history: int = 3) -> str:
    """The card's header lines, then (after a blank line) its first event (派发: where the task
    came from) and its `history` most recent ones, fitted to `limit`: older events give way
    first, with a line saying how many are not shown."""
    head = card_header(lang, task, now, tz)
    events = shown_events(task.events)
    if not events:
        return fit_history(head, [], limit)
    head += ["", event_line(lang, events[0], tz)]
    rest = events[1:]
    recent = rest[-history:] if history else []
    return fit_history(head, [event_line(lang, e, tz) for e in recent], limit,
                       hidden=len(rest) - len(recent),
                       marker=lambda n: t(lang, "task.card.earlier", count=n))


def card_header(lang: str, task: TaskData, now: datetime, tz: ZoneInfo) -> list[str]:
    """What the task is, where, whose, until when: the lines a card never drops."""
    lines = [t(lang, "task.card.title", id=task.id) + " · " + state_label(lang, task.state)]
    if task.relapse_of_id is not None:
        lines.append(t(lang, "task.card.relapse", id=task.relapse_of_id,
                       closed=_local(task.relapse_closed_at, tz) if task.relapse_closed_at
                       else "—"))
    if task.reopen_count:
        lines.append(t(lang, "task.card.rework", count=task.reopen_count))
    lines.append(t(lang, "task.card.problem", title=user(clip(task.title_in(lang), 200))))
    if task.description:
        lines.append(f"<i>{user(clip(task.description, 200))}</i>")
    site = task.site_in(lang)
    if site:
        lines.append(t(lang, "task.card.site", site=clip(site, 60)))
    lines.append(t(lang, "task.card.unit", unit=clip(task.unit_in(lang), 60)))
    source = t(lang, SOURCE_KEYS.get(task.source, "task.source.finding"))
    if task.inspector:
        source = t(lang, "task.card.inspector", source=Html(source), name=task.inspector)
    lines.append(t(lang, "task.card.source", source=Html(source)))
    if task.state is not TaskState.CLOSED:
        lines.append(t(lang, "task.card.due", due=_local(task.due_at, tz),
                       left=Html(time_left(lang, task, now))))
    if task.escalation_level and task.state is not TaskState.CLOSED:
        lines.append(t(lang, "task.card.escalated", level=task.escalation_level,
                       unit=local_name(lang, task.escalation_unit or "—",
                                       task.escalation_unit_en)))
    if task.extension_until is not None:
        lines.append(t(lang, "task.card.extension_pending",
                       until=_local(task.extension_until, tz)))
    if task.reroute_claim is not None:
        lines.append(t(lang, "task.card.reroute_pending",
                       reason=user(clip(task.reroute_claim, 100))))
    if task.before_file_ids or task.after_file_ids:
        lines.append(t(lang, "task.card.photos", before=len(task.before_file_ids),
                       after=len(task.after_file_ids)))
    if task.state is TaskState.FIX_SUBMITTED:
        # What the checker should look at twice (bot/services/evidence.py).
        lines += evidence.card_lines(lang, evidence.latest_fix(
            [(e.action, e.data) for e in task.events], EVENTS[Action.SUBMIT_FIX]), tz)
    return lines


def card_rows(task: TaskData) -> Rows:
    """The buttons that fit the state. A group message shows everyone the same buttons; who
    may press them is checked on the press, with a clear refusal."""
    lang = GROUP_LANG

    rows: list[list[Action]] = []
    if task.state is TaskState.OPEN:
        rows.append([Action.ACCEPT])
        rows.append([Action.REQUEST_EXTENSION, Action.NOT_OURS])
    elif task.state in (TaskState.ACCEPTED, TaskState.RETURNED):
        rows.append([Action.SUBMIT_FIX])
        rows.append([Action.REQUEST_EXTENSION, Action.NOT_OURS])
    elif task.state is TaskState.FIX_SUBMITTED:
        rows.append([Action.VERIFY_PASS, Action.VERIFY_RETURN])
    hidden: set[Action] = set()
    if task.state is not TaskState.CLOSED:
        if task.extension_until is not None:
            rows.append([Action.GRANT_EXTENSION, Action.REFUSE_EXTENSION])
        if task.reroute_claim is not None:
            rows.append([Action.REROUTE, Action.REFUSE_REROUTE])
        # An extension or a claim is asked once; hide the button while one waits.
        if task.extension_until is not None:
            hidden.add(Action.REQUEST_EXTENSION)
        if task.reroute_claim is not None:
            hidden.add(Action.NOT_OURS)
    buttons = [[Button(t(lang, BUTTON_KEYS[a]), task_action(task.id, task.version, a))
                for a in row if a not in hidden] for row in rows]
    return [row for row in buttons if row]


def card(task: TaskData, now: datetime, tz: ZoneInfo | None = None) -> Card:
    """The task's card in its unit's group: a resident's phone or ID number in its
    description or a reason is masked there (the task keeps the full text)."""
    tz = tz or default_tz()
    task = replace(task, description=mask_personal(task.description), events=tuple(
        replace(e, reason=mask_optional(e.reason)) for e in task.events))
    photo = (task.before_shas or task.after_shas or (None,))[0]
    text = card_text(GROUP_LANG, task, now, tz, CAPTION_LIMIT if photo else TEXT_LIMIT)
    stamp = tuple(photo_stamp(GROUP_LANG, task, photo, tz)) if photo else ()
    return Card(text, card_rows(task), photo, stamp)


def photo_stamp(lang: str, task: TaskData, sha: str, tz: ZoneInfo) -> list[str]:
    """The stamp of one of the task's photos in a group: 整改后 for an after-photo, else 整改前;
    a resident's before-photo gets the neutral stamp (bot/render/evidence.py)."""
    after = sha in task.after_shas and sha not in task.before_shas
    return evidence.stamp_lines(lang, site=task.site_in(lang), tz=tz,
                                received=task.photo_received.get(sha), task_id=task.id,
                                after=after, resident=task.source == "report" and not after)


def moved_card(task: TaskData, old_unit: str, tz: ZoneInfo | None = None) -> str:
    """What an old card says once the task has been re-routed to another unit's group: who
    moved it (an admin), from where to where."""
    lang = GROUP_LANG
    moved = [e for e in task.events if e.action == EVENTS[Action.REROUTE]]
    admin = t(lang, "task.who.admin")  # only an admin re-routes
    name = moved[-1].actor if moved else None
    by = f"{admin} {name}" if name else admin
    return "\n".join([
        t(lang, "task.card.title", id=task.id),
        t(lang, "task.card.problem", title=clip(task.title, 200)),
        t(lang, "task.card.moved", by=by, old=old_unit, unit=task.unit_name),
    ])


def history_text(lang: str, task: TaskData, now: datetime, tz: ZoneInfo) -> str:
    head = [*card_header(lang, task, now, tz), "", t(lang, "task.history_title")]
    return fit_history(head, [event_line(lang, e, tz, reason_chars=300)
                              for e in shown_events(task.events)], TEXT_LIMIT,
                       marker=lambda n: t(lang, "task.card.earlier", count=n))


def list_line(lang: str, task: TaskData, now: datetime, tz: ZoneInfo) -> str:
    left = time_left(lang, task, now)
    relapse = " " + t(lang, "task.list.relapse") if task.relapse_of_id else ""
    return t(lang, "task.list.line", id=task.id, state=Html(state_label(lang, task.state)),
             title=clip(task.title_in(lang), 40), unit=clip(task.unit_in(lang), 20),
             due=_short(task.due_at, tz), left=Html(left)) + relapse


def value_key(name: str, value: str) -> str | None:
    """The catalogue key of a task refusal's value (a state, an action, who may act), if any;
    `bot.render.refusals.explain` puts it in words."""
    if name == "state" and value in STATE_KEYS:
        return STATE_KEYS[TaskState(value)]
    if name == "action" and value in ACTION_KEYS:
        return ACTION_KEYS[Action(value)]
    if name == "action" and value in EVENT_KEYS:
        return EVENT_KEYS[value]
    if name == "who" and value in WHO_KEYS:
        return WHO_KEYS[value]
    return None


# What the person who acted reads in private; a return or refusal is not a green check.
DONE_KEYS = {Action.VERIFY_RETURN: "task.done_private_return",
             Action.REFUSE_EXTENSION: "task.done_private_refused",
             Action.REFUSE_REROUTE: "task.done_private_refused",
             Action.REOPEN: "task.done_private_return"}


def done_private(lang: str, task_id: int, action: Action) -> str:
    return t(lang, DONE_KEYS.get(action, "task.done_private"), id=task_id,
             action=t(lang, ACTION_KEYS[action]))


def rows_for_private(task: TaskData, actions: Sequence[Action], lang: str) -> Rows:
    buttons = [Button(t(lang, BUTTON_KEYS[a]), task_action(task.id, task.version, a))
               for a in actions if a in BUTTON_KEYS]
    return [buttons[i:i + 2] for i in range(0, len(buttons), 2)]


def input_rows(lang: str, task_id: int, version: int, *, done: bool) -> Rows:
    """The buttons under a request for input (after-photos, a reason): "all sent" when the
    input is a fix's photos, and always a way out."""
    rows: Rows = []
    if done:
        rows.append([Button(t(lang, "task.button.fix_done"),
                            cb.task(task_id, version, cb.TASK_DONE))])
    rows.append([Button(t(lang, "task.button.cancel"), cb.task(task_id, version, cb.TASK_CANCEL))])
    return rows


def verdict_rows(lang: str, task: TaskData) -> Rows:
    """The verifier's verdict on a fix, one button each."""
    return [[Button(t(lang, VERDICT_KEYS[v]), cb.task(task.id, task.version, code))
             for code, v in cb.TASK_VERDICT_CODES.items()]]
