"""The day's priced sums, read in two steps (per merchant, then per plan version where a
merchant's orders fell under several), equal the sums grouped per plan version at once."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from cloudpay import payments
from cloudpay.kernel.business_time import day_bounds_utc
from cloudpay.payments.settlement_feed import priced_orders_query
from cloudpay.payments.tables import orders
from cloudpay.settlement import repository
from cloudpay.settlement.tables import settlement_fee_plans

DAY = date(2026, 3, 2)


def _order(
    number: int, merchant_id: str, created: datetime, currency: str = "CNY"
) -> dict[str, Any]:
    return {
        "id": f"ord_{number:026d}",
        "app_id": f"app_{merchant_id}",
        "merchant_id": merchant_id,
        "out_trade_no": f"T{number}",
        "request_hash": "0" * 64,
        "amount": 1_000 + 37 * number,
        "currency": currency,
        "subject": "grouping",
        "method": "wechat_native",
        "channel": "wechat",
        "status": "succeeded",
        "expire_at": created + timedelta(minutes=30),
        "metadata": "{}",
        "refunded_amount": 0,
        "refund_reserved_amount": 0,
        "poll_attempts": 0,
        "route_cost_fen": number,
        "paid_at": created,
        "booked_at": created,
        "created_at": created,
        "updated_at": created,
    }


def _plan(plan_id: str, merchant_id: str, start: datetime, end: datetime | None) -> dict[str, Any]:
    return {
        "id": plan_id,
        "merchant_id": merchant_id,
        "method": "wechat_native",
        "effective_from": start,
        "effective_to": end,
        "rate_centi_bp": 3_800 if end else 6_000,
        "fixed_fen": None,
        "min_fen": 1,
        "max_fen": None,
        "surcharge_centi_bp": 100,
        "refund_policy": "proportional",
        "created_at": start,
    }


def test_two_step_sums_equal_the_per_version_sums(engine: Engine) -> None:
    """A plan changed at noon, orders before a merchant's first plan, and a second currency
    give the same rows as grouping per version at once; single-version merchants stay one."""
    start, end = day_bounds_utc(DAY)
    noon = start + timedelta(hours=12)
    plans = [
        _plan("fpl_a1", "mch_a", start - timedelta(days=3), noon),
        _plan("fpl_a2", "mch_a", noon, None),
        _plan("fpl_b1", "mch_b", noon, None),
        _plan("fpl_c1", "mch_c", start - timedelta(days=3), None),
    ]
    rows = [
        _order(n, merchant, start + timedelta(hours=hour), currency)
        for n, (merchant, hour, currency) in enumerate(
            [(m, h, "CNY") for m in ("mch_a", "mch_b", "mch_c") for h in (2, 9, 13, 20)]
            + [("mch_c", 15, "HKD"), ("mch_d", 10, "CNY")]
        )
    ]
    with engine.begin() as connection:
        connection.execute(insert(settlement_fee_plans), plans)
        connection.execute(insert(orders), rows)
    pricing = repository.pricing()
    with engine.connect() as connection:
        two_step = [
            row
            for page in payments.priced_orders(
                connection, start=start, end=end, pricing=pricing, page_size=2
            )
            for row in page
        ]
        query = priced_orders_query(start=start, end=end, pricing=pricing, merchant_ids=None)
        at_once = [
            payments.PricedOrders(*row[:4], *(int(v) for v in row[4:9]), row[9], int(row[10]))
            for row in connection.execute(query)
        ]
    key = lambda row: (row.merchant_id, row.currency, row.fee_plan_id or "")  # noqa: E731
    assert sorted(two_step, key=key) == sorted(at_once, key=key)
    assert [(r.merchant_id, r.currency, r.fee_plan_id) for r in sorted(two_step, key=key)] == [
        ("mch_a", "CNY", "fpl_a1"),
        ("mch_a", "CNY", "fpl_a2"),
        ("mch_b", "CNY", None),
        ("mch_b", "CNY", "fpl_b1"),
        ("mch_c", "CNY", "fpl_c1"),
        ("mch_c", "HKD", "fpl_c1"),
        ("mch_d", "CNY", None),
    ]
    assert [r.merchant_id for r in two_step] == sorted(r.merchant_id for r in two_step)
