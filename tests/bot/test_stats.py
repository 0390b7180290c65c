"""/stats through the real application: admins get inspectors' figures in private; other
roles and groups are told no, in their language."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Update

from bot.render.i18n import t
from db.models import Answer, Inspection, Site, StandardVersion
from tests.bot.conftest import RESIDENT, ZH, ZHANG, Chat, Feed, TgUser, UpdateFactory
from tests.bot.fakes import FakeBotAPI
from tests.conftest import FakeClock

Sessions = async_sessionmaker[AsyncSession]
ADMIN = TgUser(10000, "王管理")


async def an_inspection(db: Sessions, clock: FakeClock) -> None:
    start = clock.now - dt.timedelta(days=1)
    async with db() as s, s.begin():
        site = (await s.scalars(select(Site).where(Site.code == "crowne_plaza"))).one()
        s.add(StandardVersion(content_hash="s" * 64, standard_id="hotel", body={}))
        await s.flush()
        insp = Inspection(site_id=site.id, inspector_id=ZHANG.id, standard_id="hotel",
                          standard_hash="s" * 64, status="submitted", step=3,
                          started_at=start, updated_at=start,
                          submitted_at=start + dt.timedelta(minutes=5))
        s.add(insp)
        await s.flush()
        for i, (verdict, seconds) in enumerate((("compliant", 40), ("noncompliant", 80),
                                               ("compliant", 140))):
            s.add(Answer(inspection_id=insp.id, item_key=str(i + 1), verdict=verdict,
                         answered_at=start + dt.timedelta(seconds=seconds)))


async def test_an_admin_sees_each_inspectors_figures(
    chat_with: Callable[[TgUser], Chat], db: Sessions, clock: FakeClock
) -> None:
    await chat_with(ZHANG).say("/help")  # he has met the bot
    await an_inspection(db, clock)
    admin = chat_with(ADMIN)
    reply = await admin.say("/stats")
    # 3 items: gaps 40, 40, 60 s -> median 40; 1 of 3 failed; no re-check yet.
    assert reply["text"] == "\n".join([
        t(ZH, "draw.stats.title", days=7, recheck_days=14),
        t(ZH, "draw.stats.row", name=ZHANG.first_name, done=t(ZH, "draw.stats.done", done=1),
          seconds=t(ZH, "draw.stats.seconds", seconds="40"), failed="33%", disagreed=0,
          rechecked=0)])
    assert (await admin.say("/stats 400"))["text"] == t(ZH, "draw.stats.usage")


async def test_other_roles_are_refused_and_groups_told_to_ask_in_private(
    chat_with: Callable[[TgUser], Chat], resident: Chat
) -> None:
    zhang = chat_with(ZHANG)
    assert (await zhang.say("/stats"))["text"] == t(ZH, "error.role_required",
                                                     role=t(ZH, "role.admin"))
    assert (await resident.say("/stats"))["text"] == t(ZH, "error.role_required",
                                                        role=t(ZH, "role.admin"))
    assert RESIDENT.id == resident.id


async def test_in_a_group_stats_is_refused_naming_no_one(
    chat_with: Callable[[TgUser], Chat], updates: UpdateFactory, api: FakeBotAPI, feed: Feed
) -> None:
    await chat_with(ADMIN).say("/help")
    group = -1001001
    update = Update.de_json({"update_id": 999, "message": {
        "message_id": 1, "from": ADMIN.as_dict(), "date": api.now(), "text": "/stats",
        "chat": {"id": group, "type": "supergroup", "title": "区创文办"},
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}, updates.bot)
    assert update is not None
    await feed(update)
    assert api.last(group)["text"] == t(ZH, "draw.stats.private_only")
