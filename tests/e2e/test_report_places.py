"""Issue 11: every way a resident gives a report's place, where the report then goes, and the
draft's buttons acting only on the draft they were made for (the real bot, the sandbox)."""

from __future__ import annotations

from sqlalchemy import select

from bot.render.i18n import t
from db.models import GroupBinding, Report, Site, Unit
from tests.conftest import Harness
from tests.e2e.chat import Chat, body, data_where
from tests.e2e.test_reports import (
    ADMIN,
    JSON,
    RESIDENT,
    TICKET,
    ZH,
    button,
    has,
    latest,
    press,
)
from tests.imagegen import jpeg_with_gps

LIAISON1_GROUP = -1001003  # 第1网络包抓联络小组工作群: 银泰城's unit
YINTAI = (34.3740, 107.2180)
FIVE_METRES_NORTH = 5 / 111_000


async def _to_place_step(chat: Chat, category: str = "litter", colour: str = "#705030") -> JSON:
    """Photo, category: the message that asks for the place."""
    msg = await chat.send_photo(jpeg_with_gps(640, 480, colour))
    last = await chat.last_id()
    await press(chat, msg, data_where(msg, button(f":c:{category}")))
    return await latest(chat, has("reports.ask_place"), after=last)


async def _describe_and_submit(chat: Chat, prompt: JSON) -> str:
    """From the description prompt: skip it, submit; the ticket."""
    assert has("reports.ask_description", max=500)(prompt)
    await press(chat, prompt, data_where(prompt, button(":skip")))
    confirm = await latest(chat, has("reports.confirm_title"), after=prompt["message_id"] - 1)
    return await _submit(chat, confirm)


async def _submit(chat: Chat, confirm: JSON) -> str:
    """Submit from the confirm screen; the ticket."""
    await press(chat, confirm, data_where(confirm, button(":submit")))
    done = await latest(chat, lambda m: m["message_id"] == confirm["message_id"]
                        and TICKET.search(body(m)) is not None,
                        after=confirm["message_id"] - 1)
    match = TICKET.search(body(done))
    assert match is not None
    return match.group(0)


async def _unit_of(harness: Harness, ticket: str) -> tuple[Report, str]:
    async with harness.sessions() as s:
        report = (await s.scalars(select(Report).where(Report.ticket == ticket))).one()
        unit = await s.get(Unit, report.unit_id)
        assert unit is not None
        return report, unit.code


async def _site_id(harness: Harness, code: str) -> int:
    async with harness.sessions() as s:
        found = await s.scalar(select(Site.id).where(Site.code == code))
    assert found is not None
    return found


async def _card_in(harness: Harness, group: int, ticket: str) -> JSON:
    return await harness.sb.wait_for_bot_message(
        group, predicate=has("reports.group.title", ticket=ticket))


async def test_a_shared_location_5_m_from_a_site_goes_to_that_sites_unit(
    harness: Harness,
) -> None:
    """Issue 11 items 2 and 3: the place as a shared location; 5 m from 银泰城 it is the
    mall's liaison group's report (not the campaign office's fallback)."""
    chat = Chat(harness.sb, RESIDENT)
    await _to_place_step(chat)
    last = await chat.last_id()
    await harness.sb.send_location(RESIDENT, YINTAI[0] + FIVE_METRES_NORTH, YINTAI[1])
    prompt = await latest(chat, has("reports.ask_description", max=500), after=last)
    ticket = await _describe_and_submit(chat, prompt)
    report, unit = await _unit_of(harness, ticket)
    assert unit == "liaison_1"
    assert report.latitude is not None
    card = await _card_in(harness, LIAISON1_GROUP, ticket)
    assert "银泰城附近" in body(card)


async def test_a_typed_address_naming_no_site_is_kept_as_typed(harness: Harness) -> None:
    """Issue 11 item 2: the place as a typed address that matches no known site."""
    chat = Chat(harness.sb, RESIDENT)
    await _to_place_step(chat, "parking")
    prompt = await chat.say("西关大街与红旗路口东北角")
    ticket = await _describe_and_submit(chat, prompt)
    report, _unit = await _unit_of(harness, ticket)
    assert report.address == "西关大街与红旗路口东北角" and report.site_id is None


async def test_a_known_site_picked_from_the_list(harness: Harness) -> None:
    """Issue 11 item 2: "🏢 从已知点位中选择", then a site: it is taken (it used to answer
    "这个按钮已失效。"), and the report goes to the site's unit."""
    chat = Chat(harness.sb, RESIDENT)
    place = await _to_place_step(chat, "dogs")
    await press(chat, place, data_where(place, button(":list")))
    listing = await latest(chat, has("reports.sites_list"), after=place["message_id"] - 1)
    hotel = await _site_id(harness, "crowne_plaza")
    qid = await harness.sb.press(RESIDENT, RESIDENT, listing["message_id"],
                                 data_where(listing, lambda text, _d: text == "东岭皇冠假日酒店"))
    answer = await harness.sb.wait_for_callback_answer(qid)
    assert answer["text"] != t(ZH, "error.stale_button"), answer

    prompt = await latest(chat, has("reports.ask_description", max=500),
                          after=listing["message_id"] - 1)
    assert "东岭皇冠假日酒店" in body(prompt)
    ticket = await _describe_and_submit(chat, prompt)
    report, unit = await _unit_of(harness, ticket)
    assert report.site_id == hotel and unit == "liaison_1"
    await _card_in(harness, LIAISON1_GROUP, ticket)


async def test_a_site_offered_after_a_typed_address(harness: Harness) -> None:
    """Issue 11 item 2: a typed address that matches known sites offers them; picking one
    takes it."""
    chat = Chat(harness.sb, RESIDENT)
    await _to_place_step(chat, "traffic")
    offered = await chat.say("银泰城")
    assert has("reports.sites_matching", address="银泰城")(offered)
    yintai = await _site_id(harness, "yintai")
    await press(chat, offered, data_where(offered, lambda text, _d: text == "银泰城"))
    prompt = await latest(chat, has("reports.ask_description", max=500),
                          after=offered["message_id"] - 1)
    ticket = await _describe_and_submit(chat, prompt)
    report, unit = await _unit_of(harness, ticket)
    assert report.site_id == yintai and unit == "liaison_1"


async def test_a_typed_address_naming_a_site_goes_to_its_unit_as_typed(
    harness: Harness,
) -> None:
    """Issue 11 item 3: an address as typed ("银泰城北门", which no site's name or address
    contains, so no list is offered) names a known site: the site's unit gets the report,
    not the campaign office."""
    chat = Chat(harness.sb, RESIDENT)
    await _to_place_step(chat, "other")
    prompt = await chat.say("银泰城北门")
    ticket = await _describe_and_submit(chat, prompt)
    report, unit = await _unit_of(harness, ticket)
    assert report.address == "银泰城北门" and unit == "liaison_1"
    await _card_in(harness, LIAISON1_GROUP, ticket)


async def test_an_old_cancel_button_leaves_the_current_draft_alone(harness: Harness) -> None:
    """Issue 11 item 4: 取消 on an earlier (cancelled, then submitted) report's prompt is
    refused as stale and the draft at its confirm step stays."""
    chat = Chat(harness.sb, RESIDENT)
    dropped = await _to_place_step(chat, colour="#102030")
    await chat.say("/cancel")
    earlier = await _to_place_step(chat, colour="#203040")
    last = await chat.last_id()
    await harness.sb.send_location(RESIDENT, *YINTAI)
    prompt = await latest(chat, has("reports.ask_description", max=500), after=last)
    await _describe_and_submit(chat, prompt)
    # The current draft, at its confirm step.
    await _to_place_step(chat, colour="#304050")
    last = await chat.last_id()
    await harness.sb.send_location(RESIDENT, *YINTAI)
    prompt = await latest(chat, has("reports.ask_description", max=500), after=last)
    await press(chat, prompt, data_where(prompt, button(":skip")))
    confirm = await latest(chat, has("reports.confirm_title"), after=prompt["message_id"] - 1)
    for old in (dropped, earlier):
        qid = await harness.sb.press(RESIDENT, RESIDENT, old["message_id"],
                                     data_where(old, button(":cancel")))
        answer = await harness.sb.wait_for_callback_answer(qid)
        assert answer["text"] and answer["text"] != t(ZH, "reports.cancelled")
    async with harness.sessions() as s:
        draft = (await s.scalars(select(Report).where(Report.status == "draft"))).one()
    assert draft.step == "confirm"
    # Its own 取消 still works.
    await press(chat, confirm, data_where(confirm, button(":cancel")))
    async with harness.sessions() as s:
        assert (await s.scalars(select(Report).where(Report.status == "draft"))).all() == []


async def test_a_phone_number_typed_into_the_place_is_masked_for_the_unit(
    harness: Harness,
) -> None:
    """Issue 11 item 13: the place prompt warns that the address is forwarded; a phone and
    an ID number typed into the address and the description reach the unit's group masked
    (the card, and the task card once accepted), while the report keeps the full text."""
    chat = Chat(harness.sb, RESIDENT)
    place = await _to_place_step(chat, "litter")
    assert has("reports.address_forwarded")(place)
    address = "后祁街18号楼下 有事打13800138000"
    await chat.say(address)
    confirm = await chat.say("身份证110105199001011234的王先生说，座机 0571-88888888")
    ticket = await _submit(chat, confirm)
    report, unit = await _unit_of(harness, ticket)
    assert report.address == address  # stored in full
    assert report.description is not None and "0571-88888888" in report.description
    async with harness.sessions() as s:
        group = await s.scalar(select(GroupBinding.chat_id).join(
            Unit, Unit.id == GroupBinding.unit_id).where(Unit.code == unit))
    assert group is not None
    card = await _card_in(harness, group, ticket)
    text = body(card)
    assert "138****8000" in text and "110105********1234" in text and "0571-****8888" in text
    # Accepted, it becomes a task whose card in the group is masked as well.
    member = Chat(harness.sb, ADMIN, group)
    await press(member, card, data_where(card, button(":acc")))
    task_card = await harness.sb.wait_for_bot_message(
        group, predicate=lambda m: "整改任务" in body(m) and "138****8000" in body(m),
        timeout=15)
    leaked = [m for m in await harness.sb.bot_messages(group)
              if "13800138000" in body(m) or "199001011234" in body(m)
              or "88888888" in body(m)]
    assert leaked == [] and task_card
