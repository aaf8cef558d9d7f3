"""The settlement API over HTTP: fee plan versions, bad input refused with a clear 4xx and
nothing written, a run by date, settlements with line items, and the merchant balance."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import Engine

from cloudpay.kernel.clock import FixedClock
from tests.e2e.api_helpers import assert_error, get, post
from tests.integration.test_settlement_journal import MONDAY, World

PLANS = "/v1/merchants/{}/fee_plans"


def test_bad_fee_plans_and_profiles_are_refused_and_nothing_is_written(
    live_api: httpx.Client, engine: Engine, clock: FixedClock
) -> None:
    """Negative amounts, min above max, a rate finer than 0.01 bp, a backdated version, an
    unknown merchant, an unknown bank: each a 4xx in the one error shape, no row written."""
    world = World(engine, clock)
    shop = world.merchant()
    path = PLANS.format(shop)
    assert_error(
        post(live_api, path, {"method": "wechat_native", "min_fen": -1}),
        400,
        "amount_invalid",
        "min_fen",
    )
    assert_error(
        post(
            live_api,
            path,
            {"method": "wechat_native", "rate_bp": "38", "min_fen": 50, "max_fen": 10},
        ),
        400,
        "fee_plan_invalid",
    )
    assert_error(
        post(live_api, path, {"method": "wechat_native", "rate_bp": "38.123"}),
        400,
        "fee_plan_invalid",
        "rate_bp",
    )
    assert_error(
        post(live_api, path, {"method": "wechat_native", "rate_bp": "-3"}), 400, "invalid_rate"
    )
    backdated = (clock.now() - timedelta(days=1)).isoformat()
    assert_error(
        post(live_api, path, {"method": "wechat_native", "effective_from": backdated}),
        400,
        "fee_plan_backdated",
        "effective_from",
    )
    unknown = PLANS.format("mch_0000000000000000000000000X")
    assert_error(post(live_api, unknown, {"method": "wechat_native"}), 404, "merchant_not_found")
    assert get(live_api, path).json()["data"] == []
    profile = {
        "bank_code": "NOBANK",
        "account_no": "6230000000000001",
        "account_class": "class_ii",
        "account_name": "李四",
    }
    assert_error(
        live_api.put(
            f"/v1/merchants/{shop}/settlement_profile",
            json=profile,
            headers={"Authorization": "Bearer test-operator-token"},
        ),
        400,
        "bank_unknown",
        "bank_code",
    )
    missing = get(live_api, f"/v1/merchants/{shop}/settlement_profile")
    assert_error(missing, 404, "resource_missing")


def test_a_day_settled_over_http(live_api: httpx.Client, engine: Engine, clock: FixedClock) -> None:
    """Plan via the API, a day of orders, a run by date (twice: the same answer, nothing
    twice), the settlement with line items summing to its net, and the balance."""
    world = World(engine, clock)
    shop = world.merchant()
    created = post(live_api, PLANS.format(shop), {"method": "wechat_native", "rate_bp": "38.5"})
    assert created.status_code == 201, created.text
    assert created.json()["rate_bp"] == "38.5"
    world.at(MONDAY, 10)
    world.order(shop, 10_000)
    world.order(shop, 25_000)
    world.at(MONDAY + timedelta(days=1), 2)
    body = {"business_date": (MONDAY + timedelta(days=1)).isoformat(), "pay_out": False}
    first = post(live_api, "/v1/settlement_runs", body)
    again = post(live_api, "/v1/settlement_runs", body)
    assert (first.json()["settled"], again.json()["settled"]) == (1, 0)
    assert first.json()["run_id"] == again.json()["run_id"]
    listed = get(live_api, "/v1/settlements", merchant_id=shop).json()
    [summary] = listed["data"]
    detail = get(live_api, f"/v1/settlements/{summary['id']}").json()
    fees = 39 + 96  # 10 000 x 38.5 bp = 38.5 → 39; 25 000 x 38.5 bp = 96.25 → 96
    assert (detail["gross_fen"], detail["fees_fen"], detail["net_fen"]) == (
        35_000,
        fees,
        35_000 - fees,
    )
    assert sum(item["amount_fen"] for item in detail["line_items"]) == detail["net_fen"]
    balance = get(live_api, f"/v1/merchants/{shop}/balance").json()
    assert (balance["pending"], balance["available"], balance["in_transit"]) == (
        0,
        35_000 - fees,
        0,
    )
    assert_error(
        get(live_api, "/v1/settlements/stl_0000000000000000000000000X"), 404, "resource_missing"
    )
    assert_error(get(live_api, "/v1/settlements", limit=0), 400, "parameter_invalid", "limit")
