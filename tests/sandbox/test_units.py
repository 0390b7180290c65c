"""Pure unit tests: markup parsing, UTF-16 lengths, token buckets, fault bookkeeping."""

from __future__ import annotations

import pytest

from sandbox.client import inside_retry_after
from sandbox.faults import FaultInjector
from sandbox.flood import FloodController
from sandbox.html_entities import EntityParseError, parse_html, parse_markdown_v2, u16len
from sandbox.state import detect_entities
from sandbox.validation import decode_form_value


def test_u16len() -> None:
    assert u16len("abc") == 3 and u16len("文明") == 2 and u16len("😀") == 2


def test_html_entities_offsets_in_utf16() -> None:
    text, ents = parse_html("😀<b>粗</b><tg-spoiler>s</tg-spoiler>")
    assert text == "😀粗s"
    assert ents == [{"type": "bold", "offset": 2, "length": 1},
                    {"type": "spoiler", "offset": 3, "length": 1}]


@pytest.mark.parametrize("src", ["<b>", "</b>", "<b><i></b></i>", "<img src=x>", "a<b", "&bogus;",
                                 "<a href='x'", "<span>x</span>", "&#0;"])
def test_html_rejects(src: str) -> None:
    with pytest.raises(EntityParseError):
        parse_html(src)


def test_html_accepts_bare_ampersand_and_gt() -> None:
    assert parse_html("A & B > C")[0] == "A & B > C"
    assert parse_html("<blockquote expandable>q</blockquote>")[1][0]["type"] == \
        "expandable_blockquote"


def test_markdown_v2() -> None:
    text, ents = parse_markdown_v2("*b _i_* [l](https://x.y) `c\\`` ||s||")
    assert text == "b i l c` s"
    assert [e["type"] for e in ents] == ["bold", "italic", "text_link", "code", "spoiler"]
    for bad in ("a.b", "*open", "[x](y", "`x"):
        with pytest.raises(EntityParseError):
            parse_markdown_v2(bad)


def test_detect_entities() -> None:
    ents = detect_entities("😀 /start x")
    assert ents == [{"type": "bot_command", "offset": 3, "length": 6}]


def test_decode_form_value() -> None:
    assert decode_form_value("text", "123") == "123"
    assert decode_form_value("chat_id", "123") == 123
    assert decode_form_value("reply_markup", '{"a": 1}') == {"a": 1}
    assert decode_form_value("chat_id", "@chan") == "@chan"


def test_flood_buckets() -> None:
    clock = [0.0]
    flood = FloodController(clock=lambda: clock[0])
    assert all(flood.check("send", 1) is None for _ in range(5))
    assert flood.check("send", 1) == 1
    assert flood.check("send", 2) is None  # other chats are unaffected
    clock[0] += 1.0
    assert flood.check("send", 1) is None
    for chat in range(100, 130):
        flood.check("send", chat)
    assert flood.check("send", 999) == 1  # global 30/s exhausted
    flood.enabled = False
    assert flood.check("send", 999) is None


def test_a_caller_retrying_inside_the_wait_is_caught_even_when_always_refused() -> None:
    """Issue 11 item 1: `inside_retry_after` counted only calls let through inside a wait; a
    bot that retries inside it and keeps getting 429 passed. Refused calls inside an earlier
    wait count too (but not those already on their way when the 429 was given), and an
    injected 429 is in the history."""
    clock = [0.0]
    flood = FloodController(clock=lambda: clock[0])
    assert all(flood.check("send", 1) is None for _ in range(5))
    assert flood.check("send", 1) == 1
    clock[0] += 0.03125
    assert flood.check("send", 1) == 1  # concurrent with the first 429: not the caller's fault
    assert inside_retry_after(flood.history[1].to_dict()) == []
    clock[0] += 0.5
    assert flood.check("send", 1) == 1  # retried half a second into a 1 s wait
    assert inside_retry_after(flood.history[1].to_dict()) == [(0.0, 0.53125),
                                                              (0.03125, 0.53125)]
    flood.refused_by_fault(2, 30)
    clock[0] += 1
    assert flood.check("send", 2) is None
    assert inside_retry_after(flood.history[2].to_dict()) == [(0.53125, 1.53125)]


def test_faults_counting() -> None:
    faults = FaultInjector()
    faults.add("sendMessage", count=2, status=400)
    faults.add("*", retry_after=5)
    assert faults.take("getMe") is not None and faults.take("getMe") is None
    first = faults.take("SENDMESSAGE")
    assert first is not None and first.error().status == 400
    assert faults.take("sendMessage") is not None and faults.take("sendMessage") is None
