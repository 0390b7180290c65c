"""The one YAML reader: line numbers, duplicate keys, typed fields, one error type."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain.yamlfile import YamlFileError, YamlReader, compose, line_of, read_text


def _reader(**kwargs: bool) -> YamlReader[YamlFileError]:
    return YamlReader("f.yaml", YamlFileError, **kwargs)



def test_an_error_names_file_line_field_and_problem() -> None:
    assert str(YamlFileError("f.yaml", 3, "item 5", "too long")) == "f.yaml:3: item 5: too long"
    assert str(YamlFileError("f.yaml", None, None, "cannot read")) == "f.yaml: cannot read"

    class ItemError(YamlFileError):
        field_prefix = "item "

    assert str(ItemError("f.yaml", 3, "5", "too long")) == "f.yaml:3: item 5: too long"


def test_fields_by_key_with_their_lines() -> None:
    root = compose("a: 1\nb:\n  - x\n", "f.yaml")
    assert root is not None
    r = _reader()
    fields = r.fields(root, None, "the file", ("a", "b"), ("a",))
    assert fields is not None and [line_of(v) for v in fields.values()] == [1, 3]
    assert line_of(fields.key("b")) == 2
    assert r.sequence(fields["b"], None, "b") is not None and not r.errors


def test_a_key_written_twice_unknown_and_missing_keys_are_problems() -> None:
    root = compose("name: a\nnmae: b\nname: c\n", "f.yaml")
    assert root is not None
    r = _reader()
    r.fields(root, "unit 'x'", "unit", ("name", "kind"), ("kind",))
    assert [str(e) for e in r.sorted_errors()] == [
        "f.yaml:1: unit 'x': unit needs \"kind\"",
        "f.yaml:2: unit 'x': unit: unknown key \"nmae\" (did you mean \"name\"?); "
        "allowed: name, kind",
        "f.yaml:3: unit 'x': unit: key \"name\" appears twice (first at line 1)",
    ]


def test_scalars_are_read_as_written_or_as_yaml_types() -> None:
    root = compose("en: No\nn: 0x1F\nw: 2.5\nb: yes\nt: 09:00\n", "f.yaml")
    assert root is not None
    r = _reader()
    f = r.fields(root, None, "the file", ("en", "n", "w", "b", "t"))
    assert f is not None
    assert r.string(f["en"], None, "en") == "No" and r.string(f["t"], None, "t") == "09:00"
    assert r.whole(f["n"], None, "n") == 31 and r.number(f["w"], None, "w") == 2.5
    assert r.boolean(f["b"], None, "b") is True
    assert r.whole(f["w"], None, "w") is None
    assert [e.problem for e in r.errors] == ['w must be a whole number, not "2.5"']


def test_first_only_raises_the_first_problem() -> None:
    root = compose("- 1\n", "f.yaml")
    assert root is not None
    with pytest.raises(YamlFileError) as raised:
        _reader(first_only=True).fields(root, None, "the file", ())
    assert str(raised.value) == "f.yaml:1: the file must be a mapping, not a list"


def test_syntax_errors_name_the_line_and_the_construct() -> None:
    with pytest.raises(YamlFileError) as raised:
        compose("a: 1\nb: [1,\n\nc: 2\n", "f.yaml")
    assert raised.value.line is not None and raised.value.line > 2
    problem = raised.value.problem
    assert problem.startswith("YAML syntax error") and "starts at line 2" in problem
    assert compose("", "f.yaml") is None


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(YamlFileError, match="cannot read"):
        read_text(tmp_path / "nope.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: café".encode("latin-1"))
    with pytest.raises(YamlFileError, match="not UTF-8"):
        read_text(latin)
    bom = tmp_path / "bom.yaml"
    bom.write_bytes("\ufeffa: 1".encode())
    assert read_text(bom) == "a: 1"
