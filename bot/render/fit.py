"""Screens that fit Telegram's limits: what people typed is shortened with "…", never refused.

Telegram refuses a message over 4,096 characters and a caption over 1,024, counted as it
counts them: UTF-16 code units of the visible text, after the HTML is parsed. A screen that
shows someone's note, reason or description could pass that and then never be shown again
(every redraw refused), so every such screen is made in two steps:

1. The renderer wraps each user-supplied text in `user()` (escaped, and marked).
2. The finished screen goes through `fit()` (or `fit_lines()` when it has droppable history):
   if it is too long, the longest marked texts are shortened first, each to the same length,
   until it fits; the frame (labels, numbers, buttons' context) is kept. The marks are removed
   in every case, and what is stored is never touched.

Pure: no Telegram, no database.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence

from bot.render.i18n import Html

TEXT_LIMIT = 4096  # a message, after entity parsing
CAPTION_LIMIT = 1024  # a photo's caption, likewise
ELLIPSIS = "…"

# Interlinear annotation anchor / terminator: characters made for in-text markup that never
# leaves the program (Unicode says they are not to be interchanged).
_OPEN, _CLOSE = "\ufff9", "\ufffb"
_MARKED = re.compile(f"{_OPEN}(.*?){_CLOSE}", re.DOTALL)
_TAG = re.compile(r"<(/?)([a-zA-Z-]+)[^>]*>")


def user(text: object) -> Html:
    """Text someone typed, for a screen: HTML-escaped, and marked so `fit` may shorten it."""
    return Html(f"{_OPEN}{html.escape(str(text), quote=False)}{_CLOSE}")


def u16(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def visible(html_text: str) -> str:
    """The text Telegram shows for this HTML: tags dropped, entities decoded, marks removed."""
    return html.unescape(_TAG.sub("", html_text)).replace(_OPEN, "").replace(_CLOSE, "")


def shown_length(html_text: str) -> int:
    return u16(visible(html_text))


def unmark(html_text: str) -> str:
    return html_text.replace(_OPEN, "").replace(_CLOSE, "")


def fit(html_text: str, limit: int = TEXT_LIMIT) -> str:
    """The screen, its user texts shortened just enough for it to fit `limit`."""
    if shown_length(html_text) <= limit:
        return unmark(html_text)
    parts = _MARKED.split(html_text)  # frame, user, frame, user, ..., frame
    frame = [p for i, p in enumerate(parts) if i % 2 == 0]
    texts = [html.unescape(p) for i, p in enumerate(parts) if i % 2 == 1]
    budget = limit - shown_length("".join(frame))
    cap = _cap([u16(x) for x in texts], budget)
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.append(part)
        else:
            out.append(html.escape(_shorten(texts[i // 2], cap), quote=False))
    return _cut("".join(out), limit)


def fit_history(head: Sequence[str], history: Sequence[str], limit: int = TEXT_LIMIT, *,
                hidden: int = 0, marker: Callable[[int], str] | None = None) -> str:
    """Lines `head` then `history` (oldest first), fitted: first the oldest history lines go,
    and one line `marker(n)` says how many are not shown (`hidden` were left out already);
    then user texts are shortened as `fit` does."""
    work = list(history)

    def joined() -> str:
        note = [marker(hidden)] if hidden and marker is not None else []
        return "\n".join([*head, *note, *work])

    while work and shown_length(joined()) > limit:
        del work[0]
        hidden += 1
    return fit(joined(), limit)


def _cap(lengths: list[int], budget: int) -> int:
    """The largest length c such that every text shortened to at most c fits in `budget`."""
    if not lengths:
        return 0
    lo, hi = 0, max(lengths)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(n, mid) for n in lengths) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _shorten(text: str, cap: int) -> str:
    """`text` in at most `cap` UTF-16 units, ending in "…" when cut (never a split pair)."""
    if u16(text) <= cap:
        return text
    if cap <= 0:
        return ""
    out, used = [], 1  # room for the ellipsis
    for ch in text:
        size = u16(ch)
        if used + size > cap:
            break
        out.append(ch)
        used += size
    return "".join(out).rstrip() + ELLIPSIS


def _cut(html_text: str, limit: int) -> str:
    """The last resort, when the frame alone is too long: whole lines from the end go, and
    "…" says so; tags left open are closed."""
    if shown_length(html_text) <= limit:
        return html_text
    lines = html_text.split("\n")
    while len(lines) > 1 and shown_length("\n".join(lines)) + 2 > limit:
        lines.pop()
    text = "\n".join(lines)
    if shown_length(text) + 2 > limit:  # one line longer than the limit by itself
        text = html.escape(_shorten(visible(text), limit - 2), quote=False)
    return _close_tags(text) + "\n" + ELLIPSIS


def _close_tags(html_text: str) -> str:
    stack: list[str] = []
    for m in _TAG.finditer(html_text):
        closing, name = m.group(1), m.group(2).lower()
        if not closing:
            stack.append(name)
        elif name in stack:
            while stack and stack.pop() != name:
                pass
    return html_text + "".join(f"</{name}>" for name in reversed(stack))
