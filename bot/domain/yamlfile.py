"""The one reader of the bot's YAML files (standards, organisation, reporting, schedule).

It works on the YAML node graph (``yaml.compose``), not on constructed Python objects, so that

* every problem names the file and the line it comes from (and, where there is one, the entry:
  an item, a category, a unit …) in one error type, `YamlFileError`;
* a key written twice is a problem (PyYAML's constructor silently keeps the last one);
* YAML 1.1's implicit types cannot bite where text is meant: ``no`` or ``en: No`` read as the
  words written, and an unquoted ``09:00`` as the time it looks like.

A `YamlReader` collects the problems of one file (or, built with ``first_only``, raises the
first). Each loader keeps its own rules and words for values; the reader owns the shape: files,
syntax, mappings, lists, scalars, and the wording of those problems.

Each problem is an English line (what ``wenming … check`` prints) and, where the checker gives
one, a message code with its values (`YamlFileError.code`, `.params`), so that a file sent to
the bot is answered in the sender's language (bot/render/file_problems.py).

Pure: PyYAML and the standard library only.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "Fields",
    "FileProblem",
    "YamlFileError",
    "YamlReader",
    "compose",
    "is_null",
    "line_of",
    "quote",
    "read_text",
]


class YamlFileError(Exception):
    """One problem in a YAML file; ``str()`` is one line: ``file:line: field: problem``.

    `field` names the entry the problem is in, as its readers know it (an item number, a
    category code, "unit 'x'"); loaders subclass to say what kind of entry it is.
    """

    field_prefix: ClassVar[str] = ""  # "item ", "category ": how `field` is introduced

    def __init__(self, file: str, line: int | None, field: str | None, problem: str) -> None:
        super().__init__(file, line, field, problem)
        self.file = file
        self.line = line  # 1-based, or None when the problem has no place (unreadable file)
        self.field = field
        self.problem = problem
        # The problem as a message code and its values, when the checker gave one (else the
        # English `problem` is all there is).
        self.code: str | None = None
        self.params: dict[str, object] = {}

    def coded(self, code: str | None, **params: object) -> YamlFileError:
        self.code, self.params = code, dict(params)
        return self

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        field = "" if self.field is None else f"{self.field_prefix}{self.field}: "
        return f"{where}: {field}{self.problem}"

    def said(self, *, warning: bool = False) -> FileProblem:
        return FileProblem(str(self), self.file, self.line, self.field, self.code,
                           dict(self.params), warning)


@dataclasses.dataclass(frozen=True)
class FileProblem:
    """One problem of a file as its sender is told it: the English line (``str()``, what the
    command line prints), where it is, and the message code and values, if any, for an answer
    in the sender's language."""

    text: str
    file: str
    line: int | None = None
    field: str | None = None  # the entry, without its kind ("'mall_weekly'", not "plan …")
    code: str | None = None
    params: Mapping[str, object] = dataclasses.field(default_factory=dict)
    warning: bool = False

    def __str__(self) -> str:
        return self.text


ErrorType = Callable[[str, int | None, str | None, str], YamlFileError]


def line_of(node: Node) -> int:
    """The 1-based line a node starts on."""
    return int(node.start_mark.line) + 1


def quote(value: object) -> str:
    """A value for a message, quoted the way it would be written in YAML/JSON."""
    return json.dumps(value, ensure_ascii=False)


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def read_text(path: Path, error: ErrorType = YamlFileError) -> str:
    """A file's text; a BOM (Windows editors) is dropped. Raises `error` naming the file."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise error(str(path), None, None, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise error(str(path), None, None,
                    f"not UTF-8 text (byte {exc.start}); save as UTF-8") from None


def compose(text: str, file: str, error: ErrorType = YamlFileError) -> Node | None:
    """The node tree of one YAML document (None when empty); a syntax error is raised as
    `error`, naming where the parser gave up and where the construct it was in began."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        problem = exc.problem or exc.context or "cannot parse"
        if exc.context and exc.problem and exc.problem.startswith("but "):
            # The composer splits one sentence: "expected a single document …" / "but found …".
            problem = f"{exc.context}, {exc.problem}"
        elif exc.context and exc.problem:
            context = exc.context.removeprefix("while ").removeprefix("parsing ")
            if exc.context_mark is not None and exc.context_mark.line + 1 != line:
                context += f" that starts at line {exc.context_mark.line + 1}"
            problem = f"{problem} (in {context})"
        raise error(file, line, None, f"YAML syntax error: {problem}").coded(
            "yaml.syntax", detail=problem) from None
    except yaml.YAMLError as exc:
        raise error(file, None, None, f"YAML error: {exc}").coded(
            "yaml.error", detail=str(exc)) from None


E = TypeVar("E", bound=YamlFileError)


class Fields(dict[str, Node]):
    """A mapping's value nodes by key; `key` gives the node of the key itself (its line)."""

    def __init__(self) -> None:
        super().__init__()
        self.key_nodes: dict[str, Node] = {}

    def key(self, name: str) -> Node:
        return self.key_nodes[name]


class YamlReader(Generic[E]):
    """Reads one file's nodes, collecting its problems as `error`s (or raising the first)."""

    # Mappings whose keys' problems need no "what: " before them.
    unnamed: ClassVar[frozenset[str]] = frozenset({"the file"})

    def __init__(self, file: str, error: Callable[[str, int | None, str | None, str], E], *,
                 first_only: bool = False) -> None:
        self.file = file
        self.errors: list[E] = []
        self._error = error
        self._first_only = first_only
        # Builds Python values of scalar nodes exactly as yaml.safe_load would.
        self._constructor = yaml.SafeLoader("")

    def problem(self, at: Node | int | None, field: str | None, problem: str,
                code: str | None = None, **params: object) -> None:
        """Record a problem at a node (or a line), with its message code and values if it has
        them; with ``first_only``, raise it."""
        line = at if isinstance(at, int) or at is None else line_of(at)
        error = self._error(self.file, line, field, problem)
        error.coded(code, **params)
        if self._first_only:
            raise error
        self.errors.append(error)

    def sorted_errors(self) -> list[E]:
        """In file order, whatever pass found them: easier to work through top to bottom."""
        return sorted(self.errors, key=lambda e: e.line or 0)

    @staticmethod
    def kind(node: Node) -> str:
        """What a node is, for "must be …, not …" messages."""
        if isinstance(node, MappingNode):
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        if is_null(node):
            return "nothing"
        return quote(node.value)

    @staticmethod
    def shape(node: Node) -> dict[str, object]:
        """`kind` as message values: {"kind": mapping|list|nothing|value, "value": …}."""
        if isinstance(node, MappingNode):
            return {"kind": "mapping", "value": ""}
        if isinstance(node, SequenceNode):
            return {"kind": "list", "value": ""}
        if is_null(node):
            return {"kind": "nothing", "value": ""}
        return {"kind": "value", "value": quote(node.value)}

    def _not(self, node: Node, field: str | None, what: str, expected: str, words: str
             ) -> None:
        self.problem(node, field, f"{what} must be {words}, not {self.kind(node)}",
                     "yaml.not", what=what, expected=expected, **self.shape(node))

    # -- structures ----------------------------------------------------------------------

    def fields(
        self,
        node: Node,
        field: str | None,
        what: str,
        allowed: Iterable[str],
        required: Iterable[str] = (),
        *,
        named: bool = True,
    ) -> Fields | None:
        """The value nodes of a mapping by key. Not a mapping, a key that is not a word, a key
        written twice, an unknown key and a missing one are problems; their messages start
        with `what` when `named` (an entry named by `field` needs no second name) and it is
        not one of `unnamed` (the file)."""
        if not isinstance(node, MappingNode):
            self._not(node, field, what, "mapping", "a mapping")
            return None
        allowed = tuple(allowed)
        named = named and what not in self.unnamed
        prefix = f"{what}: " if named else ""
        where = what if named else ""
        seen = Fields()
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or is_null(key_node):
                self.problem(key_node, field, f"{prefix}keys must be plain words",
                             "yaml.key_word", what=where)
                continue
            key = str(key_node.value)
            if key in seen:
                first = line_of(seen.key(key))
                self.problem(key_node, field,
                             f"{prefix}key {quote(key)} appears twice (first at line {first})",
                             "yaml.key_twice", what=where, key=quote(key), first=first)
                continue
            if key not in allowed:
                if key == "<<":
                    self.problem(key_node, field, f"{prefix}{_unknown(key, allowed)}",
                                 "yaml.merge_key", what=where)
                    continue
                close = difflib.get_close_matches(key, allowed, n=1)
                self.problem(key_node, field, f"{prefix}{_unknown(key, allowed)}",
                             "yaml.unknown_key" if close else "yaml.unknown_key_no_hint",
                             what=where, key=quote(key), hint=quote(close[0]) if close else "",
                             allowed=", ".join(allowed))
                continue
            seen[key] = value_node
            seen.key_nodes[key] = key_node
        for key in required:
            if key not in seen:
                missing = f"{what} needs {quote(key)}" if named else f"missing {quote(key)}"
                self.problem(node, field, missing, "yaml.missing", what=where, key=quote(key))
        return seen

    def sequence(self, node: Node, field: str | None, what: str) -> list[Node] | None:
        if not isinstance(node, SequenceNode):
            self._not(node, field, what, "list", "a list")
            return None
        return list(node.value)

    # -- scalars -------------------------------------------------------------------------

    def value(self, node: Node, field: str | None, what: str) -> tuple[bool, object]:
        """(True, the value yaml.safe_load would give) for a scalar; (False, None) after
        reporting anything else."""
        if not isinstance(node, ScalarNode):
            self._not(node, field, what, "single", "a single value")
            return False, None
        try:
            return True, self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problem(node, field, f"{what}: {exc}", "yaml.value", what=what,
                         detail=str(exc))
            return False, None

    def string(self, node: Node, field: str | None, what: str) -> str | None:
        """Any scalar, as written (so ``en: No`` stays the word No, not False)."""
        if not isinstance(node, ScalarNode):
            self._not(node, field, what, "text", "text")
            return None
        return "" if is_null(node) else str(node.value)

    def number(self, node: Node, field: str | None, what: str) -> float | None:
        if isinstance(node, ScalarNode) and node.tag.endswith((":int", ":float")):
            value = float(self._constructor.construct_object(node, deep=True))
            if math.isfinite(value):
                return value
        self._not(node, field, what, "number", "a number")
        return None

    def whole(self, node: Node, field: str | None, what: str) -> int | None:
        if isinstance(node, ScalarNode) and node.tag.endswith(":int"):
            return int(self._constructor.construct_object(node, deep=True))
        self._not(node, field, what, "whole", "a whole number")
        return None

    def boolean(self, node: Node, field: str | None, what: str) -> bool | None:
        if isinstance(node, ScalarNode) and node.tag.endswith(":bool"):
            return bool(self._constructor.construct_object(node, deep=True))
        self._not(node, field, what, "boolean", "true or false")
        return None


def _unknown(key: str, allowed: tuple[str, ...]) -> str:
    if key == "<<":
        return "YAML merge keys (<<) are not supported; write the fields out"
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {quote(close[0])}?)" if close else ""
    return f"unknown key {quote(key)}{hint}; allowed: {', '.join(allowed)}"
