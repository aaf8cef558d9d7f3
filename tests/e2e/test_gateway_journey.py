"""The payment gateway end to end over real HTTP: SDK → our server → WeChat Pay sandbox → the
simulated customer → channel notification → order → merchant webhook → refunds → books.

Nothing is faked in between: requests are signed by the SDK, the sandbox speaks WeChat Pay
v3 (signed answers, AES-GCM notifications with retries), the worker is the real job loop.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import pytest

from cloudpay.channels.wechat.sandbox.state import CustomerRefused
from cloudpay.kernel.crypto import rsa_verify
from cloudpay.sdk import CloudPayAPIError
from tests.e2e.gateway import Gateway, eventually


def _events(gateway: Gateway) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = gateway.client.list_events(limit=100)["data"]
    return data


def _events_of(gateway: Gateway, object_id: str, event_type: str) -> list[dict[str, Any]]:
    return [
        event
        for event in _events(gateway)
        if event["type"] == event_type and event["data"]["object"]["id"] == object_id
    ]


def _attempts(gateway: Gateway, event_id: str) -> list[dict[str, Any]]:
    attempts: list[dict[str, Any]] = gateway.client.request("GET", f"/v1/events/{event_id}")[
        "delivery"
    ]["attempts"]
    return attempts


def test_journey_pay_webhook_partial_and_full_refund_books_balance(gateway: Gateway) -> None:
    """An approved merchant's signed order is paid in the sandbox, notified, webhooked and
    refunded in two steps, and the books balance with the merchant owed nothing."""
    client = gateway.client
    order = client.create_order(
        out_trade_no="J-1001", amount=2_500, subject="牛肉面 两碗", method="wechat_native",
        metadata={"table": "7"},
    )  # fmt: skip
    assert order["status"] == "paying"
    action = order["next_action"]
    assert action["type"] == "display_qr"
    assert action["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    image = gateway.http.get(action["qr_image_url"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")

    gateway.pay(order["id"], "success")
    paid = gateway.wait_for_order(order["id"], "succeeded")  # by the channel's notification
    assert paid["channel_transaction_id"]
    assert paid["paid_at"]
    assert paid["next_action"] is None
    [notice] = eventually(lambda: gateway.sandbox.notification_attempts(order["id"]))
    assert notice.status_code == 204  # acknowledged in WeChat's format
    assert gateway.merchant_pending() == 2_500
    assert gateway.http.get(action["qr_image_url"]).status_code == 404  # paid: no more QR

    gateway.run_worker()
    [webhook] = gateway.webhooks_received(1)
    event = gateway.verified(webhook)
    assert event["type"] == "order.succeeded"
    assert event["data"]["object"]["id"] == order["id"]
    assert event["data"]["object"]["status"] == "succeeded"
    assert event["data"]["object"]["metadata"] == {"table": "7"}

    partial = client.create_refund(order_id=order["id"], out_refund_no="R-1", amount=1_000,
                                   reason="少了一碗")  # fmt: skip
    assert partial["status"] in ("processing", "succeeded")
    assert gateway.wait_for_refund(partial["id"])["status"] == "succeeded"
    half = client.get_order(order["id"])
    assert (half["status"], half["amount_refunded"]) == ("partially_refunded", 1_000)
    with pytest.raises(CloudPayAPIError) as too_much:
        client.create_refund(order_id=order["id"], out_refund_no="R-2", amount=1_501)
    assert too_much.value.code == "refund_exceeds_paid"

    full = client.create_refund(out_trade_no="J-1001", out_refund_no="R-3", amount=1_500)
    assert gateway.wait_for_refund(full["id"])["status"] == "succeeded"
    done = client.get_order(order["id"])
    assert (done["status"], done["amount_refunded"]) == ("refunded", 2_500)
    assert gateway.merchant_pending() == 0

    gateway.run_worker()
    received = [gateway.verified(w) for w in gateway.webhooks_received(3)]
    assert [e["type"] for e in received] == ["order.succeeded", "refund.succeeded",
                                             "refund.succeeded"]  # fmt: skip
    assert {e["data"]["object"]["id"] for e in received[1:]} == {partial["id"], full["id"]}
    listed = _events(gateway)
    assert [e["type"] for e in listed] == ["refund.succeeded", "refund.succeeded",
                                           "order.succeeded"]  # newest first  # fmt: skip
    for listed_event in listed:
        delivery = listed_event["delivery"]
        assert delivery["status"] == "delivered"
        assert [a["status_code"] for a in delivery["attempts"]] == [204]
    assert {e["id"] for e in listed} == {e["id"] for e in received}
    gateway.assert_books_balance()


def test_jsapi_order_gets_signed_wallet_parameters_and_is_paid(gateway: Gateway) -> None:
    """A JSAPI order returns wallet parameters signed with the WeChat merchant key, and the
    payer's payment captures it."""
    openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    order = gateway.client.create_order(
        out_trade_no="J-2001", amount=1_800, subject="药品", method="wechat_jsapi",
        payer_id=openid,
    )  # fmt: skip
    action = order["next_action"]
    assert action["type"] == "wechat_jsapi"
    params = action["params"]
    assert params["package"].startswith("prepay_id=wx")
    assert params["signType"] == "RSA"
    assert params["appId"] == gateway.sandbox.merchant.appid
    message = (
        f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    )
    assert rsa_verify(gateway.sandbox.merchant.public_key_pem, message.encode(), params["paySign"])

    gateway.pay(order["id"], "success")
    assert gateway.wait_for_order(order["id"], "succeeded")["amount"] == 1_800
    assert gateway.merchant_pending() == 1_800
    gateway.assert_books_balance()


def test_declined_payment_fails_after_a_poll(gateway: Gateway) -> None:
    """WeChat sends no notification for a declined payment: the poller finds it failed and the
    merchant is told, with nothing booked."""
    order = gateway.client.create_order(out_trade_no="D-1", amount=990, subject="奶茶",
                                        method="wechat_native")  # fmt: skip
    gateway.pay(order["id"], "fail")
    gateway.run_worker()  # not due yet: nothing asked, still paying
    assert gateway.client.get_order(order["id"])["status"] == "paying"
    gateway.run_worker(after_s=6)
    failed = gateway.client.get_order(order["id"])
    assert (failed["status"], failed["failure_code"]) == ("failed", "payment_failed")
    gateway.run_worker()
    [webhook] = gateway.webhooks_received(1)
    assert gateway.verified(webhook)["type"] == "order.failed"
    assert gateway.merchant_pending() == 0
    gateway.assert_books_balance()


def test_walked_away_order_expires_and_is_closed_at_the_channel(gateway: Gateway) -> None:
    """A payer who never confirms: once expire_at passes the worker settles the order as
    `expired`, closed at WeChat too, and the payer can no longer pay it."""
    expire_at = datetime.fromtimestamp(gateway.clock.timestamp() + 120).astimezone()
    order = gateway.client.create_order(
        out_trade_no="E-1", amount=1_200, subject="停车费", method="wechat_native",
        expire_at=expire_at.isoformat(),
    )  # fmt: skip
    gateway.pay(order["id"], "timeout")
    gateway.run_worker(after_s=6)
    assert gateway.client.get_order(order["id"])["status"] == "paying"  # still waiting
    gateway.run_worker(after_s=180)
    expired = gateway.client.get_order(order["id"])
    assert expired["status"] == "expired"
    assert gateway.wechat_order(order["id"]).trade_state == "CLOSED"
    with pytest.raises(CustomerRefused, match="CLOSED"):
        gateway.pay(order["id"], "success")
    gateway.run_worker()
    [webhook] = gateway.webhooks_received(1)
    assert gateway.verified(webhook)["type"] == "order.expired"
    gateway.assert_books_balance()


def test_paying_twice_and_duplicate_or_late_notifications_capture_once(gateway: Gateway) -> None:
    """Double payment attempts, duplicated notifications and a notification arriving after the
    poller already captured: each order is captured once and announced once."""
    client, amounts = gateway.client, {"P-1": 1_000, "P-2": 2_000, "P-3": 3_000}
    orders = {
        number: client.create_order(out_trade_no=number, amount=amount, subject="面",
                                    method="wechat_native")["id"]
        for number, amount in amounts.items()
    }  # fmt: skip
    gateway.pay(orders["P-3"], "success", notify_delay_s=2_500)  # 2.5 s late
    twice = gateway.pay(orders["P-1"], "pay_twice")
    assert twice["second_attempt"].startswith("refused")
    assert gateway.pay(orders["P-2"], "success", duplicate_notifications=3)["notifications"] == 4
    gateway.wait_for_order(orders["P-1"], "succeeded")
    gateway.wait_for_order(orders["P-2"], "succeeded")
    gateway.run_worker(after_s=6)  # the poller captures P-3 before its notification arrives
    assert client.get_order(orders["P-3"])["status"] == "succeeded"
    assert gateway.order_history(orders["P-3"])[-1] == ("paying", "succeeded", "poll")

    for number, copies in (("P-1", 2), ("P-2", 4), ("P-3", 1)):
        attempts = eventually(
            lambda n=number, c=copies: (
                len(gateway.sandbox.notification_attempts(orders[n])) >= c
                and gateway.sandbox.notification_attempts(orders[n])
            ),
            what=f"{copies} notifications of {number}",
        )
        assert [a.status_code for a in attempts] == [204] * copies  # all acknowledged
    assert gateway.merchant_pending() == sum(amounts.values())
    gateway.run_worker()
    for order_id in orders.values():
        assert len(_events_of(gateway, order_id, "order.succeeded")) == 1
    assert len(gateway.webhooks_received(3)) == 3
    gateway.assert_books_balance()


def test_webhook_receiver_down_retries_on_schedule_then_resend_delivers(
    gateway: Gateway,
) -> None:
    """A merchant endpoint answering 500 gets attempts at +15 s, +15 s, +30 s, all recorded;
    once it is back, `POST /v1/events/{id}/resend` delivers the same event."""
    gateway.webhooks.answer = lambda index: 500
    order = gateway.client.create_order(out_trade_no="W-1", amount=500, subject="豆浆",
                                        method="wechat_native")  # fmt: skip
    gateway.pay(order["id"], "success")
    gateway.wait_for_order(order["id"], "succeeded")
    gateway.run_worker()
    [event] = _events_of(gateway, order["id"], "order.succeeded")
    assert len(_attempts(gateway, event["id"])) == 1
    for attempts_so_far, wait_s in enumerate((15, 15, 30), start=1):
        gateway.run_worker(after_s=wait_s - 5)  # not due yet: nothing sent
        assert len(_attempts(gateway, event["id"])) == attempts_so_far
        gateway.run_worker(after_s=5)
        assert len(_attempts(gateway, event["id"])) == attempts_so_far + 1
    failing = gateway.client.request("GET", f"/v1/events/{event['id']}")
    attempts = failing["delivery"]["attempts"]
    assert failing["delivery"]["status"] == "pending"
    assert [a["status_code"] for a in attempts] == [500] * 4
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    times = [datetime.fromisoformat(a["attempted_at"]).timestamp() for a in attempts]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # The clock moves with real time too, so a loaded machine stretches a gap, never shrinks it.
    for gap, scheduled in zip(gaps, (15, 15, 30), strict=True):
        assert scheduled - 1 <= gap <= scheduled + 10, gaps

    gateway.webhooks.answer = lambda index: 204
    resent = gateway.client.resend_event(event["id"])
    assert resent["delivery"]["status"] == "pending"
    gateway.run_worker()
    delivered = gateway.client.request("GET", f"/v1/events/{event['id']}")["delivery"]
    assert delivered["status"] == "delivered"
    assert [a["status_code"] for a in delivered["attempts"]] == [500] * 4 + [204]
    bodies = {gateway.verified(w)["id"] for w in gateway.webhooks_received(5)}
    assert bodies == {event["id"]}  # the same event every time: merchants dedupe on it


def test_idempotency_key_and_out_trade_no_reuse(gateway: Gateway) -> None:
    """Same Idempotency-Key and body → the same order, replayed; the key with another body →
    409 idempotency_key_reused; the out_trade_no with other parameters → 409
    out_trade_no_used; nothing new is written by the refusals."""
    client = gateway.client
    body = {"out_trade_no": "I-1", "amount": 1_000, "subject": "包子", "method": "wechat_native"}
    first = client.create_order(idempotency_key="key-I-1", **body)
    again = client.create_order(idempotency_key="key-I-1", **body)
    assert again == first
    assert gateway.transport.last is not None
    assert gateway.transport.last.headers["idempotent-replayed"] == "true"
    same_number = client.create_order(idempotency_key="key-I-1b", **body)  # a new key, same body
    assert same_number["id"] == first["id"]
    before = gateway.row_counts()
    with pytest.raises(CloudPayAPIError) as reused:
        client.create_order(idempotency_key="key-I-1", **{**body, "amount": 1_001})
    assert (reused.value.status, reused.value.code) == (409, "idempotency_key_reused")
    with pytest.raises(CloudPayAPIError) as number_used:
        client.create_order(idempotency_key="key-I-2", **{**body, "amount": 1_001})
    assert (number_used.value.status, number_used.value.code) == (409, "out_trade_no_used")
    assert number_used.value.param == "out_trade_no"
    assert gateway.row_counts() == before
    assert len(client.list_orders()["data"]) == 1


def test_channel_timeout_on_create_leaves_created_and_the_poller_recovers(
    gateway: Gateway,
) -> None:
    """WeChat acts on the create but its answer never arrives: the order stays `created`,
    the poller asks again, gets the same code_url, and the payment then captures normally."""
    gateway.sandbox.inject_fault("timeout")
    order = gateway.client.create_order(out_trade_no="T-1", amount=1_500, subject="油条",
                                        method="wechat_native")  # fmt: skip
    assert (order["status"], order["next_action"]) == ("created", None)
    at_wechat = gateway.wechat_order(order["id"])  # created there: only the answer was lost
    gateway.run_worker(after_s=6)
    recovered = gateway.client.get_order(order["id"])
    assert recovered["status"] == "paying"
    assert recovered["next_action"]["code_url"] == at_wechat.code_url
    gateway.pay(order["id"], "success")
    gateway.wait_for_order(order["id"], "succeeded")
    assert gateway.merchant_pending() == 1_500
    gateway.assert_books_balance()
