"""Issue 11 item 3: reports reach the responsible unit (the demo city, a real database)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.domain import reports as dom
from bot.services.reports import ReportContext, drafts, submitting
from db.models import GroupBinding, Person, Report, Unit
from tests.conftest import FakeClock
from tests.db.test_report_service import RESIDENT, Uow, draft_with_photo, file

# The fixtures:
from tests.db.test_report_service import city as city
from tests.db.test_report_service import rc as rc

CATEGORIES = [c.code for c in dom.load_reporting(Settings().reporting_file).categories]
YINTAI = (34.3740, 107.2180)  # 银泰城, a mall of 第1网络包抓联络小组
FIVE_METRES = 5 / 111_000
# In 后祁街社区's area, 300 m south of its own site and farther than any category's
# site radius from every known site.
IN_HOUQIJIE_AREA = (34.3633, 107.1950)


async def _unit(city: Uow, report: Report) -> tuple[str, bool]:
    async with city.sessions() as s:
        unit = await s.get(Unit, report.unit_id)
        assert unit is not None
        bound = await s.scalar(select(GroupBinding.chat_id).where(
            GroupBinding.unit_id == unit.id, GroupBinding.active.is_(True)))
    return unit.code, bound is not None


@pytest.mark.parametrize("category", CATEGORIES)
async def test_a_report_5_m_from_a_site_goes_to_the_sites_unit(
    city: Uow, rc: ReportContext, clock: FakeClock, category: str
) -> None:
    """Issue 11 item 3: 5 m from 银泰城, whatever the category: 第1网络包抓联络小组, not the
    campaign office's fallback."""
    report = await file(city, rc, RESIDENT, clock, category,
                        at=(YINTAI[0] + FIVE_METRES, YINTAI[1]))
    assert await _unit(city, report) == ("liaison_1", True)


@pytest.mark.parametrize("address", ["银泰城", "XX大道 银泰城北门", "银泰城 停车场入口"])
async def test_a_typed_address_naming_a_site_goes_to_the_sites_unit(
    city: Uow, rc: ReportContext, clock: FakeClock, address: str
) -> None:
    """Issue 11 item 3: an address as typed that names 银泰城 (no site picked: where the
    sites matching it are offered, the resident keeps the address as typed)."""
    for category in CATEGORIES:
        async with city() as uow:
            person = await uow.session.get(Person, RESIDENT)
            assert person is not None
            draft = await draft_with_photo(uow, rc, RESIDENT, clock)
            await drafts.choose_category(rc, uow, person, draft.id, category, clock())
            await drafts.text(rc, uow, person, address, clock())
            if draft.step == dom.STEP_PLACE_PICK:
                await drafts.place_action(rc, uow, person, draft.id, dom.PlaceChoice.TYPED, None,
                                          clock())
            await drafts.skip_description(rc, uow, person, draft.id, clock())
            report = (await submitting.submit(rc, uow, person, draft.id, clock())).report
            await uow.commit()
        assert report.site_id is None and report.address == address
        assert await _unit(city, report) == ("liaison_1", True), category
        clock.advance(hours=1)  # the hourly limit


@pytest.mark.parametrize("category", CATEGORIES)
async def test_every_category_routes_to_a_unit_with_a_bound_group(
    city: Uow, rc: ReportContext, clock: FakeClock, category: str
) -> None:
    """Issue 11 item 3: in the demo city each category's own rules reach a unit whose group is
    bound (a rule whose unit has no group is skipped, so the report would fall through to
    the campaign office): located in a community's area and not at any site, it goes to the
    unit its route names; typed without naming a site, it still reaches a bound group."""
    located = await file(city, rc, RESIDENT, clock, category, at=IN_HOUQIJIE_AREA)
    code, bound = await _unit(city, located)
    assert bound and code != "district_office", code
    cat = rc.config.category(category)
    assert cat is not None
    assert code in cat.route or (dom.AREA in cat.route and code in ("houqijie", "wolongsi"))
    typed = await file(city, rc, RESIDENT, clock, category, at=None, address="某某路100号")
    code, bound = await _unit(city, typed)
    assert bound, code
    named = [step for step in cat.route if step not in (dom.SITE, dom.AREA)]
    if named:  # the first department of its route with a group, not the fallback
        assert code in named, code
