"""/plans and /today through the real application: an admin sees the plans and pauses one
(the morning then adds none of its rounds); an inspector sees the day's list, starts an
inspection from it and sees the site ticked off once it is submitted; a resident is refused
both."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from telegram import Update

from bot.config import DEFAULTS_DIR
from bot.domain.plans import load_plans
from bot.domain.standards import Standard
from bot.render.i18n import t
from bot.services import plans
from db.models import SupervisionPlan
from tests.bot.conftest import (
    HOTEL,
    ZH,
    Chat,
    Feed,
    TgUser,
    UpdateFactory,
    action,
    buttons,
    data_where,
    deps_of,
    header,
    verdict,
)
from tests.bot.fakes import FakeBotAPI
from tests.conftest import FakeClock

ADMIN = TgUser(10000, "王管理")
SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_an_admin_pauses_a_plan_and_the_inspector_sees_the_days_list(
    app: object, chat_with: Callable[[TgUser], Chat], zhang: Chat, resident: Chat,
    clock: FakeClock, hotel_standard: Standard,
) -> None:
    deps = deps_of(app)  # type: ignore[arg-type]
    # A Monday morning, 07:00 in Shanghai; the demo city's plans imported.
    clock.now = dt.datetime(2026, 12, 7, 7, 0, tzinfo=SHANGHAI).astimezone(dt.UTC)
    async with deps.uow() as uow:
        await plans.import_plans(uow, load_plans(DEFAULTS_DIR / "plans.yaml"), clock.now)
        await uow.commit(mark_update_handled=False)
    admin = chat_with(ADMIN)
    await admin.say("/start")
    await zhang.say("/start")
    screen = await admin.say("/plans")
    assert "商场超市、宾馆酒店每周逐户排查" in screen["text"]
    assert "社区划片包干定期巡查" in screen["text"]
    # The recurrence and the target in words, not codes (tryout 14, defect 17).
    assert "每周二、五" in screen["text"] and "BYDAY" not in screen["text"]
    assert "社区综合文化服务中心" in screen["text"] and "wolongsi" not in screen["text"]
    assert "卧龙寺" in screen["text"]
    pause = data_where(screen, lambda text, data: "community_patrol" in data)
    after = await admin.press(screen, pause)
    assert admin.answer()["text"] == t(ZH, "plans.admin.paused_toast", code="community_patrol")
    resume = [d for _, d in buttons(after) if d.endswith("community_patrol")]
    assert resume == ["pl:r:community_patrol"]
    async with deps.uow.read() as uow:
        stored = await uow.plans.plan("community_patrol")
        assert isinstance(stored, SupervisionPlan) and stored.paused

    # The morning's share-out: 张督查 has the commerce round; /today lists it.
    async with deps.uow() as uow:
        morning = await plans.run_morning(uow, clock.now.astimezone(SHANGHAI).date(),
                                          SHANGHAI, clock.now, ZH)
        await uow.commit(mark_update_handled=False)
    assert morning.added > 0 and morning.unassigned == 0
    today = await zhang.say("/today")
    assert "东岭皇冠假日酒店" in today["text"]
    assert len([d for _, d in buttons(today) if d.startswith("pg:")]) == morning.added

    # The hotel's button starts its inspection below the list; submitting it ticks the hotel
    # off.
    await zhang.press(today, data_where(today, lambda text, _d: HOTEL in text))
    msg = zhang.last()
    assert msg["text"].startswith(header(hotel_standard, 1))
    for _ in hotel_standard.items:
        msg = await zhang.press(msg, data_where(msg, verdict("c")))
    await zhang.press(msg, data_where(msg, action("submit")))
    today = await zhang.say("/today")
    assert f"{t(ZH, 'plans.mark.done')} {HOTEL}" in today["text"]
    assert not [text for text, _ in buttons(today) if HOTEL in text]
    async with deps.uow.read() as uow:
        rows = await uow.plans.of_day(clock.now.astimezone(SHANGHAI).date())
    assert [r.status for r in rows if r.site_name == HOTEL] == ["done"]

    # Residents are told the role it takes, for both commands.
    refused = await resident.say("/plans")
    assert refused["text"] == t(ZH, "error.role_required", role=t(ZH, "role.admin"))
    refused = await resident.say("/today")
    assert refused["text"] == t(ZH, "error.role_required", role=t(ZH, "role.inspector"))


async def test_groups_are_told_to_ask_in_private_and_arguments_get_a_usage_line(
    chat_with: Callable[[TgUser], Chat], updates: UpdateFactory, api: FakeBotAPI, feed: Feed
) -> None:
    """Tryout 14, defects 18 and 16: /plans and /today in a group got no answer at all,
    `/plans pause nosuch` silently showed the list, and the admin's help left out /stats,
    /assessment and the score file."""
    admin = chat_with(ADMIN)
    help_text = (await admin.say("/help"))["text"]
    for command in ("/today", "/plans", "/stats", "/assessment", ".xlsx"):
        assert command in help_text, command
    group = -1001001
    private_only = {"/today": "plans.private_only", "/plans": "plans.private_only",
                    "/assessment": "assessment.annual.private_only"}
    for n, command in enumerate(("/today", "/plans", "/assessment")):
        update = Update.de_json({"update_id": 990 + n, "message": {
            "message_id": 1 + n, "from": ADMIN.as_dict(), "date": api.now(), "text": command,
            "chat": {"id": group, "type": "supergroup", "title": "区创文办"},
            "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}]}},
            updates.bot)
        assert update is not None
        await feed(update)
        assert api.last(group)["text"] == t(ZH, private_only[command]), command
    assert (await admin.say("/plans pause nosuch"))["text"] == t(ZH, "plans.admin.usage")
