"""Supervision plans (督查计划) and each inspector's day (一日一督查).

Every morning (plans.yaml `morning`), `run_morning`:

1. marks what was still due on earlier days as missed;
2. expands the active plans' rounds due today into occurrences (one row per site, plan and
   day: idempotent across replicas by the table's unique key);
3. takes what the day's draw added through `add_occurrences` (spot checks, re-checks);
4. shares out whatever has no inspector yet, balancing the load among the inspectors
   available (not blocked, inspector or admin, in the plan's crew);
5. queues each inspector's list (outbox, one dedup key per inspector and day) with a button
   per site that starts its inspection.

An inspection submitted at a site ticks off that site's occurrences of the day (done) or, if
none is due today, the latest one of the last week not done (late). Any inspector's
inspection counts: the visit was made. The morning list that named a ticked occurrence is
edited to show its tick (`refresh_lists`).

A list's buttons carry their occurrence (`pg:<id>`): `planned_press` says what a press is
about, for whom, and what the inspection it starts will tick (`counts_as`), so the inspector
is told before starting that it is late, or done already, or a re-check of which task.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot.domain.draw import Drawn
from bot.domain.errors import DomainError, NotAllowed, NotFound, StaleAction
from bot.domain.plans import (
    DONE,
    DUE,
    KINDS,
    LATE,
    MISSED,
    RECHECK,
    ROUND,
    Job,
    Plan,
    PlansConfig,
    Text,
    assign,
)
from bot.domain.roles import Role, require, role_of
from bot.render.buttons import Screen, keyboard_json
from bot.render.dates import format_date
from bot.render.i18n import local_name, normalize_language, t
from bot.render.plans import (
    AGAIN,
    EXPIRED,
    LATER,
    NOTHING,
    TODAY,
    ListRow,
    MissedRow,
    PlanLine,
    day_list,
    missed_lines,
    plans_screen,
    target_words,
    waiting_lines,
)
from bot.services.tasks.site_items import standard_of
from db.models import Person, PlanOccurrence, SupervisionPlan
from db.outbox_keys import dedup_key
from db.repositories.plans import InspectorRef, OccurrenceRow, SiteRef
from db.repositories.stats import UnitTree
from db.uow import UnitOfWork

LATE_WITHIN_DAYS = 7  # an inspection ticks off a missed occurrence of up to a week before
# Days the morning did not run (bot down, a clock jump) get their rounds recorded as missed at
# the next morning, back this many days at most.
BACKFILL_DAYS = 14
PLANS_JOB = "plans"  # the JobRun name of the morning's lists


@dataclass(frozen=True)
class Morning:
    missed: int  # earlier occurrences marked missed
    added: int  # new occurrences today
    assigned: int
    unassigned: int
    lists: int  # outbox rows queued
    backfilled: int = 0  # rounds of earlier days the morning did not run, recorded as missed


# ---- plans in the database -----------------------------------------------------------------


async def import_plans(uow: UnitOfWork, config: PlansConfig, now: dt.datetime
                       ) -> tuple[int, int, int]:
    """The database's plans become the file's (by code); paused ones stay paused.
    (added, updated, removed)."""
    rows = [SupervisionPlan(code=p.code, name_zh=p.name.zh, name_en=p.name.en,
                            body=p.to_json(), paused=False) for p in config.plans]
    return await uow.plans.replace_plans(rows, now)


@dataclass(frozen=True)
class Unknown:
    """A plan's reference the database does not know (`wenming plans import`)."""

    plan: str
    line: int
    problem: str  # "target.units: 'x' is not a unit code in the database"
    fatal: bool  # an error (nothing imported), or a warning
    code: str = ""  # the message code (plans.problem.*) and its values, for the bot's answer
    params: Mapping[str, object] = field(default_factory=dict)


async def unknown_references(uow: UnitOfWork, config: PlansConfig) -> list[Unknown]:
    """What the plans name that the database does not know: unit and site codes are errors
    (a round over them would cover nothing, or less than meant); people are warnings (a
    Telegram id becomes known when its owner first writes to the bot, and until then they
    simply get no rounds)."""
    units = {n.code for n in (await uow.stats.unit_tree()).nodes.values()}
    sites = {s.code for s in await uow.plans.sites()}
    people = await uow.plans.people(p for plan in config.plans for p in plan.crew.people)
    out: list[Unknown] = []
    for plan in config.plans:
        for where, codes in (("target.units", plan.target.units),
                             ("crew.units", plan.crew.units)):
            out += [Unknown(plan.code, plan.line, f"{where}: {c!r} is not a unit code in the "
                                                  "database (wenming import ORG_FILE)", True,
                            "plans.problem.unknown_unit", {"where": where, "value": repr(c)})
                    for c in codes if c not in units]
        out += [Unknown(plan.code, plan.line, f"target.sites: {c!r} is not a site code in "
                                              "the database", True,
                        "plans.problem.unknown_site", {"value": repr(c)})
                for c in plan.target.sites if c not in sites]
        out += [Unknown(plan.code, plan.line, f"crew.people: {p} has not written to the bot "
                                              "yet; they get rounds once they are an "
                                              "inspector", False,
                        "plans.problem.not_started", {"value": p})
                for p in plan.crew.people if p not in people]
    return out


async def active_plans(uow: UnitOfWork) -> list[Plan]:
    return [Plan.from_json(p.code, p.body) for p in await uow.plans.plans() if not p.paused]


async def plan_names(uow: UnitOfWork) -> dict[str, Text]:
    return {p.code: Text(p.name_zh, p.name_en) for p in await uow.plans.plans()}


async def set_paused(uow: UnitOfWork, person: Person, code: str, paused: bool,
                     today: dt.date, now: dt.datetime, default_lang: str = "zh-hans") -> int:
    """An admin pauses or resumes a plan. Pausing withdraws its rounds of today not done yet:
    they are asked of nobody any more, so the digest must not call them missed; the morning
    lists that named them are redrawn without them. A round done stays done. Resuming adds
    rounds from the next morning on. How many rounds were withdrawn."""
    require(role_of(person), Role.ADMIN)
    plan = await uow.plans.plan(code)
    if plan is None:
        raise NotFound("plans.admin.unknown", code=code)
    plan.paused = paused
    if not paused:
        return 0
    withdrawn = await uow.plans.withdraw_due(code, today)
    stamp = int(now.timestamp())
    await _redraw_lists(
        uow, {(day, who) for day, who in withdrawn if who is not None},
        lambda day, who: dedup_key("plans_withdrawn", day.isoformat(), who, code, stamp),
        default_lang)
    return len(withdrawn)


# ---- resolving targets and crews ------------------------------------------------------------


def _units_below(tree: UnitTree, codes: Iterable[str]) -> set[int]:
    by_code = {n.code: n.id for n in tree.nodes.values()}
    out: set[int] = set()
    for code in codes:
        if code in by_code:
            out.update(tree.subtree(by_code[code]))
    return out


def target_sites(plan: Plan, sites: Sequence[SiteRef], tree: UnitTree) -> list[int]:
    """The sites a plan's round covers: those matching every field of its target."""
    types = set(plan.target.site_types)
    codes = set(plan.target.sites)
    units = _units_below(tree, plan.target.units) if plan.target.units else None
    return [s.id for s in sites
            if (not types or s.site_type in types) and (not codes or s.code in codes)
            and (units is None or s.unit_id in units)]


def crew_of(plan: Plan, inspectors: Sequence[InspectorRef], tree: UnitTree) -> list[int]:
    """Who may do a plan's rounds: its named people (inspectors or admins) and the inspectors
    of its units and the units below them."""
    named = set(plan.crew.people)
    units = _units_below(tree, plan.crew.units)
    return [p.id for p in inspectors
            if p.id in named or (p.role == "inspector" and p.unit_id in units)]


# ---- the morning -----------------------------------------------------------------------------


async def day_rounds(uow: UnitOfWork, day: dt.date, tz: ZoneInfo) -> list[tuple[str, int]]:
    """The active plans' rounds due on `day`: (plan, site id)."""
    plans = [p for p in await active_plans(uow) if p.due_on(day, tz)]
    if not plans:
        return []
    sites = await uow.plans.sites()
    tree = await uow.stats.unit_tree()
    return [(p.code, site_id) for p in plans for site_id in target_sites(p, sites, tree)]


async def expand_day(uow: UnitOfWork, day: dt.date, tz: ZoneInfo, now: dt.datetime,
                     rounds: Sequence[tuple[str, int]] | None = None) -> int:
    """Insert the active plans' rounds due on `day` (`rounds`: `day_rounds`, when the caller
    has them already); how many were new."""
    if rounds is None:
        rounds = await day_rounds(uow, day, tz)
    rows = [{"day": day, "kind": ROUND, "plan": plan, "site_id": site_id, "task_id": None,
             "status": DUE, "created_at": now}
            for plan, site_id in rounds]
    return await uow.plans.add_occurrences(rows) if rows else 0


async def add_occurrences(uow: UnitOfWork, day: dt.date,
                          items: Iterable[tuple[int, str, int | None]],
                          now: dt.datetime) -> int:
    """The draw's entry point: (site id, kind "spot" | "recheck", task id or None) due on
    `day`, added before the day's share-out (call it before `assign_day`, or let
    `run_morning` pick them up). Idempotent: a site's spot check is added once a day."""
    rows = []
    for site_id, kind, task_id in items:
        if kind not in KINDS or kind == ROUND:
            raise ValueError(f"add_occurrences takes spot or recheck, not {kind!r}")
        rows.append({"day": day, "kind": kind, "plan": "", "site_id": site_id,
                     "task_id": task_id, "status": DUE, "created_at": now})
    return await uow.plans.add_occurrences(rows)


async def assign_day(uow: UnitOfWork, day: dt.date, now: dt.datetime) -> tuple[int, int]:
    """Give every occurrence of `day` without an inspector to one, balancing the load
    (what each already has today counts). (assigned, left without anyone available)."""
    repo = uow.plans
    rows = await repo.of_day(day)
    todo = [r for r in rows if r.inspector_id is None and r.status == DUE]
    if not todo:
        return 0, 0
    inspectors = await repo.inspectors()
    tree = await uow.stats.unit_tree()
    plans = {p.code: p for p in await active_plans(uow)}
    everyone = [p.id for p in inspectors if p.role == "inspector"] or [p.id for p in inspectors]
    crews = {code: crew_of(p, inspectors, tree) for code, p in plans.items()}
    own = await repo.site_inspectors(r.site_id for r in todo)
    load: dict[int, int] = {}
    for r in rows:
        if r.inspector_id is not None:
            load[r.inspector_id] = load.get(r.inspector_id, 0) + 1
    jobs = [Job(r.id, crews.get(r.plan, []) if r.kind == ROUND else everyone,
                frozenset(own.get(r.site_id, ()))) for r in todo]
    assigned = assign(jobs, load)
    # A spot check or re-check at a site a round is due at goes to whoever has the round:
    # one visit, not two inspectors at one door.
    with_round: dict[int, int] = {}
    for r in rows:
        who = r.inspector_id if r.inspector_id is not None else assigned.get(r.id)
        if r.kind == ROUND and who is not None:
            with_round.setdefault(r.site_id, who)
    for r in todo:
        if r.kind != ROUND and with_round.get(r.site_id) in everyone:
            assigned[r.id] = with_round[r.site_id]
    await repo.set_inspectors(day, assigned, now)
    return len(assigned), len(todo) - len(assigned)


async def queue_lists(uow: UnitOfWork, day: dt.date, default_lang: str) -> int:
    """Queue each inspector's list for `day` in private (once per inspector and day)."""
    rows = await uow.plans.of_day(day)
    names = await plan_names(uow)
    by_person: dict[int, list[OccurrenceRow]] = {}
    for r in rows:
        if r.inspector_id is not None:
            by_person.setdefault(r.inspector_id, []).append(r)
    queued = 0
    people = await uow.plans.people(by_person)
    for person_id, mine in sorted(by_person.items()):
        person = people.get(person_id)
        if person is None or person.blocked:
            continue
        params = _list_params(person, day, mine, names, default_lang)
        if await uow.outbox.enqueue(dedup_key(PLANS_JOB, day.isoformat(), person_id),
                                    person_id, "sendMessage", params, purpose="plans"):
            queued += 1
    return queued


def _list_params(person: Person, day: dt.date, rows: Iterable[OccurrenceRow],
                 names: Mapping[str, Text], default_lang: str) -> dict[str, object]:
    """An inspector's list for `day` as sendMessage (or editMessageText) parameters."""
    lang = person.language or normalize_language(person.telegram_language, default_lang)
    text, buttons = day_list(lang, day, _list_rows(rows), names)
    params: dict[str, object] = {"text": text, "parse_mode": "HTML"}
    markup = keyboard_json(buttons)
    if markup is not None:
        params["reply_markup"] = markup
    return params


async def skipped_days(uow: UnitOfWork, day: dt.date) -> list[dt.date]:
    """The days before `day` whose morning did not run (no JobRun, or one recorded as skipped)
    since the last morning that did, at most BACKFILL_DAYS back. None on a database where no
    morning ever ran (a fresh install: nothing was due before it)."""
    last = await uow.jobs.last_ran(PLANS_JOB, day.isoformat())
    if last is None:
        return []
    first = max(dt.date.fromisoformat(last) + dt.timedelta(days=1),
                day - dt.timedelta(days=BACKFILL_DAYS))
    return [first + dt.timedelta(days=i) for i in range((day - first).days)]


async def backfill(uow: UnitOfWork, day: dt.date, tz: ZoneInfo, now: dt.datetime) -> int:
    """Record the rounds of the days the morning did not run (`skipped_days`) as due, so the
    next step marks them missed: they count in the digest's and the bulletin's completion
    though no list went out for them. Idempotent (the occurrences' unique key)."""
    added = 0
    for skipped in await skipped_days(uow, day):
        added += await expand_day(uow, skipped, tz, now)
    return added


async def run_morning(uow: UnitOfWork, day: dt.date, tz: ZoneInfo, now: dt.datetime,
                      default_lang: str, drawn: Iterable[Drawn] = (),
                      rounds: Sequence[tuple[str, int]] | None = None) -> Morning:
    """The morning's work for `day` in the caller's transaction (see the module's doc); the
    day's random spot checks and re-checks (`drawn`, bot/services/draws.day_draw) join the
    plans' rounds in the same share-out and the same lists. Rounds of days the morning did
    not run are recorded first and marked missed with the rest (no list for a past day).
    `rounds`: the day's `day_rounds`, when the caller computed them (for the draw)."""
    backfilled = await backfill(uow, day, tz, now)
    missed = await uow.plans.mark_missed(day)
    added = await expand_day(uow, day, tz, now, rounds)
    added += await add_occurrences(uow, day, [(d.site_id, d.kind, d.task_id) for d in drawn],
                                   now)
    assigned, unassigned = await assign_day(uow, day, now)
    lists = await queue_lists(uow, day, default_lang)
    return Morning(missed, added, assigned, unassigned, lists, backfilled)


def _list_rows(rows: Iterable[OccurrenceRow]) -> list[ListRow]:
    return [ListRow(r.site_id, r.site_name, r.site_name_en, r.kind, r.plan, r.status, r.id,
                    r.task_id, r.task_title, r.task_title_en)
            for r in rows]


# ---- ticking off -----------------------------------------------------------------------------


async def _to_tick(uow: UnitOfWork, site_id: int, today: dt.date, *, lock: bool = False
                   ) -> tuple[list[PlanOccurrence], str]:
    """What an inspection submitted at `site_id` today ticks off, and as what: today's
    occurrences there (done); if none is due today, the latest not done in the last week
    (late); else nothing. `lock`: the rows are locked for the tick (a plan paused meanwhile
    deletes its rounds not done: either the tick waits and does not see them, or the pause
    waits and finds them done)."""
    pending = await uow.plans.open_at_site(site_id, today - dt.timedelta(days=LATE_WITHIN_DAYS),
                                           today, lock=lock)
    todays = [o for o in pending if o.day == today]
    if todays:
        return todays, DONE
    if pending:
        latest = pending[0].day
        return [o for o in pending if o.day == latest], LATE
    return [], DONE


async def tick(uow: UnitOfWork, site_id: int, inspection_id: int, now: dt.datetime,
               tz: ZoneInfo) -> list[PlanOccurrence]:
    """An inspection at `site_id` was submitted: tick off what it fulfils (`_to_tick`)."""
    chosen, status = await _to_tick(uow, site_id, now.astimezone(tz).date(), lock=True)
    for occ in chosen:
        occ.status = status
        occ.inspection_id = inspection_id
        occ.done_at = now
    return chosen


async def tick_off(uow: UnitOfWork, site_id: int, inspection_id: int, now: dt.datetime,
                   tz: ZoneInfo) -> int:
    """`tick`: how many were ticked."""
    return len(await tick(uow, site_id, inspection_id, now, tz))


async def refresh_lists(uow: UnitOfWork, ticked: Iterable[PlanOccurrence], inspection_id: int,
                        default_lang: str) -> int:
    """The morning lists that named these occurrences show their ticks: a list still waiting
    in the outbox is rewritten, a delivered one is edited (through the outbox, after the
    commit). Lists sent by /today are not tracked; their buttons stay valid (a press on a
    site done says so). How many lists were touched."""
    return await _redraw_lists(
        uow, {(o.day, o.inspector_id) for o in ticked if o.inspector_id is not None},
        lambda day, who: dedup_key("plans_tick", day.isoformat(), who, inspection_id),
        default_lang)


async def _redraw_lists(uow: UnitOfWork, wanted: set[tuple[dt.date, int]],
                        edit_key: Callable[[dt.date, int], str], default_lang: str) -> int:
    """The morning lists of these (day, inspector) drawn again from the day's occurrences:
    rewritten while queued, else edited through the outbox under `edit_key`."""
    keys = {dedup_key(PLANS_JOB, day.isoformat(), person_id): (day, person_id)
            for day, person_id in wanted}
    # Locked: the outbox records a list as sent under the same lock (bot/telegram/outbox.py),
    # so a list is either still pending here (rewritten; if its send is in flight, the
    # outbox follows it with an edit) or sent with its message id (edited).
    sent = await uow.outbox.by_keys(keys, lock=True)
    if not sent:
        return 0
    await uow.flush()  # the ticks (or withdrawals), for the lists read below
    names = await plan_names(uow)
    people = await uow.plans.people(keys[key][1] for key in sent)
    touched = 0
    for key, row in sent.items():
        day, person_id = keys[key]
        person = people.get(person_id)
        if person is None or person.blocked:
            continue
        params = _list_params(person, day, await uow.plans.of_day(day, inspector_id=person_id),
                              names, default_lang)
        if row.status == "pending":
            row.params = params
        elif row.status == "sent" and row.sent_message_id is not None:
            await uow.outbox.enqueue(
                edit_key(day, person_id), person_id, "editMessageText",
                {"message_id": row.sent_message_id, **params}, purpose="plans")
        else:
            continue
        touched += 1
    return touched


async def on_inspection_submitted(uow: UnitOfWork, *, tz: ZoneInfo, site_id: int,
                                  inspection_id: int, now: dt.datetime,
                                  default_lang: str = "zh-hans", **_: object) -> None:
    """The "inspection.submitted" subscriber (bot/app.py wires it): the ticks, and the lists
    that show them."""
    ticked = await tick(uow, site_id, inspection_id, now, tz)
    await refresh_lists(uow, ticked, inspection_id, default_lang)


# ---- a press on a list's button --------------------------------------------------------------


@dataclass(frozen=True)
class PlannedPress:
    """A press on a site of an inspector's list: the occurrence, and what an inspection
    started now would tick: DONE or LATE (this occurrence), TODAY (today's occurrence at the
    site, not this one), LATER (a later missed occurrence at the site, on `counts_for`: the
    latest missed is the one ticked late), NOTHING (this one is more than a week old), AGAIN
    (it is done already)."""

    occurrence: OccurrenceRow
    counts_as: str
    counts_for: dt.date | None = None
    # A re-check's checklist item as the task's inspection knew it (its pinned standard
    # version: a renumbered standard must not name another item), (zh, en); None without one.
    item: tuple[str, str] | None = None
    # TODAY or LATER on another inspector's list: their name (the inspection counts for their
    # occurrence; this one stays missed), "" when on nobody's list yet. None when it is the
    # presser's own.
    for_whom: str | None = None


async def planned_press(uow: UnitOfWork, person: Person, occurrence_id: int, today: dt.date
                        ) -> PlannedPress:
    """What a press on a list's button is about. Only the inspector the list was sent to
    may use it: a spot check is unannounced, and a button that told anyone else what was
    drawn would tell it (an unknown or forged id is an expired button)."""
    require(role_of(person), Role.INSPECTOR)
    occ = await uow.plans.occurrence(occurrence_id)
    if occ is None:
        raise StaleAction(EXPIRED)
    if occ.inspector_id != person.id:
        raise NotAllowed("plans.press.not_yours")
    chosen, status = await _to_tick(uow, occ.site_id, today)
    item = await _recheck_item(uow, occ.task_id) if occ.kind == RECHECK else None
    if occ.status not in (DUE, MISSED):
        return PlannedPress(occ, AGAIN, item=item)
    if any(o.id == occ.id for o in chosen):
        return PlannedPress(occ, status, item=item)
    # Whose occurrence it counts for, when none of those ticked is the presser's own: a
    # colleague's (named), or nobody's yet (unassigned: "").
    whom = None
    if chosen and not any(o.inspector_id == person.id for o in chosen):
        others = [o.inspector_id for o in chosen if o.inspector_id is not None]
        whom = ((await uow.people.first_names(others[:1])).get(others[0]) or "—"
                if others else "")
    if chosen and status == DONE:
        return PlannedPress(occ, TODAY, item=item, for_whom=whom)
    if chosen:
        return PlannedPress(occ, LATER, chosen[0].day, item, for_whom=whom)
    return PlannedPress(occ, NOTHING, item=item)


async def _recheck_item(uow: UnitOfWork, task_id: int | None) -> tuple[str, str] | None:
    """A re-checked task's item, "number text" in zh and en, from the standard version its
    inspection was made with (None: no task, no item, or a task not from an inspection)."""
    task = await uow.tasks.get(task_id) if task_id is not None else None
    if task is None or not task.item_key or task.inspection_id is None:
        return None
    inspection = await uow.inspections.get(task.inspection_id)
    if inspection is None:
        return None
    try:
        found = (await standard_of(uow, inspection.standard_hash)).item(task.item_key)
    except (KeyError, DomainError):
        return None
    return f"{found.number} {found.text.zh}", f"{found.number} {found.text.en}"


# ---- what people see -------------------------------------------------------------------------


async def today_screen(uow: UnitOfWork, person: Person, day: dt.date, lang: str
                       ) -> Screen:
    """/today: this inspector's list for the day, with what is done ticked (also an older
    day's list, redrawn when one of its buttons is pressed)."""
    require(role_of(person), Role.INSPECTOR)
    rows = await uow.plans.of_day(day, inspector_id=person.id)
    return day_list(lang, day, _list_rows(rows), await plan_names(uow))


async def plans_overview(uow: UnitOfWork, person: Person, day: dt.date, lang: str,
                         type_names: Mapping[str, str] | None = None) -> Screen:
    """/plans for admins: every plan, paused or not, its recurrence and target in words
    (`type_names`: the site types' names, from the standards), and today's occurrences
    done / due."""
    require(role_of(person), Role.ADMIN)
    rows = await uow.plans.of_day(day)
    counts: dict[str, list[int]] = {}
    for r in rows:
        c = counts.setdefault(r.plan if r.kind == ROUND else "", [0, 0])
        c[1] += 1
        c[0] += r.status in (DONE, LATE)
    stored_plans = await uow.plans.plans()
    parsed = [(s, Plan.from_json(s.code, s.body)) for s in stored_plans]
    tree = await uow.stats.unit_tree()
    units = {n.code: n.name(lang) for n in tree.nodes.values()}
    sites = {code: local_name(lang, zh, en) for code, (zh, en) in (await uow.plans.site_names(
        c for _, p in parsed for c in p.target.sites)).items()}
    names = type_names or {}
    lines = []
    for stored, plan in parsed:
        done, due = counts.get(plan.code, [0, 0])
        target = target_words(lang, [names.get(x, x) for x in plan.target.site_types],
                              [sites.get(x, x) for x in plan.target.sites],
                              [units.get(x, x) for x in plan.target.units])
        lines.append(PlanLine(plan.code, plan.name, plan.rule, target, stored.paused, due,
                              done, plan.start))
    draw = counts.get("", [0, 0])
    unassigned = sum(1 for r in rows if r.inspector_id is None and r.status == DUE)
    return plans_screen(lang, day, lines, (draw[0], draw[1]), unassigned,
                        await uow.plans.waiting_inspectors())


async def missed_for_digest(uow: UnitOfWork, day: dt.date, lang: str,
                            tz: ZoneInfo | None = None,
                            unreported_from: dt.date | None = None) -> list[str]:
    """The digest's lines on `day`'s occurrences not done on that day (missed, or done late
    since); a line saying none were when all were done, nothing when nothing was due. With
    `unreported_from` (the first day no digest told of: the bot was down, or the clock
    jumped), a line first counts the rounds not done on the days from then to the day before
    `day`, so they are not lost from sight."""
    earlier: list[str] = []
    if unreported_from is not None and unreported_from < day:
        last = day - dt.timedelta(days=1)
        count = await uow.plans.not_done_between(unreported_from, last)
        if count:
            earlier.append(t(lang, "plans.digest.unreported", count=count,
                             first=format_date(lang, unreported_from),
                             last=format_date(lang, last)))
    everything = await uow.plans.of_day(day)
    if not everything:
        return earlier  # no plans, no draw: nothing more to say
    rows = [r for r in everything if r.status != DONE]
    names = await plan_names(uow)
    who = await uow.people.first_names(r.inspector_id for r in rows
                                       if r.inspector_id is not None)
    def whose(r: OccurrenceRow) -> str | None:
        if r.inspector_id is not None:
            return who.get(r.inspector_id)
        if tz and r.created_at and _aware(r.created_at).astimezone(tz).date() > day:
            return t(lang, "plans.digest.not_sent")  # its morning did not run: no list
        return None

    missed = [MissedRow(r.site_name, r.site_name_en, r.kind, r.plan, whose(r)) for r in rows]
    return earlier + missed_lines(lang, missed, names) + waiting_lines(
        lang, await uow.plans.waiting_inspectors())


def _aware(at: dt.datetime) -> dt.datetime:
    """A stored time (SQLite gives it back naive, in UTC) as an aware one."""
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
