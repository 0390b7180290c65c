"""Personal numbers in residents' free text, masked before the text reaches a group. Pure.

Residents type addresses, descriptions and dispute reasons; some type a phone number or an
ID-card number into them. The full text stays stored (admins see it); whatever is rendered for
a unit's group goes through `mask_personal` first.
"""

from __future__ import annotations

import re
from typing import Final

# Full-width forms (１３８, （, ．, Ｘ) and the ideographic space fold to ASCII for matching,
# one character for one, so a match's positions are the typed text's positions.
_FOLD: Final = {**{code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}, 0x3000: 0x20}
# Between a number's groups: a space, a dash or a dot (138 0013 8000, 138.0013.8000).
_SEP: Final = r"[\s.-]?"

# Not inside a longer run of digits (a 20-digit order number is not an ID card).
_ID_18: Final = re.compile(
    rf"(?<![0-9])([1-9][0-9]{{5}}){_SEP}[0-9]{{8}}{_SEP}([0-9]{{3}}[0-9Xx])(?![0-9A-Za-z])")
_ID_15: Final = re.compile(r"(?<![0-9])([1-9][0-9]{5})[0-9]{5}([0-9]{4})(?![0-9])")
# Mainland mobiles: 1[3-9]x and 8 more digits, typed with spaces, dashes or dots between the
# groups (138 0013 8000, 138-0013-8000, (138)00138000), after +86 / 0086 / 86 or not.
_MOBILE: Final = re.compile(
    rf"(?<![0-9])((?:\+|00)?86[\s-]?)?(\(?1[3-9][0-9]\)?){_SEP}[0-9]{{4}}{_SEP}([0-9]{{4}})"
    r"(?![0-9])")
# Landlines with their area code: 0571-88888888, 010 12345678, (0571)8888888.
_LANDLINE: Final = re.compile(
    r"(?<![0-9])(\(?0[1-9][0-9]{1,2}\)?[\s-]?)[0-9]{3,4}[\s-]?([0-9]{4})(?![0-9])")


def _sub(pattern: re.Pattern[str], text: str, stars: int) -> str:
    """Each match of `pattern` in the folded text, in the typed text: its first group as typed,
    `stars` asterisks, its last group as typed (an optional first group may be absent)."""
    folded = text.translate(_FOLD)
    out: list[str] = []
    last = 0

    def typed(match: re.Match[str], group: int) -> str:
        start, end = match.span(group)
        return text[start:end] if start >= 0 else ""

    for match in pattern.finditer(folded):
        groups = match.re.groups
        head = "".join(typed(match, g) for g in range(1, groups))
        out += [text[last:match.start()], head, "*" * stars, typed(match, groups)]
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def mask_personal(text: str) -> str:
    """The text with phone and ID-card numbers masked: 138****8000, 0571-****8888,
    110105********1234 (an old 15-digit one: 110105*****1123); everything else as typed.
    Full-width digits (１３８…) are numbers too: they are found, and masked where typed."""
    for pattern, stars in ((_ID_18, 8), (_ID_15, 5), (_MOBILE, 4), (_LANDLINE, 4)):
        text = _sub(pattern, text, stars)
    return text


def mask_optional(text: str | None) -> str | None:
    return None if text is None else mask_personal(text)
