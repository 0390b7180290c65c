"""A file's problems as its sender reads them: each problem the checker gave a message code
(bot/domain/yamlfile.py, bot/domain/plans.py) in the sender's language, with its line and
entry; a problem without one (PyYAML's own words inside a syntax error are framed, not
translated) as the checker's English line."""

from __future__ import annotations

from bot.domain.yamlfile import FileProblem
from bot.render.i18n import Html, t

# The reader's `what` words that are prose, not a key of the file (keys are shown as code).
_PROSE = {"the file": "yaml.what.file", "a plan": "yaml.what.plan",
          "crew.people (Telegram ids)": "yaml.what.crew_people"}


# The reader's problems with a key of a mapping: the mapping, if named, goes before them.
_KEYED = frozenset({"yaml.key_word", "yaml.key_twice", "yaml.merge_key", "yaml.unknown_key",
                    "yaml.unknown_key_no_hint"})


def _what(lang: str, what: object) -> Html:
    text = str(what)
    if not text:
        return Html("")
    key = _PROSE.get(text)
    return Html(t(lang, key) if key else t(lang, "yaml.of", what=text))


def _values(lang: str, params: dict[str, object]) -> dict[str, object]:
    values = dict(params)
    if "what" in values:
        values["what"] = _what(lang, values["what"])
    if "expected" in values:
        values["expected"] = Html(t(lang, f"yaml.expected.{values['expected']}"))
    if "kind" in values:
        values["kind"] = Html(t(lang, f"yaml.kind.{values['kind']}",
                                value=values.get("value", "")))
    return values


def problem_text(lang: str, problem: FileProblem) -> str:
    """The problem itself, localized (HTML); None-coded problems give their English line."""
    if problem.code is None:
        return t(lang, "plans.file.line", line=problem.text)
    values = _values(lang, dict(problem.params))
    text = t(lang, problem.code, **values).strip()
    if problem.code in _KEYED and values.get("what"):
        # A key's problem names the mapping it is in first ("target: unknown key …").
        text = t(lang, "yaml.in", what=values["what"]) + text
    return text[:1].upper() + text[1:] if lang == "en" else text


def problem_line(lang: str, problem: FileProblem) -> str:
    """One line of the answer: where (line, plan) and what."""
    if problem.code is None:
        return problem_text(lang, problem)
    what = Html(problem_text(lang, problem))
    if problem.line is None:
        return t(lang, "plans.file.at_file", problem=what)
    if problem.field:
        return t(lang, "plans.file.at_line_plan", line=problem.line,
                 plan=problem.field.strip("'\""), problem=what)
    return t(lang, "plans.file.at_line", line=problem.line, problem=what)
