"""Message catalogues (zh-Hans default, English complete) and HTML-safe formatting."""

from __future__ import annotations

import html
import string
from collections.abc import Mapping
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

import yaml

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
LANGUAGES = ("zh-hans", "en")
DEFAULT_LANGUAGE = "zh-hans"
# One folder per language; each feature keeps its own file (core.yaml, tasks.yaml, ...).
_DIRS = {"zh-hans": "zh-Hans", "en": "en"}


# The language of the person whose update is being handled. The error handler gets a fresh
# context from PTB, but runs in the same task, so it reads the language from here.
current_language: ContextVar[str] = ContextVar("current_language", default=DEFAULT_LANGUAGE)


class Html(str):
    """Text that is already valid Telegram HTML; `t()` inserts it without escaping."""

    __slots__ = ()


def normalize_language(code: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """Map a Telegram language_code (zh-hans, zh-CN, en-US, ...) to a catalogue."""
    if not code:
        return default
    code = code.lower()
    if code.startswith("zh"):
        return "zh-hans"
    if code.startswith("en"):
        return "en"
    return default


@cache
def catalogue(lang: str) -> Mapping[str, str]:
    flat: dict[str, str] = {}
    for path in sorted((LOCALES_DIR / _DIRS[lang]).glob("*.yaml")):
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        part: dict[str, str] = {}
        _flatten("", data, part)
        clash = set(part) & set(flat)
        if clash:
            raise ValueError(f"{path}: keys defined in another file too: {sorted(clash)}")
        flat.update(part)
    return flat


def _flatten(prefix: str, node: Any, out: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(f"{prefix}{key}." if not isinstance(value, str) else f"{prefix}{key}",
                     value, out)
    elif isinstance(node, str):
        out[prefix.rstrip(".")] = node
    else:
        raise TypeError(f"catalogue entry {prefix!r} must be text")


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def t(lang: str, key: str, /, **values: object) -> str:
    """The catalogue text for `key`, with values HTML-escaped unless wrapped in `Html`."""
    lang = lang if lang in _DIRS else DEFAULT_LANGUAGE
    template = catalogue(lang).get(key) or catalogue(DEFAULT_LANGUAGE).get(key)
    if template is None:
        raise KeyError(f"no message {key!r}")
    safe = {k: v if isinstance(v, Html) else html.escape(str(v), quote=False)
            for k, v in values.items()}
    return template.format(**safe)


def local_name(lang: str, zh: str, en: str | None) -> str:
    """A name given in Chinese and maybe in English (a unit, a site, a task's title): the
    English one for English readers when there is one, else the Chinese."""
    return en if lang == "en" and en else zh


def h(text: object) -> Html:
    """Escape a value for Telegram HTML once, so it can be combined with other HTML."""
    return Html(html.escape(str(text), quote=False))
