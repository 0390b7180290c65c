"""The one parser of role names, for stored rows, the organisation file, /invite and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.domain.roles import Role, parse_role, role_of


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reads_back_from_its_key(role: Role) -> None:
    assert parse_role(role.key) is role


def test_the_short_unit_is_only_taken_when_asked_for() -> None:
    assert parse_role("unit") is None
    assert parse_role("unit", short=True) is Role.UNIT_MEMBER


@pytest.mark.parametrize("name", ["", "Inspector", "ADMIN", "owner", None, 3])
def test_anything_else_names_no_role(name: object) -> None:
    assert parse_role(name) is None


@dataclass
class _Row:
    role: str


def test_a_stored_role_this_version_does_not_know_counts_as_a_resident() -> None:
    assert role_of(_Row("inspector")) is Role.INSPECTOR
    assert role_of(_Row("superuser")) is Role.RESIDENT
