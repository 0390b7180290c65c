"""Who may do what. Roles are ranked: an admin may do what an inspector may, and so on."""

from __future__ import annotations

from enum import IntEnum

from bot.domain.errors import NotAllowed


class Role(IntEnum):
    RESIDENT = 0
    UNIT_MEMBER = 1
    INSPECTOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, name: str) -> Role:
        return cls[name.upper()]

    @property
    def key(self) -> str:
        return self.name.lower()


def require(role: Role, minimum: Role) -> None:
    """Raise NotAllowed unless `role` is at least `minimum`."""
    if role < minimum:
        raise NotAllowed("error.role_required", role=f"role.{minimum.key}")
