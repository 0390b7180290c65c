"""Every dedup key, byte for byte as the outbox rows of a live database hold them: a changed
key would send again what was queued or sent before."""

from __future__ import annotations

import pytest

from db.outbox_keys import LAYOUTS, dedup_key, dedup_prefix

KEYS = [
    (("task_card", 7, -1001, "new", 3), "task:7:card:-1001:new:3"),
    (("task_edit", 7, -1001, 3), "task:7:edit:-1001:3"),
    (("task_edit_again", 7, -1001, 3, "e12"), "task:7:edit:-1001:3:e12"),
    (("task_edit_again", 7, -1001, 3, "due:2026-11-25T02:00:00+00:00"),
     "task:7:edit:-1001:3:due:2026-11-25T02:00:00+00:00"),
    (("task_notify", 7, 12, 501), "task:7:notify:12:501"),
    (("task_screen", 7, 501, 88), "task:7:screen:501:88"),
    (("task_notice_done", 7, 40), "task:7:notice_done:40"),
    (("task_returned", 7, 12, -1001), "task:7:returned:12:-1001"),
    (("remind", "overdue", 7, "2026-11-26", -1001), "remind:overdue:7:2026-11-26:-1001"),
    (("escalate", 7, 2, -1001), "escalate:7:2:-1001"),
    (("bulletin", "2026-W48", -1001), "bulletin:2026-W48:-1001"),
    (("digest", "2026-11", 505), "digest:2026-11:505"),
    (("plans", "2026-12-07", 10001), "plans:2026-12-07:10001"),
    (("plans_tick", "2026-12-07", 10001, 42), "plans:2026-12-07:10001:tick:42"),
    (("plans_withdrawn", "2026-12-07", 10001, "mall", 1764547200),
     "plans:2026-12-07:10001:withdrawn:mall:1764547200"),
    (("draw_commit", "2026-12-07", -1001001), "draw:2026-12-07:commit:-1001001"),
    (("draw_reveal", "2026-12-07", -1001001), "draw:2026-12-07:reveal:-1001001"),
    (("rewritten", 812), "outbox:812:rewritten"),
    (("reply", "0f3a"), "reply:0f3a"),
    (("group_lost", -1001, 40, 505), "group_lost:-1001:40:505"),
    (("group_moved", -1001, -1009, 505), "group_moved:-1001:-1009:505"),
    # The report side's keys, as the f-strings that wrote them before built them.
    (("report_post", 9, -1001, "card"), "report:9:post:-1001:card"),
    (("report_post", 9, -1001, "photo:2"), "report:9:post:-1001:photo:2"),
    (("report_reroute", 9, 1764547200, -1001, "location"),
     "report:9:reroute:1764547200:-1001:location"),
    (("report_follow", 9, 501, -1001), "report:9:follow:501:-1001"),
    (("report_confirmed", 9, -1001), "report:9:confirmed:-1001"),
    (("report_disputed", 9, 1764547200, -1001), "report:9:disputed:1764547200:-1001"),
    (("report_push", 9, "accepted", 501), "report:9:accepted:to:501"),
    (("report_push", 9, "task-event:12", 501), "report:9:task-event:12:to:501"),
    (("report_push", 9, "task:7:verified", 501), "report:9:task:7:verified:to:501"),
    (("report_push_photo", 9, "task-event:12", 501, 1),
     "report:9:task-event:12:to:501:photo:1"),
    (("news_task_event", 12), "task-event:12"),
    (("news_task_action", 7, "verified"), "task:7:verified"),
]


@pytest.mark.parametrize(("parts", "key"), KEYS)
def test_each_kind_keeps_its_key(parts: tuple[str, ...], key: str) -> None:
    assert dedup_key(*parts) == key


def test_every_kind_is_listed_here() -> None:
    assert {parts[0] for parts, _ in KEYS} == set(LAYOUTS)


def test_a_prefix_covers_the_keys_it_names() -> None:
    assert dedup_prefix("task_edit", 7) == "task:7:edit:"
    assert dedup_key("task_edit", 7, -1001, 3).startswith(dedup_prefix("task_edit", 7))
    assert not dedup_key("task_edit", 70, -1001, 3).startswith(dedup_prefix("task_edit", 7))


def test_a_key_with_parts_missing_or_extra_is_refused() -> None:
    with pytest.raises(ValueError):
        dedup_key("task_edit", 7, -1001)
    with pytest.raises(ValueError):
        dedup_key("task_edit", 7, -1001, 3, 4)
    with pytest.raises(ValueError):
        dedup_prefix("task_edit", 7, -1001, 3)
    with pytest.raises(KeyError):
        dedup_key("nothing", 1)
