"""The organisation file parser: the demo parses, and broken files say where and what."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.config import DEMO_CITY
from bot.domain.org import OrgFile, OrgFileError, load_org_file, parse_org

ROOT = Path(__file__).resolve().parents[2]
DEMO = DEMO_CITY

# The standards' ids (standards/*.yaml). Spelled out rather than read from the directory so
# this test does not depend on every standard being written yet.
SITE_TYPES = {
    "subdistrict_office", "cultural_station", "community", "community_cultural_center",
    "mall", "hotel", "dining_window",
}

GOOD = """\
schema: 1
units:
  - code: xx_subdistrict          # line 3: a child before its parent is fine
    name: {zh: XX街道, en: XX Sub-district}
    kind: subdistrict
    parent: district_office
  - code: district_office
    name: 区创文办
    kind: office
    parent: null
sites:
  - code: crowne_plaza
    name: 东岭皇冠假日酒店
    type: hotel
    location: [34.36, 107.24]
    unit: xx_subdistrict
people:
  - telegram_id: 10001
    role: inspector
    sites: [crowne_plaza]
groups:
  - chat_id: -1001001
    unit: xx_subdistrict
"""


def parse(text: str) -> OrgFile:
    return parse_org(textwrap.dedent(text), source="org.yaml", known_site_types=SITE_TYPES)


def problems(text: str) -> list[str]:
    with pytest.raises(OrgFileError) as info:
        parse(text)
    assert info.value.problems, "an OrgFileError must list its problems"
    return info.value.problems


def test_demo_file_parses() -> None:
    org = load_org_file(DEMO, SITE_TYPES)
    codes = {u.code: u for u in org.units}
    liaison = [u for u in org.units if u.kind == "liaison_group"]
    assert [u.name_zh for u in liaison] == [f"第{n}网络包抓联络小组" for n in range(1, 6)]
    assert codes["district_office"].parent is None
    assert {u.kind for u in org.units} >= {"office", "subdistrict", "community", "department"}
    assert {s.site_type for s in org.sites} == SITE_TYPES
    key_sites = {s.name for s in org.sites if s.unit.startswith("liaison_")}
    assert {"东岭皇冠假日酒店", "银泰城", "大润发", "海棠假日酒店", "建国饭店", "新冠森建材城",
            "恒源酒店", "铁苑宾馆", "华润万家超市", "惠邻购物广场", "家美佳华通店",
            "家美佳西关店"} <= key_sites
    assert all(s.latitude is not None and 34 < s.latitude < 35 for s in org.sites)
    assert {p.telegram_id: p.role for p in org.people} == {
        10000: "admin", 10001: "inspector", 10002: "inspector",
        10011: "unit_member", 10012: "unit_member", 10013: "unit_member",
    }
    assert [g.chat_id for g in org.groups] == [-1001001, -1001002, -1001003, -1001004,
                                              -1001005, -1001006, -1001007]


def test_good_file_values_and_forward_parent() -> None:
    org = parse(GOOD)
    assert org.units[0].parent == "district_office"
    assert (org.units[1].name_zh, org.units[1].name_en) == ("区创文办", "")
    site = org.sites[0]
    assert (site.latitude, site.longitude, site.address) == (34.36, 107.24, "")
    assert org.people[0].sites == ("crowne_plaza",)
    assert org.people[0].unit is None
    assert org.groups[0].title == ""
    assert org.units[0].line == 3


def test_empty_sections_are_allowed() -> None:
    org = parse("schema: 1\nunits:\npeople: []\n")
    assert org.units == () and org.people == ()


@pytest.mark.parametrize(
    ("text", "line", "entry", "fragment"),
    [
        (GOOD.replace("    kind: office", "    kind: office\n    colour: red"),
         10, "unit 'district_office'", 'unknown key "colour"'),
        (GOOD.replace("    kind: subdistrict\n", ""), 3, "unit 'xx_subdistrict'",
         "missing field 'kind'"),
        (GOOD.replace("kind: subdistrict", "kind: township"), 5, "unit 'xx_subdistrict'",
         "'township' is not one of"),
        (GOOD.replace("parent: district_office", "parent: nowhere"), 6,
         "unit 'xx_subdistrict'", "parent 'nowhere' is not a unit"),
        (GOOD.replace("sites:\n", "  - {code: xx_subdistrict, name: 重, kind: office}\nsites:\n"),
         11, "unit 'xx_subdistrict'", "duplicate unit code 'xx_subdistrict' (first at line 3)"),
        (GOOD.replace("parent: district_office", "parent: District Office"), 6,
         "unit 'xx_subdistrict'", "'parent' 'District Office' is not a code"),
        (GOOD.replace("type: hotel", "type: casino"), 14, "site 'crowne_plaza'",
         "'casino' is not a site type with a standard"),
        (GOOD.replace("[34.36, 107.24]", "[107.24, 34.36]"), 15, "site 'crowne_plaza'",
         "latitude 107.24 is out of range -90..90"),
        (GOOD.replace("[34.36, 107.24]", "[34.36, 190]"), 15, "site 'crowne_plaza'",
         "longitude 190 is out of range"),
        (GOOD.replace("[34.36, 107.24]", "[34.36]"), 15, "site 'crowne_plaza'",
         "[latitude, longitude]"),
        (GOOD.replace("    unit: xx_subdistrict\npeople", "    unit: liaison_9\npeople"), 16,
         "site 'crowne_plaza'", "no unit with code 'liaison_9'"),
        (GOOD.replace("role: inspector", "role: mayor"), 19, "person 10001",
         "'mayor' is not one of admin, inspector, unit_member"),
        (GOOD.replace("sites: [crowne_plaza]", "sites: [crowne_plaza, yintai]"), 20,
         "person 10001", "no site with code 'yintai'"),
        (GOOD.replace("role: inspector\n    sites: [crowne_plaza]", "role: unit_member"), 18,
         "person 10001", "a unit_member needs 'unit'"),
        (GOOD.replace("telegram_id: 10001", "telegram_id: -5"), 18, "person -5",
         "not a Telegram user id"),
        (GOOD.replace("chat_id: -1001001", "chat_id: 1001001"), 22, "group 1001001",
         "group ids are negative numbers"),
        (GOOD.replace("chat_id: -1001001", "chat_id: abc"), 22, "group abc",
         "must be a whole number"),
        (GOOD.replace("schema: 1", "schema: 2"), 1, "file", "schema 2 is not supported"),
        (GOOD.replace("schema: 1\n", ""), 1, "file", "missing 'schema: 1'"),
        (GOOD + "extras: []\n", 24, "file", 'unknown key "extras"'),
        (GOOD.replace("    name: 区创文办\n", "    name: 区创文办\n    name: again\n"), 9,
         "unit 'district_office'", 'key "name" appears twice (first at line 8)'),
        (GOOD.replace("name: {zh: XX街道, en: XX Sub-district}", "name: {en: XX Sub-district}"),
         4, "unit 'xx_subdistrict'", "missing field 'zh'"),
    ],
)
def test_problem_names_line_and_entry(text: str, line: int, entry: str, fragment: str) -> None:
    found = problems(text)
    assert len(found) == 1, found
    assert found[0].startswith(f"org.yaml:{line}: {entry}: "), found[0]
    assert fragment in found[0], found[0]


def test_parent_cycle_is_reported_once() -> None:
    text = GOOD.replace("parent: null", "parent: xx_subdistrict")
    [message] = problems(text)
    assert "parent cycle" in message
    assert "xx_subdistrict" in message and "district_office" in message


def test_self_parent_is_a_cycle() -> None:
    [message] = problems(GOOD.replace("parent: null", "parent: district_office"))
    assert message.startswith("org.yaml:7: unit 'district_office': parent cycle")


def test_duplicate_people_and_groups() -> None:
    text = GOOD + "  - chat_id: -1001001\n    unit: district_office\n"
    [message] = problems(text)
    assert message == (
        "org.yaml:24: group -1001001: duplicate chat_id -1001001 (first at line 22)"
    )


def test_all_problems_are_collected() -> None:
    text = """\
    schema: 1
    units:
      - code: a
        name: {zh: 甲}
        kind: planet
        parent: b
      - code: a
        name: 乙
        kind: office
      - name: 丙
        kind: office
    sites:
      - code: s1
        name: 点位
        type: hotel
        location: [95, 200]
        unit: zz
    people:
      - telegram_id: 0
        role: boss
    groups:
      - chat_id: 42
        unit: a
    """
    found = problems(text)
    expected = [
        ("org.yaml:5: unit 'a'", "'planet'"),
        ("org.yaml:6: unit 'a'", "parent 'b'"),
        ("org.yaml:7: unit 'a'", "duplicate unit code 'a'"),
        ("org.yaml:10: unit #3", "missing field 'code'"),
        ("org.yaml:16: site 's1'", "latitude 95"),
        ("org.yaml:17: site 's1'", "no unit with code 'zz'"),
        ("org.yaml:19: person 0", "not a Telegram user id"),
        ("org.yaml:20: person 0", "'boss'"),
        ("org.yaml:22: group 42", "negative"),
    ]
    # Every problem, in file order whichever pass found it.
    assert len(found) == len(expected), found
    for problem, (prefix, fragment) in zip(found, expected, strict=True):
        assert problem.startswith(prefix + ": ") and fragment in problem, problem


def test_invalid_yaml_names_the_line() -> None:
    [message] = problems("schema: 1\nunits:\n  - code: [unclosed\n")
    assert message.startswith("org.yaml:4: YAML syntax error")


def test_not_a_map_and_empty_file() -> None:
    assert problems("- 1\n- 2\n") == ["org.yaml:1: file: the file must be a mapping, not a list"]
    assert problems("") == ["org.yaml:1: file: the file is empty"]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(OrgFileError) as info:
        load_org_file(tmp_path / "missing.yaml", SITE_TYPES)
    assert "cannot read" in info.value.problems[0]


def test_error_message_lists_every_problem() -> None:
    with pytest.raises(OrgFileError) as info:
        parse(GOOD.replace("type: hotel", "type: casino").replace("role: inspector", "role: x"))
    assert str(info.value).startswith("2 problems in the organisation file:\n")


def test_site_types_are_the_standards_ids() -> None:
    # One standard file per site type, named by its id (docs/ARCHITECTURE.md §1); file names
    # rather than a full load, so a standard being edited elsewhere does not break this test.
    assert {p.stem for p in (ROOT / "standards").glob("*.yaml")} >= SITE_TYPES


def test_a_site_may_have_an_english_name_beside_the_chinese() -> None:
    """Issue 11 item 12: sites, like units, take {zh, en}; a plain string is zh only; the
    demo city gives every unit and site an English name."""
    org = parse(GOOD.replace("name: 东岭皇冠假日酒店",
                             "name: {zh: 东岭皇冠假日酒店, en: Dongling Crowne Plaza}"))
    site = org.sites[0]
    assert (site.name, site.name_en) == ("东岭皇冠假日酒店", "Dongling Crowne Plaza")
    assert parse(GOOD).sites[0].name_en == ""
    demo = load_org_file(DEMO, SITE_TYPES)
    assert all(s.name_en for s in demo.sites) and all(u.name_en for u in demo.units)
