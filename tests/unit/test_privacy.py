"""Issue 11 item 13: phone and ID-card numbers in residents' text are masked for groups."""

from __future__ import annotations

import pytest

from bot.domain.privacy import mask_personal


@pytest.mark.parametrize(("typed", "shown"), [
    ("13800138000", "138****8000"),
    ("电话13800138000找王先生", "电话138****8000找王先生"),
    ("138 0013 8000", "138****8000"),
    ("138-0013-8000", "138****8000"),
    ("+86 138 0013 8000", "+86 138****8000"),
    ("+8613800138000", "+86138****8000"),
    ("0086-13912345678", "0086-139****5678"),
    ("0571-88888888", "0571-****8888"),
    ("010 12345678", "010 ****5678"),
    ("(0571)8888888", "(0571)****8888"),
    ("身份证110105199001011234", "身份证110105********1234"),
    ("11010519900101123X号", "110105********123X号"),
    ("11010519900101123x", "110105********123x"),
    ("110105900101123", "110105*****1123"),
    ("联系人：13800138000，座机 0571-88888888",
     "联系人：138****8000，座机 0571-****8888"),
])
def test_numbers_are_masked(typed: str, shown: str) -> None:
    assert mask_personal(typed) == shown


@pytest.mark.parametrize("kept", [
    "宝鸡市XX区XX大道136号",
    "后祁街18号楼3单元",
    "R-2026-000123",
    "12800138000",  # no mobile starts 12
    "订单号 123456789012345678901",  # longer than any ID
    "2026年11月28日 9:30",
    "",
])
def test_other_text_is_left_as_typed(kept: str) -> None:
    assert mask_personal(kept) == kept
