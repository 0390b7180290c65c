"""What a button asks for in private: pending inputs, draft after-photos and notes."""

from __future__ import annotations

from datetime import datetime

from bot.domain.expectation import TaskInput, decode_pending, encode_pending
from bot.domain.tasks import NOTE, Action
from bot.services.evidence import refuse_same_as_before
from bot.services.tasks.constants import DRAFT
from bot.services.tasks.permissions import check
from bot.services.tasks.reads import get_task
from db.models import Person, Photo, Task, TaskEvent, TaskPhoto
from db.uow import UnitOfWork


async def begin_input(
    uow: UnitOfWork, person: Person, task_id: int, action: Action, expected_version: int
) -> Task:
    """A button that needs more from the person (photos, a reason, a unit): check that they may,
    and remember what their next private message is for."""
    task = await get_task(uow, task_id)
    await check(uow, person, task, action, expected_version)
    person.pending = encode_pending(TaskInput(task.id, action, task.version))
    if action is Action.SUBMIT_FIX:
        # This person's drafts from an abandoned attempt are not this fix's evidence (another
        # member's drafts, for a fix they are still writing, stay theirs).
        await drop_drafts(uow, task.id, person.id)
    return task


async def add_draft_photo(uow: UnitOfWork, person: Person, task_id: int, photo: Photo) -> int:
    """An after-photo sent while a fix is being written; returns how many are there now.

    The task's own before-photo sent again is refused (DomainError "evidence.same_as_before",
    bot/services/evidence.py): nothing is stored for it, the fix being written is kept."""
    await refuse_same_as_before(uow, task_id, photo)
    existing = await uow.inspections.photo_from_message(photo.chat_id, photo.message_id)
    if existing is None:
        uow.add(photo)
        await uow.flush()
        existing = photo
    if await uow.tasks.photo_link(task_id, existing.id) is None:
        uow.add(TaskPhoto(task_id=task_id, photo_id=existing.id, kind=DRAFT))
        await uow.flush()
    return len(await drafts(uow, task_id, person.id))


async def add_note(uow: UnitOfWork, person: Person, task_id: int, text: str,
                   now: datetime) -> None:
    """A note written with a fix, kept as an event until the fix is submitted."""
    task = await get_task(uow, task_id)
    uow.add(TaskEvent(task_id=task_id, at=now, actor_id=person.id, action=NOTE,
                      from_status=task.status, to_status=task.status,
                      reason=text.strip()[:2000], data={}))


async def drafts(uow: UnitOfWork, task_id: int, person_id: int) -> list[int]:
    """The after-photos this person has sent for the fix they are writing."""
    return await uow.tasks.photo_ids_by(task_id, DRAFT, person_id)


async def cancel_input(uow: UnitOfWork, person: Person, task_id: int) -> bool:
    """Leave the input this person was asked for on `task_id` (its drafts forgotten). False,
    and nothing touched, when they are not writing for that task any more: an old prompt's
    取消 pressed after the fix was submitted, or while they write something else."""
    pending = decode_pending(person.pending)
    if not isinstance(pending, TaskInput) or pending.task_id != task_id:
        return False
    person.pending = None
    await drop_drafts(uow, task_id, person.id)  # only this person's
    return True


async def drop_drafts(uow: UnitOfWork, task_id: int, person_id: int) -> None:
    """Forget this person's drafts for the task (a cancelled or restarted fix)."""
    for photo_id in await drafts(uow, task_id, person_id):
        await uow.tasks.unlink_photo(task_id, photo_id)


async def _fix_note(uow: UnitOfWork, task: Task, person: Person) -> str | None:
    """The notes this person wrote since the task last changed state."""
    notes = await uow.tasks.notes_since_change(task.id, person.id, NOTE)
    return "\n".join(notes) or None
