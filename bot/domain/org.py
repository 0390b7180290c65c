"""The organisation file: units, sites, people and group bindings, parsed and validated.

Pure: stdlib and PyYAML only. The file is composed (not loaded) so every node keeps its line,
and every problem in the file is collected before anything is rejected: an admin fixing an
import wants the whole list at once, not one error per attempt. The format is documented in
``examples/README.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.domain.roles import Role, parse_role
from bot.domain.yamlfile import (
    Fields,
    YamlFileError,
    YamlReader,
    compose,
    is_null,
    line_of,
    read_text,
)

SCHEMA_VERSION = 1

UNIT_KINDS: frozenset[str] = frozenset(
    {"city", "district", "subdistrict", "community", "department", "office", "liaison_group"}
)
# The roles a file may give (a resident needs no entry).
ROLES: frozenset[str] = frozenset(role.key for role in Role if role is not Role.RESIDENT)

# Codes are stable keys that re-imports match on; they also end up in callback data and logs,
# so keep them to a plain slug.
CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")

# Column widths in db/models.py. Checked here so PostgreSQL never rejects a row mid-import
# (SQLite would silently accept it, and the two backends would disagree).
MAX_CODE = 64
MAX_NAME = 200
MAX_ADDRESS = 300
MAX_TITLE = 200

# Telegram ids fit a signed 64-bit column (BigInteger).
_INT64_MAX = 2**63 - 1

_TOP_KEYS = ("schema", "units", "sites", "people", "groups")
_UNIT_KEYS = ("code", "name", "kind", "parent")
_SITE_KEYS = ("code", "name", "type", "address", "location", "unit")
_PERSON_KEYS = ("telegram_id", "name", "role", "unit", "sites")
_GROUP_KEYS = ("chat_id", "title", "unit")
_NAME_KEYS = ("zh", "en")


@dataclass(frozen=True)
class UnitSpec:
    code: str
    name_zh: str
    name_en: str
    kind: str
    parent: str | None
    line: int


@dataclass(frozen=True)
class SiteSpec:
    code: str
    name: str
    site_type: str
    address: str
    latitude: float | None
    longitude: float | None
    unit: str
    line: int
    name_en: str = ""  # "" when the file gives no English name


@dataclass(frozen=True)
class PersonSpec:
    telegram_id: int
    name: str
    role: str
    unit: str | None
    sites: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class GroupSpec:
    chat_id: int
    title: str
    unit: str
    line: int


@dataclass(frozen=True)
class OrgFile:
    source: str
    units: tuple[UnitSpec, ...]
    sites: tuple[SiteSpec, ...]
    people: tuple[PersonSpec, ...]
    groups: tuple[GroupSpec, ...]


class OrgFileError(Exception):
    """The file has problems; each names file:line, the entry and what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = len(problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the organisation file"
        super().__init__(head + ":\n" + "\n".join(problems))


def load_org_file(path: Path, known_site_types: AbstractSet[str]) -> OrgFile:
    """Read, parse and validate an organisation file; raise OrgFileError listing every problem."""
    try:
        text = read_text(path)
    except YamlFileError as exc:
        raise OrgFileError([str(exc)]) from exc
    return parse_org(text, source=str(path), known_site_types=known_site_types)


def parse_org(text: str, *, source: str, known_site_types: AbstractSet[str]) -> OrgFile:
    """Parse an organisation file's text; raise OrgFileError listing every problem."""
    try:
        root = compose(text, source)
    except YamlFileError as exc:
        raise OrgFileError([str(exc)]) from exc
    parser = _Parser(source, known_site_types)
    org = parser.parse(root)
    if parser.problems or org is None:
        raise OrgFileError(parser.problems)
    return org


# --- parsing ------------------------------------------------------------------------------------

T = TypeVar("T")


class _Missing:
    """A field that is absent or invalid; distinct from a valid null."""


_BAD = _Missing()


@dataclass
class _Entry:
    """One list entry: its label for messages, its own node and its fields by key."""

    label: str
    node: Node
    fields: Fields
    # The entry's code, parsed once by _Parser.codes so its problems are reported once.
    code: str | _Missing = _BAD

    def line(self, key: str | None = None) -> int:
        if key is not None and key in self.fields:
            return line_of(self.fields[key])
        return line_of(self.node)


class _Parser(YamlReader[YamlFileError]):
    def __init__(self, source: str, known_site_types: AbstractSet[str]) -> None:
        super().__init__(source, YamlFileError)
        self.source = source
        self.known_site_types = known_site_types

    # -- reporting and node helpers --

    @property
    def problems(self) -> list[str]:
        return [str(error) for error in self.sorted_errors()]

    def scalar(self, node: Node, where: str, what: str) -> object:
        ok, value = self.value(node, where, what)
        return value if ok else _BAD

    def fields_of(
        self, node: Node, where: str, what: str, allowed: Iterable[str]
    ) -> Fields | None:
        """Fields of a map by key, reporting non-map nodes, duplicate and unknown keys."""
        return self.fields(node, where, what, allowed, named=False)

    def entries(
        self, top: Fields, section: str, singular: str,
        allowed: Iterable[str], ident: str,
    ) -> list[_Entry]:
        """The map entries of a top-level list, each labelled by its identifying field."""
        if section not in top:
            return []
        key_node, node = top.key(section), top[section]
        if is_null(node):
            return []  # "people:" with nothing under it is an empty list, not an error
        if not isinstance(node, SequenceNode):
            self.problem(key_node, section, "expected a list of entries (- ...)")
            return []
        result: list[_Entry] = []
        for index, item in enumerate(node.value, start=1):
            label = f"{singular} #{index}"
            if isinstance(item, MappingNode):
                # Label by the identifying field (a code or a Telegram id) when it reads well.
                for k_node, v_node in item.value:
                    if isinstance(k_node, ScalarNode) and k_node.value == ident:
                        if isinstance(v_node, ScalarNode) and v_node.value:
                            shown = repr(v_node.value) if ident == "code" else v_node.value
                            label = f"{singular} {shown}"
                        break
            fields = self.fields_of(item, label, "an entry", allowed)
            if fields is not None:
                result.append(_Entry(label, item, fields))
        return result

    def field(
        self, entry: _Entry, key: str, convert: Callable[[object], T | _Problem],
        *, required: bool = True, default: T | _Missing = _BAD,
    ) -> T | _Missing:
        """One field, converted; `convert` returns the value or a _Problem saying what is wrong."""
        if key not in entry.fields:
            if required:
                self.problem(entry.line(), entry.label, f"missing field '{key}'")
                return _BAD
            return default
        node = entry.fields[key]
        raw = self.scalar(node, entry.label, f"'{key}'")
        if raw is _BAD:
            return _BAD
        result = convert(raw)
        if isinstance(result, _Problem):
            self.problem(node, entry.label, f"'{key}' {result.message}")
            return _BAD
        return result

    def codes(self, entries: list[_Entry], kind: str) -> dict[str, int]:
        """Valid codes of a section with their lines; reports bad and duplicate codes."""
        seen: dict[str, int] = {}
        for entry in entries:
            code = entry.code = self.field(entry, "code", _code)
            if isinstance(code, str):
                if code in seen:
                    self.problem(
                        entry.line("code"), entry.label,
                        f"duplicate {kind} code '{code}' (first at line {seen[code]})",
                    )
                else:
                    seen[code] = entry.line("code")
        return seen

    # -- the document --

    def parse(self, root: Node | None) -> OrgFile | None:
        if root is None:
            self.problem(1, "file", "the file is empty")
            return None
        top = self.fields_of(root, "file", "the file", _TOP_KEYS)
        if top is None:
            return None
        self._check_schema(top, root)

        unit_entries = self.entries(top, "units", "unit", _UNIT_KEYS, "code")
        site_entries = self.entries(top, "sites", "site", _SITE_KEYS, "code")
        person_entries = self.entries(top, "people", "person", _PERSON_KEYS, "telegram_id")
        group_entries = self.entries(top, "groups", "group", _GROUP_KEYS, "chat_id")

        # Codes first, so references may point forward in the file (a parent below its child).
        unit_codes = self.codes(unit_entries, "unit")
        site_codes = self.codes(site_entries, "site")

        units = [self._unit(e, unit_codes) for e in unit_entries]
        self._check_cycles([u for u in units if u is not None])
        sites = [self._site(e, unit_codes) for e in site_entries]
        people = [self._person(e, unit_codes, site_codes) for e in person_entries]
        self._unique([(p.telegram_id, p.line) for p in people if p], "person", "telegram_id")
        groups = [self._group(e, unit_codes) for e in group_entries]
        self._unique([(g.chat_id, g.line) for g in groups if g], "group", "chat_id")
        if self.errors:
            return None
        return OrgFile(
            source=self.source,
            units=tuple(u for u in units if u is not None),
            sites=tuple(s for s in sites if s is not None),
            people=tuple(p for p in people if p is not None),
            groups=tuple(g for g in groups if g is not None),
        )

    def _check_schema(self, top: Fields, root: Node) -> None:
        if "schema" not in top:
            self.problem(root, "file", f"missing 'schema: {SCHEMA_VERSION}'")
            return
        node = top["schema"]
        value = self.scalar(node, "file", "'schema'")
        if value is not _BAD and (isinstance(value, bool) or value != SCHEMA_VERSION):
            self.problem(node, "file",
                f"schema {value!r} is not supported (this version reads schema {SCHEMA_VERSION})",
            )

    def _unique(self, keyed: list[tuple[int, int]], singular: str, key: str) -> None:
        """Report repeated ids among (id, line) pairs; the first occurrence wins."""
        seen: dict[int, int] = {}
        for value, line in keyed:
            if value in seen:
                self.problem(line, f"{singular} {value}",
                             f"duplicate {key} {value} (first at line {seen[value]})")
            else:
                seen[value] = line

    # -- sections --

    def _unit(self, entry: _Entry, unit_codes: dict[str, int]) -> UnitSpec | None:
        code = entry.code
        name = self._names(entry)
        kind = self.field(entry, "kind", _one_of(UNIT_KINDS))
        parent = self.field(entry, "parent", _optional_code, required=False, default=None)
        if isinstance(parent, str) and parent not in unit_codes:
            self.problem(entry.line("parent"), entry.label, f"parent '{parent}' is not a unit "
                         "in this file")
            parent = _BAD
        if (isinstance(code, _Missing) or isinstance(name, _Missing)
                or isinstance(kind, _Missing) or isinstance(parent, _Missing)):
            return None
        return UnitSpec(code, name[0], name[1], kind, parent, entry.line())

    def _names(self, entry: _Entry) -> tuple[str, str] | _Missing:
        """A unit's or site's name: {zh: …, en: …} (en optional), or a plain string taken as
        zh."""
        if "name" not in entry.fields:
            self.problem(entry.line(), entry.label, "missing field 'name'")
            return _BAD
        node = entry.fields["name"]
        if isinstance(node, ScalarNode):
            zh = self.field(entry, "name", _text(MAX_NAME))
            return _BAD if isinstance(zh, _Missing) else (zh, "")
        fields = self.fields_of(node, entry.label, "name", _NAME_KEYS)
        if fields is None:
            return _BAD
        sub = _Entry(entry.label, node, fields)
        zh = self.field(sub, "zh", _text(MAX_NAME))
        en = self.field(sub, "en", _text(MAX_NAME, empty_ok=True), required=False, default="")
        if isinstance(zh, _Missing) or isinstance(en, _Missing):
            return _BAD
        return zh, en

    def _check_cycles(self, units: list[UnitSpec]) -> None:
        parent_of = {u.code: u.parent for u in units}
        line_at = {u.code: u.line for u in units}
        reported: set[str] = set()
        for start in parent_of:
            path: list[str] = []
            code: str | None = start
            while code is not None and code in parent_of and code not in path:
                if code in reported:
                    break
                path.append(code)
                code = parent_of[code]
            if code is not None and code in path and code not in reported:
                cycle = path[path.index(code):]
                reported.update(cycle)
                shown = " → ".join([*cycle, code])
                self.problem(line_at[code], f"unit {code!r}", f"parent cycle: {shown}")
            reported.update(path)

    def _site(self, entry: _Entry, unit_codes: dict[str, int]) -> SiteSpec | None:
        code = entry.code
        name = self._names(entry)
        site_type = self.field(entry, "type", _known_site_type(self.known_site_types))
        address = self.field(entry, "address", _text(MAX_ADDRESS, empty_ok=True),
                             required=False, default="")
        location = self._location(entry)
        unit = self.field(entry, "unit", _code)
        if not self._known_unit(entry, "unit", unit, unit_codes):
            unit = _BAD
        if (isinstance(code, _Missing) or isinstance(name, _Missing)
                or isinstance(site_type, _Missing) or isinstance(address, _Missing)
                or isinstance(location, _Missing) or isinstance(unit, _Missing)):
            return None
        lat, lon = location if location is not None else (None, None)
        return SiteSpec(code, name[0], site_type, address, lat, lon, unit, entry.line(),
                        name_en=name[1])

    def _location(self, entry: _Entry) -> tuple[float, float] | _Missing | None:
        if "location" not in entry.fields:
            return None
        node = entry.fields["location"]
        if is_null(node):
            return None
        if not isinstance(node, SequenceNode) or len(node.value) != 2:
            self.problem(node, entry.label,
                         "'location' must be [latitude, longitude], two numbers")
            return _BAD
        values: list[float] = []
        for part, (what, limit) in zip(
            node.value, (("latitude", 90.0), ("longitude", 180.0)), strict=True
        ):
            raw = self.scalar(part, entry.label, f"'location' {what}")
            if raw is _BAD:
                return _BAD
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
                self.problem(part, entry.label, f"{what} {raw!r} is not a number")
                return _BAD
            if not -limit <= raw <= limit:
                self.problem(part, entry.label,
                    f"{what} {raw} is out of range -{limit:g}..{limit:g} "
                    "(location is [latitude, longitude])",
                )
                return _BAD
            values.append(float(raw))
        return values[0], values[1]

    def _known_unit(self, entry: _Entry, key: str, value: object, codes: dict[str, int]) -> bool:
        """False (and a problem reported) when `value` is a code not among the file's units."""
        if isinstance(value, str) and value not in codes:
            self.problem(entry.line(key), entry.label,
                         f"'{key}': no unit with code '{value}' in this file")
            return False
        return True

    def _person(
        self, entry: _Entry, unit_codes: dict[str, int], site_codes: dict[str, int]
    ) -> PersonSpec | None:
        telegram_id = self.field(entry, "telegram_id", _int_id(positive=True))
        name = self.field(entry, "name", _text(MAX_NAME, empty_ok=True),
                          required=False, default="")
        role = self.field(entry, "role", _role)
        unit = self.field(entry, "unit", _optional_code, required=False, default=None)
        if not self._known_unit(entry, "unit", unit, unit_codes):
            unit = _BAD
        if role == "unit_member" and unit is None:
            self.problem(entry.line(), entry.label,
                         "a unit_member needs 'unit': the unit whose tasks they handle")
            unit = _BAD
        sites = self._site_list(entry, site_codes)
        if role == "unit_member" and isinstance(sites, tuple) and sites:
            # Assignments steer what /inspect offers; a unit member does not inspect.
            self.problem(entry.line("sites"), entry.label,
                         "'sites' are inspection assignments; a unit_member has none")
            sites = _BAD
        if (isinstance(telegram_id, _Missing) or isinstance(name, _Missing)
                or isinstance(role, _Missing) or isinstance(unit, _Missing)
                or isinstance(sites, _Missing)):
            return None
        return PersonSpec(telegram_id, name, role, unit, sites, entry.line())

    def _site_list(self, entry: _Entry, site_codes: dict[str, int]) -> tuple[str, ...] | _Missing:
        if "sites" not in entry.fields:
            return ()
        node = entry.fields["sites"]
        if is_null(node):
            return ()
        if not isinstance(node, SequenceNode):
            self.problem(node, entry.label, "'sites' must be a list of site codes")
            return _BAD
        result: list[str] = []
        ok = True
        for part in node.value:
            raw = self.scalar(part, entry.label, "a site code")
            code = _code(raw) if raw is not _BAD else _Problem("")
            if isinstance(code, _Problem):
                if raw is not _BAD:
                    self.problem(part, entry.label, f"'sites': {raw!r} {code.message}")
                ok = False
            elif code not in site_codes:
                self.problem(part, entry.label,
                             f"'sites': no site with code '{code}' in this file")
                ok = False
            elif code in result:
                self.problem(part, entry.label, f"'sites': '{code}' listed twice")
                ok = False
            else:
                result.append(code)
        return tuple(result) if ok else _BAD

    def _group(self, entry: _Entry, unit_codes: dict[str, int]) -> GroupSpec | None:
        chat_id = self.field(entry, "chat_id", _int_id(positive=False))
        title = self.field(entry, "title", _text(MAX_TITLE, empty_ok=True),
                           required=False, default="")
        unit = self.field(entry, "unit", _code)
        if not self._known_unit(entry, "unit", unit, unit_codes):
            unit = _BAD
        if (isinstance(chat_id, _Missing) or isinstance(title, _Missing)
                or isinstance(unit, _Missing)):
            return None
        return GroupSpec(chat_id, title, unit, entry.line())


# --- field converters: return the value, or a _Problem saying what is wrong -------------------


@dataclass(frozen=True)
class _Problem:
    message: str


def _code(raw: object) -> str | _Problem:
    if not isinstance(raw, str):
        return _Problem(f"must be a code like 'xx_subdistrict', not {raw!r}")
    if len(raw) > MAX_CODE:
        return _Problem(f"is longer than {MAX_CODE} characters")
    if not CODE_RE.match(raw):
        return _Problem(f"{raw!r} is not a code: use lower-case letters, digits and _, "
                        "starting with a letter")
    return raw


def _optional_code(raw: object) -> str | _Problem | None:
    return None if raw is None else _code(raw)


def _text(limit: int, *, empty_ok: bool = False) -> Callable[[object], str | _Problem]:
    def inner(raw: object) -> str | _Problem:
        if raw is None and empty_ok:
            return ""
        if not isinstance(raw, str):
            return _Problem(f"must be text, not {raw!r}")
        value = raw.strip()
        if not value and not empty_ok:
            return _Problem("is empty")
        if len(value) > limit:
            return _Problem(f"is longer than {limit} characters")
        return value

    return inner


def _one_of(choices: AbstractSet[str]) -> Callable[[object], str | _Problem]:
    def inner(raw: object) -> str | _Problem:
        if not isinstance(raw, str) or raw not in choices:
            return _Problem(f"{raw!r} is not one of {', '.join(sorted(choices))}")
        return raw

    return inner


def _role(raw: object) -> str | _Problem:
    role = parse_role(raw)
    if role is None or role.key not in ROLES:
        return _Problem(f"{raw!r} is not one of {', '.join(sorted(ROLES))}")
    return role.key


def _known_site_type(known: AbstractSet[str]) -> Callable[[object], str | _Problem]:
    def inner(raw: object) -> str | _Problem:
        if not isinstance(raw, str) or raw not in known:
            shown = ", ".join(sorted(known)) or "(no standards loaded)"
            return _Problem(f"{raw!r} is not a site type with a standard (known: {shown})")
        return raw

    return inner


def _int_id(*, positive: bool) -> Callable[[object], int | _Problem]:
    def inner(raw: object) -> int | _Problem:
        if isinstance(raw, bool) or not isinstance(raw, int):
            return _Problem(f"must be a whole number, not {raw!r}")
        if positive and not 0 < raw <= _INT64_MAX:
            return _Problem(f"{raw} is not a Telegram user id (a positive number)")
        if not positive and not -_INT64_MAX <= raw < 0:
            return _Problem(f"{raw} is not a group chat id (group ids are negative numbers)")
        return raw

    return inner
