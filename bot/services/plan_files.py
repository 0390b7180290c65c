"""A plans file (plans.yaml) checked and imported, all or nothing: by `wenming plans import` on
the server and by an admin sending the file to the bot in private. The file is checked as the
standards' site types and the database know them; unit and site codes the database does not
know are errors, people it does not know yet are warnings (see `unknown_references`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Set

from bot.domain.plans import PlansConfig, PlansConfigError, PlansImport, check_plans
from bot.domain.yamlfile import FileProblem
from bot.services.plans import import_plans, unknown_references
from db.uow import UnitOfWork


def check_text(text: str, file: str, known_site_types: Set[str], *, allow_empty: bool = False
               ) -> PlansConfig | PlansImport:
    """The file's plans, or what is wrong with it (offline: no database; pure Python YAML
    parsing and recurrences, seconds for a hostile file: callers on the event loop run it in
    a thread). A file with no plans would remove every plan, and lose which were paused: it
    is refused unless `allow_empty` (the operator's `wenming plans import`)."""
    checked = check_plans(text, file, known_site_types)
    if not isinstance(checked, PlansConfig):
        return PlansImport(problems=tuple(p.said() for p in checked))
    if not checked.plans and not allow_empty:
        return PlansImport(problems=(PlansConfigError(
            file, None, None, "the file has no plans; importing it would remove every plan "
            "(pause plans with /plans instead)").coded("plans.problem.no_plans").said(),))
    return checked


def decode(data: bytes, file: str) -> str | PlansImport:
    """A sent file's text (UTF-8, a Windows editor's BOM dropped), or the problem."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return PlansImport(problems=(PlansConfigError(
            file, None, None, f"not UTF-8 text (byte {exc.start}); save as UTF-8").coded(
            "plans.problem.not_utf8", byte=exc.start).said(),))


async def import_checked(uow: UnitOfWork, checked: PlansConfig, file: str, now: dt.datetime
                         ) -> PlansImport:
    """A checked file's plans against the database, and when nothing in them is wrong, the
    database's plans become the file's (paused ones stay paused; plans not in the file are
    removed). The caller commits."""
    unknown = await unknown_references(uow, checked)
    said = [FileProblem(f"{file}:{u.line}: plan {u.plan!r}: {'' if u.fatal else 'warning: '}"
                        f"{u.problem}", file, u.line, repr(u.plan), u.code or None,
                        dict(u.params), warning=not u.fatal) for u in unknown]
    problems = tuple(p for p in said if not p.warning)
    warnings = tuple(p for p in said if p.warning)
    if problems:
        return PlansImport(problems=problems, warnings=warnings)
    added, updated, removed = await import_plans(uow, checked, now)
    return PlansImport((), warnings, len(checked.plans), added, updated, removed,
                       checked.morning)
