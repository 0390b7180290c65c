"""People: who someone is on first contact, invites that grant roles, groups bound to units."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.errors import DomainError, NotAllowed
from bot.domain.roles import Role, require, role_of
from bot.services.org_import import apply_pending
from db.models import GroupBinding, Invite, Person, Unit
from db.uow import UnitOfWork

INVITE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no look-alikes: l/1, o/0


@dataclass(frozen=True)
class TelegramUser:
    """The parts of a Telegram user the bot keeps."""

    id: int
    first_name: str
    username: str | None
    language_code: str | None


async def ensure_person(
    uow: UnitOfWork, user: TelegramUser, admin_ids: frozenset[int], now: datetime
) -> tuple[Person, bool]:
    """The person behind a Telegram user, created on first contact. Returns (person, changed)."""
    repo = uow.people
    person = await repo.get(user.id)
    changed = False
    if person is None:
        person, added = await repo.add(Person(
            id=user.id, first_name=user.first_name, username=user.username,
            telegram_language=user.language_code, role=Role.RESIDENT.key, created_at=now,
        ))
        if added:
            changed = True
            changed |= await apply_pending(uow, person)
    else:
        fresh = (user.first_name, user.username, user.language_code)
        if (person.first_name, person.username, person.telegram_language) != fresh:
            person.first_name, person.username, person.telegram_language = fresh
            changed = True
    if user.id in admin_ids and person.role != Role.ADMIN.key:
        person.role = Role.ADMIN.key
        changed = True
    return person, changed


async def find_person(
    uow: UnitOfWork, user: TelegramUser, admin_ids: frozenset[int]
) -> Person | None:
    """The person if known and up to date; None if they must be created or refreshed."""
    person = await uow.people.get(user.id)
    if person is None or not is_current(person, user, admin_ids):
        return None
    return person


def is_current(person: Person, user: TelegramUser, admin_ids: frozenset[int]) -> bool:
    """Whether the stored person still matches what Telegram says about them."""
    fresh = (user.first_name, user.username, user.language_code)
    if (person.first_name, person.username, person.telegram_language) != fresh:
        return False
    return not (user.id in admin_ids and person.role != Role.ADMIN.key)


async def attached(uow: UnitOfWork, person: Person) -> Person:
    """The same person, loaded in this unit of work so that changes are saved."""
    found = await uow.people.get_to_change(person.id)
    if found is None:
        raise DomainError("error.unknown_person")
    return found


async def create_invite(
    uow: UnitOfWork, admin: Person, role: Role, unit_query: str | None, max_uses: int,
    ttl: timedelta, now: datetime,
) -> tuple[Invite, Unit | None]:
    require(role_of(admin), Role.ADMIN)
    if role not in (Role.INSPECTOR, Role.UNIT_MEMBER, Role.ADMIN):
        raise DomainError("invite.bad_role")
    unit = None
    if role is Role.UNIT_MEMBER:
        if not unit_query:
            raise DomainError("invite.unit_required")
        unit = await find_one_unit(uow, unit_query)
    if not 1 <= max_uses <= 500:
        raise DomainError("invite.bad_uses")
    code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(12))
    invite = Invite(code=code, role=role.key, unit_id=unit.id if unit else None,
                    created_by=admin.id, expires_at=now + ttl, max_uses=max_uses, uses=0)
    await uow.people.add_invite(invite)
    return invite, unit


async def redeem_invite(
    uow: UnitOfWork, person: Person, code: str, now: datetime
) -> tuple[Role, Unit | None, bool]:
    """Grant the invite's role. Returns (role, unit, newly_granted); repeats are harmless."""
    repo = uow.people
    invite = await repo.invite(code)
    if invite is None:
        raise DomainError("invite.unknown")
    unit = await repo.unit(invite.unit_id) if invite.unit_id else None
    role = role_of(invite)
    if await repo.invite_used_by(code, person.id):
        return role, unit, False
    if invite.expires_at <= now:
        raise DomainError("invite.expired")
    if invite.uses >= invite.max_uses:
        raise DomainError("invite.used_up")
    if not await repo.record_invite_use(invite, person.id):
        raise DomainError("invite.used_up")
    # An invite never lowers someone: an admin who opens an inspector link stays admin.
    if role >= role_of(person):
        person.role = role.key
    if unit is not None:
        person.unit_id = unit.id
    return role, unit, True


async def find_one_unit(uow: UnitOfWork, query: str) -> Unit:
    repo = uow.people
    exact = await repo.unit_by_code(query)
    if exact is not None:
        return exact
    units = await repo.find_units(query)
    exact_names = [u for u in units if query in (u.name_zh, u.name_en)]
    if len(exact_names) == 1:
        return exact_names[0]
    if len(units) == 1:
        return units[0]
    if not units:
        raise DomainError("unit.not_found", query=query)
    raise DomainError("unit.ambiguous", query=query,
                      candidates=tuple(f"{u.name_zh} ({u.code})" for u in units[:6]))


async def bind_group(
    uow: UnitOfWork, person: Person, chat_id: int, title: str, unit_query: str, now: datetime
) -> GroupBinding:
    if role_of(person) < Role.ADMIN:
        raise NotAllowed("bind.admin_only")
    unit = await find_one_unit(uow, unit_query)
    binding = await uow.people.bind_group(chat_id, unit.id, title,
                                                             person.id, now)
    return binding


async def group_unit(uow: UnitOfWork, chat_id: int) -> Unit | None:
    repo = uow.people
    binding = await repo.group(chat_id)
    if binding is None or not binding.active:
        return None
    return await repo.unit(binding.unit_id)


async def deactivate_group(uow: UnitOfWork, chat_id: int) -> bool:
    binding = await uow.people.group(chat_id)
    if binding is None or not binding.active:
        return False
    binding.active = False
    return True
