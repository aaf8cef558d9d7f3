"""Government consumption vouchers (消费券) redeemed inside `POST /v1/orders`, over real HTTP
with the WeChat Pay and Alipay sandboxes, on both databases: a funded campaign, a burst of
claims, payments at eligible merchants where the payer's voucher applies by itself (the
channel is asked for the reduced amount), refunds that follow the policy, the settlement run
that pays the subsidy to the merchant, the leverage report and the books in balance; an order
closed unpaid gives the voucher back; bad input is a 4xx with nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from cloudpay.channels.alipay import AlipayChannel
from cloudpay.channels.alipay.sandbox import AlipaySandbox, start_alipay_sandbox
from cloudpay.channels.wechat.sandbox import WeChatSandbox
from cloudpay.config import Settings
from cloudpay.kernel.business_time import business_date
from cloudpay.sdk import CloudPayAPIError
from cloudpay.settlement import CHINA_2026, T1, settlement_date
from tests.e2e.api_helpers import get, post
from tests.e2e.gateway import (
    CHANNEL_TIMEOUT_S,
    SANDBOX_FAULT_HOLD_S,
    SANDBOX_TIME_SCALE,
    Gateway,
    ShiftedClock,
    eventually,
    open_gateway,
)
from tests.e2e.test_citizen_api import register

METHODS = ("wechat_jsapi", "wechat_native", "alipay_jsapi", "micropay", "wechat_micropay")
VOUCHER_FEN = 1_000  # 10 yuan off
THRESHOLD_FEN = 4_000  # from 40 yuan (满40减10)
DISTRICT = "370786"  # where the gateway's merchants are registered (their credit codes)
CLAIMERS = 6
OPENIDS = [f"oVoucherWx{n:06d}" for n in range(1, 4)]
ALIPAY_USERS = [f"2088{n:012d}" for n in range(4, 7)]


@pytest.fixture(scope="module")
def alipay_sandbox(
    wechat_world: tuple[WeChatSandbox, ShiftedClock],
) -> Iterator[AlipaySandbox]:
    _, clock = wechat_world
    with start_alipay_sandbox(
        time_scale=SANDBOX_TIME_SCALE, clock=clock, fault_hold_s=SANDBOX_FAULT_HOLD_S
    ) as sandbox:
        yield sandbox


@pytest.fixture
def world(
    settings: Settings, engine: Engine, wechat_world: tuple[WeChatSandbox, ShiftedClock],
    alipay_sandbox: AlipaySandbox,
) -> Iterator[Gateway]:  # fmt: skip
    sandbox, clock = wechat_world
    alipay = AlipayChannel(alipay_sandbox.adapter_config(timeout_s=CHANNEL_TIMEOUT_S), clock=clock)
    with open_gateway(
        settings, engine, sandbox, clock, connectors={"alipay": alipay},  # type: ignore[dict-item]
        methods=METHODS,
    ) as gateway:  # fmt: skip
        yield gateway


# ----------------------------------------------------------------- operator steps


def _campaign(world: Gateway, *, stock: int, valid_for: timedelta, **changes: Any) -> str:
    return campaign_at(world.http, world.clock, stock=stock, valid_for=valid_for, **changes)


def campaign_at(
    http: httpx.Client, clock: ShiftedClock, *, stock: int, valid_for: timedelta, **changes: Any
) -> str:
    """A funded government voucher campaign for restaurants (MCC 5812) of the district."""
    now = clock.now()
    body: dict[str, Any] = {
        "name": "潍坊惠民消费券", "funder_kind": "government", "funder_id": "weifang",
        "kind": "voucher", "currency": "CNY",
        "rule": {"kind": "threshold", "discount_fen": VOUCHER_FEN, "threshold_fen": THRESHOLD_FEN},
        "stock": stock, "claim_starts_at": (now - timedelta(minutes=1)).isoformat(),
        "claim_ends_at": (now + valid_for).isoformat(),
        "valid_from": (now - timedelta(minutes=1)).isoformat(),
        "valid_until": (now + valid_for).isoformat(), "audience": "all",
        "eligible_merchants": {"mccs": ["5812"], "districts": [DISTRICT]},
        **changes,
    }  # fmt: skip
    created = post(http, "/v1/campaigns", body)
    assert created.status_code == 201, created.text
    campaign_id: str = created.json()["id"]
    funded = post(http, f"/v1/campaigns/{campaign_id}/fund", {"amount": stock * VOUCHER_FEN})
    assert funded.status_code == 200, funded.text
    return campaign_id


def _citizen(world: Gateway, n: int, channel: str | None = None, payer_id: str = "") -> str:
    return citizen_at(world.http, n, channel, payer_id)


def citizen_at(http: httpx.Client, n: int, channel: str | None = None, payer_id: str = "") -> str:
    citizen_id: str = register(http, n)["id"]
    if channel is not None:
        link = post(http, f"/v1/citizens/{citizen_id}/payer-ids",
                    {"channel": channel, "payer_id": payer_id})  # fmt: skip
        assert link.status_code == 201, link.text
    return citizen_id


def _claim(world: Gateway, campaign_id: str, citizen_id: str) -> str:
    return claim_at(world.http, campaign_id, citizen_id)


def claim_at(http: httpx.Client, campaign_id: str, citizen_id: str) -> str:
    key = f"claim-{campaign_id}-{citizen_id}"
    response = post(http, f"/v1/campaigns/{campaign_id}/claims", {"citizen_id": citizen_id},
                    key=key)  # fmt: skip
    assert response.status_code == 201, response.text
    claim_id: str = response.json()["id"]
    return claim_id


def _voucher_status(world: Gateway, citizen_id: str, claim_id: str) -> str:
    vouchers = get(world.http, f"/v1/citizens/{citizen_id}/wallet").json()["vouchers"]
    return next(str(v["status"]) for v in vouchers if v["id"] == claim_id)


def _budget_available(world: Gateway, campaign_id: str) -> int:
    """What the budget can still pay: posted balance less the subsidies open orders hold."""
    response = get(world.http, "/v1/ledger/accounts", owner=f"campaign:{campaign_id}")
    [account] = [a for a in response.json()["data"] if a["code"] == "marketing_budget"]
    balance = account["balance"]
    return int(balance["net_credit_posted"]) - int(balance["debits_pending"])


def _refund(world: Gateway, order_id: str, number: str, amount: int) -> dict[str, Any]:
    refund = world.client.create_refund(order_id=order_id, out_refund_no=number, amount=amount)
    if refund["status"] == "processing":
        world.run_worker(after_s=15)
        refund = world.wait_for_refund(refund["id"])
    assert refund["status"] == "succeeded", refund
    return refund


def _paid(world: Gateway, order: dict[str, Any], pay: Any) -> dict[str, Any]:
    pay(order["id"], "success")
    try:
        return world.wait_for_order(order["id"], "succeeded", timeout_s=5)  # type: ignore[no-any-return]
    except AssertionError:
        world.run_worker(after_s=10)
        return world.wait_for_order(order["id"], "succeeded")  # type: ignore[no-any-return]


def _channel_amount(world: Gateway, connector: str, order_id: str) -> int | None:
    """What the channel itself says the payer was asked for (its query API, over the wire)."""
    return world.channel_context.channels.get(connector).query_payment(order_id).amount_fen


# ----------------------------------------------------------------- the journey


def test_vouchers_from_claim_to_settlement_and_leverage(
    world: Gateway, alipay_sandbox: AlipaySandbox
) -> None:
    """Six citizens claim at once; their vouchers cut what WeChat and Alipay are asked for; a
    full refund restores one voucher, a partial refund returns its share of the subsidy; the
    settlement run pays the standing subsidy to the merchant; the leverage is total spend over
    subsidy by hand; the books balance."""
    campaign_id = _campaign(world, stock=10, valid_for=timedelta(days=7))
    people = [_citizen(world, n + 1, "wechat", o) for n, o in enumerate(OPENIDS)]
    people += [_citizen(world, n + 4, "alipay", u) for n, u in enumerate(ALIPAY_USERS)]
    with ThreadPoolExecutor(max_workers=CLAIMERS) as burst:  # everyone at once
        claims = list(burst.map(lambda c: _claim(world, campaign_id, c), people))
    assert [_claim(world, campaign_id, c) for c in people] == claims  # the keys replay
    assert get(world.http, f"/v1/campaigns/{campaign_id}").json()["issued"] == CLAIMERS

    wechat = world.client.create_order(out_trade_no="V-W1", amount=5_000, subject="面馆",
                                       method="wechat_jsapi", payer_id=OPENIDS[0])  # fmt: skip
    assert (wechat["amount"], wechat["discount_amount"], wechat["payer_amount"]) == (
        5_000, VOUCHER_FEN, 4_000)  # fmt: skip
    assert wechat["discounts"] == [{"claim_id": claims[0], "campaign_id": campaign_id,
                                    "kind": "voucher", "amount": VOUCHER_FEN}]  # fmt: skip
    assert world.wechat_order(wechat["id"]).command.total_fen == 4_000
    assert _budget_available(world, campaign_id) == 9 * VOUCHER_FEN  # held, not yet spent
    assert world.merchant_pending() == 0  # nothing for the merchant before the payer pays
    _paid(world, wechat, world.pay)
    assert world.merchant_pending() == 5_000  # 4,000 paid through WeChat + 1,000 subsidy

    second = world.client.create_order(out_trade_no="V-W2", amount=8_000, subject="面馆",
                                       method="wechat_jsapi", payer_id=OPENIDS[1])  # fmt: skip
    _paid(world, second, world.pay)
    alipay = world.client.create_order(out_trade_no="V-A1", amount=6_000, subject="面馆",
                                       method="alipay_jsapi", payer_id=ALIPAY_USERS[0])  # fmt: skip
    assert alipay["payer_amount"] == 5_000
    _paid(world, alipay, alipay_sandbox.pay)
    assert _channel_amount(world, "alipay", alipay["id"]) == 5_000
    small = world.client.create_order(out_trade_no="V-A2", amount=3_000, subject="面馆",
                                      method="alipay_jsapi", payer_id=ALIPAY_USERS[1])  # fmt: skip
    assert (small["discount_amount"], small["payer_amount"]) == (0, 3_000)  # under 满40
    _paid(world, small, alipay_sandbox.pay)

    full = _refund(world, wechat["id"], "V-R1", 4_000)
    assert full["subsidy_reversed"] == VOUCHER_FEN
    assert _voucher_status(world, people[0], claims[0]) == "restored"
    partial = _refund(world, second["id"], "V-R2", 3_500)  # half of the 7,000 paid
    assert partial["subsidy_reversed"] == 500  # half of the subsidy, rounded down
    assert _voucher_status(world, people[1], claims[1]) == "redeemed"
    assert world.merchant_pending() == 13_000  # 22,000 priced − 8,500 refunded − 1,500 subsidy
    world.assert_books_balance()

    trade_date = business_date(world.clock.now())
    due = settlement_date(CHINA_2026, T1, trade_date)
    run = post(world.http, "/v1/settlement_runs", {"business_date": due.isoformat()})
    assert run.status_code == 200, run.text
    [line] = get(world.http, "/v1/settlements", merchant_id=world.merchant.merchant_id).json()[
        "data"
    ]
    # Gross counts the subsidy paid at capture (5,000 + 8,000 + 6,000 + 3,000 priced); the
    # refunds carry what they gave back to the payers and the budget (4,000 + 1,000 + 3,500 + 500).
    assert (line["gross_fen"], line["refunds_fen"], line["net_fen"]) == (22_000, 9_000, 13_000)
    assert world.merchant_pending() == 0  # all of it settled, subsidy included

    stats = get(world.http, f"/v1/campaigns/{campaign_id}/stats").json()
    spend = 8_000 + 6_000  # orders still standing on a voucher (the fully refunded one is out)
    subsidy = (VOUCHER_FEN - 500) + VOUCHER_FEN
    leverage = (Decimal(spend) / Decimal(subsidy)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert (stats["redemptions"], stats["subsidy_fen"], stats["driven_amount_fen"]) == (
        2, subsidy, spend)  # fmt: skip
    assert stats["leverage"] == str(leverage) == "9.33"
    world.assert_books_balance()


def test_an_order_closed_unpaid_voids_the_hold_and_gives_the_voucher_back(
    world: Gateway,
) -> None:
    """A payer named by citizen_id opens an order and walks away: closing it voids the held
    subsidy (the budget can spend it again) and the voucher pays the next order."""
    campaign_id = _campaign(world, stock=2, valid_for=timedelta(days=7))
    citizen_id = _citizen(world, 21)
    claim_id = _claim(world, campaign_id, citizen_id)
    opened = world.client.create_order(out_trade_no="V-C1", amount=4_500, subject="面馆",
                                       method="wechat_native", citizen_id=citizen_id)  # fmt: skip
    assert opened["payer_amount"] == 3_500
    assert _voucher_status(world, citizen_id, claim_id) == "redeemed"
    assert _budget_available(world, campaign_id) == VOUCHER_FEN
    closed = world.client.close_order(opened["id"])
    assert closed["status"] == "closed"
    assert _voucher_status(world, citizen_id, claim_id) == "restored"
    assert _budget_available(world, campaign_id) == 2 * VOUCHER_FEN
    again = world.client.create_order(out_trade_no="V-C2", amount=4_500, subject="面馆",
                                      method="wechat_native", citizen_id=citizen_id)  # fmt: skip
    assert [d["claim_id"] for d in again["discounts"]] == [claim_id]
    _paid(world, again, world.pay)
    assert world.merchant_pending() == 4_500
    world.assert_books_balance()


def test_an_expired_unpaid_order_voids_the_hold(world: Gateway) -> None:
    """The poller closes an order past its expiry at the channel: the hold is voided too."""
    campaign_id = _campaign(world, stock=1, valid_for=timedelta(days=7))
    citizen_id = _citizen(world, 22)
    claim_id = _claim(world, campaign_id, citizen_id)
    expire_at = (world.clock.now() + timedelta(minutes=2)).isoformat()
    order = world.client.create_order(out_trade_no="V-E1", amount=4_000, subject="面馆",
                                      method="wechat_native", citizen_id=citizen_id,
                                      expire_at=expire_at)  # fmt: skip
    assert _budget_available(world, campaign_id) == 0
    world.run_worker(after_s=180)
    eventually(lambda: world.client.get_order(order["id"])["status"] in ("expired", "closed")
               or None, what="the order to expire")  # fmt: skip
    assert _voucher_status(world, citizen_id, claim_id) == "restored"
    assert _budget_available(world, campaign_id) == VOUCHER_FEN
    world.assert_books_balance()


# ----------------------------------------------------------------- bad input


def _refused(world: Gateway, body: dict[str, Any], status: int, code: str) -> None:
    with pytest.raises(CloudPayAPIError) as refused:
        world.client.create_order(**body)
    assert (refused.value.status, refused.value.code) == (status, code), refused.value


def test_bad_discount_requests_are_refused_and_nothing_written(world: Gateway) -> None:
    """Someone else's claim, an expired voucher, a merchant outside the campaign, a claim
    with no known payer, a payment code with a citizen, an unknown citizen, a foreign currency:
    each a 4xx with its code; no order, no redemption, the budget untouched."""
    campaign_id = _campaign(world, stock=3, valid_for=timedelta(days=7))
    owner, other = _citizen(world, 31), _citizen(world, 32, "wechat", "oVoucherWxOther")
    owned = _claim(world, campaign_id, owner)
    _claim(world, campaign_id, other)
    short = _campaign(world, stock=1, valid_for=timedelta(minutes=2))
    stale = _claim(world, short, other)
    elsewhere = _campaign(world, stock=1, valid_for=timedelta(days=7),
                          eligible_merchants={"mccs": ["5411"]})  # fmt: skip
    grocery = _claim(world, elsewhere, other)
    world.clock.advance(minutes=3)  # the short campaign's vouchers are past their validity
    base = {"out_trade_no": "V-BAD", "amount": 5_000, "subject": "面馆",
            "method": "wechat_jsapi", "payer_id": "oVoucherWxOther"}  # fmt: skip
    before = world.row_counts(("orders", "marketing_redemptions", "ledger_transfers"))
    budget = _budget_available(world, campaign_id)
    cases = [
        ({**base, "claim_ids": [owned]}, 409, "instrument_not_applicable"),
        ({**base, "claim_ids": [stale]}, 409, "instrument_not_applicable"),
        ({**base, "claim_ids": [grocery]}, 409, "instrument_not_applicable"),
        ({**base, "payer_id": "oNobodyKnowsMe", "claim_ids": [owned]}, 400, "payer_unknown"),
        ({**base, "discount": "none", "claim_ids": [owned]}, 400, "parameter_invalid"),
        ({**base, "method": "micropay", "payer_id": None, "auth_code": "134567890123456789",
          "citizen_id": owner}, 400, "discount_unavailable"),
        ({**base, "citizen_id": "ctz_" + "0" * 26}, 404, "citizen_not_found"),
        ({**base, "currency": "USD", "citizen_id": owner}, 400, "currency_unsupported"),
    ]  # fmt: skip
    for body, status, code in cases:
        _refused(world, body, status, code)
    response = world.http.post("/v1/orders", json={**base, "claim_ids": ["nope"]})
    assert response.status_code in (400, 401)  # unsigned or malformed: refused either way
    assert world.row_counts(("orders", "marketing_redemptions", "ledger_transfers")) == before
    assert _budget_available(world, campaign_id) == budget
    assert _voucher_status(world, owner, owned) == "claimed"


def test_a_malformed_claim_id_is_a_400_in_the_error_shape(world: Gateway) -> None:
    """claim_ids are checked before anything runs: a wrong shape or a duplicate is a 400."""
    for claim_ids in (["clm_short"], ["clm_" + "A" * 26] * 2):
        with pytest.raises(CloudPayAPIError) as refused:
            world.client.create_order(out_trade_no="V-BAD2", amount=5_000, subject="面馆",
                                      method="wechat_native", claim_ids=claim_ids)  # fmt: skip
        assert refused.value.status == 400
        assert refused.value.param == "claim_ids"
