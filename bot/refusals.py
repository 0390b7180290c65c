"""Every refusal a person reads, from one place: its catalogue text, each value in words.

A `DomainError` carries a catalogue key and values. Some values are themselves names the user
must not read raw: a task's state or action ("accepted", "reopened"), who may act ("unit"), a
role ("role.admin"), a report's decision or status. They are translated here, into the
reader's language, whichever feature raised the error and whichever handler reports it (the
global error handler, a report flow, a task card).
"""

from __future__ import annotations

from bot import task_views
from bot.domain.errors import DomainError
from bot.i18n import catalogue, t

# Values that are catalogue keys already.
KEYED_PREFIXES = ("role.", "reports.decision.", "reports.status.")


def explain(lang: str, error: DomainError) -> str:
    # Task names only in task refusals: elsewhere a "who" may be a person called "admin".
    task = error.key.startswith("task.")
    values = {name: _in_words(lang, name, value, task)
              for name, value in error.values.items()}
    return t(lang, error.key, **values)


def _in_words(lang: str, name: str, value: object, task: bool) -> object:
    if isinstance(value, tuple):
        # A list of values ("states": each a state), joined as the reader's language joins.
        each = name.removesuffix("s")
        return t(lang, "list_separator").join(
            str(_in_words(lang, each, v, task)) for v in value)
    if not isinstance(value, str):
        return value
    key = task_views.value_key(name, value) if task else None
    if key is not None:
        return t(lang, key)
    if value.startswith(KEYED_PREFIXES) and value in catalogue(lang):
        return t(lang, value)
    return value
