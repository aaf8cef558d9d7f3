"""Campaign statistics on SQLite and PostgreSQL: totals, a breakdown by the redeeming merchants'
district and MCC, redemptions per business day, and the CSV export that carries them."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from stdnum.cn import uscc

from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.errors import CloudPayError
from cloudpay.marketing import MerchantFacts, Redemption, confirm_redemption, redeem
from cloudpay.marketing.stats import campaign_report, incremental_view, report_csv
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
        redeem(uow, order_id=order, citizen_id=person, merchant=shop, amount_fen=amount_fen)
        return confirm_redemption(uow, order_id=order)  # the order was paid

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


class FakeSpend:
    """Payments' spend per merchant, as fixed figures per window: the hand computation's input."""

    def __init__(self, figures: dict[tuple[str, datetime, datetime], int]) -> None:
        self.figures = figures
        self.asked: list[tuple[tuple[str, ...], datetime, datetime]] = []

    def __call__(
        self, uow: UnitOfWork, merchant_ids: Sequence[str], start: datetime, end: datetime
    ) -> Mapping[str, int]:
        self.asked.append((tuple(sorted(merchant_ids)), start, end))
        return {m: self.figures.get((m, start, end), 0) for m in merchant_ids}


def test_incremental_leverage_matches_a_hand_computation(
    engine: Engine, world_clock: FixedClock
) -> None:
    """Two days into the campaign, a restaurant that sold 280,000 fen in the 28 days before
    (10,000 a day, so a 20,000 baseline) sells 35,000 with 2,000 of subsidy (+15,000: 7.50);
    a grocer that sold 56,000 (4,000 baseline) sells 3,000 with 1,000 (−1,000: −1.00); the
    campaign: (15,000 − 1,000) ÷ 3,000 = 4.67, and the same figures by district and MCC."""
    restaurant = MerchantFacts(onboard_merchant(engine, world_clock, "5812"), "5812", "370702")
    grocer = MerchantFacts(onboard_grocer(engine, world_clock), "5411", "370703")
    campaign_id = open_campaign(engine, world_clock, stock=10)
    people = [register(engine, world_clock, n) for n in range(3)]
    for person in people:
        claim(engine, world_clock, campaign_id, person)
    pay(engine, world_clock, people[0], restaurant, "ord_inc_1", 5_000)
    pay(engine, world_clock, people[1], restaurant, "ord_inc_2", 6_000)
    pay(engine, world_clock, people[2], grocer, "ord_inc_3", 4_000)
    world_clock.set(START + timedelta(days=2))
    before, now = (START - timedelta(days=28), START), (START, START + timedelta(days=2))
    spend = FakeSpend({
        (restaurant.merchant_id, *before): 280_000, (restaurant.merchant_id, *now): 35_000,
        (grocer.merchant_id, *before): 56_000, (grocer.merchant_id, *now): 3_000,
    })  # fmt: skip
    view = in_tx(engine, world_clock, lambda uow: incremental_view(uow, campaign_id, spend=spend))
    both = tuple(sorted([restaurant.merchant_id, grocer.merchant_id]))
    assert spend.asked == [(both, *before), (both, *now)]
    total = view.total
    assert (total.subsidy_fen, total.baseline_fen, total.campaign_fen) == (3_000, 24_000, 38_000)
    assert (total.incremental_fen, str(total.leverage)) == (14_000, "4.67")
    merchants = {m.key: (m.baseline_fen, m.incremental_fen, str(m.leverage))
                 for m in view.by_merchant}  # fmt: skip
    assert merchants == {
        restaurant.merchant_id: (20_000, 15_000, "7.50"),
        grocer.merchant_id: (4_000, -1_000, "-1.00"),
    }
    assert [(d.key, d.incremental_fen) for d in view.by_district] == [
        ("370702", 15_000),
        ("370703", -1_000),
    ]
    assert [(m.key, str(m.leverage)) for m in view.by_mcc] == [("5411", "-1.00"), ("5812", "7.50")]
    report = in_tx(engine, world_clock, lambda uow: campaign_report(uow, campaign_id))
    rows = list(csv.DictReader(io.StringIO(report_csv(report, view))))
    [csv_total] = [row for row in rows if row["dimension"] == "incremental_total"]
    assert (csv_total["incremental_fen"], csv_total["incremental_leverage"]) == ("14000", "4.67")
    assert sum(row["dimension"] == "incremental_merchant" for row in rows) == 2


def test_a_shorter_baseline_and_a_bad_one(engine: Engine, world_clock: FixedClock) -> None:
    """A 7-day baseline of 70,000 fen is 10,000 a day, so half a day in it is 5,000 (and no
    sales since: −5,000); a 0-day baseline is refused with a 400, not divided by."""
    shop = MerchantFacts(onboard_merchant(engine, world_clock, "5812"), "5812", "370702")
    campaign_id = open_campaign(engine, world_clock, stock=10)
    person = register(engine, world_clock, 1)
    claim(engine, world_clock, campaign_id, person)
    pay(engine, world_clock, person, shop, "ord_short_1", 5_000)
    world_clock.set(START + timedelta(hours=12))
    spend = FakeSpend({(shop.merchant_id, START - timedelta(days=7), START): 70_000})
    view = in_tx(
        engine,
        world_clock,
        lambda uow: incremental_view(uow, campaign_id, spend=spend, baseline_days=7),
    )
    assert (view.total.baseline_fen, view.total.incremental_fen) == (5_000, -5_000)
    with pytest.raises(CloudPayError) as refused:
        in_tx(
            engine,
            world_clock,
            lambda uow: incremental_view(uow, campaign_id, spend=spend, baseline_days=0),
        )
    assert refused.value.http_status == 400
