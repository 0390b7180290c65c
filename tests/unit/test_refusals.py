"""One translator for every refusal: values that are names come out in the reader's words."""

from __future__ import annotations

import pytest

from bot.domain.errors import NotAllowed, StaleAction
from bot.render.i18n import t
from bot.render.refusals import explain


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_task_states_actions_and_who_are_put_in_words(lang: str) -> None:
    error = StaleAction("task.already_done", who="杨社区", action="accept")
    assert explain(lang, error) == t(lang, "task.already_done", who="杨社区",
                                     action=t(lang, "task.action.accept"))


@pytest.mark.parametrize("lang", ["zh-hans", "en"])
def test_roles_and_report_decisions_are_put_in_words(lang: str) -> None:
    assert explain(lang, NotAllowed("error.role_required", role="role.inspector")) == t(
        lang, "error.role_required", role=t(lang, "role.inspector"))
    decided = StaleAction("reports.decided_by", ticket="R-2026-000001", who="Alice",
                          decision="reports.decision.rejected")
    assert t(lang, "reports.decision.rejected") in explain(lang, decided)
    assert "reports.decision" not in explain(lang, decided)


def test_other_values_are_left_as_they_are() -> None:
    # A person's own words that happen to look like a state name stay theirs.
    text = explain("zh-hans", StaleAction("task.already_done", who="accepted", action="accept"))
    assert "accepted" in text


def test_task_names_are_only_translated_in_task_refusals() -> None:
    # A resident who calls himself "admin" decided on nothing; his name stays his name.
    decided = StaleAction("reports.decided_by", ticket="R-2026-000001", who="admin",
                          decision="reports.decision.rejected")
    assert "admin" in explain("en", decided)
    assert t("en", "task.who.admin") not in explain("en", decided)
