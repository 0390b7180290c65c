"""Personal numbers in residents' free text, masked before the text reaches a group. Pure.

Residents type addresses, descriptions and dispute reasons; some type a phone number or an
ID-card number into them. The full text stays stored (admins see it); whatever is rendered for
a unit's group goes through `mask_personal` first.
"""

from __future__ import annotations

import re
from typing import Final

# Not inside a longer run of digits (a 20-digit order number is not an ID card).
_ID_18: Final = re.compile(r"(?<![0-9])([1-9][0-9]{5})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
_ID_15: Final = re.compile(r"(?<![0-9])([1-9][0-9]{5})[0-9]{5}([0-9]{4})(?![0-9])")
# Mainland mobiles: 1[3-9]x and 8 more digits, typed with spaces or dashes between the
# groups (138 0013 8000, 138-0013-8000), after +86 / 0086 / 86 or not.
_MOBILE: Final = re.compile(
    r"(?<![0-9])((?:\+|00)?86[\s-]?)?(1[3-9][0-9])[\s-]?[0-9]{4}[\s-]?([0-9]{4})(?![0-9])")
# Landlines with their area code: 0571-88888888, 010 12345678, (0571)8888888.
_LANDLINE: Final = re.compile(
    r"(?<![0-9])(\(?0[1-9][0-9]{1,2}\)?[\s-]?)[0-9]{3,4}[\s-]?([0-9]{4})(?![0-9])")


def mask_personal(text: str) -> str:
    """The text with phone and ID-card numbers masked: 138****8000, 0571-****8888,
    110105********1234 (an old 15-digit one: 110105*****1123); everything else as typed."""
    text = _ID_18.sub(lambda m: f"{m.group(1)}{'*' * 8}{m.group(2)}", text)
    text = _ID_15.sub(lambda m: f"{m.group(1)}{'*' * 5}{m.group(2)}", text)
    text = _MOBILE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(3)}", text)
    return _LANDLINE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


def mask_optional(text: str | None) -> str | None:
    return None if text is None else mask_personal(text)
