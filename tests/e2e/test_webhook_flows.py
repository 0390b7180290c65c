"""Existing end-to-end flows, run again with the bot in webhook mode: every update of them
reaches the bot as the sandbox's POST to its HTTP server instead of through getUpdates."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Harness
from tests.e2e.test_inspection import (  # noqa: F401  (collected here, in webhook mode)
    test_bad_input_gets_clear_answers,
    test_full_hotel_inspection_creates_tasks_and_tells_the_unit,
    test_progress_survives_a_restart,
)
from tests.e2e.test_reports import (  # noqa: F401
    test_accept_fix_and_dispute_reach_the_reporter_and_followers,
    test_an_album_is_one_report_answered_once,
    test_an_album_of_ten_photos_is_answered_once,
)


@pytest.fixture
async def harness(harness_webhook: Harness) -> AsyncIterator[Harness]:
    assert harness_webhook.settings.webhook_url
    yield harness_webhook
