"""The answer to an admin who sent a plans file (plans.yaml) to the bot: what was imported, or
every problem by line (nothing imported), the warnings, and a word when the file's hour for the
daily lists differs from the server's. Each problem is told by line and plan in the admin's
language (bot/render/file_problems.py); one the checker gave no message code is its English
line, as `wenming plans check` prints it, shown as code."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from bot.domain.plans import PlansImport
from bot.domain.yamlfile import FileProblem
from bot.render.file_problems import problem_line
from bot.render.fit import TEXT_LIMIT, shown_length
from bot.render.i18n import Html, t

MAX_LINES = 20  # a wrong indentation makes every later line wrong: the first ones say enough


def _code_lines(lang: str, lines: Sequence[FileProblem], budget: int) -> list[str]:
    out: list[str] = []
    for i, line in enumerate(lines[:MAX_LINES]):
        row = problem_line(lang, line)
        if shown_length("\n".join([*out, row])) > budget:
            out.append(t(lang, "plans.file.more", count=len(lines) - i))
            return out
        out.append(row)
    if len(lines) > MAX_LINES:
        out.append(t(lang, "plans.file.more", count=len(lines) - MAX_LINES))
    return out


def import_answer(lang: str, file: str, outcome: PlansImport,
                  server_morning: dt.time | None) -> str:
    if outcome.problems:
        head = [t(lang, "plans.file.refused", file=file, count=len(outcome.problems))]
        return "\n".join(head + _code_lines(lang, outcome.problems, TEXT_LIMIT - 600))
    lines = [t(lang, "plans.file.imported", file=file, plans=outcome.plans,
               added=outcome.added, updated=outcome.updated, removed=outcome.removed)]
    if outcome.warnings:
        lines.append(t(lang, "plans.file.warnings"))
        lines += _code_lines(lang, outcome.warnings, TEXT_LIMIT - 1200)
    if server_morning is not None and outcome.morning not in (None, server_morning):
        assert outcome.morning is not None
        lines.append(t(lang, "plans.file.morning_kept", file_time=Html(
            f"{outcome.morning:%H:%M}"), server_time=Html(f"{server_morning:%H:%M}")))
    return "\n".join(lines)
