"""Campaign statistics on SQLite and PostgreSQL: totals, a breakdown by the redeeming merchants'
district and MCC, redemptions per business day, and the CSV export that carries them."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from stdnum.cn import uscc

from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.clock import FixedClock
from cloudpay.marketing import MerchantFacts, Redemption, redeem
from cloudpay.marketing.stats import campaign_report, report_csv
from cloudpay.merchants.model import MerchantApplication
from cloudpay.merchants.service import onboard_merchant as onboard
from tests.integration.test_marketing_claims import (
    START,
    VAULT,
    claim,
    in_tx,
    open_campaign,
    register,
    resident_id,
)
from tests.integration.test_marketing_redemption import onboard_merchant


def onboard_grocer(engine: Engine, clock: FixedClock) -> str:
    """A second merchant (its own credit code), a grocer: MCC 5411."""
    body = "91370703MA3C00001"
    application = MerchantApplication(
        legal_name="潍坊市某某超市", unified_social_credit_code=body + uscc.calc_check_digit(body),
        legal_person_name="王五", legal_person_id_number=resident_id(888_888),
        contact_phone="13900000001", mcc="5411",
    )  # fmt: skip
    return in_tx(engine, clock, lambda uow: onboard(uow, vault=VAULT, application=application)).id


@pytest.fixture
def world_clock() -> FixedClock:
    return FixedClock(START + timedelta(hours=1))


def pay(engine: Engine, clock: FixedClock, person: str, shop: MerchantFacts, order: str,
        amount_fen: int) -> Redemption:  # fmt: skip
    def work(uow: UnitOfWork) -> Redemption:
        return redeem(uow, order_id=order, citizen_id=person, merchant=shop, amount_fen=amount_fen)

    return in_tx(engine, clock, work)


def test_the_report_breaks_down_by_place_and_day(engine: Engine, world_clock: FixedClock) -> None:
    """Three vouchers of 10 off 40: two used at a restaurant in 370702 (50 and 60 yuan, on two
    days), one at a grocer in 370703 (40 yuan), one left claimed: totals, places, days, CSV."""
    restaurant = MerchantFacts(onboard_merchant(engine, world_clock, "5812"), "5812", "370702")
    grocer = MerchantFacts(onboard_grocer(engine, world_clock), "5411", "370703")
    campaign_id = open_campaign(engine, world_clock, stock=10)
    people = [register(engine, world_clock, n) for n in range(4)]
    for person in people:
        claim(engine, world_clock, campaign_id, person)
    pay(engine, world_clock, people[0], restaurant, "ord_stats_1", 5_000)
    pay(engine, world_clock, people[1], grocer, "ord_stats_2", 4_000)
    world_clock.advance(days=1)
    pay(engine, world_clock, people[2], restaurant, "ord_stats_3", 6_000)
    report = in_tx(engine, world_clock, lambda uow: campaign_report(uow, campaign_id))
    assert (report.total.redemptions, report.total.subsidy_fen) == (3, 3_000)
    assert report.total.driven_amount_fen == 15_000
    places = {(p.district, p.mcc): p.stats for p in report.by_place}
    assert set(places) == {("370702", "5812"), ("370703", "5411")}
    food = places[("370702", "5812")]
    assert (food.redemptions, food.subsidy_fen, food.driven_amount_fen) == (2, 2_000, 11_000)
    assert str(food.leverage) == "5.50"
    assert [orders for _, orders in report.by_day] == [2, 1]
    assert report.by_day[1][0] - report.by_day[0][0] == timedelta(days=1)
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert [row["dimension"] for row in rows] == ["total", "place", "place", "day", "day"]
    total = rows[0]
    assert (total["issued"], total["claimed"], total["redeemed"]) == ("4", "1", "3")
    assert (total["subsidy_fen"], total["spend_fen"], total["leverage"]) == (
        "3000",
        "15000",
        "5.00",
    )
    assert rows[2]["district"] == "370703"
    assert rows[2]["leverage"] == "4.00"
