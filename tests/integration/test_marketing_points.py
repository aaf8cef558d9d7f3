"""Points on SQLite and PostgreSQL: a merchant's rule earns points on the `PTS` ledger (once
per order), spending takes the oldest lots first, and the expiry job removes what is left of
lots past their validity — the ledger balance and the lots always agree."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from cloudpay import ledger
from cloudpay.kernel.clock import FixedClock
from cloudpay.marketing import (
    EarnRule,
    MultiplierWindow,
    earn_points,
    expire_points,
    points_balance,
    set_earn_rule,
    spend_points,
)
from cloudpay.marketing.points import citizen_points_account_id, live_lots
from cloudpay.marketing.points_model import POINTS_LEDGER
from tests.integration.test_marketing_claims import START, in_tx, refusal, register
from tests.integration.test_marketing_redemption import onboard_merchant


@pytest.fixture
def world_clock() -> FixedClock:
    return FixedClock(START)


def earn(engine: Engine, clock: FixedClock, citizen_id: str, merchant_id: str, order: str,
         amount: int) -> int:  # fmt: skip
    lot = in_tx(engine, clock, lambda uow: earn_points(
        uow, citizen_id=citizen_id, merchant_id=merchant_id, order_id=order, amount_fen=amount,
    ))  # fmt: skip
    return 0 if lot is None else lot.points


def balance(engine: Engine, clock: FixedClock, citizen_id: str) -> int:
    return in_tx(engine, clock, lambda uow: points_balance(uow, citizen_id))


def remaining(engine: Engine, clock: FixedClock, citizen_id: str) -> list[int]:
    return [lot.remaining for lot in in_tx(engine, clock, lambda uow: live_lots(uow, citizen_id))]


def test_earning_follows_the_rule_once_per_order(engine: Engine, world_clock: FixedClock) -> None:
    """1 point a yuan, doubled during a promotion: 50 yuan earns 50, then 100 in the window; the
    same order again earns nothing more; the balance is a `PTS` ledger account."""
    merchant = onboard_merchant(engine, world_clock)
    promotion = MultiplierWindow(START + timedelta(days=1), START + timedelta(days=2), 20_000)
    rule = EarnRule(merchant, points_per_yuan=1, validity_days=30, windows=(promotion,))
    in_tx(engine, world_clock, lambda uow: set_earn_rule(uow, rule))
    person = register(engine, world_clock, 1)
    assert balance(engine, world_clock, person) == 0
    assert earn(engine, world_clock, person, merchant, "ord_points_1", 5_000) == 50
    world_clock.advance(days=1)
    assert earn(engine, world_clock, person, merchant, "ord_points_2", 5_000) == 100
    assert earn(engine, world_clock, person, merchant, "ord_points_2", 5_000) == 100  # replay
    assert earn(engine, world_clock, person, merchant, "ord_points_3", 49) == 0  # 0.98 point
    assert balance(engine, world_clock, person) == 150
    account_id = citizen_points_account_id(person)
    account = in_tx(engine, world_clock, lambda uow: ledger.get_account(uow, account_id))
    assert account.account.ledger == POINTS_LEDGER


def test_spending_is_first_in_first_out_and_expiry_takes_the_rest(
    engine: Engine, world_clock: FixedClock
) -> None:
    """Lots of 50 (day 0) and 100 (day 10), 30-day validity: spending 70 empties the first and
    takes 20 of the second; on day 40 the expiry job removes the remaining 80, once."""
    merchant = onboard_merchant(engine, world_clock)
    rule = EarnRule(merchant, points_per_yuan=1, validity_days=30)
    in_tx(engine, world_clock, lambda uow: set_earn_rule(uow, rule))
    person = register(engine, world_clock, 1)
    earn(engine, world_clock, person, merchant, "ord_fifo_1", 5_000)
    world_clock.advance(days=10)
    earn(engine, world_clock, person, merchant, "ord_fifo_2", 10_000)
    spend = lambda: in_tx(engine, world_clock, lambda uow: spend_points(  # noqa: E731
        uow, citizen_id=person, points=70, reference="ord_pay_1"))  # fmt: skip
    assert spend() == 70
    assert spend() == 70  # a retry replays: nothing taken twice
    assert remaining(engine, world_clock, person) == [80]
    assert balance(engine, world_clock, person) == 80
    over = lambda: in_tx(engine, world_clock, lambda uow: spend_points(  # noqa: E731
        uow, citizen_id=person, points=81, reference="ord_pay_2"))  # fmt: skip
    assert refusal(over) == "points_insufficient"
    world_clock.advance(days=25)  # day 35: the first lot (already spent) has expired
    assert in_tx(engine, world_clock, expire_points) == 0
    world_clock.advance(days=5)  # day 40: the second lot expires
    assert in_tx(engine, world_clock, expire_points) == 80
    assert in_tx(engine, world_clock, expire_points) == 0
    assert balance(engine, world_clock, person) == 0
    assert remaining(engine, world_clock, person) == []


def test_points_need_a_rule_and_a_known_merchant(engine: Engine, world_clock: FixedClock) -> None:
    """A merchant without a rule gives no points (404), a rule for no merchant is refused."""
    merchant = onboard_merchant(engine, world_clock)
    person = register(engine, world_clock, 1)
    code = refusal(lambda: earn(engine, world_clock, person, merchant, "ord_norule", 1_000))
    assert code == "points_rule_not_found"
    rule = EarnRule("mch_nobody", points_per_yuan=1, validity_days=30)
    assert refusal(lambda: in_tx(engine, world_clock, lambda uow: set_earn_rule(uow, rule))) == (
        "merchant_not_found"
    )
