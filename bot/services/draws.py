"""The day's random spot checks (随机抽查点位): draw once, store, commit and reveal the seed.

* `day_draw(uow, day, cfg, now)`: the day's draw, made once and stored (the seed, the
  candidates with their weights, the sites drawn); a second call returns the stored draw. The
  caller commits. The list is for the inspectors who must go (the daily lists), never for the
  units' groups: nothing here queues a message about the sites drawn.
* `commit_and_reveal(uow, today, now, chats, lang, tz=...)`: the scheduled job's work on day
  T at draws.yaml's announce_time: the seed of every day before T not revealed yet (T-1, and
  any the bot missed while down) is revealed to the campaign office's group with the sites
  drawn and whether its hash was told before the day; the seed of T+1 is made (if not yet)
  and its SHA-256 told there.
* `recheck_relapses(uow, site_id, day)`: the closed tasks a re-check drawn for the site is
  for, by item; a failed re-check of that item is a relapse (bot/services/inspections.py).

Strata. A site's sub-district is the nearest unit of kind "subdistrict" at or above its unit.
A site under no sub-district (the commerce bureau's liaison groups of the demo city) is drawn
with the other sites of the department just below the top of the unit tree, as if that
department were a sub-district: its stratum is "-<department code>" (the commerce bureau's
malls and hotels are then drawn among themselves, N a day, like a sub-district's).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import secrets
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.domain.draw import (
    NO_SUBDISTRICT,
    RECHECK,
    SPOT,
    Candidate,
    Drawn,
    RecheckCandidate,
    RiskFeatures,
    announced_in_advance,
    draw,
    from_snapshot,
    risk_weight,
    seed_digest,
    snapshot,
    snapshot_digest,
)
from bot.domain.draws_config import DrawConfig
from bot.render.draws import DrawnSite, commit_text, reveal_text
from db.models import Draw, DrawEntry
from db.outbox_keys import dedup_key
from db.repositories.draws import Risks
from db.repositories.sites import distance_m
from db.repositories.stats import UnitTree
from db.uow import UnitOfWork

SUBDISTRICT = "subdistrict"
# A re-check drawn on day D may be done late (the daily lists allow it): the inspection at
# the site within this many days still counts as the re-check.
RECHECK_GRACE_DAYS = 7


def stratum_of(tree: UnitTree, unit_id: int) -> str:
    """The sub-district's code above (or at) the unit, else "-<top department's code>"."""
    chain = [unit_id, *tree.ancestors(unit_id)]
    for uid in chain:
        node = tree.nodes.get(uid)
        if node is not None and node.kind == SUBDISTRICT:
            return node.code
    # chain[-1] is the root (the office); the unit just below it is the department.
    top = chain[-2] if len(chain) >= 2 else chain[-1]
    node = tree.nodes.get(top)
    return NO_SUBDISTRICT + (node.code if node is not None else str(top))


def nearby_counts(risks: Risks, radius_m: float) -> dict[int, int]:
    """Reports with a place (and no site named) within `radius_m` of each site."""
    if not risks.report_points or radius_m <= 0:
        return {}
    deg = radius_m / 111_000  # a latitude degree; a cheap box before the distance
    out: dict[int, int] = {}
    points = sorted(risks.report_points)
    for s in risks.sites:
        if s.latitude is None or s.longitude is None:
            continue
        lo = bisect.bisect_left(points, (s.latitude - deg, -math.inf))
        hi = bisect.bisect_right(points, (s.latitude + deg, math.inf))
        n = sum(1 for lat, lon in points[lo:hi]
                if distance_m(s.latitude, s.longitude, lat, lon) <= radius_m)
        if n:
            out[s.site_id] = n
    return out


async def candidates(uow: UnitOfWork, cfg: DrawConfig, now: dt.datetime
                     ) -> tuple[list[Candidate], list[RecheckCandidate]]:
    """Every site with its stratum and risk weight, and the recently closed tasks."""
    tree = await uow.stats.unit_tree()
    repo = uow.draws
    risks = await repo.site_risks(now, now - dt.timedelta(days=cfg.window_days))
    nearby = nearby_counts(risks, cfg.report_radius_m)
    sites: list[Candidate] = []
    for s in risks.sites:
        idle = None if s.last_inspected is None else max(0, (now - s.last_inspected).days)
        features = RiskFeatures(s.failed_items, s.relapses, s.open_tasks, s.overdue_tasks,
                                idle, s.reports + nearby.get(s.site_id, 0))
        sites.append(Candidate(s.site_id, s.code, stratum_of(tree, s.unit_id), s.site_type,
                               risk_weight(features, cfg.weights), features))
    by_id = {c.site_id: c for c in sites}
    closed = await repo.closed_since(now - dt.timedelta(days=cfg.recheck_closed_days))
    rechecks = [RecheckCandidate(c.task_id, c.site_id, by_id[c.site_id].code,
                                 by_id[c.site_id].subdistrict, by_id[c.site_id].site_type)
                for c in closed if c.site_id in by_id]
    return sites, rechecks


async def ensure_seed(uow: UnitOfWork, day: dt.date, now: dt.datetime,
                      make_seed: Callable[[int], bytes] = secrets.token_bytes) -> Draw:
    """The day's draw row: its seed made now if it has none yet (32 random bytes)."""
    row = await uow.draws.get(day.isoformat())
    if row is not None:
        return row
    seed = make_seed(32)
    return await uow.draws.add_seed(day.isoformat(), seed.hex(), seed_digest(seed), now)


def stored(entries: Iterable[tuple[DrawEntry, str]]) -> list[Drawn]:
    return [Drawn(e.site_id, code, RECHECK if e.kind == RECHECK else SPOT, e.stratum, e.weight,
                  e.task_id) for e, code in entries]


async def day_draw(uow: UnitOfWork, day: dt.date, cfg: DrawConfig, now: dt.datetime,
                   *, make_seed: Callable[[int], bytes] = secrets.token_bytes,
                   due_anyway: AbstractSet[int] = frozenset()) -> list[Drawn]:
    """The day's draw: made at the first call (from the seed committed the day before, or one
    made now when none was) and stored; every later call returns what was stored. Sites in
    `due_anyway` (a plan's round is due there that day) are no candidates for a spot check:
    they are inspected that day anyway, and a spot check there would send a second
    inspector. They are left out before the candidates are stored, so a re-run from the
    stored candidates gives the same sites. The caller commits."""
    row = await ensure_seed(uow, day, now, make_seed)
    repo = uow.draws
    if row.drawn_at is None and await repo.claim_drawing(row.day, now):
        sites, rechecks = await candidates(uow, cfg, now)
        sites = [c for c in sites if c.site_id not in due_anyway]
        snap = snapshot(sites, rechecks, cfg.params)
        drawn = draw(bytes.fromhex(row.seed), day, sites, rechecks, cfg.params)
        row.drawn_at = now
        row.snapshot = snap
        row.snapshot_hash = snapshot_digest(snap)
        uow.add(*(DrawEntry(day=row.day, rank=i, site_id=d.site_id, kind=d.kind,
                            task_id=d.task_id, stratum=d.stratum, weight=d.weight)
                  for i, d in enumerate(drawn)))
        await uow.flush()
        return drawn
    return stored(await repo.entries(row.day))


@dataclass(frozen=True)
class Rerun:
    """`wenming draw`: the stored draw re-run from its stored candidates."""

    day: dt.date
    seed_ok: bool  # sha256(seed) is the hash stored for the day
    announced_at: dt.datetime | None  # when that hash was told to the office's group
    announced_before: bool  # ... and that was before the day began (local)
    revealed: bool
    drawn: list[Drawn]  # from the re-run
    matches: bool  # the re-run gives the stored sites


async def rerun(uow: UnitOfWork, day: dt.date, tz: ZoneInfo,
                seed: bytes | None = None) -> Rerun | None:
    """Re-run the day's stored draw from its stored candidates: with the stored seed, or
    with `seed` (a revealed one, given by hand). None when no draw was made that day."""
    row = await uow.draws.get(day.isoformat())
    if row is None or row.snapshot is None:
        return None
    use = bytes.fromhex(row.seed) if seed is None else seed
    sites, rechecks, params = from_snapshot(row.snapshot)
    again = draw(use, day, sites, rechecks, params)
    kept = stored(await uow.draws.entries(row.day))
    return Rerun(day, seed_digest(use) == row.seed_hash, row.announced_at,
                 announced_in_advance(row.announced_at, day, tz), row.revealed_at is not None,
                 again, again == kept)


async def _tell(uow: UnitOfWork, kind: str, day: str, chats: list[int], text: str) -> int:
    queued = 0
    for chat in chats:
        if await uow.outbox.enqueue(dedup_key(kind, day, chat), chat, "sendMessage",
                                    {"text": text, "parse_mode": "HTML"}, purpose="draw"):
            queued += 1
    return queued


async def commit_and_reveal(uow: UnitOfWork, today: dt.date, now: dt.datetime,
                            chats: list[int], lang: str, *, tz: ZoneInfo,
                            announce_time: dt.time = dt.time(20, 0),
                            make_seed: Callable[[int], bytes] = secrets.token_bytes) -> int:
    """Reveal to the campaign office's group the seed of every past day not revealed yet
    (not only yesterday's: after the bot was down or the clock jumped, each is told once),
    then tell tomorrow's seed hash; the number of messages queued (each once: the outbox's
    dedup keys). `today` is the job's day; a run late (the clock jumped) works from the
    local date of `now`, so a hash is never told after its day began."""
    queued = 0
    local_today = max(today, now.astimezone(tz).date())
    for done in await uow.draws.unrevealed_before(local_today.isoformat()):
        queued += await _tell(uow, "draw_reveal", done.day, chats,
                              await _reveal_text(uow, done, tz, lang))
        await uow.draws.mark(done.day, "revealed_at", now)
    tomorrow = local_today + dt.timedelta(days=1)
    row = await ensure_seed(uow, tomorrow, now, make_seed)
    if row.drawn_at is None:  # (a day drawn already is not announced: too late to prove)
        reveal_at = dt.datetime.combine(tomorrow + dt.timedelta(days=1), announce_time)
        text = commit_text(lang, tomorrow, row.seed_hash, reveal_at)
        queued += await _tell(uow, "draw_commit", row.day, chats, text)
        await uow.draws.mark(row.day, "announced_at", now)
    return queued


async def _reveal_text(uow: UnitOfWork, row: Draw, tz: ZoneInfo, lang: str) -> str:
    """The day's seed, whether its hash was told before the day, and the sites drawn (the day
    is over: they are no longer unannounced; this goes to the office's group only)."""
    day = dt.date.fromisoformat(row.day)
    told = row.announced_at.astimezone(tz) if (
        row.announced_at is not None and announced_in_advance(row.announced_at, day, tz)
    ) else None
    sites = None if row.snapshot is None else [
        DrawnSite(kind, name, name_en, task)
        for kind, name, name_en, task in await uow.draws.drawn_sites(row.day)]
    return reveal_text(lang, row.day, row.seed, row.seed_hash, told, row.snapshot_hash, sites)


async def recheck_items(uow: UnitOfWork, site_id: int, day: dt.date) -> dict[str, int]:
    """The closed tasks that re-checks drawn for the site (in the last RECHECK_GRACE_DAYS
    days, not yet done) are for: item key -> task id."""
    first = (day - dt.timedelta(days=RECHECK_GRACE_DAYS)).isoformat()
    out: dict[str, int] = {}
    for entry, item_key in await uow.draws.open_rechecks(site_id, first, day.isoformat()):
        if item_key is not None and entry.task_id is not None:
            out.setdefault(item_key, entry.task_id)
    return out


async def mark_done(uow: UnitOfWork, site_id: int, day: dt.date, inspection_id: int) -> int:
    """The drawn entries at the site (in the last RECHECK_GRACE_DAYS days) an inspection
    submitted there did; how many. (The daily lists tick them off.)"""
    first = (day - dt.timedelta(days=RECHECK_GRACE_DAYS)).isoformat()
    entries = await uow.draws.undone_entries(site_id, first, day.isoformat())
    for e in entries:
        e.inspection_id = inspection_id
    return len(entries)
