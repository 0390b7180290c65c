"""Issue 14, the office's side of the daily half through `wenming sandbox` (real PTB over HTTP):
an admin replaces the plans by sending plans.yaml in private, a wrong file and a file with no
plans are refused by line and change nothing, an inspector's .yaml is not imported; /actions
brings the special actions' battle map to the admin and the campaign office's group, and a
unit's group is told where to ask."""

from __future__ import annotations

import pytest

from bot.config import DEFAULTS_DIR
from bot.render.i18n import t
from sandbox.client import SandboxClient
from tests.e2e.chat import Chat, body, shown
from tests.e2e.test_sandbox_clock import sandbox

pytestmark = pytest.mark.e2e
__all__ = ["sandbox"]

ADMIN, INSPECTOR = 10000, 10001
OFFICE_GROUP, LIAISON_GROUP = -1001001, -1001003
ZH = "zh-hans"
SHIPPED = (DEFAULTS_DIR / "plans.yaml").read_text(encoding="utf-8")


async def send_file(sb: SandboxClient, user: int, data: bytes, name: str) -> str:
    sent = await sb.send_document(user, data, name, content_type="application/x-yaml")
    reply = await sb.wait_for_bot_message(user, after_message_id=sent["message_id"], timeout=15)
    return body(reply)


async def test_plans_by_file_and_the_battle_map(sandbox: SandboxClient) -> None:
    sb = sandbox
    admin = Chat(sb, ADMIN)
    await admin.say("/start", timeout=30)

    # One plan dropped: imported, and /plans lists only the one left.
    weekly = SHIPPED[:SHIPPED.index("  - code: community_patrol")]
    answer = await send_file(sb, ADMIN, weekly.encode(), "plans.yaml")
    assert answer.startswith("✅ 已从 plans.yaml 导入督查计划 1 项") and "删除 1" in answer
    overview = body(await admin.say("/plans"))
    assert "commerce_weekly" in overview and "community_patrol" not in overview

    # A wrong rule: refused by line, nothing changed; a file with no plans: refused.
    wrong = weekly.replace("FREQ=WEEKLY;BYDAY=MO", "FREQ=HOURLY")
    answer = await send_file(sb, ADMIN, wrong.encode(), "plans.yaml")
    assert answer.startswith(shown(t(ZH, "plans.file.refused", file="plans.yaml", count=1)))
    assert "第 19 行，计划 commerce_weekly：重复规则 rrule 'FREQ=HOURLY'" in answer, answer
    answer = await send_file(sb, ADMIN, b"schema: 1\n", "plans.yaml")
    assert answer.startswith("❌") and "导入它会删除全部计划" in answer
    assert "commerce_weekly" in body(await admin.say("/plans"))

    # An inspector's .yaml is no plans file: it is answered as any other file is.
    await Chat(sb, INSPECTOR).say("/start", timeout=30)
    answer = await send_file(sb, INSPECTOR, SHIPPED.encode(), "plans.yaml")
    assert "导入" not in answer and answer

    # /actions: the map for the admin in private and for the office's group.
    shown_map = await admin.say("/actions", timeout=30)
    assert shown_map.get("photo") or shown_map.get("document")
    assert "专项行动" in body(shown_map)
    office = await Chat(sb, ADMIN, OFFICE_GROUP).say("/actions", timeout=30)
    assert office.get("photo") or office.get("document")
    liaison = await Chat(sb, 10012, LIAISON_GROUP).say("/actions", timeout=30)
    assert not (liaison.get("photo") or liaison.get("document"))
    assert body(liaison) == shown(t(ZH, "assessment.map.not_here"))
