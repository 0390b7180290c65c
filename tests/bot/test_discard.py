"""An inspector gives up an open inspection: asked first, nothing scored, the site free again."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.standards import Standard
from bot.render.i18n import t
from db.models import Answer, Inspection, Person, Task
from tests.bot.conftest import (
    EN,
    HOTEL,
    ZH,
    ZHANG,
    Chat,
    buttons,
    data_where,
    header,
    open_hotel,
    verdict,
)
from tests.bot.fakes import JSON

Sessions = async_sessionmaker[AsyncSession]


def discard_button(message: JSON) -> str:
    return data_where(message, lambda _text, data: data.startswith("d:") and data.count(":") == 1)


async def two_answers_then_list(zhang: Chat) -> tuple[JSON, JSON]:
    """Answer two hotel items, then /inspect: (the inspection's message, the open list)."""
    msg = await open_hotel(zhang)
    msg = await zhang.press(msg, data_where(msg, verdict("c")))
    msg = await zhang.press(msg, data_where(msg, verdict("b")))
    listing = await zhang.say("/inspect")
    return msg, listing


async def test_discarding_asks_first_and_keeping_changes_nothing(
    zhang: Chat, db: Sessions
) -> None:
    _, listing = await two_answers_then_list(zhang)
    assert listing["text"] == t(ZH, "inspect.open_list")
    assert [text for text, _ in buttons(listing)][1] == t(ZH, "button.discard")

    question = await zhang.press(listing, discard_button(listing))
    assert question["text"] == t(ZH, "inspect.discard_question", site=HOTEL, answered=2,
                                 total=17)
    back = await zhang.press(question, data_where(question, lambda _t, d: d.endswith(":no")))
    assert back["text"] == t(ZH, "inspect.open_list")
    async with db() as s:
        assert (await s.scalars(select(Inspection.status))).all() == ["open"]


async def test_a_discarded_inspection_scores_nothing_and_frees_the_site(
    zhang: Chat, db: Sessions, hotel_standard: Standard
) -> None:
    inspection_msg, listing = await two_answers_then_list(zhang)
    question = await zhang.press(listing, discard_button(listing))
    done = await zhang.press(question, data_where(question, lambda _t, d: d.endswith(":yes")))

    # Told what happened, then offered a site: there is no other open inspection.
    assert done["text"].startswith(t(ZH, "inspect.discarded", site=HOTEL, answered=2, total=17))
    assert done["text"].endswith(t(ZH, "inspect.choose_site"))
    assert HOTEL in [text for text, _ in buttons(done)]
    async with db() as s:
        insp = (await s.scalars(select(Inspection))).one()
        answers = (await s.scalars(select(Answer))).all()
        person = await s.get(Person, ZHANG.id)
        tasks = (await s.scalars(select(Task))).all()
    assert insp.status == "discarded" and insp.score_overall is None
    assert len(answers) == 2  # kept for the record, void
    assert person is not None and person.active_inspection_id is None
    assert tasks == []

    # The inspection's own message lost its buttons; a press on it anyway is explained.
    assert buttons(zhang.api.message(zhang.id, inspection_msg["message_id"])) == []
    await zhang.press(inspection_msg, data_where(inspection_msg, verdict("c")))
    assert zhang.answer()["text"] == t(ZH, "inspect.already_discarded")

    # The hotel can be inspected again, from item 1.
    fresh = await zhang.press(done, data_where(done, lambda text, _d: text == HOTEL))
    assert fresh["text"].startswith(header(hotel_standard, 1))
    async with db() as s:
        statuses = sorted((await s.scalars(select(Inspection.status))).all())
    assert statuses == ["discarded", "open"]


async def test_only_its_inspector_can_discard_it(
    zhang: Chat, resident: Chat, db: Sessions
) -> None:
    _, listing = await two_answers_then_list(zhang)
    foreign = discard_button(listing)
    greeting = await resident.say("/start")
    await resident.press(greeting, foreign + ":yes")
    assert resident.answer()["text"] == t(ZH, "inspect.not_yours")
    async with db() as s:
        assert (await s.scalars(select(Inspection.status))).all() == ["open"]


async def test_the_discard_question_is_in_english_too(zhang: Chat) -> None:
    await two_answers_then_list(zhang)
    chooser = await zhang.say("/lang")
    await zhang.press(chooser, data_where(chooser, lambda _t, d: d == "l:en"))
    listing = await zhang.say("/inspect")
    assert [text for text, _ in buttons(listing)][1] == t(EN, "button.discard")
    question = await zhang.press(listing, discard_button(listing))
    # Issue 11 item 12: the site by its English name from the organisation file.
    assert question["text"] == t(EN, "inspect.discard_question",
                                 site="Dongling Crowne Plaza Hotel", answered=2, total=17)
