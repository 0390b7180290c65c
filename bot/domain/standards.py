"""Inspection standards (测评标准): the model and the YAML loader/validator.

One YAML file per site type lives in ``standards/``; ``standards/SCHEMA.md`` documents the
format for the people who write them. This module turns a file into an immutable
:class:`Standard` whose ``items`` are the *leaf steps* an inspector answers one by one: a plain
item is one step; an item with ``sub_items`` is a heading and each sub-item is a step.

The loader works on the YAML node graph (``yaml.compose``) rather than on constructed Python
objects, for three reasons:

* every error can name the file and line it comes from;
* duplicate mapping keys are visible (PyYAML's constructor silently keeps the last one);
* YAML 1.1's implicit booleans cannot bite: the key ``no`` (which ``yaml.safe_load`` turns into
  ``False``) and English texts such as ``en: No`` are read as the text that was written.

Pure: imports PyYAML and the standard library only.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar

from yaml.nodes import MappingNode, Node, ScalarNode

from bot.domain.yamlfile import YamlFileError, YamlReader, compose, read_text
from bot.domain.yamlfile import quote as _q

__all__ = [
    "DEFAULT_DEADLINE_DAYS",
    "DEFAULT_SCORING",
    "DEFAULT_WEIGHT",
    "SCHEMA_VERSION",
    "Indicator",
    "Item",
    "Standard",
    "StandardError",
    "Text",
    "Verdict",
    "check_files",
    "load_standard",
    "load_standards",
]

SCHEMA_VERSION: Final = 1


class Verdict(StrEnum):
    """An inspector's answer to one step. ``na`` is never scored and needs a remark."""

    COMPLIANT = "compliant"  # 符合
    BASIC = "basic"  # 基本符合
    NONCOMPLIANT = "noncompliant"  # 不符合
    NA = "na"  # 不适用


class Indicator(StrEnum):
    """静态指标 (documents, rules, fixtures) vs 动态指标 (what is seen on the spot)."""

    STATIC = "static"
    DYNAMIC = "dynamic"


# Used when a file has no ``scoring`` block. 符合 full marks, 不符合 none; 基本符合 at 60 is the
# usual pass mark of Chinese assessment sheets (the seed gives no figure).
DEFAULT_SCORING: Final[Mapping[Verdict, float]] = MappingProxyType(
    {Verdict.COMPLIANT: 100.0, Verdict.BASIC: 60.0, Verdict.NONCOMPLIANT: 0.0}
)
DEFAULT_WEIGHT: Final = 1.0
DEFAULT_DEADLINE_DAYS: Final = 7
# A year is longer than any campaign phase (lines 80-82); more is almost certainly a typo.
MAX_DEADLINE_DAYS: Final = 365
# Ids and numbers end up in callback data (64 bytes) and in the database; keep them short.
MAX_ID_LENGTH: Final = 32
MAX_NO_LENGTH: Final = 8

_ID_RE: Final = re.compile(r"[a-z][a-z0-9_]*")
# "." separates parent and position in Item.key and ":" separates callback-data fields.
_NO_RE: Final = re.compile(r"[^\s.:]+")
_LINES_RE: Final = re.compile(r"(\d+)(?:\s*[-–]\s*(\d+))?")
_SCORED: Final = (Verdict.COMPLIANT, Verdict.BASIC, Verdict.NONCOMPLIANT)
_DEFAULT_VERDICTS: Final = _SCORED

K = TypeVar("K")
V = TypeVar("V")


class _FrozenMap(Mapping[K, V], Generic[K, V]):
    """A read-only, hashable mapping, so that Item and Standard stay hashable values."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        self._data: dict[K, V] = dict(data)

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self._data == dict(other.items())

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return repr(self._data)


# --------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class Text:
    """A text in both languages the bot speaks."""

    zh: str
    en: str

    def get(self, lang: str) -> str:
        """The text for a language code: any ``zh*`` code (zh, zh-hans, zh-CN) gives zh."""
        return self.zh if lang.lower().startswith("zh") else self.en

    def to_dict(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Text:
        return cls(zh=str(d["zh"]), en=str(d["en"]))


@dataclass(frozen=True)
class Item:
    """A leaf step: a plain item, or one sub-item of a heading item."""

    key: str  # stable within the standard: "5", or "12.3" for 12③ (parent no . position)
    number: str  # as inspectors know it: "5", "12③"
    text: Text
    parent_text: Text | None  # the heading's text, for sub-items
    indicator: Indicator
    verdicts: tuple[Verdict, ...]  # in canonical order: compliant, basic, noncompliant, na
    rules: Mapping[Verdict, Text]
    hints: tuple[Text, ...]
    photo_on_fail: bool
    weight: float
    deadline_days: int

    def __post_init__(self) -> None:
        # Normalise what callers may pass loosely, so equality and the content hash do not
        # depend on whether a weight was written 1 or 1.0, or rules given as a plain dict.
        object.__setattr__(self, "weight", float(self.weight))
        object.__setattr__(self, "rules", _FrozenMap(self.rules))
        object.__setattr__(self, "verdicts", tuple(self.verdicts))
        object.__setattr__(self, "hints", tuple(self.hints))

    @property
    def na_allowed(self) -> bool:
        return Verdict.NA in self.verdicts

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "number": self.number,
            "text": self.text.to_dict(),
            "parent_text": None if self.parent_text is None else self.parent_text.to_dict(),
            "indicator": self.indicator.value,
            "verdicts": [v.value for v in self.verdicts],
            "rules": {v.value: t.to_dict() for v, t in self.rules.items()},
            "hints": [h.to_dict() for h in self.hints],
            "photo_on_fail": self.photo_on_fail,
            "weight": self.weight,
            "deadline_days": self.deadline_days,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Item:
        parent = d["parent_text"]
        return cls(
            key=str(d["key"]),
            number=str(d["number"]),
            text=Text.from_dict(d["text"]),
            parent_text=None if parent is None else Text.from_dict(parent),
            indicator=Indicator(d["indicator"]),
            verdicts=tuple(Verdict(v) for v in d["verdicts"]),
            rules={Verdict(v): Text.from_dict(t) for v, t in d["rules"].items()},
            hints=tuple(Text.from_dict(h) for h in d["hints"]),
            photo_on_fail=bool(d["photo_on_fail"]),
            weight=float(d["weight"]),
            deadline_days=int(d["deadline_days"]),
        )


@dataclass(frozen=True)
class Standard:
    """One site type's checklist, as loaded from its YAML file or from a stored snapshot."""

    id: str
    name: Text
    source: Text
    source_lines: str  # "144-161", or "" for a standard that does not come from the seed
    scoring: Mapping[Verdict, float]  # value 0..100 of each scored verdict (never na)
    items: tuple[Item, ...]  # leaf steps in order
    # Derived, never passed: it must always describe exactly this content.
    content_hash: str = field(init=False)
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "scoring", _FrozenMap({Verdict(v): float(s) for v, s in self.scoring.items()})
        )
        object.__setattr__(self, "items", tuple(self.items))
        index: dict[str, int] = {}
        for position, item in enumerate(self.items):
            if item.key in index:
                raise ValueError(f"standard {self.id}: item key {item.key!r} is used twice")
            index[item.key] = position
        object.__setattr__(self, "_index", _FrozenMap(index))
        canonical = json.dumps(
            self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )
        object.__setattr__(
            self, "content_hash", hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        )

    def item(self, key: str) -> Item:
        """The step with this key; KeyError if the standard has none."""
        return self.items[self._index[key]]

    def index(self, key: str) -> int:
        """The position of the step with this key among ``items``; KeyError if none."""
        return self._index[key]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; the content hash is computed from it (and not part of it)."""
        return {
            "schema": SCHEMA_VERSION,
            "id": self.id,
            "name": self.name.to_dict(),
            "source": self.source.to_dict(),
            "source_lines": self.source_lines,
            # Canonical verdict order, so the snapshot does not depend on YAML key order.
            "scoring": {v.value: self.scoring[v] for v in Verdict if v in self.scoring},
            "items": [item.to_dict() for item in self.items],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Standard:
        """Rebuild a snapshot written by :meth:`to_dict` (raises StandardError if malformed)."""
        try:
            if d.get("schema") != SCHEMA_VERSION:
                raise ValueError(f"schema {d.get('schema')!r} is not {SCHEMA_VERSION}")
            return cls(
                id=str(d["id"]),
                name=Text.from_dict(d["name"]),
                source=Text.from_dict(d["source"]),
                source_lines=str(d["source_lines"]),
                scoring={Verdict(v): float(s) for v, s in d["scoring"].items()},
                items=tuple(Item.from_dict(i) for i in d["items"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problem = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise StandardError(
                "<snapshot>", None, None, f"malformed snapshot: {problem}"
            ) from exc


class StandardError(YamlFileError):
    """One problem in a standard file; ``str()`` is one line: ``file:line: item N: problem``."""

    field_prefix = "item "

    @property
    def item(self) -> str | None:
        """The item number as inspectors know it ("5", "12③"), if any."""
        return self.field


# --------------------------------------------------------------------------------------------
# The loader

_TOP_KEYS: Final = ("schema", "id", "name", "source", "scoring", "defaults", "items")
_TOP_REQUIRED: Final = ("schema", "id", "name", "source", "items")
_LEAF_KEYS: Final = (
    "no",
    "text",
    "indicator",
    "verdicts",
    "rules",
    "hints",
    "photo_on_fail",
    "weight",
    "deadline_days",
)
_ITEM_KEYS: Final = (*_LEAF_KEYS, "sub_items")


def _entry(mapping: Node, key: str) -> tuple[Node, Node] | None:
    """The first (key node, value node) pair for a key, without judging the mapping."""
    if not isinstance(mapping, MappingNode):
        return None
    return next(((k, v) for k, v in mapping.value if getattr(k, "value", None) == key), None)


def _key_node(mapping: Node, key: str) -> Node | None:
    entry = _entry(mapping, key)
    return None if entry is None else entry[0]


def _value_node(mapping: Node, key: str) -> Node | None:
    entry = _entry(mapping, key)
    return None if entry is None else entry[1]


def _words(values: Iterable[str]) -> str:
    return ", ".join(values)


@dataclass
class _Raw:
    """An item or sub-item as written, before defaults and inheritance are applied."""

    label: str  # for error messages: "5", "12③", or "#3" when the number itself is bad
    node: MappingNode
    no: str | None = None
    text: Text | None = None
    indicator: Indicator | None = None
    indicator_given: bool = False  # present, even if invalid: then "missing" would be noise
    verdicts: tuple[Verdict, ...] | None = None
    verdicts_node: Node | None = None
    rules: dict[Verdict, Text] | None = None
    rules_node: Node | None = None
    hints: tuple[Text, ...] = ()
    photo_on_fail: bool | None = None
    weight: float | None = None
    deadline_days: int | None = None
    sub_items: list[_Raw] | None = None


@dataclass
class _Parsed:
    standard: Standard | None
    errors: list[StandardError]
    id: str | None = None
    id_line: int | None = None


class _Parser(YamlReader[StandardError]):
    """Validates one file's node graph, collecting every problem rather than stopping."""

    # Items are already named by the message's "item N:".
    unnamed = frozenset({"the file", "item", "sub-item"})

    def __init__(self, file: str) -> None:
        super().__init__(file, StandardError)
        self.id: str | None = None
        self.id_line: int | None = None

    def text(self, node: Node, item: str | None, what: str) -> Text | None:
        fields = self.fields(node, item, what, ("zh", "en"), ("zh", "en"))
        if fields is None or len(fields) < 2:
            return None
        values: dict[str, str] = {}
        for lang in ("zh", "en"):
            value = self.string(fields[lang], item, f"{what}.{lang}")
            if value is None:
                return None
            # Surrounding whitespace is layout (block scalars add a newline), never content.
            value = value.strip()
            if not value:
                self.problem(fields[lang], item, f"{what}.{lang} is empty")
                return None
            values[lang] = value
        return Text(zh=values["zh"], en=values["en"])

    # -- the document --------------------------------------------------------------------

    def document(self, root: Node) -> Standard | None:
        # The schema version comes first: a file written for another version is not judged by
        # this version's rules (its other "problems" would only be noise).
        schema = _value_node(root, "schema")
        if schema is not None and not (
            isinstance(schema, ScalarNode) and schema.value == str(SCHEMA_VERSION)
        ):
            self.problem(
                schema,
                None,
                f"schema {self.kind(schema)} is not supported; this version reads schema "
                f"{SCHEMA_VERSION}",
            )
            return None
        top = self.fields(root, None, "the file", _TOP_KEYS, _TOP_REQUIRED)
        if top is None:
            return None

        standard_id = None
        if "id" in top:
            standard_id = self.string(top["id"], None, "id")
            if standard_id is not None:
                if not _ID_RE.fullmatch(standard_id) or len(standard_id) > MAX_ID_LENGTH:
                    self.problem(
                        top["id"],
                        None,
                        f"id {_q(standard_id)} must be lower-case letters, digits and _, "
                        f"start with a letter, at most {MAX_ID_LENGTH} characters",
                    )
                    standard_id = None
                else:
                    self.id = standard_id
                    self.id_line = top["id"].start_mark.line + 1

        name = self.text(top["name"], None, "name") if "name" in top else None
        source, source_lines = self.source(top["source"]) if "source" in top else (None, "")
        scoring = self.scoring(top["scoring"]) if "scoring" in top else dict(DEFAULT_SCORING)
        scoring_given = "scoring" in top
        weight, deadline = self.defaults(top["defaults"]) if "defaults" in top else (None, None)

        raws: list[_Raw] = []
        if "items" in top:
            nodes = self.sequence(top["items"], None, "items")
            if nodes is not None:
                if not nodes:
                    self.problem(top["items"], None, "items is empty")
                raws = self.item_list(nodes, parent=None)

        items = self.resolve(
            raws,
            weight=DEFAULT_WEIGHT if weight is None else weight,
            deadline_days=DEFAULT_DEADLINE_DAYS if deadline is None else deadline,
            scoring=scoring,
            scoring_node=_key_node(root, "scoring") if scoring_given else None,
        )
        if self.errors or standard_id is None or name is None or source is None:
            return None
        return Standard(
            id=standard_id,
            name=name,
            source=source,
            source_lines=source_lines,
            scoring=scoring,
            items=tuple(items),
        )

    def source(self, node: Node) -> tuple[Text | None, str]:
        fields = self.fields(node, None, "source", ("zh", "en", "lines"), ("zh", "en"))
        if fields is None:
            return None, ""
        lines = ""
        if "lines" in fields:
            written = self.string(fields["lines"], None, "source.lines")
            match = _LINES_RE.fullmatch((written or "").strip())
            if written is None:
                pass
            elif match is None or (match[2] is not None and int(match[2]) < int(match[1])):
                self.problem(
                    fields["lines"],
                    None,
                    f'source.lines {_q(written)} must be a line or a range such as "144-161"',
                )
            else:
                lines = match[1] if match[2] is None else f"{match[1]}-{match[2]}"
        text = None
        if "zh" in fields and "en" in fields:
            # Reuse the Text validation on the zh/en pair only; "lines" is checked above.
            text = self._pair(fields, "source")
        return text, lines

    def _pair(self, fields: dict[str, Node], what: str) -> Text | None:
        values = [self.string(fields[lang], None, f"{what}.{lang}") for lang in ("zh", "en")]
        for lang, value in zip(("zh", "en"), values, strict=True):
            if value is not None and not value.strip():
                self.problem(fields[lang], None, f"{what}.{lang} is empty")
                return None
        zh, en = values
        if zh is None or en is None:
            return None
        return Text(zh=zh.strip(), en=en.strip())

    def scoring(self, node: Node) -> dict[Verdict, float]:
        allowed = [v.value for v in _SCORED]
        fields = self.fields(node, None, "scoring", [*allowed, Verdict.NA.value])
        if fields is None:
            return {}
        scoring: dict[Verdict, float] = {}
        for key, value_node in fields.items():
            if key == Verdict.NA:
                self.problem(
                    value_node,
                    None,
                    "scoring: na has no value; na answers are left out of the score",
                )
                continue
            value = self.number(value_node, None, f"scoring.{key}")
            if value is None:
                continue
            if not 0 <= value <= 100:
                self.problem(value_node, None, f"scoring.{key} is {value:g}; it must be 0..100")
                continue
            scoring[Verdict(key)] = value
        ranked = [(v, scoring[v]) for v in _SCORED if v in scoring]
        for (better, high), (worse, low) in itertools.pairwise(ranked):
            if high <= low:
                self.problem(
                    fields[worse.value],
                    None,
                    f"scoring: {better} ({high:g}) must be worth more than {worse} ({low:g})",
                )
        return scoring

    def defaults(self, node: Node) -> tuple[float | None, int | None]:
        fields = self.fields(node, None, "defaults", ("weight", "deadline_days"))
        if fields is None:
            return None, None
        weight = (
            self.weight(fields["weight"], None, "defaults.weight") if "weight" in fields else None
        )
        deadline = (
            self.deadline(fields["deadline_days"], None, "defaults.deadline_days")
            if "deadline_days" in fields
            else None
        )
        return weight, deadline

    def weight(self, node: Node, item: str | None, what: str) -> float | None:
        value = self.number(node, item, what)
        if value is not None and value <= 0:
            self.problem(node, item, f"{what} is {value:g}; it must be more than 0")
            return None
        return value

    def deadline(self, node: Node, item: str | None, what: str) -> int | None:
        value = self.whole(node, item, what)
        if value is not None and not 1 <= value <= MAX_DEADLINE_DAYS:
            self.problem(node, item, f"{what} is {value}; it must be 1..{MAX_DEADLINE_DAYS} days")
            return None
        return value

    # -- items ---------------------------------------------------------------------------

    def item_list(self, nodes: list[Node], parent: _Raw | None) -> list[_Raw]:
        raws: list[_Raw] = []
        first_line: dict[str, int] = {}
        for position, node in enumerate(nodes, start=1):
            prefix = "" if parent is None else parent.label
            raw = self.item(node, prefix, position, sub=parent is not None)
            if raw is None:
                continue
            if raw.no is not None:
                if raw.no in first_line:
                    self.problem(
                        raw.node,
                        raw.label,
                        f"number {_q(raw.no)} is used twice in this list "
                        f"(first at line {first_line[raw.no]})",
                    )
                else:
                    first_line[raw.no] = raw.node.start_mark.line + 1
            raws.append(raw)
        return raws

    def item(self, node: Node, prefix: str, position: int, *, sub: bool) -> _Raw | None:
        label = f"{prefix}#{position}"
        if not isinstance(node, MappingNode):
            self.problem(node, label, f"an item must be a mapping, not {self.kind(node)}")
            return None
        raw = _Raw(label=label, node=node)
        # Read the number first so that every later message can name the item.
        no_node = _value_node(node, "no")
        if no_node is not None:
            raw.no = self.number_label(no_node, label)
            if raw.no is not None:
                raw.label = f"{prefix}{raw.no}"
        label = raw.label
        allowed = _LEAF_KEYS if sub else _ITEM_KEYS
        fields = self.fields(
            node, label, "item" if not sub else "sub-item", allowed, ("no", "text")
        )
        if fields is None:
            return None
        if "text" in fields:
            raw.text = self.text(fields["text"], label, "text")
        if "indicator" in fields:
            raw.indicator_given = True
            raw.indicator = self.indicator(fields["indicator"], label)
        if "verdicts" in fields:
            raw.verdicts_node = fields["verdicts"]
            raw.verdicts = self.verdicts(fields["verdicts"], label)
        if "rules" in fields:
            raw.rules_node = fields["rules"]
            raw.rules = self.rules(fields["rules"], label)
        if "hints" in fields:
            raw.hints = self.hints(fields["hints"], label)
        if "photo_on_fail" in fields:
            raw.photo_on_fail = self.boolean(fields["photo_on_fail"], label, "photo_on_fail")
        if "weight" in fields:
            raw.weight = self.weight(fields["weight"], label, "weight")
        if "deadline_days" in fields:
            raw.deadline_days = self.deadline(fields["deadline_days"], label, "deadline_days")
        if "sub_items" in fields:
            nodes = self.sequence(fields["sub_items"], label, "sub_items")
            if nodes is not None:
                if not nodes:
                    self.problem(
                        fields["sub_items"], label, "sub_items is empty; list them or drop the key"
                    )
                raw.sub_items = self.item_list(nodes, parent=raw)
        return raw

    def number_label(self, node: Node, label: str) -> str | None:
        # A bare `no: 5` is accepted as "5": the YAML author means the seed's number either way.
        if not (isinstance(node, ScalarNode) and node.tag.endswith((":str", ":int"))):
            self.problem(
                node,
                label,
                f'no must be the seed\'s number as text, e.g. no: "5", not {self.kind(node)}',
            )
            return None
        value = str(node.value).strip()
        if not _NO_RE.fullmatch(value) or len(value) > MAX_NO_LENGTH:
            self.problem(
                node,
                label,
                f"no {_q(value)} must be 1..{MAX_NO_LENGTH} characters without spaces, . or :",
            )
            return None
        return value

    def indicator(self, node: Node, label: str) -> Indicator | None:
        value = self.string(node, label, "indicator")
        if value is None:
            return None
        try:
            return Indicator(value)
        except ValueError:
            self.problem(node, label, f"indicator {_q(value)} is not one of static, dynamic")
            return None

    def verdict(self, node: Node, label: str, what: str) -> Verdict | None:
        value = self.string(node, label, what)
        if value is None:
            return None
        try:
            return Verdict(value)
        except ValueError:
            self.problem(
                node,
                label,
                f"{what} {_q(value)} is not one of {_words(v.value for v in Verdict)}",
            )
            return None

    def verdicts(self, node: Node, label: str) -> tuple[Verdict, ...] | None:
        nodes = self.sequence(node, label, "verdicts")
        if nodes is None:
            return None
        chosen: set[Verdict] = set()
        ok = True
        for entry in nodes:
            verdict = self.verdict(entry, label, "verdict")
            if verdict is None:
                ok = False
            elif verdict in chosen:
                self.problem(entry, label, f"verdict {_q(verdict.value)} is listed twice")
                ok = False
            else:
                chosen.add(verdict)
        if not ok:
            return None
        # An inspector must be able to pass and to fail every step.
        missing = [v.value for v in (Verdict.COMPLIANT, Verdict.NONCOMPLIANT) if v not in chosen]
        if missing:
            self.problem(node, label, f"verdicts must include {_words(missing)}")
            return None
        return tuple(v for v in Verdict if v in chosen)  # canonical order for the keyboard

    def rules(self, node: Node, label: str) -> dict[Verdict, Text] | None:
        fields = self.fields(node, label, "rules", [v.value for v in Verdict])
        if fields is None:
            return None
        rules: dict[Verdict, Text] = {}
        for key, value_node in fields.items():
            text = self.text(value_node, label, f"rules.{key}")
            if text is not None:
                rules[Verdict(key)] = text
        return rules

    def hints(self, node: Node, label: str) -> tuple[Text, ...]:
        nodes = self.sequence(node, label, "hints")
        if nodes is None:
            return ()
        hints = [self.text(entry, label, "hint") for entry in nodes]
        return tuple(h for h in hints if h is not None)

    def resolve(
        self,
        raws: list[_Raw],
        *,
        weight: float,
        deadline_days: int,
        scoring: Mapping[Verdict, float],
        scoring_node: Node | None,
    ) -> list[Item]:
        """Apply defaults and heading-to-sub-item inheritance; check each leaf as a whole."""
        items: list[Item] = []
        # verdict -> (first item using it, where) for verdicts the scoring block leaves out;
        # reported once per verdict rather than once per item.
        unscored: dict[Verdict, tuple[str, Node]] = {}
        for raw in raws:
            leaves: list[tuple[_Raw, _Raw | None, str | None, str | None, float]]
            if raw.sub_items is None:
                leaves = [
                    (raw, None, raw.no, raw.no, weight if raw.weight is None else raw.weight)
                ]
            else:
                # A heading's weight is shared by its sub-items, so a heading with seven
                # sub-items counts as much as any other item unless a sub-item says otherwise.
                total = weight if raw.weight is None else raw.weight
                share = total / max(len(raw.sub_items), 1)
                leaves = [
                    (
                        sub,
                        raw,
                        None if raw.no is None else f"{raw.no}.{position}",
                        None if raw.no is None or sub.no is None else f"{raw.no}{sub.no}",
                        share if sub.weight is None else sub.weight,
                    )
                    for position, sub in enumerate(raw.sub_items, start=1)
                ]
            for leaf_raw, parent, key, number, leaf_weight in leaves:
                leaf = self.leaf(
                    leaf_raw,
                    parent,
                    key=key,
                    number=number,
                    weight=leaf_weight,
                    deadline_days=deadline_days,
                )
                if leaf is None:
                    continue
                for verdict in leaf.verdicts:
                    if verdict is not Verdict.NA and verdict not in scoring:
                        where = leaf_raw.verdicts_node or (parent and parent.verdicts_node)
                        unscored.setdefault(verdict, (leaf.number, where or leaf_raw.node))
                items.append(leaf)
        for verdict, (label, node) in unscored.items():
            self.problem(
                scoring_node or node,
                label,
                f"verdict {verdict} is used but the scoring block gives it no value",
            )
        return items

    def leaf(
        self,
        raw: _Raw,
        parent: _Raw | None,
        *,
        key: str | None,
        number: str | None,
        weight: float,
        deadline_days: int,
    ) -> Item | None:
        def pick(name: str) -> Any:
            own = getattr(raw, name)
            return getattr(parent, name) if own is None and parent is not None else own

        label = raw.label
        indicator: Indicator | None = pick("indicator")
        given = raw.indicator_given or (parent is not None and parent.indicator_given)
        if indicator is None and not given:
            self.problem(raw.node, label, 'missing "indicator" (static or dynamic)')
        verdicts: tuple[Verdict, ...] = pick("verdicts") or _DEFAULT_VERDICTS
        inherited = (parent.rules or {}) if parent is not None else {}
        rules: dict[Verdict, Text] = {**inherited, **(raw.rules or {})}
        rules_node = raw.rules_node or (parent.rules_node if parent else None) or raw.node
        for verdict in rules:
            if verdict not in verdicts:
                self.problem(
                    rules_node,
                    label,
                    f"rules.{verdict} is given but {verdict} is not among this item's verdicts "
                    f"({_words(verdicts)})",
                )
        if key is None or number is None or raw.text is None or indicator is None:
            return None
        if parent is not None and parent.text is None:
            return None
        photo: bool | None = pick("photo_on_fail")
        deadline: int | None = pick("deadline_days")
        hints = (parent.hints if parent else ()) + raw.hints
        return Item(
            key=key,
            number=number,
            text=raw.text,
            parent_text=None if parent is None else parent.text,
            indicator=indicator,
            verdicts=verdicts,
            rules=rules,
            hints=hints,
            # Dynamic failures need evidence (DOMAIN: a non-compliant dynamic item needs a
            # photo); a missing document shows by its absence from the records.
            photo_on_fail=indicator is Indicator.DYNAMIC if photo is None else photo,
            weight=weight,
            deadline_days=deadline_days if deadline is None else deadline,
        )


def _parse(path: Path) -> _Parsed:
    file = str(path)
    try:
        root = compose(read_text(path, StandardError), file, StandardError)
    except StandardError as exc:
        return _Parsed(None, [exc])
    if root is None:
        return _Parsed(None, [StandardError(file, None, None, "the file is empty")])
    parser = _Parser(file)
    standard = parser.document(root)
    return _Parsed(standard, parser.sorted_errors(), parser.id, parser.id_line)


def load_standard(path: Path | str | os.PathLike[str]) -> Standard:
    """Load one standard file; raise the first StandardError (by line) if it has problems."""
    parsed = _parse(Path(path))
    if parsed.errors or parsed.standard is None:
        raise (
            parsed.errors[0] if parsed.errors else StandardError(str(path), None, None, "invalid")
        )
    return parsed.standard


def _yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.is_file())


def load_standards(directory: Path | str | os.PathLike[str]) -> dict[str, Standard]:
    """Load every ``*.yaml`` in a directory, keyed by id; raise on the first bad file."""
    directory = Path(directory)
    if not directory.is_dir():
        raise StandardError(str(directory), None, None, "no such directory")
    standards: dict[str, Standard] = {}
    files: dict[str, Path] = {}
    for path in _yaml_files(directory):
        parsed = _parse(path)
        if parsed.errors or parsed.standard is None:
            raise (
                parsed.errors[0]
                if parsed.errors
                else StandardError(str(path), None, None, "invalid")
            )
        standard = parsed.standard
        if standard.id in standards:
            raise StandardError(
                str(path),
                parsed.id_line,
                None,
                f"id {_q(standard.id)} is already used by {files[standard.id]}",
            )
        standards[standard.id] = standard
        files[standard.id] = path
    return standards


def check_files(paths: Iterable[Path | str | os.PathLike[str]]) -> list[StandardError]:
    """Every problem in the given files (directories mean their ``*.yaml``), for the CLI.

    Also reports an id used by more than one of the files. An empty list means all is well.
    """
    errors: list[StandardError] = []
    owners: dict[str, Path] = {}
    for given in paths:
        given = Path(given)
        for path in _yaml_files(given) if given.is_dir() else [given]:
            parsed = _parse(path)
            errors.extend(parsed.errors)
            if parsed.id is None:
                continue
            if parsed.id in owners:
                errors.append(
                    StandardError(
                        str(path),
                        parsed.id_line,
                        None,
                        f"id {_q(parsed.id)} is already used by {owners[parsed.id]}",
                    )
                )
            else:
                owners[parsed.id] = path
    return errors
