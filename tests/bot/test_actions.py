"""/actions through the real application: an admin in private, and the campaign office's
group, get the battle map (a picture) whose caption names the lagging action and its lead;
anyone else is refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Update

from bot.render.i18n import t
from db.models import Report, Task, Unit
from tests.bot.conftest import RESIDENT, ZH, ZHANG, Chat, Feed, TgUser, UpdateFactory
from tests.bot.fakes import FakeBotAPI
from tests.conftest import FakeClock

Sessions = async_sessionmaker[AsyncSession]
ADMIN = TgUser(10000, "王管理")
OFFICE_GROUP, STREET_GROUP = -1001001, -1001002  # demo city: 区创文办, 卧龙寺街道


async def parking_problems(db: Sessions, clock: FakeClock, count: int) -> None:
    """`count` parking problems of the law enforcement bureau, found three weeks ago, due
    two weeks ago and still open: 停车秩序专项整治行动 (p4_01, led by that bureau) lags."""
    found = clock.now - dt.timedelta(days=21)
    async with db() as s, s.begin():
        unit = (await s.scalars(select(Unit).where(Unit.code == "law_enforcement"))).one()
        for _ in range(count):
            report = Report(reporter_id=RESIDENT.id, status="submitted", unit_id=unit.id,
                            category="parking", submitted_at=found, created_at=found,
                            updated_at=found)
            s.add(report)
            await s.flush()
            s.add(Task(source="report", report_id=report.id, unit_id=unit.id, title="乱停车",
                       status="open", due_at=found + dt.timedelta(days=7), created_at=found))


def in_group(updates: UpdateFactory, api: FakeBotAPI, user: TgUser, chat_id: int,
             text: str) -> Update:
    update = Update.de_json({"update_id": 900 + len(api.log), "message": {
        "message_id": 1, "from": user.as_dict(), "date": api.now(), "text": text,
        "chat": {"id": chat_id, "type": "supergroup", "title": "群"},
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}]}}, updates.bot)
    assert update is not None
    return update


async def test_an_admin_gets_the_battle_map_naming_the_lagging_actions_lead(
    chat_with: Callable[[TgUser], Chat], db: Sessions, clock: FakeClock, api: FakeBotAPI,
) -> None:
    await chat_with(RESIDENT).say("/help")  # the reporter exists
    await parking_problems(db, clock, 4)
    answer = await chat_with(ADMIN).say("/actions")
    assert "photo" in answer, answer  # the picture
    text = str(answer["caption"])
    assert text.startswith(t(ZH, "assessment.map.title", date="11月23日"))
    # p4_01 on 2026-11-23: found 4, none closed, 4 of 4 open overdue; 47 of 92 days gone.
    assert "「停车秩序专项整治行动」牵头单位 <b>综合行政执法局</b>" in text
    assert "办结 0/4（0%），时间已过 51%" in text and "4 件未整改中 4 件逾期" in text
    # The 篇2 actions ended in June, the other 12 of 篇4 are running and on track.
    assert t(ZH, "assessment.map.summary", count=23, running=13, lagging=1, not_started=0,
             ended=10) in text
    sent = api.calls("sendPhoto")[-1]
    assert sent["chat_id"] == ADMIN.id


async def test_others_are_refused_and_only_the_campaign_offices_group_gets_it(
    chat_with: Callable[[TgUser], Chat], db: Sessions, clock: FakeClock, api: FakeBotAPI,
    updates: UpdateFactory, feed: Feed, resident: Chat,
) -> None:
    refused = t(ZH, "error.role_required", role=t(ZH, "role.admin"))
    assert (await chat_with(ZHANG).say("/actions"))["text"] == refused
    assert (await resident.say("/actions"))["text"] == refused
    assert not api.calls("sendPhoto")
    await parking_problems(db, clock, 4)
    await chat_with(ADMIN).say("/help")
    # A unit's group is not the office's: told where to ask, no picture.
    await feed(in_group(updates, api, ADMIN, STREET_GROUP, "/actions"))
    assert api.last(STREET_GROUP)["text"] == t(ZH, "assessment.map.not_here")
    assert not api.calls("sendPhoto")
    # The campaign office's group gets the map, the lead named.
    await feed(in_group(updates, api, ADMIN, OFFICE_GROUP, "/actions"))
    office = api.last(OFFICE_GROUP)
    assert "photo" in office and "综合行政执法局" in str(office["caption"])
