"""The outbox's dedup keys, built in one place.

A dedup key says "this message, once": the outbox queues a key only once (outbox.dedup_key is
UNIQUE), so a job or a handler that runs twice queues nothing the second time. Keys are stored,
so a layout never changes: a changed key would send again what was queued or sent before.
"""

from __future__ import annotations

# kind -> the key's layout; each {} is one part, in order.
LAYOUTS: dict[str, str] = {
    # A task's card posted in a group: task, chat, why it is posted (new, again, accepted…),
    # the task's version.
    "task_card": "task:{}:card:{}:{}:{}",
    # An edit of a task's card: task, chat, the task's version; one per card and version.
    "task_edit": "task:{}:edit:{}:{}",
    # The same edit queued again for a reason (a transition's event, a card caught up on
    # arrival, a deadline notice): task, chat, version, the reason.
    "task_edit_again": "task:{}:edit:{}:{}:{}",
    # A private notice about a task's event: task, event, person.
    "task_notify": "task:{}:notify:{}:{}",
    # A private screen with a task's buttons, sent directly: task, chat, message.
    "task_screen": "task:{}:screen:{}:{}",
    # Taking the buttons off a delivered notice: task, the notice's outbox row.
    "task_notice_done": "task:{}:notice_done:{}",
    # A task sent back for rework, told in a group: task, event, chat.
    "task_returned": "task:{}:returned:{}:{}",
    # A deadline reminder: before|due|overdue, task, the deadline or the local day, chat.
    "remind": "remind:{}:{}:{}:{}",
    # An escalation told to a group: task, level, chat.
    "escalate": "escalate:{}:{}:{}",
    # The weekly or monthly bulletin and digest: period, chat.
    "bulletin": "bulletin:{}:{}",
    "digest": "digest:{}:{}",
    # An inspector's supervision list for a day: the local day, the inspector.
    "plans": "plans:{}:{}",
    # That list edited to tick off what an inspection did: the day, the inspector, the
    # inspection.
    "plans_tick": "plans:{}:{}:tick:{}",
    # That list edited when a plan was paused and its rounds withdrawn: the day, the
    # inspector, the plan, when (unix seconds).
    "plans_withdrawn": "plans:{}:{}:withdrawn:{}:{}",
    # The random spot checks' seed: its hash told the day before, the seed after; day, chat.
    "draw_commit": "draw:{}:commit:{}",
    "draw_reveal": "draw:{}:reveal:{}",
    # A text row rewritten while its send was in flight, edited to what it says now: the
    # row.
    "rewritten": "outbox:{}:rewritten",
    # A handler's reply handed over to the outbox: a fresh token (each is its own message).
    "reply": "reply:{}",
    # The admins told that a group was lost: chat, the outbox row, admin chat.
    "group_lost": "group_lost:{}:{}:{}",
    # The admins told that a group moved (became a supergroup): old chat, new chat, admin chat.
    "group_moved": "group_moved:{}:{}:{}",
    # A submitted report posted in its unit's group: report, chat, the part (card, location,
    # photo:<n>).
    "report_post": "report:{}:post:{}:{}",
    # The same posted anew after an admin's reroute: report, when (unix seconds), chat, part.
    "report_reroute": "report:{}:reroute:{}:{}:{}",
    # A resident's "me too" told in a group: report, person, chat.
    "report_follow": "report:{}:follow:{}:{}",
    # The reporter's 👍 told in a group: report, chat.
    "report_confirmed": "report:{}:confirmed:{}",
    # The reporter's "still there" told in a group: report, when (unix seconds), chat.
    "report_disputed": "report:{}:disputed:{}:{}",
    # News of a report pushed to its reporter or a follower: report, the news (accepted,
    # rejected, duplicate, or a task's news below), person.
    "report_push": "report:{}:{}:to:{}",
    # A photo sent before that push: report, the news, person, the photo's number.
    "report_push_photo": "report:{}:{}:to:{}:photo:{}",
    # Not keys but the news part of the two above, for a task's event: the event; or, for
    # an event without an id yet, the task and its action.
    "news_task_event": "task-event:{}",
    "news_task_action": "task:{}:{}",
}


def dedup_key(kind: str, *parts: object) -> str:
    """The dedup key of a message of `kind` (see LAYOUTS) about `parts`."""
    return _fill(kind, parts, whole=True)


def dedup_prefix(kind: str, *parts: object) -> str:
    """What every key of `kind` starting with `parts` begins with (e.g. all edits of a task's
    cards: dedup_prefix("task_edit", task_id) is "task:<id>:edit:")."""
    return _fill(kind, parts, whole=False)


def _fill(kind: str, parts: tuple[object, ...], *, whole: bool) -> str:
    pieces = LAYOUTS[kind].split("{}")
    slots = len(pieces) - 1
    if (len(parts) != slots) if whole else (len(parts) >= slots):
        raise ValueError(f"a {kind} key has {slots} parts; given {len(parts)}")
    return pieces[0] + "".join(f"{part}{piece}"
                               for part, piece in zip(parts, pieces[1:], strict=False))
