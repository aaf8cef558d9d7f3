"""Points (积分) earned on paid orders and spent inside `POST /v1/orders`, over real HTTP with
the WeChat Pay sandbox, on both databases: a paid order earns the merchant's points (the
merchant funds their value into the points liability), a second order spends them (the channel
is asked for the rest), a partial refund gives back and claws back its share, settlement pays
the merchant exactly its pending balance, expiry moves the rest of the liability to breakage
income, and the books balance; an order closed unpaid gives the points back; bad input is a
4xx with nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from cloudpay.channels.wechat.sandbox import WeChatSandbox
from cloudpay.config import Settings
from cloudpay.kernel.business_time import business_date
from cloudpay.sdk import CloudPayAPIError
from cloudpay.settlement import CHINA_2026, T1, settlement_date
from tests.e2e.api_helpers import get, post
from tests.e2e.gateway import Gateway, ShiftedClock, open_gateway
from tests.e2e.test_voucher_journey import citizen_at

METHODS = ("wechat_jsapi", "wechat_native", "micropay", "wechat_micropay")
POINTS_PER_YUAN = 10  # the merchant's rule; the city redeems 100 points for one yuan
VALIDITY_DAYS = 30
OPENID = "oPointsWx000001"


@pytest.fixture
def world(
    settings: Settings, engine: Engine, wechat_world: tuple[WeChatSandbox, ShiftedClock]
) -> Iterator[Gateway]:
    sandbox, clock = wechat_world
    with open_gateway(settings, engine, sandbox, clock, methods=METHODS) as gateway:
        rule = {"points_per_yuan": POINTS_PER_YUAN, "validity_days": VALIDITY_DAYS}
        response = post(gateway.http, f"/v1/points/rules/{gateway.merchant.merchant_id}", rule)
        assert response.status_code == 200, response.text
        yield gateway


def _points(world: Gateway, citizen_id: str) -> int:
    """The spendable points, as the wallet shows them."""
    wallet = get(world.http, f"/v1/citizens/{citizen_id}/wallet")
    assert wallet.status_code == 200, wallet.text
    return int(wallet.json()["points"])


def _platform(world: Gateway, code: str) -> tuple[int, int]:
    """A platform fen account: (posted balance, pending debits); (0, 0) before it exists."""
    response = get(world.http, "/v1/ledger/accounts", owner="platform")
    found = [a["balance"] for a in response.json()["data"] if a["code"] == code]
    if not found:
        return 0, 0
    return int(found[0]["net_credit_posted"]), int(found[0]["debits_pending"])


def _paid(world: Gateway, order: dict[str, Any]) -> dict[str, Any]:
    world.pay(order["id"], "success")
    try:
        return world.wait_for_order(order["id"], "succeeded", timeout_s=5)  # type: ignore[no-any-return]
    except AssertionError:
        world.run_worker(after_s=10)
        return world.wait_for_order(order["id"], "succeeded")  # type: ignore[no-any-return]


def _refund(world: Gateway, order_id: str, number: str, amount: int) -> dict[str, Any]:
    refund = world.client.create_refund(order_id=order_id, out_refund_no=number, amount=amount)
    if refund["status"] == "processing":
        world.run_worker(after_s=15)
        refund = world.wait_for_refund(refund["id"])
    assert refund["status"] == "succeeded", refund
    return refund


def _order(world: Gateway, number: str, amount: int, **fields: Any) -> dict[str, Any]:
    body = {"out_trade_no": number, "amount": amount, "subject": "面馆", **fields}
    return world.client.create_order(**body)


def test_points_from_earning_to_breakage(world: Gateway) -> None:
    """Earn 1,000 points on a 100-yuan order (the merchant funds 10 yuan); spend 800 of them
    on a 30-yuan order (WeChat asked for 22 yuan); refund half: 400 points and 4 yuan go back,
    110 earned points are clawed back with their 1.10 yuan; settlement pays the merchant its
    whole pending balance; expiry moves the liability's 7.10 yuan to breakage."""
    citizen_id = citizen_at(world.http, 41, "wechat", OPENID)
    first = _order(world, "P-1", 10_000, method="wechat_jsapi", payer_id=OPENID)
    assert (first["discounts"], first["points_used"]) == ([], 0)
    _paid(world, first)
    assert _points(world, citizen_id) == 1_000  # 10 a yuan on 100 yuan
    assert world.merchant_pending() == 9_000  # 10,000 paid − 1,000 funding the points
    assert _platform(world, "points_liability") == (1_000, 0)

    second = _order(world, "P-2", 3_000, method="wechat_jsapi", payer_id=OPENID, points=800)
    line = {"kind": "points", "points": 800, "amount": 800}
    assert (second["amount"], second["payer_amount"], second["discounts"]) == (3_000, 2_200, [line])
    assert world.wechat_order(second["id"]).command.total_fen == 2_200
    assert _points(world, citizen_id) == 200  # 800 held by the open order
    assert _platform(world, "points_liability") == (1_000, 800)
    assert world.merchant_pending() == 9_000  # nothing before the payer pays
    _paid(world, second)
    assert _points(world, citizen_id) == 200 + 220  # 22 yuan paid earn 220
    assert _platform(world, "points_liability") == (1_000 - 800 + 220, 0)
    assert world.merchant_pending() == 9_000 + 2_200 + 800 - 220

    refund = _refund(world, second["id"], "P-R1", 1_100)  # half of what the payer paid
    assert (refund["subsidy_reversed"], refund["points_funding_returned"]) == (400, 110)
    assert _points(world, citizen_id) == 420 + 400 - 110
    assert _platform(world, "points_liability") == (710, 0)  # the citizen's 710 points' value
    assert world.merchant_pending() == 11_780 - 1_100 - 400 + 110
    world.assert_books_balance()

    due = settlement_date(CHINA_2026, T1, business_date(world.clock.now()))
    run = post(world.http, "/v1/settlement_runs", {"business_date": due.isoformat()})
    assert run.status_code == 200, run.text
    [settled] = get(world.http, "/v1/settlements", merchant_id=world.merchant.merchant_id).json()[
        "data"
    ]
    # Gross: 10,000 − 1,000 funded; 2,200 + 800 points − 220 funded; 110 funding returned.
    # Refunds: 1,100 to the payer and 400 of points value back to the liability.
    assert (settled["gross_fen"], settled["refunds_fen"], settled["net_fen"]) == (
        11_890, 1_500, 10_390)  # fmt: skip
    assert world.merchant_pending() == 0

    world.run_worker(after_s=(VALIDITY_DAYS + 1) * 86_400)
    assert _points(world, citizen_id) == 0
    assert _platform(world, "points_liability") == (0, 0)
    assert _platform(world, "points_breakage") == (710, 0)
    world.assert_books_balance()


def test_an_order_closed_unpaid_gives_the_points_back(world: Gateway) -> None:
    """Points held by an order the payer walks away from come back when it closes, and the
    liability's hold is voided; a full refund of a paid order gives back all its points."""
    citizen_id = citizen_at(world.http, 42)
    _paid(world, _order(world, "P-C0", 5_000, method="wechat_native", citizen_id=citizen_id))
    assert _points(world, citizen_id) == 500
    opened = _order(world, "P-C1", 2_000, method="wechat_native", citizen_id=citizen_id,
                    points=300)  # fmt: skip
    assert (opened["payer_amount"], _points(world, citizen_id)) == (1_700, 200)
    assert world.client.close_order(opened["id"])["status"] == "closed"
    assert _points(world, citizen_id) == 500
    assert _platform(world, "points_liability") == (500, 0)
    again = _order(world, "P-C2", 2_000, method="wechat_native", citizen_id=citizen_id,
                   points=300)  # fmt: skip
    _paid(world, again)
    assert _points(world, citizen_id) == 200 + 170
    _refund(world, again["id"], "P-CR", 1_700)
    assert _points(world, citizen_id) == 500  # the 300 back, the 170 earned clawed back
    assert _platform(world, "points_liability") == (500, 0)
    world.assert_books_balance()


def _refused(world: Gateway, body: dict[str, Any], status: int, code: str) -> None:
    with pytest.raises(CloudPayAPIError) as refused:
        world.client.create_order(**body)
    assert (refused.value.status, refused.value.code) == (status, code), refused.value


def test_bad_points_requests_are_refused_and_nothing_written(world: Gateway) -> None:
    """More points than the payer holds, more than the payment may take, points with no
    known payer, with a payment code or with discount none, zero points: each a 4xx with its
    code; no order, no transfer, the points untouched."""
    citizen_id = citizen_at(world.http, 43, "wechat", "oPointsWxBad")
    _paid(world, _order(world, "P-B0", 20_000, method="wechat_jsapi", payer_id="oPointsWxBad"))
    assert _points(world, citizen_id) == 2_000
    base = {"out_trade_no": "P-BAD", "amount": 1_000, "subject": "面馆",
            "method": "wechat_jsapi", "payer_id": "oPointsWxBad"}  # fmt: skip
    before = world.row_counts(("orders", "ledger_transfers", "marketing_points_lots"))
    cases = [
        ({**base, "amount": 9_000, "points": 2_001}, 409, "points_insufficient"),
        ({**base, "points": 501}, 409, "points_exceed_limit"),  # at most half of 10 yuan
        ({**base, "payer_id": "oNobodyKnowsMe", "points": 100}, 400, "payer_unknown"),
        ({**base, "method": "micropay", "payer_id": None, "auth_code": "134567890123456789",
          "points": 100}, 400, "discount_unavailable"),
        ({**base, "discount": "none", "points": 100}, 400, "parameter_invalid"),
        ({**base, "points": 0}, 400, "parameter_invalid"),
    ]  # fmt: skip
    for body, status, code in cases:
        _refused(world, body, status, code)
    assert world.row_counts(("orders", "ledger_transfers", "marketing_points_lots")) == before
    assert _points(world, citizen_id) == 2_000
    world.assert_books_balance()
