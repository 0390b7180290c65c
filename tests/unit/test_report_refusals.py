"""What a resident reads when a report flow is refused: catalogue text, never raw names."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import handlers.reports as hr
from bot.domain.errors import DomainError, NotAllowed, StaleAction
from bot.render import callbacks as cb
from bot.render.i18n import t
from bot.render.refusals import explain


async def _refused(monkeypatch: pytest.MonkeyPatch, lang: str, error: DomainError) -> str:
    said: list[str] = []

    async def reply(_update: Any, text: str, *_a: Any, **_k: Any) -> None:
        said.append(text)

    monkeypatch.setattr(hr, "reply", reply)
    context = SimpleNamespace(lang=lang, t=lambda key, /, **v: t(lang, key, **v))
    await hr._refuse(SimpleNamespace(callback_query=None), context, error)  # type: ignore[arg-type]
    assert len(said) == 1
    return said[0]


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
@pytest.mark.parametrize(("action", "key"), [("reopened", "task.action.reopen"),
                                             ("verified", "task.action.verify_pass")])
async def test_a_task_refusal_met_in_a_report_flow_names_the_action_in_words(
    monkeypatch: pytest.MonkeyPatch, lang: str, action: str, key: str
) -> None:
    # E.g. "still there" pressed while the task moved on: reopen_task's guarded UPDATE loses.
    text = await _refused(monkeypatch, lang,
                          StaleAction("task.already_done", who="杨社区", action=action))
    if lang == "zh-hans":
        assert action not in text  # (English happens to say "reopened" itself)
    assert text == t(lang, "task.already_done", who="杨社区", action=t(lang, key))


async def test_roles_and_decisions_in_a_refusal_are_translated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = await _refused(monkeypatch, "en", NotAllowed("error.role_required",
                                                        role="role.admin"))
    assert "role.admin" not in text and t("en", "role.admin") in text
    decided = StaleAction("reports.decided_by", ticket="R-2026-000001", who="Alice",
                          decision="reports.decision.rejected")
    text = await _refused(monkeypatch, "zh-hans", decided)
    assert text == explain("zh-hans", decided)
    assert "reports.decision" not in text and t("zh-hans", "reports.decision.rejected") in text


@pytest.mark.parametrize("data", ["rg:③:acc", "rg:12:of:③", "rp:99999999999999999999:ok"])
def test_odd_digits_in_callback_data_are_stale_not_a_crash(data: str) -> None:
    try:
        report_id, _action, arg = cb.parse_report(data, data[:2])
    except StaleAction:
        return
    assert report_id < 10**16 and cb.number(arg) is None
