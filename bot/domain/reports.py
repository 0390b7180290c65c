"""Residents' reports (随手拍): categories, routing rules, tickets, duplicates, rate limits.

Pure logic: no Telegram, no SQLAlchemy. The rules come from reporting.yaml, validated
here with errors that name the file, the line, the category and the problem.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Final

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.domain.yamlfile import YamlFileError, YamlReader, compose, line_of, read_text

log = logging.getLogger(__name__)

TICKET_RE: Final = re.compile(r"^R-(\d{4})-(\d{6,})$", re.IGNORECASE)
CODE_RE: Final = re.compile(r"^[a-z][a-z0-9_]*$")
SITE: Final = "site"
AREA: Final = "area"

# A report's life after its draft. "open" ones may still be followed (+1) and re-routed.
DRAFT = "draft"
SUBMITTED = "submitted"
ACCEPTED = "accepted"
FIXED = "fixed"
REJECTED = "rejected"
DUPLICATE = "duplicate"
CONFIRMED = "confirmed"
CLOSED = "closed"
# A draft the resident dropped (cancelled, or followed an earlier report instead). The row
# stays, so its id is never given to a later draft: a button of the dropped draft stays stale.
CANCELLED = "cancelled"
OPEN_STATUSES: Final = (SUBMITTED, ACCEPTED, FIXED)
STATUSES: Final = (DRAFT, SUBMITTED, ACCEPTED, FIXED, REJECTED, DUPLICATE, CONFIRMED, CLOSED,
                   CANCELLED)

# The draft's steps, in order.
STEP_PHOTOS = "photos"
STEP_PLACE = "place"
STEP_PLACE_PICK = "place_pick"  # a typed address matched known sites: which one, or as typed
STEP_DESCRIPTION = "description"
STEP_CONFIRM = "confirm"
STEPS: Final = (STEP_PHOTOS, STEP_PLACE, STEP_PLACE_PICK, STEP_DESCRIPTION, STEP_CONFIRM)



class PlaceChoice(StrEnum):
    """The resident's answers to "where is it?" given by a button."""

    SITE = "site"  # a known site from a list
    TYPED = "typed"  # the address as typed, none of the sites offered for it
    CHANGE = "change"  # ask the place again


# Why a unit may reject a report (the wording is in the catalogue: reports.reject.<code>).
REJECT_REASONS: Final = ("unclear", "not_a_problem", "already_fixed", "not_public", "outside")
MAX_DESCRIPTION: Final = 500
MAX_ADDRESS: Final = 200


class ReportConfigError(YamlFileError):
    """One problem in reporting.yaml; ``str()`` reads ``file:line: category X: problem``."""

    field_prefix = "category "

    @property
    def category(self) -> str | None:
        return self.field


@dataclass(frozen=True)
class Category:
    code: str
    name_zh: str
    name_en: str
    deadline_days: int
    duplicate_radius_m: float
    site_radius_m: float
    route: tuple[str, ...]
    seed: str = ""

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh


@dataclass(frozen=True)
class ReportingConfig:
    categories: tuple[Category, ...]
    fallback_unit: str
    area_site_types: tuple[str, ...]
    area_radius_m: float
    # A shared location farther than this from every known site is "outside the city": the
    # resident is warned (and may correct it) before submitting. Default: area_radius_m × 10.
    outside_radius_m: float = 15000.0
    # A shared location this close to a known site is at that site: the site's unit takes
    # the report whatever its category (as when the site is picked or named).
    at_site_radius_m: float = 30.0
    max_photos: int = 5
    reports_per_hour: int = 10
    # After a verified fix closes the task, the reporter may say it is still there (which
    # reopens the task as rework) for this many days.
    dispute_days: int = 7
    duplicate_window_days: int = 30
    album_wait_seconds: float = 1.5

    def category(self, code: str | None) -> Category | None:
        return next((c for c in self.categories if c.code == code), None)

    def unit_codes(self) -> set[str]:
        """Every unit the rules name, to check against the organisation."""
        codes = {self.fallback_unit}
        for c in self.categories:
            codes.update(step for step in c.route if step not in (SITE, AREA))
        return codes


# ---- loading ----------------------------------------------------------------------------------


class _Reader(YamlReader[ReportConfigError]):
    def __init__(self, file: str) -> None:
        super().__init__(file, ReportConfigError)

    def text(self, node: Node | None, cat: str | None, what: str) -> str | None:
        if node is None:
            return None
        if not isinstance(node, ScalarNode) or not str(node.value).strip():
            self.problem(node, cat, f"{what} must be non-empty text")
            return None
        return str(node.value).strip()

    def at_least(self, node: Node | None, cat: str | None, what: str, *, minimum: float,
                 integer: bool = False) -> float | None:
        if node is None:
            return None
        value = self.whole(node, cat, what) if integer else self.number(node, cat, what)
        if value is None:
            return None
        if value < minimum:
            self.problem(node, cat, f"{what} must be at least {minimum:g}, not {value:g}")
            return None
        return value

    def codes(self, node: Node | None, cat: str | None, what: str) -> tuple[str, ...]:
        if node is None:
            return ()
        if not isinstance(node, SequenceNode) or not node.value:
            self.problem(node, cat, f"{what} must be a non-empty list")
            return ()
        out = []
        for child in node.value:
            code = self.text(child, cat, f"an entry of {what}")
            if code is None:
                continue
            if not CODE_RE.match(code):
                self.problem(child, cat, f"{code!r} in {what} is not a code ([a-z][a-z0-9_]*)")
            elif code in out:
                self.problem(child, cat, f"{code!r} appears twice in {what}")
            else:
                out.append(code)
        return tuple(out)


_TOP = ("schema", "fallback_unit", "area_site_types", "area_radius_m", "outside_radius_m",
        "at_site_radius_m", "limits", "categories")
OUTSIDE_FACTOR: Final = 10  # outside_radius_m, when not given: area_radius_m × this
_LIMITS = ("max_photos", "reports_per_hour", "dispute_days", "duplicate_window_days",
           "album_wait_seconds")
# limits.confirm_days was renamed dispute_days (issue 11 item 6): still read, with a warning.
_RENAMED = {"confirm_days": "dispute_days"}
_CATEGORY = ("code", "name", "seed", "deadline_days", "duplicate_radius_m", "site_radius_m",
             "route")
_CATEGORY_REQUIRED = ("code", "name", "deadline_days", "duplicate_radius_m", "route")


def parse_reporting(text: str, file: str = "reporting.yaml") -> ReportingConfig:
    """Validate the reporting rules; raise the first problem (all are in `check_reporting`)."""
    config, errors = _parse(text, file)
    if errors:
        raise errors[0]
    assert config is not None
    return config


def check_reporting(text: str, file: str = "reporting.yaml") -> list[ReportConfigError]:
    return _parse(text, file)[1]


def load_reporting(path: Path) -> ReportingConfig:
    """The city's reporting file; Settings.reporting_file says which one."""
    return parse_reporting(read_text(path, ReportConfigError), str(path))


def _parse(text: str, file: str) -> tuple[ReportingConfig | None, list[ReportConfigError]]:
    r = _Reader(file)
    try:
        root = compose(text, file, ReportConfigError)
    except ReportConfigError as exc:
        return None, [exc]
    if root is None:
        return None, [ReportConfigError(file, None, None, "the file is empty")]
    top = r.fields(root, None, "the file", _TOP, ("schema", "fallback_unit", "categories"))
    if top is None:
        return None, r.errors
    if "schema" in top and getattr(top["schema"], "value", None) != "1":
        r.problem(top["schema"], None, "schema must be 1")
    fallback = r.text(top.get("fallback_unit"), None, "fallback_unit") or ""
    area_types = r.codes(top.get("area_site_types"), None, "area_site_types") or (
        "community", "subdistrict_office")
    area_radius = r.at_least(top.get("area_radius_m"), None, "area_radius_m", minimum=0)
    outside = r.at_least(top.get("outside_radius_m"), None, "outside_radius_m", minimum=1)
    at_site = r.at_least(top.get("at_site_radius_m"), None, "at_site_radius_m", minimum=0)
    limits: dict[str, float] = {}
    if "limits" in top:
        lim = r.fields(top["limits"], None, "limits", (*_LIMITS, *_RENAMED))
        for key, node in (lim or {}).items():
            seconds = key == "album_wait_seconds"
            value = r.at_least(node, None, f"limits.{key}", minimum=0 if seconds else 1,
                               integer=not seconds)
            if value is not None and key in _RENAMED:
                new = _RENAMED[key]
                if new in (lim or {}):
                    r.problem(node, None, f"limits.{key} is the old name of limits.{new}: "
                                          "give only one")
                    continue
                log.warning("%s:%d: limits.%s is deprecated, it is now called limits.%s",
                            file, line_of(node), key, new)
                key = new
            if value is not None:
                limits[key] = value
        if limits.get("max_photos", 5) > 10:
            r.problem(top["limits"], None,
                      "limits.max_photos must be at most 10 (an album's size)")
    categories: list[Category] = []
    cats = top.get("categories")
    if cats is not None and (not isinstance(cats, SequenceNode) or not cats.value):
        r.problem(cats, None, "categories must be a non-empty list")
    elif isinstance(cats, SequenceNode):
        for node in cats.value:
            cat = _category(r, node, [c.code for c in categories])
            if cat is not None:
                categories.append(cat)
        if categories and categories[-1].code != "other" and all(
                c.code != "other" for c in categories):
            r.problem(cats, None, "there must be a category 'other'")
    if r.errors:
        return None, r.errors
    return ReportingConfig(
        categories=tuple(categories), fallback_unit=fallback, area_site_types=area_types,
        area_radius_m=1500.0 if area_radius is None else area_radius,
        outside_radius_m=outside if outside is not None else OUTSIDE_FACTOR * (
            area_radius or 1500.0),
        at_site_radius_m=30.0 if at_site is None else at_site,
        max_photos=int(limits.get("max_photos", 5)),
        reports_per_hour=int(limits.get("reports_per_hour", 10)),
        dispute_days=int(limits.get("dispute_days", 7)),
        duplicate_window_days=int(limits.get("duplicate_window_days", 30)),
        album_wait_seconds=float(limits.get("album_wait_seconds", 1.5)),
    ), r.errors


def _category(r: _Reader, node: Node, seen: list[str]) -> Category | None:
    code_node = None
    if isinstance(node, MappingNode):
        code_node = next((v for k, v in node.value if getattr(k, "value", None) == "code"), None)
    label = str(code_node.value) if isinstance(code_node, ScalarNode) else None
    fields = r.fields(node, label, "a category", _CATEGORY, _CATEGORY_REQUIRED, named=False)
    if fields is None:
        return None
    before = len(r.errors)
    code = r.text(fields.get("code"), label, "code") or ""
    if code and not CODE_RE.match(code):
        r.problem(fields["code"], label, "code must match [a-z][a-z0-9_]*")
    if code in seen:
        r.problem(fields["code"], label, "this code is used by an earlier category")
    zh = en = None
    if "name" in fields:
        name = r.fields(fields["name"], label, "name", ("zh", "en"), ("zh", "en"))
        if name is not None:
            zh = r.text(name.get("zh"), label, "name.zh")
            en = r.text(name.get("en"), label, "name.en")
    deadline = r.at_least(fields.get("deadline_days"), label, "deadline_days", minimum=1,
                        integer=True)
    dup = r.at_least(fields.get("duplicate_radius_m"), label, "duplicate_radius_m", minimum=0)
    site_r = r.at_least(fields.get("site_radius_m"), label, "site_radius_m", minimum=0)
    route = r.codes(fields.get("route"), label, "route")
    seed = r.text(fields.get("seed"), label, "seed") or ""
    if len(r.errors) > before or zh is None or en is None or deadline is None or dup is None:
        return None
    return Category(code, zh, en, int(deadline), dup, 0.0 if site_r is None else site_r, route,
                    seed)


# ---- tickets ----------------------------------------------------------------------------------


def counter_name(year: int) -> str:
    return f"report:{year}"


def ticket_number(year: int, n: int) -> str:
    """The number a resident quotes: R-2026-000123."""
    return f"R-{year}-{n:06d}"


def parse_ticket(text: str) -> str | None:
    """A ticket as typed (any case, surrounding spaces), normalised; None if it is not one."""
    m = TICKET_RE.match(text.strip())
    return None if m is None else f"R-{m.group(1)}-{m.group(2)}"


# ---- routing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """What routing knows about where a report is.

    `site_unit`: the unit of the site the report is at: picked from a list, named in the
    typed address (`named_site`), or within `at_site_radius_m` of the shared location.
    `near_sites`: units of known sites with their distance in metres. `areas`: for each
    community or sub-district office site near the point, its unit and that unit's ancestors
    (the sub-district above a community also holds the point), with the distance.
    """

    site_unit: int | None = None
    near_sites: tuple[tuple[int, float], ...] = ()
    areas: tuple[tuple[tuple[int, ...], float], ...] = ()


@dataclass(frozen=True)
class Route:
    unit_id: int
    rule: str  # site | area | unit | fallback


def route(
    category: Category,
    place: Place,
    *,
    units_by_code: Mapping[str, int],
    has_group: Callable[[int], bool],
    fallback_unit: int,
    area_radius_m: float,
) -> Route:
    """The responsible unit: the unit of the site the report is at, if it has a group (a
    site's unit answers for everything there); else the category's rules in order, the first
    unit with a group wins."""
    if place.site_unit is not None and has_group(place.site_unit):
        return Route(place.site_unit, "site")
    for step in category.route:
        if step == SITE:
            for unit_id, dist in sorted(place.near_sites, key=lambda p: p[1]):
                if dist <= category.site_radius_m and has_group(unit_id):
                    return Route(unit_id, "site")
        elif step == AREA:
            for chain, dist in sorted(place.areas, key=lambda p: p[1]):
                if dist > area_radius_m:
                    continue
                for unit_id in chain:
                    if has_group(unit_id):
                        return Route(unit_id, "area")
        else:
            named = units_by_code.get(step)
            if named is not None and has_group(named):
                return Route(named, "unit")
    return Route(fallback_unit, "fallback")


def named_site(address: str, sites: Iterable[tuple[int, str]]) -> int | None:
    """The known site a typed address names ("银泰城北门" names 银泰城): the site whose name
    (two characters at least) the address contains, the longest such name winning
    ("后祁街社区综合文化服务中心" over "后祁街社区"); None when none does, or when two sites of
    that length do (the address does not say which)."""
    def squeeze(text: str) -> str:
        return "".join(text.split()).casefold()

    typed = squeeze(address)
    best: list[tuple[int, int]] = []
    for site_id, name in sites:
        key = squeeze(name)
        if len(key) >= 2 and key in typed:
            best.append((len(key), site_id))
    if not best:
        return None
    longest = max(length for length, _ in best)
    found = {site_id for length, site_id in best if length == longest}
    return found.pop() if len(found) == 1 else None


# ---- duplicates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DupFacts:
    """What duplicate detection compares: category, point, perceptual hashes of the photos."""

    category: str | None
    latitude: float | None
    longitude: float | None
    phashes: tuple[int, ...]


def same_problem(
    draft: DupFacts, other: DupFacts, *, radius_m: float, max_distance: int,
    distance: Callable[[float, float, float, float], float],
    hamming: Callable[[int, int], int],
) -> bool:
    """The same category within the category's radius, or a near-identical photo."""
    if (draft.category is not None and draft.category == other.category
            and draft.latitude is not None and draft.longitude is not None
            and other.latitude is not None and other.longitude is not None
            and distance(draft.latitude, draft.longitude, other.latitude,
                         other.longitude) <= radius_m):
        return True
    return any(hamming(a, b) <= max_distance for a in draft.phashes for b in other.phashes)


# ---- rate limits ------------------------------------------------------------------------------


def next_allowed(submitted: Iterable[datetime], now: datetime, per_hour: int) -> datetime | None:
    """None when one more report is allowed now; otherwise when the next one will be."""
    window = sorted(t for t in submitted if t > now - timedelta(hours=1))
    if len(window) < per_hour:
        return None
    return window[len(window) - per_hour] + timedelta(hours=1)


def priority_for(followers: int) -> int:
    """Every resident who says "me too" raises the priority by one."""
    return max(0, followers)



def map_link(latitude: float, longitude: float) -> str:
    """A map link that opens in Chinese map apps and browsers (Amap takes lon,lat)."""
    return f"https://uri.amap.com/marker?position={longitude:.6f},{latitude:.6f}"
