"""What this person's next private message is for: the stored facts, read once, put together."""

from __future__ import annotations

from dataclasses import replace

from bot.domain.checklist import Awaiting
from bot.domain.expectation import Expectation, Input, Taker, decode_pending
from bot.domain.roles import Role, role_of
from bot.services.inspections import active_inspection
from bot.services.reports.drafts import draft
from db.models import Person
from db.uow import UnitOfWork


async def expected(uow: UnitOfWork, person: Person, kind: Input) -> tuple[Taker, Expectation]:
    """Who takes a message of this kind from `person`, and what they are expected to send."""
    insp = await active_inspection(uow, person)
    facts = Expectation(
        pending=decode_pending(person.pending),
        inspection_id=insp.id if insp is not None else None,
        awaiting=Awaiting(insp.awaiting) if insp is not None and insp.awaiting else None,
        inspector=role_of(person) >= Role.INSPECTOR,
    )
    if facts.needs_draft(kind):
        report = await draft(uow, person)
        if report is not None:
            facts = replace(facts, draft_id=report.id, draft_step=report.step)
    return facts.taker(kind), facts


async def waits_for_file(uow: UnitOfWork, person: Person) -> bool:
    """Whether something this person is doing takes the file they send now: an inspection's
    evidence, a finding's or a fix's photos, the report they are writing."""
    taker, _ = await expected(uow, person, Input.PHOTO)
    return taker is not Taker.REPORT or await draft(uow, person) is not None
