"""An inspector's morning list and its buttons (tryout of issue 14, defects 4, 8 and 9), through
the real application: the list is delivered by the outbox as on a real morning; a press leaves
it where it is and starts the inspection in a new message below; a submitted inspection ticks
the site off on the list itself; a re-check names its task and item; a button of yesterday's
list says the inspection is late, one of a site already done asks first, and someone else's,
an unknown or a forged one is refused."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from telegram.request import RequestData

from bot.app import WenmingApplication
from bot.config import DEFAULTS_DIR
from bot.domain.plans import load_plans
from bot.domain.standards import Standard
from bot.render.i18n import t
from bot.services import plans
from bot.telegram.outbox import OutboxSender
from db.models import OutboxMessage, PlanOccurrence, Site, Task
from db.outbox_keys import dedup_key
from tests.bot import conftest as bot
from tests.bot.conftest import HOTEL, ZH, Chat, TgUser, buttons, data_where
from tests.bot.fakes import JSON, FakeBotAPI
from tests.conftest import FakeClock

ADMIN = TgUser(10000, "王管理")
SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = dt.date(2026, 12, 7)


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), SHANGHAI).astimezone(dt.UTC)


async def morning(app: WenmingApplication, clock: FakeClock, api: FakeBotAPI, zhang: Chat,
                  recheck_item: str | None = None) -> tuple[JSON, OutboxSender]:
    """Monday 07:30: the plans imported, the morning run (with, if asked, a re-check of a
    closed task of the hotel's item `recheck_item` on 张督查's list) and his list delivered
    by the outbox. Returns the list as it sits in his chat, and the outbox sender."""
    deps = bot.deps_of(app)
    clock.now = at(MONDAY, 7)
    await zhang.say("/start")
    async with deps.uow() as uow:
        await plans.import_plans(uow, load_plans(DEFAULTS_DIR / "plans.yaml"), clock.now)
        if recheck_item is not None:
            hotel = (await uow.session.scalars(select(Site).where(Site.name == HOTEL))).one()
            task = Task(source="inspection", item_key=recheck_item, site_id=hotel.id,
                        unit_id=hotel.unit_id, title="1.1 门前三包责任制落实",
                        title_en="1.1 Frontage responsibility", status="closed",
                        due_at=clock.now, closed_at=clock.now - dt.timedelta(days=3))
            uow.session.add(task)
            await uow.session.flush()
            await plans.add_occurrences(uow, MONDAY, [(hotel.id, "recheck", task.id)],
                                        clock.now)
            await uow.session.execute(update(PlanOccurrence).values(inspector_id=zhang.id))
        await plans.run_morning(uow, MONDAY, SHANGHAI, clock.now, ZH)
        await uow.commit(mark_update_handled=False)
    clock.now = at(MONDAY, 7) + dt.timedelta(minutes=30)
    sender = OutboxSender(app.bot, deps.uow.sessions, deps.clock, chat_interval=0)
    await sender.drain_once()
    listed = zhang.last()
    assert listed["text"].startswith(t(ZH, "plans.list.title", date="12月7日"))
    return listed, sender


def after(api: FakeBotAPI, chat: Chat, message: JSON) -> list[JSON]:
    """The bot's messages in the chat below `message`."""
    return [m for m in api.sent(chat.id) if m["message_id"] > message["message_id"]]


async def inspect_all_compliant(chat: Chat, msg: JSON, standard: Standard) -> JSON:
    for _ in standard.items:
        msg = await chat.press(msg, data_where(msg, bot.verdict("c")))
    return await chat.press(msg, data_where(msg, bot.action("submit")))


async def test_the_list_stays_and_is_ticked_when_the_inspection_is_submitted(
    app: WenmingApplication, clock: FakeClock, api: FakeBotAPI, zhang: Chat,
    hotel_standard: Standard,
) -> None:
    """Defect 8: pressing a site edited the list into the inspection; the list was gone."""
    listed, sender = await morning(app, clock, api, zhang)
    hotel = data_where(listed, lambda text, _d: HOTEL in text)
    assert hotel.startswith("pg:") and len(hotel.encode()) <= 64

    still = await zhang.press(listed, hotel)
    assert still["text"] == listed["text"] and buttons(still) == buttons(listed)
    below = after(api, zhang, listed)
    assert len(below) == 1 and below[0]["text"].startswith(bot.header(hotel_standard, 1))

    await inspect_all_compliant(zhang, below[0], hotel_standard)
    await sender.drain_once()  # the list's edit goes out through the outbox
    ticked = api.message(zhang.id, listed["message_id"])
    assert f"{t(ZH, 'plans.mark.done')} {HOTEL}" in ticked["text"]
    assert not [text for text, _ in buttons(ticked) if HOTEL in text]
    assert len(buttons(ticked)) == len(buttons(listed)) - 1  # the others still to do


async def test_a_recheck_names_its_task_and_item_on_the_list_and_before_the_inspection(
    app: WenmingApplication, clock: FakeClock, api: FakeBotAPI, zhang: Chat,
    chat_with: Callable[[TgUser], Chat], hotel_standard: Standard,
) -> None:
    """Defect 4: a 复查 button started a plain inspection; nothing said what it re-checks."""
    item = hotel_standard.items[2]
    listed, _ = await morning(app, clock, api, zhang, recheck_item=item.key)
    async with bot.deps_of(app).uow.read() as uow:
        task_id = (await uow.session.scalars(select(Task.id))).one()
    assert t(ZH, "plans.kind.recheck_task", id=task_id, title="1.1 门前三包责任制落实") \
        in listed["text"]

    await zhang.press(listed, data_where(listed, lambda text, _d: HOTEL in text))
    notice, screen = after(api, zhang, listed)
    assert f"#{task_id}" in notice["text"] and "1.1 门前三包责任制落实" in notice["text"]
    assert f"{item.number} {item.text.zh}" in notice["text"]
    assert screen["text"].startswith(bot.header(hotel_standard, 1))

    # 张督查 gives it up; with the hotel open by someone else, the notice still comes,
    # above the question whether to go on.
    inspection = data_where(screen, bot.verdict("c")).split(":")[1]
    await zhang.press(screen, f"d:{inspection}:yes")
    async with bot.deps_of(app).uow.read() as uow:
        hotel_id = (await uow.session.scalars(select(Site.id).where(Site.name == HOTEL))).one()
    admin = chat_with(ADMIN)
    carrier = await admin.say("/start")
    await admin.press(carrier, f"s:{hotel_id}")
    assert admin.last()["text"].startswith(bot.header(hotel_standard, 1))
    before = zhang.last()
    await zhang.press(listed, data_where(listed, lambda text, _d: HOTEL in text))
    notice, question = after(api, zhang, before)
    assert f"#{task_id}" in notice["text"]
    assert "王管理" in question["text"] and buttons(question)


async def test_old_done_foreign_and_forged_list_buttons_say_so(
    app: WenmingApplication, clock: FakeClock, api: FakeBotAPI, zhang: Chat,
    chat_with: Callable[[TgUser], Chat], hotel_standard: Standard,
) -> None:
    """Defect 9: an old list's button, or a done site's, started an inspection unannounced."""
    listed, _ = await morning(app, clock, api, zhang)
    hotel = data_where(listed, lambda text, _d: HOTEL in text)
    await zhang.press(listed, hotel)
    await inspect_all_compliant(zhang, zhang.last(), hotel_standard)

    # The hotel is done: its button (on a list not redrawn, e.g. /today's) asks first.
    question_at = zhang.last()
    await zhang.press(listed, hotel)
    question = zhang.last()
    assert question["message_id"] > question_at["message_id"]
    assert question["text"] == t(ZH, "plans.press.done", site=HOTEL, date="12月7日")
    again = data_where(question, lambda _t, d: d.endswith(":go"))
    await zhang.press(question, again)
    assert not buttons(api.message(zhang.id, question["message_id"]))
    assert zhang.last()["text"].startswith(bot.header(hotel_standard, 1))
    await inspect_all_compliant(zhang, zhang.last(), hotel_standard)

    # Tuesday: Monday's list still has its buttons; one pressed is a late inspection.
    clock.now = at(MONDAY + dt.timedelta(days=1), 9)
    async with bot.deps_of(app).uow.read() as uow:
        tuesday = {r.site_id for r in await uow.plans.of_day(MONDAY + dt.timedelta(days=1))}
        monday = {r.id: r.site_id for r in await uow.plans.of_day(MONDAY)}
    late = data_where(listed, lambda text, d: d.startswith("pg:") and HOTEL not in text
                      and monday[int(d.split(":")[1])] not in tuesday)
    before = zhang.last()
    await zhang.press(listed, late)
    notice, screen = after(api, zhang, before)
    assert notice["text"] == t(ZH, "plans.press.late", date="12月7日")
    assert "第 1/" in screen["text"]

    # Over a week later, a press on the (by now days-old) list: the inspection no longer
    # counts for Monday's round, and the notice says so.
    clock.now = at(MONDAY + dt.timedelta(days=9), 9)
    other = data_where(listed, lambda text, d: d.startswith("pg:") and d != late
                       and HOTEL not in text)
    before = zhang.last()
    await zhang.press_old(listed, other)
    notice, screen = after(api, zhang, before)
    assert notice["text"] == t(ZH, "plans.press.too_old", date="12月7日")
    assert "第 1/" in screen["text"]

    # Someone else pressing 张督查's button (forged: buttons are not forwarded) is refused,
    # without learning the site; unknown and malformed ids are expired buttons.
    admin = chat_with(ADMIN)
    carrier = await admin.say("/start")
    await admin.press(carrier, late)
    assert admin.answer()["text"] == t(ZH, "plans.press.not_yours")
    assert admin.last()["message_id"] == carrier["message_id"]
    for forged in ("pg:99999999", "pg:x", "pg:1:2:3", f"{late}:nope"):
        await zhang.press(listed, forged)
        assert zhang.answer()["text"] == t(ZH, "plans.press.expired"), forged


async def test_a_recheck_names_the_item_as_the_tasks_inspection_knew_it(
    app: WenmingApplication, clock: FakeClock, api: FakeBotAPI, zhang: Chat,
    hotel_standard: Standard,
) -> None:
    """Review of issue 14: the re-checked item was looked up in today's standard; after the
    standard is renumbered it could name another item. It comes from the version the task's
    inspection was made with (its pinned snapshot)."""
    from db.models import Inspection, StandardVersion

    item = hotel_standard.items[2]
    listed, _ = await morning(app, clock, api, zhang, recheck_item=item.key)
    body = hotel_standard.to_dict()
    old = next(i for i in body["items"] if i["key"] == item.key)
    old["number"], old["text"] = "9", {"zh": "旧版第九条：大堂整洁", "en": "Old item 9"}
    async with bot.deps_of(app).uow() as uow:
        hotel = (await uow.session.scalars(select(Site).where(Site.name == HOTEL))).one()
        uow.session.add(StandardVersion(content_hash="p" * 64, standard_id=hotel_standard.id,
                                        body=body))
        await uow.session.flush()
        inspection = Inspection(site_id=hotel.id, inspector_id=zhang.id, status="submitted",
                                standard_id=hotel_standard.id, standard_hash="p" * 64)
        uow.session.add(inspection)
        await uow.session.flush()
        await uow.session.execute(update(Task).values(inspection_id=inspection.id))
        await uow.commit(mark_update_handled=False)
    await zhang.press(listed, data_where(listed, lambda text, _d: HOTEL in text))
    notice = after(api, zhang, listed)[0]
    assert "9 旧版第九条：大堂整洁" in notice["text"], notice["text"]
    assert item.text.zh not in notice["text"]


async def test_a_list_ticked_in_the_seconds_it_is_being_sent_shows_the_tick(
    app: WenmingApplication, clock: FakeClock, api: FakeBotAPI, zhang: Chat,
    hotel_standard: Standard,
) -> None:
    """The morning list is in flight (claimed by the outbox, not yet answered) when an
    inspection of one of its sites is submitted: the list goes out as it was claimed, and
    the tick follows it as an edit (it used to be lost: the row was rewritten, the message
    was not)."""
    deps = bot.deps_of(app)
    clock.now = at(MONDAY, 7)
    await zhang.say("/start")
    async with deps.uow() as uow:
        await plans.import_plans(uow, load_plans(DEFAULTS_DIR / "plans.yaml"), clock.now)
        await plans.run_morning(uow, MONDAY, SHANGHAI, clock.now, ZH)
        await uow.commit(mark_update_handled=False)
    clock.now = at(MONDAY, 7) + dt.timedelta(minutes=30)
    title = t(ZH, "plans.list.title", date="12月7日")
    today = await zhang.say("/today")  # his other way to the same sites
    assert today["text"].startswith(title)

    in_flight, answer = asyncio.Event(), asyncio.Event()
    send = api.do_request

    async def held(url: str, method: str, request_data: RequestData | None = None,
                   *args: object, **kwargs: object) -> tuple[int, bytes]:
        text = request_data.parameters.get("text") if request_data is not None else None
        if url.endswith("/sendMessage") and str(text).startswith(title) \
                and not in_flight.is_set():
            in_flight.set()
            await answer.wait()
        return await send(url, method, request_data, *args, **kwargs)  # type: ignore[arg-type]

    api.do_request = held  # type: ignore[method-assign]
    sender = OutboxSender(app.bot, deps.uow.sessions, deps.clock, chat_interval=0)
    sending = asyncio.create_task(sender.drain_once())
    await asyncio.wait_for(in_flight.wait(), 10)

    await zhang.press(today, data_where(today, lambda text, _d: HOTEL in text))
    await inspect_all_compliant(zhang, zhang.last(), hotel_standard)
    answer.set()
    await sending
    async with deps.uow.read() as uow:
        row = (await uow.session.scalars(select(OutboxMessage).where(
            OutboxMessage.dedup_key == dedup_key("plans", MONDAY.isoformat(), zhang.id)))).one()
    assert row.status == "sent" and row.sent_message_id is not None
    listed = api.message(zhang.id, row.sent_message_id)
    assert f"{t(ZH, 'plans.mark.done')} {HOTEL}" not in listed["text"]  # sent as claimed

    await sender.drain_once()
    ticked = api.message(zhang.id, row.sent_message_id)
    assert f"{t(ZH, 'plans.mark.done')} {HOTEL}" in ticked["text"]
    assert not [text for text, _ in buttons(ticked) if HOTEL in text]


async def test_pausing_a_plan_takes_its_rounds_not_done_today_off_the_lists(
    app: WenmingApplication, clock: FakeClock, api: FakeBotAPI, zhang: Chat,
    chat_with: Callable[[TgUser], Chat], hotel_standard: Standard,
) -> None:
    """Tryout: a plan paused at 07:40 kept its rounds on the day's lists, and the next
    morning's digest called every one of them missed. Now pausing withdraws the rounds not
    done yet (a done one stays), the delivered list is redrawn without them, and the admin is
    told how many."""
    listed, sender = await morning(app, clock, api, zhang)
    hotel = data_where(listed, lambda text, _d: HOTEL in text)
    await zhang.press(listed, hotel)
    await inspect_all_compliant(zhang, after(api, zhang, listed)[0], hotel_standard)
    await sender.drain_once()
    async with bot.deps_of(app).uow.read() as uow:
        due = [o for o in await uow.plans.of_day(MONDAY) if o.plan == "commerce_weekly"]
    undone = [o for o in due if o.status == "due"]
    assert undone and len(undone) < len(due)

    admin = chat_with(ADMIN)
    await admin.say("/start")
    screen = await admin.say("/plans")
    await admin.press(screen, data_where(screen, lambda _t, data: data.endswith(
        "commerce_weekly")))
    assert admin.answer()["text"] == t(ZH, "plans.admin.paused_withdrawn_toast",
                                       code="commerce_weekly", count=len(undone))
    await sender.drain_once()
    redrawn = api.message(zhang.id, listed["message_id"])
    assert f"{t(ZH, 'plans.mark.done')} {HOTEL}" in redrawn["text"]  # done stays done
    assert buttons(redrawn) == []  # nothing of the paused plan is asked of him any more
    async with bot.deps_of(app).uow.read() as uow:
        left = [o for o in await uow.plans.of_day(MONDAY) if o.plan == "commerce_weekly"]
    assert [o.status for o in left] == ["done"]


async def test_an_old_buttons_site_on_a_colleagues_list_today_says_whose_round_it_counts_for(
    app: WenmingApplication, clock: FakeClock, api: FakeBotAPI, zhang: Chat,
    chat_with: Callable[[TgUser], Chat],
) -> None:
    """Tryout: 李测评 pressed a site of his Monday list on Tuesday, when the site was on
    张督查's list: "the site is on today's list too, and this inspection counts for today's".
    It was not on his list; the inspection counts for his colleague's round, and his own
    Monday round stays missed. The notice now says so, by name."""
    listed, _ = await morning(app, clock, api, zhang)
    hotel = data_where(listed, lambda text, _d: HOTEL in text)
    li = chat_with(TgUser(10002, "李测评"))
    await li.say("/start")
    tuesday = MONDAY + dt.timedelta(days=1)
    clock.now = at(tuesday, 9)
    deps = bot.deps_of(app)
    async with deps.uow() as uow:
        hotel_id = (await uow.session.scalars(select(Site.id).where(Site.name == HOTEL))).one()
        await plans.add_occurrences(uow, tuesday, [(hotel_id, "spot", None)], clock.now)
        await uow.session.execute(update(PlanOccurrence).where(
            PlanOccurrence.day == tuesday, PlanOccurrence.site_id == hotel_id)
            .values(inspector_id=li.id))
        await uow.commit(mark_update_handled=False)
    before = zhang.last()
    await zhang.press(listed, hotel)
    notice = after(api, zhang, before)[0]
    assert notice["text"] == t(ZH, "plans.press.for_today_other", date="12月7日", who="李测评")

    # Review: on nobody's list yet, it says so (not "on today's list too").
    await zhang.say("/cancel")
    async with deps.uow() as uow:
        await uow.session.execute(update(PlanOccurrence).where(
            PlanOccurrence.day == tuesday, PlanOccurrence.site_id == hotel_id)
            .values(inspector_id=None))
        await uow.commit(mark_update_handled=False)
    before = zhang.last()
    await zhang.press(listed, hotel)
    notice = after(api, zhang, before)[0]
    assert notice["text"] == t(ZH, "plans.press.for_today_unlisted", date="12月7日")
