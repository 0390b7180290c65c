"""Message catalogues: both languages complete, every key the code uses exists, HTML-safe."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest

from bot.domain.checklist import Gap
from bot.domain.roles import Role
from bot.domain.standards import Indicator, Verdict
from bot.media.sanitize import RejectReason
from bot.render.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    Html,
    catalogue,
    h,
    normalize_language,
    placeholders,
    t,
)
from bot.telegram.commands import COMMANDS, GROUP_COMMANDS

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "bot", ROOT / "handlers", ROOT / "scheduler"]
ERRORS = {"DomainError", "NotAllowed", "NotFound", "StaleAction"}
# f-string keys the code builds at run time; each family is enumerated in dynamic_keys().
FAMILIES = {
    "verdict.", "indicator.", "role.", "help.", "start.greeting.", "gap.", "image.",
    "command.", "lang.name.",
    # The assessment's components, table columns and import problems (bot/render/assessment.py).
    "assessment.component.", "assessment.column.", "assessment.problem.",
    # The battle map's statuses (bot/render/battlemap.py, bot/media/battlemap.py).
    "assessment.map.status.",
    # A YAML file's problems as the sender is told them (bot/render/file_problems.py).
    "yaml.expected.", "yaml.kind.",
}


def python_files() -> Iterator[Path]:
    for directory in SOURCES:
        if directory.is_dir():
            yield from sorted(directory.rglob("*.py"))


def _call_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _key_arg(call: ast.Call) -> ast.expr | None:
    """The argument that names a catalogue message, for t(), context.t() and domain errors."""
    name = _call_name(call)
    if name in ERRORS:
        return call.args[0] if call.args else None
    if name == "t":
        # t(lang, key, ...) from bot.render.i18n; context.t(key, ...) on the context.
        if isinstance(call.func, ast.Name):
            return call.args[1] if len(call.args) > 1 else None
        return call.args[0] if call.args else None
    return None


def _assigned(func: ast.AST, name: str) -> list[ast.expr]:
    return [
        node.value
        for node in ast.walk(func)
        if isinstance(node, ast.Assign)
        and any(isinstance(tg, ast.Name) and tg.id == name for tg in node.targets)
    ]


def _literals(node: ast.expr, scope: ast.AST) -> tuple[list[str], list[str]]:
    """(literal keys, f-string prefixes) an argument expression can take."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value], []
    if isinstance(node, ast.IfExp):
        a, pa = _literals(node.body, scope)
        b, pb = _literals(node.orelse, scope)
        return a + b, pa + pb
    if isinstance(node, ast.JoinedStr):
        first = node.values[0] if node.values else None
        prefix = first.value if isinstance(first, ast.Constant) else ""
        return [], [str(prefix)]
    if isinstance(node, ast.Name):
        keys: list[str] = []
        prefixes: list[str] = []
        for value in _assigned(scope, node.id):
            k, p = _literals(value, scope)
            keys += k
            prefixes += p
        return keys, prefixes
    return [], []


class Use:
    def __init__(self, file: Path, line: int, key: str, names: set[str] | None) -> None:
        self.where = f"{file.relative_to(ROOT)}:{line}"
        self.key = key
        self.names = names  # keyword values passed, or None when **values is forwarded


def _innermost_functions(tree: ast.Module) -> dict[ast.AST, ast.AST]:
    """Each node mapped to the function that most closely encloses it (or the module)."""
    owner: dict[ast.AST, ast.AST] = {}

    def visit(node: ast.AST, scope: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else scope
            owner[child] = inner
            visit(child, inner)

    visit(tree, tree)
    return owner


def scan() -> tuple[list[Use], set[str]]:
    uses: list[Use] = []
    prefixes: set[str] = set()
    for path in python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        owner = _innermost_functions(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            scope = owner.get(node, tree)
            arg = _key_arg(node)
            if arg is not None:
                keys, found = _literals(arg, scope)
                prefixes.update(found)
                forwarded = any(kw.arg is None for kw in node.keywords)
                names = None if forwarded else {kw.arg for kw in node.keywords if kw.arg}
                uses += [Use(path, node.lineno, k, names) for k in keys]
            elif _call_name(node) == "site_choice_screen":
                # site_choice_screen(sites, lang, title_key) passes its key on to t().
                for given in node.args[2:3] + [k.value for k in node.keywords]:
                    keys, _ = _literals(given, scope)
                    uses += [Use(path, node.lineno, k, set()) for k in keys]
    return uses, prefixes


def dynamic_keys() -> set[str]:
    keys = {f"verdict.{v.value}" for v in Verdict}
    keys |= {f"indicator.{i.value}" for i in Indicator}
    keys |= {f"role.{r.key}" for r in Role}
    keys |= {f"help.{r.key}" for r in Role} | {"help.group"}
    keys |= {f"start.greeting.{r.key}" for r in Role}
    keys |= {f"gap.{g.value}" for g in Gap}
    keys |= {f"image.{reason}" for reason in get_args(RejectReason)}
    keys |= {f"command.{name}" for names in COMMANDS.values() for name in names}
    keys |= {f"command.{name}" for name in GROUP_COMMANDS}
    keys |= {f"lang.name.{code}" for code in LANGUAGES}
    return keys


# ---- the catalogues agree -------------------------------------------------------------------


def test_both_catalogues_have_the_same_keys() -> None:
    zh, en = catalogue("zh-hans"), catalogue("en")
    assert sorted(set(zh) - set(en)) == [], "only in zh-Hans"
    assert sorted(set(en) - set(zh)) == [], "only in en"


def test_both_catalogues_have_the_same_placeholders_per_key() -> None:
    zh, en = catalogue("zh-hans"), catalogue("en")
    differ = {
        key: (placeholders(zh[key]), placeholders(en[key]))
        for key in set(zh) & set(en)
        if placeholders(zh[key]) != placeholders(en[key])
    }
    assert differ == {}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_formats_with_its_placeholders(lang: str) -> None:
    for key, template in catalogue(lang).items():
        values = {name: "x" for name in placeholders(template)}
        assert t(lang, key, **values), key


# ---- every key the code uses exists --------------------------------------------------------


def test_the_scan_finds_the_code_uses() -> None:
    # Guard against a scan that silently finds nothing (a renamed helper, a moved package).
    uses, _ = scan()
    keys = {u.key for u in uses}
    assert {"checklist.photo_required", "inspect.not_yours", "invite.expired"} <= keys
    assert {"inspect.choose_site", "inspect.photo_unexpected", "start.invite_already"} <= keys
    assert len(uses) > 80


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_literal_key_in_the_code_exists(lang: str) -> None:
    uses, _ = scan()
    known = catalogue(lang)
    missing = sorted({f"{u.where} {u.key}" for u in uses if u.key not in known})
    assert missing == []


def test_every_literal_key_gets_the_values_its_message_needs() -> None:
    uses, _ = scan()
    known = catalogue(DEFAULT_LANGUAGE)
    short = sorted(
        f"{u.where} {u.key}: needs {sorted(placeholders(known[u.key]) - u.names)}"
        for u in uses
        if u.names is not None and u.key in known and not placeholders(known[u.key]) <= u.names
    )
    assert short == []


def test_every_built_key_belongs_to_a_known_family() -> None:
    _, prefixes = scan()
    assert prefixes, "the scan should find f-string keys such as verdict.{...}"
    assert sorted(p for p in prefixes if p not in FAMILIES) == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_dynamic_key_exists(lang: str) -> None:
    known = catalogue(lang)
    assert sorted(dynamic_keys() - set(known)) == []


def test_role_required_names_a_translatable_role() -> None:
    # require() passes role="role.<name>"; the error handler translates it before formatting.
    for role in Role:
        assert f"role.{role.key}" in catalogue("en")
    assert "{role}" in catalogue("en")["error.role_required"]


# ---- formatting ----------------------------------------------------------------------------


def test_values_are_html_escaped() -> None:
    text = t("en", "start.greeting.resident", name="<b>Tom & Jerry</b>")
    assert "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;" in text
    assert "<b>Tom" not in text


def test_html_values_are_inserted_as_they_are() -> None:
    text = t("en", "start.greeting.resident", name=Html("<b>Tom</b>"))
    assert "<b>Tom</b>" in text


def test_h_escapes_once_and_marks_the_result_safe() -> None:
    safe = h("<i>a & b</i>")
    assert isinstance(safe, Html)
    assert safe == "&lt;i&gt;a &amp; b&lt;/i&gt;"
    text = t("en", "start.greeting.resident", name=safe)
    assert "&lt;i&gt;a &amp; b&lt;/i&gt;" in text
    assert "&amp;lt;" not in text  # not escaped twice


def test_non_text_values_are_formatted() -> None:
    assert "3" in t("en", "checklist.incomplete", count=3)


def test_unknown_language_falls_back_to_the_default() -> None:
    assert t("fr", "lang.set") == t(DEFAULT_LANGUAGE, "lang.set")


def test_unknown_key_raises() -> None:
    with pytest.raises(KeyError):
        t("en", "no.such.message")


def test_the_two_languages_differ() -> None:
    assert t("en", "verdict.compliant") != t("zh-hans", "verdict.compliant")


# ---- language codes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("zh-CN", "zh-hans"),
        ("zh-hans", "zh-hans"),
        ("zh-Hans", "zh-hans"),
        ("zh-TW", "zh-hans"),
        ("zh", "zh-hans"),
        ("en", "en"),
        ("en-US", "en"),
        ("EN-gb", "en"),
        (None, DEFAULT_LANGUAGE),
        ("", DEFAULT_LANGUAGE),
        ("fr", DEFAULT_LANGUAGE),
    ],
)
def test_normalize_language(code: str | None, expected: str) -> None:
    assert normalize_language(code) == expected


def test_normalize_language_honours_a_given_default() -> None:
    assert normalize_language("fr", default="en") == "en"
    assert normalize_language(None, default="en") == "en"
    assert DEFAULT_LANGUAGE == "zh-hans"
