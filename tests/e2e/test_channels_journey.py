"""Every channel end to end over real HTTP, on both databases: Alipay and UnionPay QR orders
paid in their sandboxes, notified, webhooked and refunded; payment codes of each wallet; a
WeChat route whose sandbox goes down mid-run fails over to a second WeChat connector without
charging anyone twice; forged notifications change nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from cloudpay.channels.alipay import AlipayChannel
from cloudpay.channels.alipay.sandbox import AlipaySandbox, start_alipay_sandbox
from cloudpay.channels.alipay.sandbox.notifier import signed_form
from cloudpay.channels.unionpay import UnionPayChannel
from cloudpay.channels.unionpay.sandbox import UnionPaySandbox, start_unionpay_sandbox
from cloudpay.channels.wechat import WeChatPayChannel
from cloudpay.channels.wechat.sandbox import WeChatSandbox, start_wechat_sandbox
from cloudpay.config import Settings
from cloudpay.demo.channels import DemoChannels
from cloudpay.demo.shoppers import pay_at_store
from cloudpay.kernel.clock import SystemClock
from cloudpay.sdk import CloudPayAPIError
from tests.conftest import OPERATOR_HEADERS
from tests.e2e.gateway import (
    CHANNEL_TIMEOUT_S,
    SANDBOX_FAULT_HOLD_S,
    SANDBOX_TIME_SCALE,
    Gateway,
    ShiftedClock,
    open_gateway,
    operator_post,
)

ALL_METHODS = (
    "wechat_native", "wechat_jsapi", "wechat_micropay", "alipay_qr", "alipay_wap", "alipay_jsapi",
    "alipay_micropay", "unionpay_qr", "unionpay_wap", "unionpay_micropay", "micropay",
)  # fmt: skip
# Payment codes are single use in the sandboxes (as in the wallets): a fresh one per call.
PAYMENT_CODE_SHAPES = {"wechat": ("13", 18), "alipay": ("28", 18), "unionpay": ("62", 19)}


def fresh_code(wallet: str) -> str:
    prefix, length = PAYMENT_CODE_SHAPES[wallet]
    return prefix + str(uuid.uuid4().int)[: length - len(prefix)]


@pytest.fixture(scope="module")
def others(
    wechat_world: tuple[WeChatSandbox, ShiftedClock],
) -> Iterator[tuple[AlipaySandbox, UnionPaySandbox, WeChatSandbox]]:
    """Alipay, UnionPay and a second WeChat sandbox (a service provider's account)."""
    _, clock = wechat_world
    options: dict[str, Any] = {"time_scale": SANDBOX_TIME_SCALE, "clock": clock,
                               "fault_hold_s": SANDBOX_FAULT_HOLD_S}  # fmt: skip
    with (
        start_alipay_sandbox(**options) as alipay,
        # UnionPay's txnTime is our id's real creation time, and the session clock runs ahead
        # of real time as tests move it: the UnionPay side keeps real time, as both would.
        start_unionpay_sandbox(**{**options, "clock": SystemClock()}) as unionpay,
        start_wechat_sandbox(**options) as provider,
    ):
        yield alipay, unionpay, provider


@pytest.fixture
def world(
    settings: Settings, engine: Engine, wechat_world: tuple[WeChatSandbox, ShiftedClock],
    others: tuple[AlipaySandbox, UnionPaySandbox, WeChatSandbox],
) -> Iterator[Gateway]:  # fmt: skip
    sandbox, clock = wechat_world
    alipay, unionpay, provider = others
    connectors = {
        "alipay": AlipayChannel(alipay.adapter_config(timeout_s=CHANNEL_TIMEOUT_S), clock=clock),
        "unionpay": UnionPayChannel(
            unionpay.adapter_config(timeout_s=CHANNEL_TIMEOUT_S), clock=clock
        ),
        "wechat_provider": WeChatPayChannel(
            provider.adapter_config(timeout_s=CHANNEL_TIMEOUT_S), clock=clock
        ),
    }
    with open_gateway(
        settings, engine, sandbox, clock, connectors=connectors,  # type: ignore[arg-type]
        methods=ALL_METHODS,
    ) as gateway:  # fmt: skip
        yield gateway


def _settle(gateway: Gateway, order_id: str, status: str) -> dict[str, Any]:
    """Wait for the notification to land; a worker pass covers a notification still queued."""
    try:
        return gateway.wait_for_order(order_id, status, timeout_s=5)  # type: ignore[no-any-return]
    except AssertionError:
        gateway.run_worker(after_s=10)
        return gateway.wait_for_order(order_id, status)  # type: ignore[no-any-return]


@pytest.mark.parametrize("method", ["alipay_qr", "unionpay_qr"])
def test_a_qr_order_is_paid_notified_webhooked_and_refunded(
    world: Gateway, others: tuple[AlipaySandbox, UnionPaySandbox, WeChatSandbox], method: str
) -> None:
    """The channel's QR, the payer pays in the sandbox, its notification moves the order, the
    merchant gets a signed webhook, and a partial refund comes back succeeded."""
    alipay, unionpay, _ = others
    sandbox = alipay if method == "alipay_qr" else unionpay
    order = world.client.create_order(out_trade_no=f"J{method[:2]}1", amount=4_321,
                                      subject="潍坊肉火烧", method=method)  # fmt: skip
    assert order["status"] == "paying"
    assert order["channel"] == method.split("_")[0]
    assert order["next_action"]["type"] == "display_qr"
    sandbox.pay(order["id"], "success")
    paid = _settle(world, order["id"], "succeeded")
    assert paid["channel_transaction_id"]
    world.run_worker()
    events = [world.verified(c) for c in world.webhooks_received(1)]
    assert events[0]["type"] == "order.succeeded"
    assert events[0]["data"]["object"]["id"] == order["id"]
    refund = world.client.create_refund(order_id=order["id"], out_refund_no=f"R{method[:2]}1",
                                        amount=1_000)  # fmt: skip
    if refund["status"] == "processing":
        world.run_worker(after_s=15)
        refund = world.wait_for_refund(refund["id"])
    assert refund["status"] == "succeeded"
    assert world.client.get_order(order["id"])["status"] == "partially_refunded"
    world.assert_books_balance()


@pytest.mark.parametrize("wallet", ["wechat", "alipay", "unionpay"])
def test_a_payment_code_of_any_wallet_pays_at_once(world: Gateway, wallet: str) -> None:
    """`micropay` reads the wallet from the code and the channel answers paid in the call."""
    code = fresh_code(wallet)
    order = world.client.create_order(
        out_trade_no=f"M{wallet[:3]}1",
        amount=1_888,
        subject="药店",
        method="micropay",
        auth_code=code,
    )
    assert order["status"] == "succeeded", order
    assert order["wallet"] == wallet
    assert order["channel_method"] == f"{wallet}_micropay"
    assert order["routing"]["connector"] == wallet
    world.assert_books_balance()


def test_an_unknown_payment_code_is_refused_with_nothing_written(world: Gateway) -> None:
    """A code no wallet issues is a 400 naming auth_code; no order exists afterwards."""
    before = world.row_counts(("orders",))
    with pytest.raises(CloudPayAPIError) as refused:
        world.client.create_order(out_trade_no="MX1", amount=100, subject="x", method="micropay",
                                  auth_code="991234567890123456")  # fmt: skip
    assert refused.value.status == 400
    assert refused.value.code == "payment_code_unknown"
    assert world.row_counts(("orders",)) == before


def test_a_password_pending_payment_code_is_polled_until_the_payer_confirms(
    world: Gateway, others: tuple[AlipaySandbox, UnionPaySandbox, WeChatSandbox]
) -> None:
    """Alipay answers 10003 (the payer must enter a password): the order waits, the worker
    asks every 5 s, and once the payer confirms the order succeeds."""
    alipay, _, _ = others
    code = fresh_code("alipay")
    alipay.register_auth_code(code, "password_pending")
    order = world.client.create_order(out_trade_no="MPW1", amount=2_000, subject="超市",
                                      method="micropay", auth_code=code)  # fmt: skip
    assert order["status"] == "paying"
    assert order["next_action"] == {"type": "await_payer_confirmation"}
    alipay.pay(order["id"], "success")
    world.run_worker(after_s=6)
    assert world.wait_for_order(order["id"], "succeeded")


def test_a_wechat_route_down_mid_run_fails_over_and_nobody_pays_twice(
    world: Gateway, wechat_world: tuple[WeChatSandbox, ShiftedClock],
    others: tuple[AlipaySandbox, UnionPaySandbox, WeChatSandbox],
) -> None:  # fmt: skip
    """Two WeChat routes, the city bank's cheaper: it takes the first order; then its sandbox
    goes down, the next order is created at the provider instead (the bank never saw it), is
    paid there and succeeds; the bank comes back and takes traffic again once probed."""
    bank, _ = wechat_world
    _, _, provider = others
    cheap = operator_post(world.http, "/v1/routes", {
        "name": "WeChat via city bank", "connector": "wechat", "methods": ["wechat_native"],
        "cost": {"rate_bp": 25},
    })  # fmt: skip
    dear = operator_post(world.http, "/v1/routes", {
        "name": "WeChat via provider", "connector": "wechat_provider",
        "methods": ["wechat_native"], "cost": {"rate_bp": 38},
    })  # fmt: skip
    first = world.client.create_order(out_trade_no="FO1", amount=10_000, subject="面",
                                      method="wechat_native")  # fmt: skip
    assert first["routing"]["route_id"] == cheap["id"]
    bank.set_available(False)
    try:
        moved = world.client.create_order(out_trade_no="FO2", amount=10_000, subject="面",
                                          method="wechat_native")  # fmt: skip
    finally:
        bank.set_available(True)
    assert moved["status"] == "paying"
    assert moved["routing"]["route_id"] == dear["id"]
    assert moved["routing"]["cost_fen"] == 38
    assert [a["outcome"] for a in moved["routing"]["attempts"]] == ["unavailable"]
    assert bank._core.state.orders_snapshot(moved["id"]) == []  # never created at the bank
    provider.pay(moved["id"], "success")
    assert _settle(world, moved["id"], "succeeded")
    back = world.client.create_order(out_trade_no="FO3", amount=10_000, subject="面",
                                     method="wechat_native")  # fmt: skip
    assert back["routing"]["route_id"] == cheap["id"]  # one failure: the circuit stayed closed
    health = world.http.get("/v1/routes/health", headers=OPERATOR_HEADERS).json()["data"]
    by_route = {row["route_id"]: row for row in health}
    assert by_route[cheap["id"]]["breaker"]["failures"] == 1
    world.assert_books_balance()


@pytest.mark.parametrize("connector", ["alipay", "unionpay"])
def test_a_forged_notification_is_refused_and_changes_nothing(
    world: Gateway, connector: str
) -> None:
    """A notification whose signature does not verify is answered as a failure; nothing moves."""
    method = f"{connector}_qr"
    order = world.client.create_order(out_trade_no=f"NF{connector[:2]}", amount=500,
                                      subject="x", method=method)  # fmt: skip
    status_before = world.client.get_order(order["id"])["status"]  # paying (created if slow)
    before = world.row_counts()
    forged = {"out_trade_no": order["id"], "orderId": order["id"], "trade_status": "TRADE_SUCCESS",
              "respCode": "00", "total_amount": "5.00", "txnAmt": "500", "sign": "AAAA",
              "signature": "AAAA", "notify_id": "forged-1"}  # fmt: skip
    response = httpx.post(f"{world.base_url}/v1/channels/{connector}/notify", data=forged)
    accepted = {"alipay": "success", "unionpay": "ok"}[connector]
    assert not (response.status_code == 200 and response.text.strip() == accepted)
    assert world.client.get_order(order["id"])["status"] == status_before
    assert world.row_counts() == before


def _signed_alipay_notice(alipay: AlipaySandbox, **fields: str) -> bytes:
    """A notification signed with the sandbox's Alipay key: genuine, whatever it claims."""
    params = {
        "notify_id": f"n{fields['out_trade_no'][-12:]}{fields.get('total_amount', '')}",
        "notify_time": "2026-11-25 12:00:00", "notify_type": "trade_status_sync",
        "app_id": alipay.app.app_id, "charset": "utf-8", "version": "1.0",
        "sign_type": "RSA2", "trade_no": "2026112522001400000000000001",
        "trade_status": "TRADE_SUCCESS", "gmt_payment": "2026-11-25 12:00:00", **fields,
    }  # fmt: skip
    return signed_form(params, alipay._core.key.sign)  # the sandbox's key: no public signer


@pytest.mark.parametrize(
    ("claim", "order_known"),
    [({"total_amount": "5.01"}, True), ({"out_trade_no": "ord_01NOSUCHORDER0000000000000"}, False)],
)
def test_a_genuine_notification_that_disagrees_with_us_is_refused(
    world: Gateway, others: tuple[AlipaySandbox, UnionPaySandbox, WeChatSandbox],
    claim: dict[str, str], order_known: bool,
) -> None:  # fmt: skip
    """Correctly signed news of a different amount, or of an order we never made, is answered
    `fail` (Alipay keeps retrying, reconciliation raises it) and moves nothing."""
    alipay, _, _ = others
    order = world.client.create_order(out_trade_no=f"NG{len(claim)}{order_known:d}", amount=500,
                                      subject="x", method="alipay_qr")  # fmt: skip
    status_before = world.client.get_order(order["id"])["status"]  # paying (created if slow)
    before = world.row_counts()
    body = _signed_alipay_notice(alipay, **{"out_trade_no": order["id"], "total_amount": "5.00",
                                            **claim})  # fmt: skip
    response = httpx.post(
        f"{world.base_url}/v1/channels/alipay/notify", content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )  # fmt: skip
    assert response.text.strip() == "fail"
    assert world.client.get_order(order["id"])["status"] == status_before
    assert world.row_counts() == before


@pytest.mark.parametrize("wallet", ["wechat", "alipay", "unionpay"])
def test_the_store_qr_pays_from_each_wallet_and_refunds(
    world: Gateway, wechat_world: tuple[WeChatSandbox, ShiftedClock],
    others: tuple[AlipaySandbox, UnionPaySandbox, WeChatSandbox], wallet: str,
) -> None:  # fmt: skip
    """A payer scans the store's one QR in each wallet's browser: OAuth where the wallet needs
    it, the amount, an `aggregated_qr` order paid in that wallet's sandbox, its webhook, and a
    refund through the API."""
    store = operator_post(world.http, f"/v1/merchants/{world.merchant.merchant_id}/stores",
                          {"name": "白浪河店"})  # fmt: skip
    channels = DemoChannels(wechat_world[0], others[2], others[0], others[1])
    onboarded = SimpleNamespace(store_codes=(store["store_code"],))
    payer: Any = _OneWallet(wallet)
    paid = pay_at_store(world.base_url, channels, onboarded, 1_234, payer)  # type: ignore[arg-type]
    assert paid is not None
    order = _settle(world, paid["id"], "succeeded")
    assert (order["method"], order["wallet"]) == ("aggregated_qr", wallet)
    assert order["routing"]["connector"] == wallet  # the demo names connectors after wallets
    assert order["amount"] == 1_234
    world.run_worker()
    assert any(world.verified(c)["data"]["object"]["id"] == order["id"]
               for c in world.webhooks_received(1))  # fmt: skip
    refund = world.client.create_refund(order_id=order["id"], out_refund_no=f"RQ{wallet}",
                                        amount=1_234)  # fmt: skip
    if refund["status"] == "processing":
        world.run_worker(after_s=15)
        refund = world.wait_for_refund(refund["id"])
    assert refund["status"] == "succeeded"
    world.assert_books_balance()


class _OneWallet:
    """Stands in for the demo's random payer: always this wallet, always the first store."""

    def __init__(self, wallet: str) -> None:
        self.wallet = wallet

    def choice(self, options: Any) -> Any:
        return self.wallet if self.wallet in options else options[0]


def test_wap_orders_hand_the_payers_browser_to_the_cashier(
    world: Gateway, others: tuple[AlipaySandbox, UnionPaySandbox, WeChatSandbox]
) -> None:
    """alipay_wap answers a signed GET to Alipay's cashier, unionpay_wap a form to POST to
    UnionPay's; the browser opens them, the payer pays, and both orders succeed."""
    alipay, unionpay, _ = others
    back = "https://shop.example.com/paid"
    ali = world.client.create_order(out_trade_no="WAPA1", amount=990, subject="豆浆",
                                    method="alipay_wap", return_url=back)  # fmt: skip
    action = ali["next_action"]
    assert (action["type"], action["method"]) == ("redirect", "GET")
    assert action["url"].startswith(alipay.gateway_url)
    assert httpx.get(action["url"], timeout=10).status_code == 200  # the cashier page
    union = world.client.create_order(out_trade_no="WAPU1", amount=990, subject="豆浆",
                                      method="unionpay_wap", return_url=back)  # fmt: skip
    action = union["next_action"]
    assert (action["type"], action["method"]) == ("redirect", "POST")
    assert action["form"]["signature"]
    assert httpx.post(action["url"], data=action["form"], timeout=10).status_code < 400
    alipay.pay(ali["id"], "success")
    unionpay.pay(union["id"], "success")
    assert _settle(world, ali["id"], "succeeded")
    assert _settle(world, union["id"], "succeeded")
