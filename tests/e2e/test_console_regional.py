"""The console's regional closed-loop page (资金闭环) under settlements: the platform sees the
city's banks and shares; a merchant or agent, whose scope is a few merchants, gets a 404."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from cloudpay import settlement
from cloudpay.config import Settings
from cloudpay.console import Role
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.business_time import business_date
from cloudpay.kernel.clock import FixedClock
from cloudpay.settlement.payouts import mirror_custody_opening
from tests.browser.console_world import World, open_world

CUSTODY_FEN = 12_345_600


@pytest.fixture
def world(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[World]:
    with open_world(settings, engine, clock) as opened:
        yield opened


def test_the_platform_reads_the_regional_page_and_scoped_roles_do_not(world: World) -> None:
    """The admin sees the custody held at the bank and a row per day of the default week,
    linked from the settlements page; merchant and agent users get a 404 for the page."""
    profile = settlement.ProfileInput(
        bank_code="WFCB", account_no="WFCB9000000000000001",
        account_class=settlement.AccountClass.CLASS_II, account_name="李四",
    )  # fmt: skip

    def bank_with_a_merchant(uow: UnitOfWork) -> None:
        mirror_custody_opening(uow, bank_code="WFCB", balance_fen=CUSTODY_FEN)
        settlement.set_profile(
            uow, merchant_id=world.city.merchant_id, profile=profile, known_banks=["WFCB"]
        )

    run_in_transaction(world.engine, bank_with_a_merchant, clock=world.clock)
    admin = world.session(Role.PLATFORM_ADMIN)
    listed = admin.get("/console/settlements", lang="en")
    assert 'id="regional-link"' in listed.text
    page = admin.get("/console/settlements/regional", lang="en")
    assert page.status_code == 200, page.text
    assert "Regional closed loop" in page.text
    bank_row = page.text.split('id="bank-WFCB"', 1)[1].split("</tr>", 1)[0]
    assert "¥123,456.00" in bank_row
    today = business_date(world.clock.now())
    for back in range(7):
        assert f'id="period-{today - timedelta(days=back)}"' in page.text
    weekly = admin.get(
        "/console/settlements/regional", lang="en", period="week",
        **{"from": "2026-03-02", "to": "2026-03-15"},
    )  # fmt: skip
    assert weekly.status_code == 200
    assert 'id="period-2026-03-09"' in weekly.text
    assert 'id="period-2026-03-02"' in weekly.text
    bad = admin.get("/console/settlements/regional", **{"from": "2026-03-05", "to": "2026-03-01"})
    assert bad.status_code == 400
    for role in (Role.MERCHANT, Role.AGENT):
        session = world.session(role)
        assert 'id="regional-link"' not in session.get("/console/settlements").text, role
        assert session.get("/console/settlements/regional").status_code == 404, role
