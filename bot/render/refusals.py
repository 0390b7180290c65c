"""Every refusal a person reads, from one place: its catalogue text, each value in words.

A `DomainError` carries a catalogue key and values. Some values are themselves names the user
must not read raw: a task's state or action ("accepted", "reopened"), who may act ("unit"), a
role ("role.admin"), a report's decision or status. They are translated here, into the
reader's language, whichever feature raised the error and whichever handler reports it (the
global error handler, a report flow, a task card).
"""

from __future__ import annotations

from bot.domain.errors import DomainError
from bot.render import tasks as task_views
from bot.render.fit import fit, user
from bot.render.i18n import Html, catalogue, h, t

# Values that are catalogue keys already.
KEYED_PREFIXES = ("role.", "reports.decision.", "reports.status.")


def explain(lang: str, error: DomainError) -> str:
    # Task names only in task refusals: elsewhere a "who" may be a person called "admin".
    task = error.key.startswith("task.")
    values = {name: _in_words(lang, name, value, task)
              for name, value in error.values.items()}
    # A refusal may quote what someone typed (a unit, a state): it fits Telegram's limit.
    return fit(t(lang, error.key, **values))


def _in_words(lang: str, name: str, value: object, task: bool) -> object:
    if isinstance(value, tuple):
        # A list of values ("states": each a state), joined as the reader's language joins.
        each = name.removesuffix("s")
        return Html(t(lang, "list_separator").join(
            _html(_in_words(lang, each, v, task)) for v in value))
    if not isinstance(value, str):
        return value
    key = task_views.value_key(name, value) if task else None
    if key is not None:
        return Html(t(lang, key))
    if value.startswith(KEYED_PREFIXES) and value in catalogue(lang):
        return Html(t(lang, value))
    return user(value)


def _html(value: object) -> Html:
    return value if isinstance(value, Html) else h(value)
