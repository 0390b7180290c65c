"""The day's random spot checks (随机抽查点位) and re-checks (复查): a draw anyone can re-run.

Seed line 86: "对城区43个街道实施一日一督查" (one supervision a day in each of the 43
sub-districts), and line 196's fight against "弄虚作假": the draw must be one that no one can
rig or doubt. So it is a pure function of

* a seed (random bytes fixed before the day, its SHA-256 announced the day before, the seed
  itself revealed after the day: commit and reveal),
* the day (ISO date),
* the candidates (sites with their stratum and risk weight; recently closed tasks), stored
  with the draw so a re-run after the data changed still sees what the draw saw,
* the draw's parameters (N per sub-district, the re-check share).

The algorithm, stated so that anyone can re-implement it:

1. **Uniform numbers.** For a label L (a UTF-8 string), ``u(L) = (int(H[:8]) + 0.5) / 2**64``
   where ``H = HMAC-SHA256(seed, L)`` and ``int`` reads the 8 bytes big-endian: a number in
   (0, 1), independent for each label. Labels are built from the day, the stratum and the
   site's or task's code, never from an input's position, so the order in which candidates
   are given does not matter.
2. **Re-checks first.** ``k = ceil(share * n)`` of the ``n`` recently closed tasks (0 when
   n = 0 or share = 0). Each task gets the key ``u("recheck|<day>|<task id>")``; tasks are taken
   in ascending order of key (ties: task id), skipping a task whose site was already taken,
   until k are taken or none is left. (Uniform: every closed task is as likely; its risk is
   that it was closed.)
3. **Spot checks per sub-district**, N each. The sub-district's sites not taken in step 2 are
   grouped by site type. N is shared among the types by largest remainder (Hamilton) in
   proportion to the number of sites of each type; remainders that tie are ordered by
   ``u("alloc|<day>|<sub-district>|<type>")`` (descending), so no type is starved by its name.
   A type is never given more sites than it has; what it cannot take goes to the next type in
   that order. Within a type, weighted sampling without replacement (Efraimidis and Spirakis,
   2006): each site gets the key ``u("spot|<day>|<sub-district>|<type>|<site code>") ** (1/w)``
   (computed as ``ln(u) / w``, the same order), and the sites with the largest keys are taken
   (ties: site code). A site with weight w is therefore w times as likely as a site with
   weight 1 to be the first taken.
4. The result lists re-checks, then spot checks by sub-district, type and key.

No site is drawn twice a day: step 2 skips taken sites, and step 3 leaves them out.

Risk weight (`risk_weight`), from draws.yaml: ``base + failed_item * failed items (recent) +
relapse * relapses (recent) + open_task * open tasks + overdue_task * overdue tasks +
per_idle_day * min(days since the last inspection, max_idle_days) + report * residents'
reports nearby (recent)``; a site never inspected counts max_idle_days.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from bot.domain.periods import at_local

Kind = Literal["spot", "recheck"]
SPOT: Kind = "spot"
RECHECK: Kind = "recheck"
NO_SUBDISTRICT = "-"  # prefix of a stratum outside every sub-district (see db's candidates)


def stratum_label(stratum: str) -> str:
    """A stratum as people read it: "-district_commerce/hotel" (a department under no
    sub-district, drawn as if it were one) is "district_commerce (no sub-district)/hotel".
    Only what is printed: the stratum string itself is part of the draw's labels (HMAC)."""
    if not stratum.startswith(NO_SUBDISTRICT):
        return stratum
    sub, sep, rest = stratum[len(NO_SUBDISTRICT):].partition("/")
    return f"{sub} (no sub-district){sep}{rest}"


def announced_in_advance(announced_at: dt.datetime | None, day: dt.date,
                         tz: ZoneInfo) -> bool:
    """The seed's hash was told before the day began (local): only then does the reveal
    prove the draw was fixed in advance. A hash told late (the bot was down, the clock
    jumped past the announcement) proves nothing."""
    return announced_at is not None and announced_at < at_local(day, dt.time(), tz)


def seed_digest(seed: bytes) -> str:
    """What is announced the day before: the seed's SHA-256, hex."""
    return hashlib.sha256(seed).hexdigest()


def uniform(seed: bytes, label: str) -> float:
    """A number in (0, 1) for `label`: HMAC-SHA256(seed, label), first 8 bytes big-endian."""
    mac = hmac.new(seed, label.encode("utf-8"), hashlib.sha256).digest()
    return (int.from_bytes(mac[:8], "big") + 0.5) / 2.0**64


@dataclass(frozen=True)
class RiskWeights:
    base: float = 1.0
    failed_item: float = 1.0
    relapse: float = 3.0
    open_task: float = 1.0
    overdue_task: float = 2.0
    per_idle_day: float = 0.1
    max_idle_days: int = 60
    report: float = 1.0


@dataclass(frozen=True)
class RiskFeatures:
    failed_items: int = 0
    relapses: int = 0
    open_tasks: int = 0
    overdue_tasks: int = 0
    idle_days: int | None = None  # days since the last inspection; None: never inspected
    reports: int = 0


def risk_weight(f: RiskFeatures, w: RiskWeights) -> float:
    idle = w.max_idle_days if f.idle_days is None else min(f.idle_days, w.max_idle_days)
    value = (w.base + w.failed_item * f.failed_items + w.relapse * f.relapses
             + w.open_task * f.open_tasks + w.overdue_task * f.overdue_tasks
             + w.per_idle_day * idle + w.report * f.reports)
    return round(value, 6)


@dataclass(frozen=True)
class Candidate:
    """A site that may be drawn: `subdistrict` is its stratum's first part (a unit code)."""

    site_id: int
    code: str
    subdistrict: str
    site_type: str
    weight: float
    features: RiskFeatures = field(default_factory=RiskFeatures)


@dataclass(frozen=True)
class RecheckCandidate:
    """A recently closed task whose site may be drawn for a re-check."""

    task_id: int
    site_id: int
    code: str  # the site's code
    subdistrict: str
    site_type: str


@dataclass(frozen=True)
class Drawn:
    site_id: int
    site_code: str
    kind: Kind
    stratum: str  # "<sub-district>/<site type>"
    weight: float
    task_id: int | None = None  # the closed task a re-check is for


@dataclass(frozen=True)
class DrawParams:
    per_subdistrict: int = 2
    recheck_share: float = 0.2


def recheck_count(n: int, share: float) -> int:
    return 0 if n <= 0 or share <= 0 else min(n, math.ceil(share * n - 1e-9))


def allocate(total: int, sizes: dict[str, int], order_key: dict[str, float]) -> dict[str, int]:
    """`total` shared among the groups in proportion to `sizes` (largest remainder; ties by
    `order_key`, larger first), never more than a group's size."""
    total = min(total, sum(sizes.values()))
    whole = sum(sizes.values())
    if total <= 0 or whole == 0:
        return dict.fromkeys(sizes, 0)
    quotas = {k: total * s / whole for k, s in sizes.items()}
    out = {k: min(sizes[k], math.floor(q)) for k, q in quotas.items()}
    order = sorted(sizes, key=lambda k: (-(quotas[k] - math.floor(quotas[k])), -order_key[k], k))
    left = total - sum(out.values())
    while left > 0:
        for k in order:
            if left and out[k] < sizes[k]:
                out[k] += 1
                left -= 1
    return out


def draw(seed: bytes, day: dt.date, candidates: Iterable[Candidate],
         rechecks: Iterable[RecheckCandidate], params: DrawParams) -> list[Drawn]:
    """The day's draw (see the module's docstring for the algorithm)."""
    d = day.isoformat()
    out: list[Drawn] = []
    taken: set[int] = set()
    by_site = {c.site_id: c for c in candidates}
    closed = sorted(rechecks, key=lambda r: r.task_id)
    want = recheck_count(len(closed), params.recheck_share)
    keyed = sorted(closed, key=lambda r: (uniform(seed, f"recheck|{d}|{r.task_id}"), r.task_id))
    for r in keyed:
        if len(out) >= want:
            break
        if r.site_id in taken:
            continue
        taken.add(r.site_id)
        c = by_site.get(r.site_id)
        out.append(Drawn(r.site_id, r.code, RECHECK, f"{r.subdistrict}/{r.site_type}",
                         c.weight if c else 1.0, r.task_id))
    strata: dict[str, dict[str, list[Candidate]]] = defaultdict(lambda: defaultdict(list))
    for c in sorted(by_site.values(), key=lambda c: c.code):
        if c.site_id not in taken:
            strata[c.subdistrict][c.site_type].append(c)
    for sub in sorted(strata):
        types = strata[sub]
        shares = allocate(params.per_subdistrict, {k: len(v) for k, v in types.items()},
                          {k: uniform(seed, f"alloc|{d}|{sub}|{k}") for k in types})
        for site_type in sorted(types):
            k = shares[site_type]
            if not k:
                continue
            keys = sorted(((_es_key(seed, f"spot|{d}|{sub}|{site_type}|{c.code}", c.weight), c)
                           for c in types[site_type]), key=lambda kc: (-kc[0], kc[1].code))
            for _key, c in keys[:k]:
                taken.add(c.site_id)
                out.append(Drawn(c.site_id, c.code, SPOT, f"{sub}/{site_type}", c.weight))
    return out


def _es_key(seed: bytes, label: str, weight: float) -> float:
    """log of u ** (1/w): the same order as Efraimidis-Spirakis' key, without underflow.
    A weight of 0 or less is never drawn while any other site is left."""
    if weight <= 0:
        return -math.inf
    return math.log(uniform(seed, label)) / weight


# ---- the stored snapshot (JSON), so a re-run sees what the draw saw -------------------------

def snapshot(candidates: Sequence[Candidate], rechecks: Sequence[RecheckCandidate],
             params: DrawParams) -> dict[str, object]:
    return {
        "version": 1,
        "params": asdict(params),
        "sites": [{"site_id": c.site_id, "code": c.code, "subdistrict": c.subdistrict,
                   "site_type": c.site_type, "weight": c.weight,
                   "features": asdict(c.features)}
                  for c in sorted(candidates, key=lambda c: c.code)],
        "rechecks": [asdict(r) for r in sorted(rechecks, key=lambda r: r.task_id)],
    }


def from_snapshot(data: dict[str, object]
                  ) -> tuple[list[Candidate], list[RecheckCandidate], DrawParams]:
    """The candidates and parameters stored by `snapshot` (ValueError if it is not one)."""
    try:
        params = DrawParams(**data["params"])  # type: ignore[arg-type]
        sites = [Candidate(int(s["site_id"]), str(s["code"]), str(s["subdistrict"]),
                           str(s["site_type"]), float(s["weight"]),
                           RiskFeatures(**s.get("features", {})))
                 for s in data["sites"]]  # type: ignore[attr-defined]
        rechecks = [RecheckCandidate(**r) for r in data["rechecks"]]  # type: ignore[attr-defined]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a stored draw snapshot: {exc}") from None
    return sites, rechecks, params


def snapshot_digest(data: dict[str, object]) -> str:
    """SHA-256 of the snapshot's canonical JSON: told with the revealed seed, so anyone holding
    the published candidates can check they are the ones drawn from."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
