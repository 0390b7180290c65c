"""Blocking: an admin's /block and /unblock of a resident."""

from __future__ import annotations

import re

from bot.domain.errors import DomainError, NotAllowed, NotFound
from bot.domain.roles import Role, role_of
from bot.services.reports import drafts, queries
from bot.services.reports.context import ReportContext
from db.models import Person
from db.uow import UnitOfWork

# A Telegram user id as an admin types it: ASCII digits only (str.isdigit() also takes "③",
# which int() refuses), and short enough for a BIGINT (Telegram's ids fit in 52 bits).
USER_ID_RE = re.compile(r"[0-9]{1,16}")


async def set_blocked(
    ctx: ReportContext, uow: UnitOfWork, admin: Person, target: str, blocked: bool
) -> tuple[Person, int]:
    """/block and /unblock, by Telegram user id or by a ticket of theirs."""
    if role_of(admin) < Role.ADMIN:
        raise NotAllowed("error.role_required", role="role.admin")
    target = target.strip()
    if USER_ID_RE.fullmatch(target):
        person = await uow.people.get(int(target))
    else:
        report = await queries.by_ref(uow, target)
        person = await uow.people.get(report.reporter_id)
    if person is None:
        raise NotFound("reports.no_such_person", who=target)
    if role_of(person) >= Role.ADMIN:
        raise DomainError("reports.cannot_block_admin")
    person.blocked = blocked
    if blocked:
        await drafts.cancel_draft(uow, person)
    return person, await uow.people.first_contact_rank(person.id)
