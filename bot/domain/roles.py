"""Who may do what. Roles are ranked: an admin may do what an inspector may, and so on."""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol

from bot.domain.errors import NotAllowed


class Role(IntEnum):
    RESIDENT = 0
    UNIT_MEMBER = 1
    INSPECTOR = 2
    ADMIN = 3

    @property
    def key(self) -> str:
        return self.name.lower()


# The names a role is written with: its key everywhere (the database, the organisation file,
# the CLI); /invite also takes the short "unit".
_NAMES = {role.key: role for role in Role}
_SHORT = {"unit": Role.UNIT_MEMBER}


def parse_role(name: object, *, short: bool = False) -> Role | None:
    """The role a name means (``inspector``, ``unit_member``, … and, with `short`, ``unit``);
    None when it names no role. The one parser of role names."""
    if not isinstance(name, str):
        return None
    if short and name in _SHORT:
        return _SHORT[name]
    return _NAMES.get(name)  # (not `or`: RESIDENT is 0, falsy)


class HasRole(Protocol):
    @property
    def role(self) -> str: ...


def role_of(person: HasRole) -> Role:
    """A person's role; a stored name this version does not know counts as a resident."""
    return parse_role(person.role) or Role.RESIDENT


def require(role: Role, minimum: Role) -> None:
    """Raise NotAllowed unless `role` is at least `minimum`."""
    if role < minimum:
        raise NotAllowed("error.role_required", role=f"role.{minimum.key}")
