"""Formatted-text parsing (parse_mode HTML / MarkdownV2 / Markdown) as Telegram does it.

Telegram parses the markup server-side, stores plain text plus entities, and measures the
length limits on the plain text in UTF-16 code units. The bot only learns about markup bugs
through "Bad Request: can't parse entities: ..." errors, so the emulator reproduces those.
HTML follows tdlib's rules closely; MarkdownV2 and legacy Markdown are approximations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Entity = dict[str, Any]


class EntityParseError(ValueError):
    """Markup Telegram would refuse; str(exc) is the part after "can't parse entities: "."""


def u16len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram uses for offsets and limits."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(src: str, index: int) -> int:
    return len(src[:index].encode("utf-8"))


@dataclass
class _Builder:
    parts: list[str] = field(default_factory=list)
    pos16: int = 0
    entities: list[Entity] = field(default_factory=list)

    def add(self, s: str) -> None:
        self.parts.append(s)
        self.pos16 += u16len(s)

    def entity(self, etype: str, start: int, **extra: Any) -> None:
        length = self.pos16 - start
        if length > 0:
            ent: Entity = {"type": etype, "offset": start, "length": length}
            ent.update({k: v for k, v in extra.items() if v is not None})
            self.entities.append(ent)

    def result(self) -> tuple[str, list[Entity]]:
        ents = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), ents


# ----------------------------------------------------------------------------------------- HTML

_HTML_TAGS: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'", "nbsp": "\u00a0"}
_ENTITY_RE = re.compile(r"&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[A-Za-z][A-Za-z0-9]{0,31});")
_TAG_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_ATTR_RE = re.compile(r"\s*([A-Za-z_:][-A-Za-z0-9_:.]*)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+))?")


def _decode_entity(src: str, m: re.Match[str]) -> str:
    body = m.group(1)
    if body.startswith(("#x", "#X")):
        code = int(body[2:], 16)
    elif body.startswith("#"):
        code = int(body[1:])
    else:
        if body in _NAMED_ENTITIES:
            return _NAMED_ENTITIES[body]
        # tdlib would keep an unknown "&foo;" literally; the Wenming sandbox is deliberately
        # stricter because it almost always means a forgotten html.escape().
        raise EntityParseError(
            f'Unsupported HTML entity "&{body};" at byte offset {_byte_offset(src, m.start())}'
        )
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise EntityParseError(
            f"Invalid HTML entity at byte offset {_byte_offset(src, m.start())}"
        )
    return chr(code)


def _unescape_attr(value: str) -> str:
    if value[:1] in "\"'" and value[-1:] == value[:1] and len(value) >= 2:
        value = value[1:-1]
    return _ENTITY_RE.sub(
        lambda m: _NAMED_ENTITIES.get(m.group(1), m.group(0))
        if not m.group(1).startswith("#")
        else _decode_entity(value, m),
        value,
    )


@dataclass
class _Open:
    name: str
    start16: int
    extra: dict[str, Any]


def parse_html(src: str) -> tuple[str, list[Entity]]:
    out = _Builder()
    stack: list[_Open] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "&":
            m = _ENTITY_RE.match(src, i)
            if m:
                out.add(_decode_entity(src, m))
                i = m.end()
            else:
                out.add("&")  # a bare "&" not forming an entity is kept, as tdlib does
                i += 1
            continue
        if c != "<":
            j = i
            while j < n and src[j] not in "<&":
                j += 1
            out.add(src[i:j])
            i = j
            continue
        off = _byte_offset(src, i)
        if src.startswith("</", i):
            end = src.find(">", i)
            if end < 0:
                raise EntityParseError(f"Unclosed end tag at byte offset {off}")
            name = src[i + 2 : end].strip().lower()
            if not stack:
                raise EntityParseError(f'Unexpected end tag at byte offset {off}')
            top = stack.pop()
            if name != top.name:
                raise EntityParseError(
                    f'Unmatched end tag at byte offset {off}, expected "</{top.name}>", '
                    f'found "</{name}>"'
                )
            etype = _HTML_TAGS[top.name]
            if top.extra.pop("_skip", False):
                pass
            elif etype == "blockquote" and top.extra.pop("_expandable", False):
                out.entity("expandable_blockquote", top.start16)
            else:
                top.extra.pop("_expandable", None)
                out.entity(etype, top.start16, **top.extra)
            i = end + 1
            continue
        m = _TAG_NAME_RE.match(src, i + 1)
        name = m.group(0).lower() if m else ""
        if name not in _HTML_TAGS:
            j = i + 1
            while j < n and not src[j].isspace() and src[j] != ">":
                j += 1
            if j >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {off}")
            raise EntityParseError(
                f'Unsupported start tag "{src[i + 1 : j].lower()}" at byte offset {off}'
            )
        assert m is not None
        j = m.end()
        attrs: dict[str, str] = {}
        while True:
            if j >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {off}")
            if src[j] == ">":
                break
            am = _ATTR_RE.match(src, j)
            if not am or am.end() == j:
                if src[j].isspace():
                    j += 1
                    continue
                raise EntityParseError(f"Unclosed start tag at byte offset {off}")
            attrs[am.group(1).lower()] = _unescape_attr(am.group(2) or "")
            j = am.end()
        extra: dict[str, Any] = {}
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {off}')
        if name == "a":
            if attrs.get("href"):
                extra["url"] = attrs["href"]
            else:
                extra["_skip"] = True
        if name == "tg-emoji":
            if not attrs.get("emoji-id"):
                raise EntityParseError(f'Tag "tg-emoji" must have attribute "emoji-id" at byte '
                                       f"offset {off}")
            extra["custom_emoji_id"] = attrs["emoji-id"]
        if name == "blockquote" and "expandable" in attrs:
            extra["_expandable"] = True
        if name == "code" and stack and stack[-1].name == "pre":
            lang = attrs.get("class", "")
            if lang.startswith("language-"):
                stack[-1].extra["language"] = lang[len("language-") :]
                extra["_skip"] = True  # Telegram folds <pre><code class=..> into one entity
        stack.append(_Open(name, out.pos16, extra))
        i = j + 1
    if stack:
        raise EntityParseError(
            f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"'
        )
    return out.result()


# ----------------------------------------------------------------------------------- MarkdownV2

_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_MARKERS = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough",
                 "||": "spoiler"}
_ENTITY_NAMES = {"bold": "Bold", "italic": "Italic", "underline": "Underline",
                 "strikethrough": "Strikethrough", "spoiler": "Spoiler", "text_link": "TextUrl",
                 "code": "Code", "pre": "Pre"}


def parse_markdown_v2(src: str) -> tuple[str, list[Entity]]:
    """Approximate MarkdownV2: markers, links, code/pre, escaping and reserved characters."""
    out = _Builder()
    stack: list[tuple[str, int, int]] = []  # (marker, start16, src index)
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "\\":
            if i + 1 < n and 1 <= ord(src[i + 1]) <= 126:
                out.add(src[i + 1])
                i += 2
                continue
            raise EntityParseError(
                "Character '\\' is reserved and must be escaped with the preceding '\\'"
            )
        if c == "`":
            is_pre = src.startswith("```", i)
            fence = "```" if is_pre else "`"
            j = i + len(fence)
            language = None
            if is_pre:
                nl = src.find("\n", j)
                first = src[j:nl] if nl >= 0 else ""
                if nl >= 0 and first and " " not in first and "`" not in first:
                    language, j = first, nl + 1
            start = out.pos16
            buf: list[str] = []
            while j < n and not src.startswith(fence, j):
                if src[j] == "\\" and j + 1 < n and src[j + 1] in "`\\":
                    buf.append(src[j + 1])
                    j += 2
                else:
                    buf.append(src[j])
                    j += 1
            if j >= n:
                name = "Pre" if is_pre else "Code"
                raise EntityParseError(
                    f"Can't find end of {name} entity at byte offset {_byte_offset(src, i)}"
                )
            out.add("".join(buf))
            out.entity("pre" if is_pre else "code", start, language=language)
            i = j + len(fence)
            continue
        marker = None
        for cand in ("__", "||", "*", "_", "~"):
            if src.startswith(cand, i):
                marker = cand
                break
        if marker is not None:
            if any(m == marker for m, _, _ in stack):
                while stack:
                    m, start, _ = stack.pop()
                    if m == marker:
                        out.entity(_MDV2_MARKERS[m], start)
                        break
                    raise EntityParseError(
                        f"Can't find end of {_ENTITY_NAMES[_MDV2_MARKERS[m]]} entity at byte "
                        f"offset {_byte_offset(src, i)}"
                    )
            else:
                stack.append((marker, out.pos16, i))
            i += len(marker)
            continue
        if c == "[":
            stack.append(("[", out.pos16, i))
            i += 1
            continue
        if c == "]" and stack and stack[-1][0] == "[":
            _, start, _ = stack.pop()
            if src.startswith("(", i + 1):
                end = i + 2
                url_chars: list[str] = []
                while end < n and src[end] != ")":
                    if src[end] == "\\" and end + 1 < n:
                        end += 1
                    url_chars.append(src[end])
                    end += 1
                if end >= n:
                    raise EntityParseError(
                        f"Can't find end of a URL at byte offset {_byte_offset(src, i + 1)}"
                    )
                out.entity("text_link", start, url="".join(url_chars))
                i = end + 1
            else:
                i += 1
            continue
        if c == ">" and (i == 0 or src[i - 1] == "\n"):
            i += 1  # blockquote line marker: stripped, no entity (approximation)
            continue
        if c in _MDV2_RESERVED:
            raise EntityParseError(
                f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
            )
        out.add(c)
        i += 1
    if stack:
        m, _, idx = stack[-1]
        name = "TextUrl" if m == "[" else _ENTITY_NAMES[_MDV2_MARKERS[m]]
        raise EntityParseError(
            f"Can't find end of {name} entity at byte offset {_byte_offset(src, idx)}"
        )
    return out.result()


# ------------------------------------------------------------------------------ legacy Markdown

def parse_markdown(src: str) -> tuple[str, list[Entity]]:
    """Legacy Markdown: *bold* _italic_ `code` ```pre``` [text](url), no nesting."""
    out = _Builder()
    i, n = 0, len(src)
    kinds = {"*": "bold", "_": "italic", "`": "code"}
    while i < n:
        c = src[i]
        if c == "\\" and i + 1 < n and src[i + 1] in "*_`[":
            out.add(src[i + 1])
            i += 2
            continue
        if src.startswith("```", i):
            end = src.find("```", i + 3)
            if end < 0:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(src, i)}"
                )
            start = out.pos16
            out.add(src[i + 3 : end])
            out.entity("pre", start)
            i = end + 3
            continue
        if c in kinds:
            end = src.find(c, i + 1)
            if end < 0:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(src, i)}"
                )
            start = out.pos16
            out.add(src[i + 1 : end])
            out.entity(kinds[c], start)
            i = end + 1
            continue
        if c == "[":
            close = src.find("](", i)
            end = src.find(")", close + 2) if close >= 0 else -1
            if close >= 0 and end >= 0:
                start = out.pos16
                out.add(src[i + 1 : close])
                out.entity("text_link", start, url=src[close + 2 : end])
                i = end + 1
                continue
        out.add(c)
        i += 1
    return out.result()


def parse_formatted(text: str, parse_mode: str | None) -> tuple[str, list[Entity]]:
    """Apply parse_mode; raises EntityParseError on markup Telegram rejects."""
    mode = (parse_mode or "").strip().lower()
    if not mode:
        return text, []
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    raise EntityParseError(f"Unsupported parse_mode {parse_mode!r}")
