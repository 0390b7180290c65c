"""The standards model and loader, and the seven standard files in standards/.

The seed is read from tests/data/seed.zh-Hans.txt, a copy of
shared/seed/civilized-city-work-plans.zh-Hans.txt (which CI does not have); line numbers match.
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from bot.domain.standards import (
    DEFAULT_SCORING,
    SCHEMA_VERSION,
    Indicator,
    Standard,
    StandardError,
    Text,
    Verdict,
    check_files,
    load_standard,
    load_standards,
)

ROOT = Path(__file__).resolve().parents[2]
STANDARDS = ROOT / "standards"
SEED_LINES = (ROOT / "tests" / "data" / "seed.zh-Hans.txt").read_text("utf-8").splitlines()

# file stem (= id) -> (top-level items, sub-items, leaf steps). DOMAIN.md's table.
EXPECTED = {
    "subdistrict_office": (12, 0, 12),
    "cultural_station": (7, 0, 7),
    "community": (12, 7, 18),
    "community_cultural_center": (5, 0, 5),
    "mall": (16, 4, 19),
    "hotel": (17, 0, 17),
    "dining_window": (2, 0, 2),
}
MINE = ("subdistrict_office", "cultural_station", "community", "community_cultural_center")


def load(stem: str) -> Standard:
    return load_standard(STANDARDS / f"{stem}.yaml")


def top_level(standard: Standard) -> list[str]:
    """Top-level item numbers, in order (a heading counts once)."""
    seen: list[str] = []
    for item in standard.items:
        head = item.key.split(".")[0]
        if head not in seen:
            seen.append(head)
    return seen


# --------------------------------------------------------------------------------------------
# The files in standards/


def test_the_directory_loads_clean() -> None:
    assert check_files([STANDARDS]) == []
    standards = load_standards(STANDARDS)
    assert set(standards) == set(EXPECTED)


@pytest.mark.parametrize("stem", EXPECTED)
def test_counts(stem: str) -> None:
    standard = load(stem)
    items, sub_items, leaves = EXPECTED[stem]
    assert standard.id == stem  # file name and id agree, so a file is easy to find
    assert len(top_level(standard)) == items
    assert sum(1 for i in standard.items if i.parent_text is not None) == sub_items
    assert len(standard.items) == leaves


def test_totals_across_all_files() -> None:
    standards = [load(stem) for stem in EXPECTED]
    assert sum(len(top_level(s)) for s in standards) == 71
    assert sum(1 for s in standards for i in s.items if i.parent_text is not None) == 11


def _seed_range(standard: Standard) -> list[str]:
    first, _, last = standard.source_lines.partition("-")
    return SEED_LINES[int(first) - 1 : int(last or first)]


@pytest.mark.parametrize("stem", EXPECTED)
def test_zh_text_is_the_seed_verbatim(stem: str) -> None:
    """Each item's zh is its whole seed line after the number (and its 、), within the source."""
    standard = load(stem)
    lines = _seed_range(standard)
    assert lines, f"{stem}: source lines {standard.source_lines!r} are outside the seed"

    def on_a_line(number: str, zh: str, *, heading: bool = False) -> bool:
        # Line 47 is "10无障碍…": the 、 is optional. A heading may drop its introducing colon.
        endings = ("", ":", "：") if heading else ("",)
        return any(
            line in (f"{number}、{zh}{end}", f"{number}{zh}{end}")
            for line in lines
            for end in endings
        )

    for item in standard.items:
        assert item.text.zh in "\n".join(SEED_LINES), f"{stem} {item.number}: not in the seed"
        if item.parent_text is None:
            assert on_a_line(item.number, item.text.zh), f"{stem} {item.number}: not a whole line"
        else:
            head, _, _ = item.key.partition(".")
            own = item.number.removeprefix(head)
            assert on_a_line(own, item.text.zh), f"{stem} {item.number}: not a whole line"
            assert on_a_line(head, item.parent_text.zh, heading=True), f"{stem} {head}: heading"


@pytest.mark.parametrize("stem", EXPECTED)
def test_every_step_is_complete(stem: str) -> None:
    standard = load(stem)
    assert standard.name.zh and standard.name.en and standard.source.zh and standard.source.en
    for item in standard.items:
        assert item.text.zh.strip() and item.text.en.strip()
        assert item.text.en != item.text.zh
        assert {Verdict.COMPLIANT, Verdict.NONCOMPLIANT} <= set(item.verdicts)
        assert item.weight > 0 and item.deadline_days >= 1
        assert set(item.rules) <= set(item.verdicts)
        assert standard.item(item.key) is item


@pytest.mark.parametrize("stem", MINE)
def test_english_is_english(stem: str) -> None:
    for item in load(stem).items:
        for text in (item.text, *item.hints, *item.rules.values()):
            assert not re.search(r"[\u4e00-\u9fff]", text.en), f"{stem} {item.number}: {text.en}"


def test_community_item_12_is_a_heading_with_seven_steps() -> None:
    community = load("community")
    subs = [i for i in community.items if i.key.startswith("12.")]
    assert [i.key for i in subs] == [f"12.{n}" for n in range(1, 8)]
    assert [i.number for i in subs] == ["12①", "12②", "12③", "12④", "12⑤", "12⑥", "12⑦"]
    assert {i.parent_text for i in subs} == {
        Text(
            zh="未成年人思想道德建设测评要求:",
            en=subs[0].parent_text.en if subs[0].parent_text else "",
        )
    }
    # The heading weighs as one item: its weight 1 is shared by the seven steps.
    assert sum(i.weight for i in subs) == pytest.approx(1.0)
    assert community.item("12.3").number == "12③"
    assert community.index("12.3") == 13
    assert community.item("10").text.zh.startswith("无障碍设施完善")  # seed line 47: "10无障碍…"


def test_mall_item_14_is_a_heading_with_four_steps() -> None:
    mall = load("mall")
    assert [i.number for i in mall.items if i.key.startswith("14.")] == [
        "14①",
        "14②",
        "14③",
        "14④",
    ]


def test_cultural_station_rules_and_notes_come_from_the_seed() -> None:
    station = load("cultural_station")
    seed = "\n".join(SEED_LINES[28:36])
    for item in station.items:
        assert item.rules, f"item {item.number} has no verdict rule"
        for rule in item.rules.values():
            assert rule.zh in seed, rule.zh
    assert station.item("1").verdicts == (Verdict.COMPLIANT, Verdict.BASIC, Verdict.NONCOMPLIANT)
    for key in "234567":
        # "…为符合,否则为不符合": these items know no 基本符合.
        assert station.item(key).verdicts == (Verdict.COMPLIANT, Verdict.NONCOMPLIANT)
    notes = {"2": "霉味", "3": "堆放杂物", "4": "开放不正常", "5": "烟头", "7": "考察记录"}
    for key, word in notes.items():
        assert any(word in hint.zh for hint in station.item(key).hints), key
    # No river nearby: the seed says record 符合 and explain, so no na.
    assert Verdict.NA not in station.item("7").verdicts


def test_na_only_where_the_seed_sets_a_condition() -> None:
    with_na = [(s, i.number) for s in MINE for i in load(s).items if Verdict.NA in i.verdicts]
    assert with_na == [("community", "12⑥")]


@pytest.mark.parametrize(
    ("stem", "key", "indicator"),
    [
        ("subdistrict_office", "1", Indicator.STATIC),  # committee, documents, records
        ("subdistrict_office", "10", Indicator.DYNAMIC),  # litter, touting, order
        ("cultural_station", "5", Indicator.DYNAMIC),  # smoking, butts
        ("community", "5", Indicator.DYNAMIC),  # environment, pets, parking
        ("community", "7", Indicator.STATIC),  # rosters, records
        ("community", "12.2", Indicator.STATIC),  # plaque, rules, records
        ("community_cultural_center", "3", Indicator.STATIC),  # activity records
    ],
)
def test_indicator_examples(stem: str, key: str, indicator: Indicator) -> None:
    item = load(stem).item(key)
    assert item.indicator is indicator
    # Unless a file says otherwise, dynamic failures need a photo and static ones do not.
    assert item.photo_on_fail is (indicator is Indicator.DYNAMIC)


def test_default_scoring_when_the_file_has_none(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", VALID.replace(SCORING_BLOCK, ""))
    assert load_standard(path).scoring == DEFAULT_SCORING
    assert dict(DEFAULT_SCORING) == {
        Verdict.COMPLIANT: 100,
        Verdict.BASIC: 60,
        Verdict.NONCOMPLIANT: 0,
    }


# --------------------------------------------------------------------------------------------
# Hash and snapshots


def test_content_hash_is_the_sha256_of_canonical_json() -> None:
    standard = load("community")
    canonical = json.dumps(
        standard.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    assert standard.content_hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert load("community").content_hash == standard.content_hash


@pytest.mark.parametrize("stem", EXPECTED)
def test_from_dict_round_trips(stem: str) -> None:
    standard = load(stem)
    again = Standard.from_dict(standard.to_dict())
    assert again == standard
    assert again.content_hash == standard.content_hash
    # Through real JSON too, as the database stores it.
    stored = Standard.from_dict(json.loads(json.dumps(standard.to_dict(), ensure_ascii=False)))
    assert stored == standard and hash(stored) == hash(standard)
    assert stored.to_dict()["schema"] == SCHEMA_VERSION


def test_layout_does_not_change_the_hash_but_content_does(tmp_path: Path) -> None:
    base = load_standard(write(tmp_path, "a.yaml", VALID))
    relaid = VALID.replace(
        "verdicts: [compliant, basic, noncompliant]", "verdicts: [noncompliant, compliant, basic]"
    ).replace("schema: 1\n", "# a comment\nschema: 1\n")
    assert load_standard(write(tmp_path, "b.yaml", relaid)).content_hash == base.content_hash
    edited = VALID.replace("Keep it clean", "Keep it clean.")
    assert load_standard(write(tmp_path, "c.yaml", edited)).content_hash != base.content_hash


def test_from_dict_rejects_a_malformed_snapshot() -> None:
    data = load("hotel").to_dict()
    del data["items"][0]["indicator"]
    with pytest.raises(StandardError, match="malformed snapshot"):
        Standard.from_dict(data)


def test_text_get() -> None:
    text = Text(zh="符合", en="Compliant")
    assert text.get("zh") == text.get("zh-hans") == text.get("zh-CN") == "符合"
    assert text.get("en") == text.get("ru") == "Compliant"


# --------------------------------------------------------------------------------------------
# Errors: one readable line naming file, line and item

SCORING_BLOCK = """\
scoring:
  compliant: 100
  basic: 60
  noncompliant: 0
"""
VALID = (
    """\
schema: 1
id: demo
name: {zh: 示例, en: Demo}
source: {zh: 示例来源, en: Demo source, lines: "1-3"}
"""
    + SCORING_BLOCK
    + """\
items:
  - no: "1"
    text: {zh: 保持整洁, en: Keep it clean}
    indicator: dynamic
    verdicts: [compliant, basic, noncompliant]
  - no: "2"
    text: {zh: 有制度, en: Has rules}
    indicator: static
    deadline_days: 30
  - no: "3"
    text: {zh: 标题, en: Heading}
    indicator: static
    sub_items:
      - no: "①"
        text: {zh: 第一, en: First}
      - no: "②"
        text: {zh: 第二, en: Second}
      - no: "③"
        text: {zh: 第三, en: Third}
"""
)


def write(directory: Path, name: str, content: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(content), "utf-8")
    return path


def line_of(content: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing needle."""
    hits = [n for n, line in enumerate(content.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def only_error(path: Path) -> StandardError:
    errors = check_files([path])
    assert len(errors) == 1, [str(e) for e in errors]
    with pytest.raises(StandardError) as raised:
        load_standard(path)
    assert str(raised.value) == str(errors[0])
    return errors[0]


def test_the_valid_example_loads(tmp_path: Path) -> None:
    standard = load_standard(write(tmp_path, "demo.yaml", VALID))
    assert [i.number for i in standard.items] == ["1", "2", "3①", "3②", "3③"]
    assert [i.key for i in standard.items] == ["1", "2", "3.1", "3.2", "3.3"]
    assert standard.item("3.2").parent_text == Text(zh="标题", en="Heading")
    assert standard.item("3.2").indicator is Indicator.STATIC  # inherited from the heading
    assert standard.item("3.2").weight == pytest.approx(1 / 3)
    assert standard.item("1").deadline_days == 7  # DEFAULT_DEADLINE_DAYS without defaults
    assert standard.item("2").deadline_days == 30
    assert standard.source_lines == "1-3"


def test_syntax_error(tmp_path: Path) -> None:
    content = VALID.replace("name: {zh: 示例, en: Demo}", "name: {zh: 示例, en: Demo")
    error = only_error(write(tmp_path, "bad.yaml", content))
    assert error.file.endswith("bad.yaml") and error.line is not None
    assert "YAML syntax error" in str(error)
    assert re.match(r".*bad\.yaml:\d+: YAML syntax error: ", str(error))


def test_unknown_verdict(tmp_path: Path) -> None:
    content = VALID.replace("[compliant, basic, noncompliant]", "[compliant, maybe, noncompliant]")
    path = write(tmp_path, "hotel.yaml", content)
    error = only_error(path)
    line = line_of(content, "maybe")
    assert str(error) == (
        f'{path}:{line}: item 1: verdict "maybe" is not one of compliant, basic, noncompliant, na'
    )
    assert (error.line, error.item) == (line, "1")


def test_duplicate_number(tmp_path: Path) -> None:
    content = VALID.replace('- no: "2"', '- no: "1"')
    error = only_error(write(tmp_path, "dup.yaml", content))
    assert error.line == line_of(content, '- no: "1"', 2)
    assert error.item == "1"
    assert 'number "1" is used twice' in error.problem and "first at line" in error.problem


def test_duplicate_sub_item_number_names_the_sub_item(tmp_path: Path) -> None:
    content = VALID.replace('- no: "③"', '- no: "①"')
    error = only_error(write(tmp_path, "dup.yaml", content))
    assert error.item == "3①" and error.line == line_of(content, '- no: "①"', 2)


def test_missing_en(tmp_path: Path) -> None:
    content = VALID.replace("{zh: 有制度, en: Has rules}", "{zh: 有制度}")
    path = write(tmp_path, "missing.yaml", content)
    error = only_error(path)
    assert str(error) == f'{path}:{line_of(content, "有制度")}: item 2: text needs "en"'


def test_empty_text(tmp_path: Path) -> None:
    content = VALID.replace("en: Second}", 'en: "  "}')
    error = only_error(write(tmp_path, "empty.yaml", content))
    assert (error.item, error.problem) == ("3②", "text.en is empty")
    assert error.line == line_of(content, "第二")


def test_unknown_key(tmp_path: Path) -> None:
    content = VALID.replace("    deadline_days: 30", "    deadline_day: 30")
    error = only_error(write(tmp_path, "typo.yaml", content))
    assert error.line == line_of(content, "deadline_day:")
    assert error.item == "2"
    assert error.problem.startswith('unknown key "deadline_day" (did you mean "deadline_days"?)')


def test_unknown_top_level_key(tmp_path: Path) -> None:
    content = VALID.replace("schema: 1\n", "schema: 1\nversion: 3\n")
    error = only_error(write(tmp_path, "top.yaml", content))
    assert (error.line, error.item) == (2, None)
    assert 'unknown key "version"' in error.problem


@pytest.mark.parametrize(
    ("old", "new", "problem", "needle"),
    [
        ("compliant: 100", "compliant: 150", "scoring.compliant is 150; it must be 0..100", "150"),
        ("basic: 60", "basic: high", 'scoring.basic must be a number, not "high"', "high"),
        (
            "basic: 60",
            "basic: 100",
            "scoring: compliant (100) must be worth more than basic (100)",
            "basic: 100",
        ),
        (
            "noncompliant: 0",
            "na: 0",
            "scoring: na has no value; na answers are left out of the score",
            "na: 0",
        ),
    ],
)
def test_bad_scoring(tmp_path: Path, old: str, new: str, problem: str, needle: str) -> None:
    content = VALID.replace(old, new)
    errors = check_files([write(tmp_path, "scoring.yaml", content)])
    assert any(
        e.problem == problem and e.line == line_of(content, needle) and e.item is None
        for e in errors
    ), [str(e) for e in errors]


def test_scoring_must_value_every_verdict_used(tmp_path: Path) -> None:
    content = VALID.replace("  basic: 60\n", "")
    error = only_error(write(tmp_path, "scoring.yaml", content))
    assert error.item == "1" and error.line == line_of(content, "scoring:")
    assert error.problem == "verdict basic is used but the scoring block gives it no value"


@pytest.mark.parametrize(
    ("old", "new", "item", "problem"),
    [
        ("    deadline_days: 30", "    deadline_days: 0", "2", "deadline_days is 0; it must be"),
        ("    deadline_days: 30", "    deadline_days: 2.5", "2", "deadline_days must be a whole"),
        (
            "    deadline_days: 30",
            "    weight: heavy",
            "2",
            'weight must be a number, not "heavy"',
        ),
        ("    deadline_days: 30", "    weight: -1", "2", "weight is -1; it must be more than 0"),
        ("    deadline_days: 30", "    photo_on_fail: maybe", "2", "photo_on_fail must be true"),
        ("    indicator: dynamic", "    indicator: moving", "1", 'indicator "moving" is not one'),
        ("    indicator: dynamic\n", "", "1", 'missing "indicator" (static or dynamic)'),
        ("[compliant, basic, noncompliant]", "[compliant, basic]", "1", "must include noncomp"),
        ("[compliant, basic, noncompliant]", "[compliant, compliant, noncompliant]", "1", "twice"),
        ('- no: "2"', "- no: [2]", "#2", "no must be the seed's number as text"),
        ('- no: "2"', '- no: "2.1"', "#2", 'no "2.1" must be 1..8 characters without'),
    ],
)
def test_item_field_problems(tmp_path: Path, old: str, new: str, item: str, problem: str) -> None:
    content = VALID.replace(old, new, 1)
    assert content != VALID
    error = only_error(write(tmp_path, "item.yaml", content))
    assert error.item == item and problem in error.problem, str(error)
    assert error.line is not None and f":{error.line}: item {item}: " in str(error)


def test_rules_must_match_the_verdicts(tmp_path: Path) -> None:
    content = VALID.replace(
        "    deadline_days: 30\n",
        "    deadline_days: 30\n    verdicts: [compliant, noncompliant]\n"
        "    rules:\n      basic: {zh: 一般, en: So-so}\n",
    )
    error = only_error(write(tmp_path, "rules.yaml", content))
    assert error.item == "2" and error.line == line_of(content, "basic: {zh: 一般")
    assert error.problem.startswith("rules.basic is given but basic is not among")


def test_duplicate_key_in_a_mapping(tmp_path: Path) -> None:
    content = VALID.replace(
        "    deadline_days: 30", "    deadline_days: 30\n    deadline_days: 14"
    )
    error = only_error(write(tmp_path, "twice.yaml", content))
    assert error.item == "2" and error.line == line_of(content, "deadline_days: 14")
    assert error.problem.startswith('key "deadline_days" appears twice')


def test_yaml_1_1_booleans_do_not_bite(tmp_path: Path) -> None:
    # safe_load would read the key `no` as False and `en: No` as the boolean False.
    content = VALID.replace("en: Keep it clean}", "en: No}").replace('- no: "2"', "- no: 2")
    standard = load_standard(write(tmp_path, "bools.yaml", content))
    assert standard.item("1").text.en == "No"
    assert standard.item("2").number == "2"


def test_every_problem_is_reported_and_the_first_is_raised(tmp_path: Path) -> None:
    content = (
        VALID.replace("id: demo", "id: Demo")
        .replace("indicator: dynamic", "indicator: moving")
        .replace("en: Third}", "en: ''}")
    )
    path = write(tmp_path, "many.yaml", content)
    errors = check_files([path])
    assert [e.line for e in errors] == sorted(e.line or 0 for e in errors)
    assert len(errors) == 3, [str(e) for e in errors]
    with pytest.raises(StandardError) as raised:
        load_standard(path)
    assert raised.value.line == line_of(content, "id: Demo")
    assert "lower-case" in raised.value.problem


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "the file is empty"),
        ("- just\n- a list\n", "the file must be a mapping, not a list"),
        ("schema: 2\nid: x\n", "schema"),
        ("a: 1\n---\nb: 2\n", "YAML syntax error"),
        ("schema: 1\nid: a: b\n", "YAML syntax error: mapping values are not allowed here"),
    ],
)
def test_whole_file_problems(tmp_path: Path, content: str, problem: str) -> None:
    errors = check_files([write(tmp_path, "odd.yaml", content)])
    assert errors and problem in str(errors[0]), [str(e) for e in errors]


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    missing = check_files([tmp_path / "nope.yaml"])
    assert len(missing) == 1 and "cannot read" in str(missing[0])
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert "not UTF-8" in str(check_files([latin])[0])


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", VALID)
    second = write(tmp_path, "b.yaml", VALID)
    errors = check_files([tmp_path])
    assert [(e.file, e.line) for e in errors] == [(str(second), line_of(VALID, "id: demo"))]
    assert errors[0].problem.startswith('id "demo" is already used by')
    with pytest.raises(StandardError, match=r"b\.yaml:\d+: id \"demo\" is already used"):
        load_standards(tmp_path)


def test_load_standards_raises_on_a_bad_file(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", VALID)
    write(tmp_path, "bad.yaml", VALID.replace("indicator: static", "indicator: still", 1))
    with pytest.raises(StandardError, match=r"bad\.yaml:\d+: item 2: indicator \"still\""):
        load_standards(tmp_path)


def test_error_messages_are_single_lines_without_tracebacks(tmp_path: Path) -> None:
    contents = ["{", "items: [", VALID.replace("text:", "text: [", 1), "id: [1, 2\n"]
    for n, content in enumerate(contents):
        for error in check_files([write(tmp_path, f"x{n}.yaml", content)]):
            assert "\n" not in str(error) and "Traceback" not in str(error)


def test_every_step_key_is_unique_within_each_file() -> None:
    for stem in EXPECTED:
        keys = Counter(i.key for i in load(stem).items)
        assert max(keys.values()) == 1


def test_the_example_in_schema_md_loads(tmp_path: Path) -> None:
    """The documentation's example is what a city official will copy: it must be valid."""
    schema_md = (STANDARDS / "SCHEMA.md").read_text("utf-8")
    match = re.search(r"```yaml\n(.*?)```", schema_md, re.S)
    assert match is not None
    example = load_standard(write(tmp_path, "gas_station.yaml", match[1]))
    assert [i.number for i in example.items] == ["1", "2", "3①", "3②"]
    assert example.item("3.1").indicator is Indicator.DYNAMIC  # inherited from the heading
    assert example.item("3.2").verdicts[-1] is Verdict.NA
