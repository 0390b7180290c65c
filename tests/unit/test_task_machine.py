"""The task lifecycle as a pure state machine: every allowed and every refused transition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.errors import DomainError, NotAllowed, StaleAction
from bot.domain.roles import Role
from bot.domain.tasks import (
    EVENTS,
    RULES,
    Action,
    TaskFilter,
    TaskState,
    available,
    escalation_chain,
    escalation_target,
    is_overdue,
    is_relapse,
    parse_extension,
    parse_filter,
    require_reason,
    self_verified,
    transition,
)
from bot.render import callbacks as cb
from bot.render import tasks as tv
from bot.render.fit import shown_length, unmark
from bot.render.i18n import LANGUAGES, catalogue

S = TaskState
A = Action

# The table as a reader would write it down: (from, action) -> to. None: the state stays.
ALLOWED: dict[tuple[TaskState, Action], TaskState | None] = {
    (S.OPEN, A.ACCEPT): S.ACCEPTED,
    (S.ACCEPTED, A.SUBMIT_FIX): S.FIX_SUBMITTED,
    (S.RETURNED, A.SUBMIT_FIX): S.FIX_SUBMITTED,
    (S.FIX_SUBMITTED, A.VERIFY_PASS): S.CLOSED,
    (S.FIX_SUBMITTED, A.VERIFY_RETURN): S.RETURNED,
    (S.CLOSED, A.REOPEN): S.RETURNED,
    **{(s, A.REQUEST_EXTENSION): None for s in (S.OPEN, S.ACCEPTED, S.RETURNED)},
    **{(s, A.NOT_OURS): None for s in (S.OPEN, S.ACCEPTED, S.RETURNED)},
    **{(s, A.GRANT_EXTENSION): None for s in (S.OPEN, S.ACCEPTED, S.RETURNED,
                                              S.FIX_SUBMITTED)},
    **{(s, A.REFUSE_EXTENSION): None for s in (S.OPEN, S.ACCEPTED, S.RETURNED,
                                               S.FIX_SUBMITTED)},
    **{(s, A.REROUTE): S.OPEN for s in (S.OPEN, S.ACCEPTED, S.RETURNED, S.FIX_SUBMITTED)},
    **{(s, A.REFUSE_REROUTE): None for s in (S.OPEN, S.ACCEPTED, S.RETURNED,
                                             S.FIX_SUBMITTED)},
    **{(s, A.ESCALATE): None for s in (S.OPEN, S.ACCEPTED, S.RETURNED, S.FIX_SUBMITTED)},
    **{(s, A.CLOSE_AS_DUPLICATE): S.CLOSED for s in (S.OPEN, S.ACCEPTED, S.RETURNED,
                                                     S.FIX_SUBMITTED)},
}


@dataclass(frozen=True)
class Actor:
    role: Role | None
    member: bool = False
    fixed: bool = False


UNIT_MEMBER = Actor(Role.UNIT_MEMBER, member=True)
OTHER_UNIT_MEMBER = Actor(Role.UNIT_MEMBER, member=False)
INSPECTOR = Actor(Role.INSPECTOR)
ADMIN = Actor(Role.ADMIN)
RESIDENT = Actor(Role.RESIDENT)
SYSTEM = Actor(None)

# Who the table allows for each action (the first one is used for the state checks).
WHO: dict[Action, list[Actor]] = {
    A.ACCEPT: [UNIT_MEMBER, ADMIN],
    A.SUBMIT_FIX: [UNIT_MEMBER, ADMIN],
    A.REQUEST_EXTENSION: [UNIT_MEMBER, ADMIN],
    A.NOT_OURS: [UNIT_MEMBER, ADMIN],
    A.VERIFY_PASS: [INSPECTOR, ADMIN],
    A.VERIFY_RETURN: [INSPECTOR, ADMIN],
    A.GRANT_EXTENSION: [ADMIN],
    A.REFUSE_EXTENSION: [ADMIN],
    A.REROUTE: [ADMIN],
    A.REFUSE_REROUTE: [ADMIN],
    A.REOPEN: [ADMIN],
    A.CLOSE_AS_DUPLICATE: [ADMIN],
    A.ESCALATE: [SYSTEM],
}
EVERYONE = [UNIT_MEMBER, OTHER_UNIT_MEMBER, INSPECTOR, ADMIN, RESIDENT, SYSTEM]


def flags(action: Action) -> dict[str, bool]:
    """The pending flags under which an action is possible at all."""
    return {
        "extension_pending": action in (A.GRANT_EXTENSION, A.REFUSE_EXTENSION),
        "reroute_pending": action is A.REFUSE_REROUTE,
    }


def run(state: TaskState, action: Action, who: Actor, **kw: bool) -> TaskState:
    return transition(state, action, who.role, who.member, who.fixed, **{**flags(action), **kw})


@pytest.mark.parametrize("state", list(TaskState))
@pytest.mark.parametrize("action", list(Action))
def test_every_state_and_action(state: TaskState, action: Action) -> None:
    who = WHO[action][0]
    if (state, action) in ALLOWED:
        expected = ALLOWED[(state, action)] or state
        assert run(state, action, who) is expected
    else:
        with pytest.raises(DomainError) as exc:
            run(state, action, who)
        assert exc.value.key == "task.not_allowed_in_state"
        assert exc.value.values == {"state": state.value, "action": action.value}


@pytest.mark.parametrize("action", list(Action))
def test_only_the_right_people_may(action: Action) -> None:
    state = next(s for (s, a) in ALLOWED if a is action)
    for who in EVERYONE:
        if who in WHO[action]:
            assert run(state, action, who) in TaskState
            continue
        with pytest.raises(NotAllowed) as exc:
            run(state, action, who)
        assert exc.value.key == "task.not_your_role", (action, who)


def test_the_table_matches_the_rules() -> None:
    derived = {(s, a): (r.target if r.target is not None else None)
               for a, r in RULES.items() for s in r.sources}
    assert derived == ALLOWED


def test_a_member_of_another_unit_cannot_accept() -> None:
    with pytest.raises(NotAllowed):
        run(S.OPEN, A.ACCEPT, OTHER_UNIT_MEMBER)


def test_an_inspector_may_not_check_their_own_fix_but_an_admin_may_with_a_warning() -> None:
    own = Actor(Role.INSPECTOR, fixed=True)
    for action in (A.VERIFY_PASS, A.VERIFY_RETURN):
        with pytest.raises(NotAllowed) as exc:
            run(S.FIX_SUBMITTED, action, own)
        assert exc.value.key == "task.not_own_fix"
    admin_own = Actor(Role.ADMIN, fixed=True)
    assert run(S.FIX_SUBMITTED, A.VERIFY_PASS, admin_own) is S.CLOSED
    assert self_verified(A.VERIFY_PASS, True) and not self_verified(A.VERIFY_PASS, False)
    assert not self_verified(A.ACCEPT, True)


def test_one_extension_and_one_claim_at_a_time() -> None:
    with pytest.raises(DomainError) as exc:
        run(S.ACCEPTED, A.REQUEST_EXTENSION, UNIT_MEMBER, extension_pending=True)
    assert exc.value.key == "task.extension_pending"
    for action in (A.GRANT_EXTENSION, A.REFUSE_EXTENSION):
        with pytest.raises(DomainError) as exc:
            run(S.ACCEPTED, action, ADMIN, extension_pending=False)
        assert exc.value.key == "task.no_extension_pending"
    with pytest.raises(DomainError) as exc:
        run(S.OPEN, A.NOT_OURS, UNIT_MEMBER, reroute_pending=True)
    assert exc.value.key == "task.reroute_pending"
    with pytest.raises(DomainError) as exc:
        run(S.OPEN, A.REFUSE_REROUTE, ADMIN, reroute_pending=False)
    assert exc.value.key == "task.no_reroute_pending"
    # An admin may re-route with or without a claim.
    assert run(S.ACCEPTED, A.REROUTE, ADMIN, reroute_pending=False) is S.OPEN


def test_reasons_are_required_where_the_issue_says() -> None:
    for action in (A.VERIFY_RETURN, A.REQUEST_EXTENSION, A.NOT_OURS, A.REOPEN,
                   A.CLOSE_AS_DUPLICATE):
        with pytest.raises(DomainError) as exc:
            require_reason(action, "   ")
        assert exc.value.key == "task.reason_required"
        assert require_reason(action, " 材料未到 ") == "材料未到"
    assert require_reason(A.ACCEPT, None) is None


def test_the_buttons_that_fit_the_state_and_the_person() -> None:
    assert available(S.OPEN, Role.UNIT_MEMBER, True, False) == [
        A.ACCEPT, A.REQUEST_EXTENSION, A.NOT_OURS]
    assert available(S.FIX_SUBMITTED, Role.INSPECTOR, False, False) == [
        A.VERIFY_PASS, A.VERIFY_RETURN]
    assert available(S.FIX_SUBMITTED, Role.UNIT_MEMBER, True, True) == []
    assert A.GRANT_EXTENSION in available(S.ACCEPTED, Role.ADMIN, False, False,
                                          extension_pending=True)
    assert available(S.CLOSED, Role.UNIT_MEMBER, True, False) == []


def test_every_action_has_an_event_name_and_labels_in_both_languages() -> None:
    assert set(EVENTS) == set(Action)
    keys = (set(tv.STATE_KEYS.values()) | set(tv.ACTION_KEYS.values())
            | set(tv.EVENT_KEYS.values()) | set(tv.BUTTON_KEYS.values())
            | set(tv.WHO_KEYS.values()) | set(tv.SOURCE_KEYS.values()))
    for lang in LANGUAGES:
        assert sorted(keys - set(catalogue(lang))) == [], lang


def test_overdue_and_relapse() -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    assert is_overdue(S.ACCEPTED, now - timedelta(minutes=1), now)
    assert not is_overdue(S.FIX_SUBMITTED, now - timedelta(days=3), now)  # waits for a check
    assert not is_overdue(S.OPEN, now + timedelta(minutes=1), now)
    assert is_relapse(now - timedelta(weeks=8), now, 8)
    assert not is_relapse(now - timedelta(weeks=8, seconds=1), now, 8)
    assert not is_relapse(None, now, 8)


@dataclass(frozen=True)
class U:
    id: int
    parent_id: int | None


def test_escalation_walks_up_the_parents_and_stops_at_the_root() -> None:
    office, subdistrict, community = U(1, None), U(2, 1), U(3, 2)
    units = [office, subdistrict, community]
    assert escalation_target(units, community, 0) is None
    assert escalation_target(units, community, 1) == subdistrict
    assert escalation_target(units, community, 2) == office
    assert escalation_target(units, community, 5) == office  # capped at the root
    assert escalation_target({u.id: u for u in units}, subdistrict, 1) == office
    assert escalation_target(units, office, 1) is None
    # Bad data with a cycle does not hang.
    a, b = U(7, 8), U(8, 7)
    assert escalation_chain([a, b], a) == [a, b]


def test_extension_text() -> None:
    assert parse_extension("7 等待材料到货") == (7, "等待材料到货")
    with pytest.raises(DomainError) as exc:  # no number: asked again, never a silent 7
        parse_extension("等待材料到货")
    assert exc.value.key == "task.extension_days_missing"
    with pytest.raises(DomainError) as exc:
        parse_extension("90 太久")
    assert exc.value.key == "task.bad_extension_days"


def test_tasks_filters() -> None:
    assert parse_filter([]) == TaskFilter()
    assert parse_filter(["overdue"]).overdue
    assert parse_filter(["unit", "后祁街社区"]).unit_query == "后祁街社区"
    assert parse_filter(["state", "fix_submitted"]).states == (S.FIX_SUBMITTED,)
    assert parse_filter(["#12"]).task_id == 12
    with pytest.raises(DomainError) as exc:
        parse_filter(["state", "nonsense"])
    assert exc.value.key == "task.bad_state"
    with pytest.raises(DomainError):
        parse_filter(["banana"])


def test_callback_data_round_trips_and_stays_short() -> None:
    value = cb.task(123456789, 99999, "a")
    assert len(value.encode()) <= 64
    press = cb.parse_task(value)
    assert (press.task_id, press.version, press.action) == (123456789, 99999, A.ACCEPT)
    for bad in ("t:1:2", "t:x:1:a", "t:1:1:zz", "v:1:1:a"):
        with pytest.raises(StaleAction):
            cb.parse_task(bad)


# ---- review fixes: typed numbers, rework deadlines, card fitting, anonymity -----------------


def test_typed_numbers_are_ascii_digits_of_a_sane_length() -> None:
    # ③ is a "digit" to str.isdigit() but not to int(): it is text, never a crash.
    for text in ("③ 等待材料", "²"):
        with pytest.raises(DomainError) as exc:
            parse_extension(text)
        assert exc.value.key == "task.extension_days_missing"
    with pytest.raises(DomainError) as exc:
        parse_extension("99999999999999999999 等等")
    assert exc.value.key == "task.bad_extension_days"
    with pytest.raises(DomainError) as exc:
        parse_filter(["99999999999999999999"])
    assert exc.value.key == "task.not_found"  # too long for any task id: a clear message
    with pytest.raises(DomainError) as exc:
        parse_filter(["③"])
    assert exc.value.key == "task.bad_filter"
    assert parse_filter(["999999999"]).task_id == 999999999
    for bad in ("t:③:1:a", "t:1:③:a", "t:99999999999999999999:1:a", "t:1:9999999999:a"):
        with pytest.raises(StaleAction):
            cb.parse_task(bad)


def test_rework_gets_the_first_allowance_again_at_least_a_day() -> None:
    from bot.domain.tasks import rework_allowance

    created = datetime(2026, 11, 1, tzinfo=UTC)
    assert rework_allowance(created, created + timedelta(days=3)) == timedelta(days=3)
    assert rework_allowance(created, created + timedelta(hours=2)) == timedelta(days=1)
    assert rework_allowance(created, created - timedelta(days=1)) == timedelta(days=1)


def _long_task(events: tuple[tv.EventLine, ...]) -> tv.TaskData:
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    return tv.TaskData(
        id=7, version=3, state=S.ACCEPTED, source="finding", title="楼道堆物" * 60,
        description="说明" * 120, unit_name="后祁街社区", unit_id=1, site_name="东岭皇冠假日酒店",
        due_at=now + timedelta(days=2), extension_until=None, escalation_level=0,
        escalation_unit=None, reopen_count=0, relapse_of_id=None, relapse_closed_at=None,
        inspector=None, before_file_ids=("f",), after_file_ids=(), before_shas=("a" * 64,),
        after_shas=(), reroute_claim=None, events=events)


def test_a_long_card_drops_history_before_any_header_line() -> None:
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    tz = tv.default_tz()
    events = tuple(tv.EventLine(now, "很长的名字" * 40, 500 + i, "accepted", "理由" * 40, {})
                   for i in range(3))
    task = _long_task(events)
    view = tv.card(task, now, tz)
    assert shown_length(view.text) <= tv.CAPTION_LIMIT
    # Every header line survives (the deadline above all); history goes first.
    for line in tv.card_header(tv.GROUP_LANG, task, now, tz):
        assert unmark(line) in view.text, line
    assert "⏰" in view.text
    assert not view.text.endswith("\n")
    history = tv.history_text("zh-hans", task, now, tz)
    assert "⏰" in history and shown_length(history) <= tv.TEXT_LIMIT


def test_who_reported_is_never_named_whatever_the_name_says() -> None:
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    tz = tv.default_tz()
    resident = t_zh("task.who.resident")
    # A dispute (reopen_task marks it "by reporter") even if a name was handed in.
    disputed = tv.EventLine(now, "杨社区", 504, "reopened", "还在", {"by": "reporter"})
    assert "杨社区" not in tv.event_line("zh-hans", disputed, tz)
    assert resident in tv.event_line("zh-hans", disputed, tz)
    follower = tv.EventLine(now, "钱社区", 507, "fix_submitted", None, {}, resident=True)
    assert "钱社区" not in tv.event_line("zh-hans", follower, tz)
    staff = tv.EventLine(now, "王管理", 505, "accepted", None, {})
    assert "王管理" in tv.event_line("zh-hans", staff, tz)


def t_zh(key: str) -> str:
    from bot.render.i18n import t

    return t("zh-hans", key)


# ---- UX review: extension days in words, state names, deadlines at the end of a day -------


def test_extension_days_leading_embedded_and_in_chinese_numerals() -> None:
    assert parse_extension("人手不足，需要再给三天") == (3, "人手不足，需要再给三天")
    assert parse_extension("3天 人手不足") == (3, "人手不足")
    assert parse_extension("三天，人手不足") == (3, "人手不足")
    assert parse_extension("两天 等材料") == (2, "等材料")
    assert parse_extension("再给十天吧，材料没到") == (10, "再给十天吧，材料没到")
    assert parse_extension("十五天 工程量大") == (15, "工程量大")
    assert parse_extension("二十天 工程量大") == (20, "工程量大")
    assert parse_extension("需要 5 天 配合") == (5, "需要 5 天 配合")
    assert parse_extension("一周 等待审批") == (7, "等待审批")
    assert parse_extension("4 days short of staff") == (4, "short of staff")
    for vague in ("十几天 人手不足", "需要几天"):
        with pytest.raises(DomainError) as exc:
            parse_extension(vague)
        assert exc.value.key == "task.extension_days_vague"
    for missing in ("人手不足", "12号楼还没清完"):
        with pytest.raises(DomainError) as exc:
            parse_extension(missing)
        assert exc.value.key == "task.extension_days_missing"
    with pytest.raises(DomainError) as exc:
        parse_extension("九十天")
    assert exc.value.key == "task.bad_extension_days"


def test_tasks_state_accepts_the_names_on_the_cards_and_english_words() -> None:
    from bot.render.i18n import t

    for state in TaskState:
        for lang in LANGUAGES:
            shown = t(lang, tv.STATE_KEYS[state])
            assert parse_filter(["state", shown]).states == (state,), (lang, shown)
        assert parse_filter(["state", state.value.upper()]).states == (state,)
    assert parse_filter(["状态", "待复核"]).states == (S.FIX_SUBMITTED,)
    assert parse_filter(["state", "Returned"]).states == (S.RETURNED,)
    assert parse_filter(["state", "awaiting-check"]).states == (S.FIX_SUBMITTED,)
    assert parse_filter(["state", "Closed"]).states == (S.CLOSED,)


def test_a_deadline_is_the_end_of_a_local_day() -> None:
    from zoneinfo import ZoneInfo

    from bot.domain.tasks import end_of_day, rework_due

    tz = ZoneInfo("Asia/Shanghai")
    odd = datetime(2026, 11, 29, 21, 47, tzinfo=UTC)  # 05:47 on 30 Nov in Shanghai
    due = end_of_day(odd, tz)
    assert due.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") == "2026-11-30 23:59:59"
    assert due.tzinfo is UTC
    created = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 local, 3 days given
    first_due = end_of_day(created + timedelta(days=3), tz)
    now = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # 12:00 local on the 25th
    again = rework_due(created, first_due, now, tz)
    assert again.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") == "2026-11-28 23:59:59"
    assert rework_due(created, created, now, tz).astimezone(tz).day == 26  # at least a day


def _events_task(events: tuple[tv.EventLine, ...], **kw: object) -> tv.TaskData:
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    base: dict[str, object] = dict(
        id=1, version=5, state=S.FIX_SUBMITTED, source="finding", title="楼道堆物",
        description="", unit_name="后祁街社区", unit_id=1, site_name=None,
        due_at=now + timedelta(days=2), extension_until=None, escalation_level=0,
        escalation_unit=None, reopen_count=0, relapse_of_id=None, relapse_closed_at=None,
        inspector=None, before_file_ids=(), after_file_ids=(), before_shas=(),
        after_shas=(), reroute_claim=None, events=events)
    base.update(kw)
    return tv.TaskData(**base)  # type: ignore[arg-type]


def test_card_history_reads_cleanly() -> None:
    from bot.render.i18n import t

    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    tz = tv.default_tz()
    ev = tv.EventLine
    events = (
        ev(now, "张督查", 1, "created", None, {"source": "finding"}),
        ev(now, "陈联络", 2, "accepted", None, {}),
        ev(now, "陈联络", 2, "extension_requested", "人手不足", {}),
        ev(now, "王管理", 3, "extension_granted", None, {}),
        ev(now, "陈联络", 2, "note", "东侧也清理了", {}),
        ev(now, "陈联络", 2, "fix_submitted", "东侧也清理了", {"photos": [9]}),
    )
    text = tv.card(_events_task(events), now, tz).text
    # The fix note once, no space before the full-width parenthesis, 派发 kept.
    assert text.count("东侧也清理了") == 1
    assert "提交整改（1 张照片）\n" + t("zh-hans", "task.card.fix_note", note="东侧也清理了") \
        in text
    assert t("zh-hans", "task.action.created") in text
    history = tv.history_text("zh-hans", _events_task(events), now, tz)
    assert history.count("东侧也清理了") == 1
    assert "提交整改 （" not in history
    # A note for a fix still being written is shown.
    writing = _events_task(events[:5], state=S.ACCEPTED)
    assert "东侧也清理了" in tv.history_text("zh-hans", writing, now, tz)
    # A return is not a green check.
    assert tv.done_private("zh-hans", 1, A.VERIFY_RETURN).startswith("↩️")
    assert tv.done_private("zh-hans", 1, A.ACCEPT).startswith("✅")
    # The reporter's confirmation has its words, and never names anyone.
    confirmed = ev(now, None, None, "reporter_confirmed", None, {"by": "reporter"})
    line = tv.event_line("zh-hans", confirmed, tz)
    assert t("zh-hans", "task.action.reporter_confirmed") in line
    assert "reporter_confirmed" not in line
    # A re-routed card says the admin did it.
    moved = _events_task((*events, ev(now, "王管理", 3, "rerouted", None, {})),
                         unit_name="新建路社区")
    text = tv.moved_card(moved, "后祁街社区")
    assert "王管理" in text and t("zh-hans", "task.who.admin") in text
