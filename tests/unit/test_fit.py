"""Issue 11 item 5: every screen with user text fits Telegram's limits, counted as Telegram
counts (UTF-16 code units of the visible text), by shortening the user's parts with "…"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.tasks import TaskState
from bot.render import tasks as tv
from bot.render.fit import CAPTION_LIMIT, TEXT_LIMIT, fit, fit_history, shown_length, u16, user
from bot.render.i18n import t
from sandbox.html_entities import parse_formatted, u16len


def telegram_length(html_text: str) -> int:
    return u16len(parse_formatted(html_text, "HTML")[0])


def test_a_screen_that_fits_is_unchanged_but_unmarked() -> None:
    screen = f"<b>Note</b>: {user('a < b & c')}"
    assert fit(screen) == "<b>Note</b>: a &lt; b &amp; c"


def test_the_length_is_telegrams_visible_utf16_length() -> None:
    screen = f"<b>x</b> &lt;{user('😀' * 3)}"
    assert shown_length(screen) == telegram_length(fit(screen)) == 3 + 6


def test_only_the_user_text_is_shortened_and_the_frame_stays() -> None:
    frame_start, frame_end = "<b>头</b>\n", "\n<i>尾部的按钮说明</i>"
    screen = f"{frame_start}{user('长' * 5000)}{frame_end}"
    out = fit(screen)
    assert telegram_length(out) == TEXT_LIMIT
    assert out.startswith(frame_start) and out.endswith(frame_end)
    assert "长…" in out


def test_the_longest_texts_give_way_first() -> None:
    short, long = "短的备注", "长" * 3000
    out = fit(f"{user(short)}\n{user(long)}", CAPTION_LIMIT)
    assert telegram_length(out) <= CAPTION_LIMIT
    assert out.startswith(short + "\n")  # untouched: below the shared cap


def test_escaped_characters_and_surrogate_pairs_are_never_split() -> None:
    out = fit(user("&<>" * 2000))
    assert telegram_length(out) <= TEXT_LIMIT and out.endswith("…")
    assert "&amp" not in out.replace("&amp;", "")
    emoji = fit(user("😀" * 3000))
    assert telegram_length(emoji) <= TEXT_LIMIT
    emoji.encode("utf-8")  # a lone surrogate would raise here
    assert u16(emoji) in (TEXT_LIMIT, TEXT_LIMIT - 1)


def test_a_frame_longer_than_the_limit_is_cut_by_lines_and_stays_valid_html() -> None:
    screen = "\n".join(f"<b>第 {i} 行</b> " + "字" * 50 for i in range(200))
    out = fit(screen, CAPTION_LIMIT)
    assert telegram_length(out) <= CAPTION_LIMIT  # parses: tags are balanced
    assert out.endswith("…")


def test_history_drops_oldest_lines_and_says_how_many() -> None:
    """Issue 11 item 11: a card never drops history lines without a marker."""
    head = ["<b>任务 #1</b>", ""]
    history = [f"事件 {i} " + "字" * 100 for i in range(30)]
    out = fit_history(head, history, CAPTION_LIMIT, hidden=2,
                      marker=lambda n: t("zh-hans", "task.card.earlier", count=n))
    assert telegram_length(out) <= CAPTION_LIMIT
    shown_events = [line for line in out.split("\n") if line.startswith("事件")]
    assert shown_events == history[-len(shown_events):]
    dropped = 2 + len(history) - len(shown_events)
    assert t("zh-hans", "task.card.earlier", count=dropped) in out


def test_a_task_card_says_how_many_history_lines_it_leaves_out() -> None:
    """Issue 11 item 11: the card shows where the task came from and its latest three events;
    the ones between are counted, not silently dropped."""
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    events = tuple(tv.EventLine(now + timedelta(minutes=i), "张督查", 1,
                                "created" if i == 0 else "note", f"第{i}条", {})
                   for i in range(6))
    task = tv.TaskData(
        id=1, version=1, state=TaskState.OPEN, source="finding", title="楼道堆物",
        description="", unit_name="后祁街社区", unit_id=1, site_name=None,
        due_at=now + timedelta(days=2), extension_until=None, escalation_level=0,
        escalation_unit=None, reopen_count=0, relapse_of_id=None, relapse_closed_at=None,
        inspector=None, before_file_ids=(), after_file_ids=(), before_shas=(), after_shas=(),
        reroute_claim=None, events=events)
    text = tv.card(task, now).text
    lines = text.split("\n")
    marker = t("zh-hans", "task.card.earlier", count=2)
    assert marker in lines
    assert "第0条" in lines[lines.index(marker) - 1]  # where it came from, then the marker
    assert [n for n in range(6) if f"第{n}条" in text] == [0, 3, 4, 5]
