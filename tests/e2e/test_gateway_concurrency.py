"""Races on PostgreSQL through the whole gateway: duplicated channel notifications against
concurrent pollers, and refunds racing refunds over HTTP. Money moves once, never more."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from cloudpay.sdk import CloudPayAPIError
from tests.e2e.gateway import Gateway, eventually

pytestmark = pytest.mark.postgres_only


def _race(workers: list[Callable[[], Any]]) -> list[Any]:
    """Run each worker in its own thread, released together; their results or exceptions."""
    start = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = workers[index]()
        except Exception as error:  # collected: the test asserts on it
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_duplicate_notifications_racing_pollers_capture_each_order_once(gateway: Gateway) -> None:
    """Six copies of each payment notification arrive while four workers poll the same
    orders: every order is captured once, announced once, and the ledger holds the sum."""
    amounts = [1_100, 2_200, 3_300, 4_400, 5_500]
    order_ids = [
        gateway.client.create_order(out_trade_no=f"N-{n}", amount=amount, subject="面",
                                    method="wechat_native")["id"]
        for n, amount in enumerate(amounts)
    ]  # fmt: skip
    gateway.clock.advance(6)  # every order is now due for a poll
    for order_id in order_ids:
        gateway.pay(order_id, "success", duplicate_notifications=5)
    results = _race([gateway.run_worker for _ in range(4)])
    assert not [r for r in results if isinstance(r, BaseException)], results

    for order_id in order_ids:
        gateway.wait_for_order(order_id, "succeeded")
        attempts = eventually(
            lambda o=order_id: (
                len(gateway.sandbox.notification_attempts(o)) >= 6
                and gateway.sandbox.notification_attempts(o)
            ),
            what=f"six notifications of {order_id}",
        )
        assert all(a.delivered for a in attempts), attempts  # each copy acknowledged
    assert gateway.merchant_pending() == sum(amounts)
    gateway.run_worker()
    succeeded = [e for e in gateway.client.list_events(limit=100)["data"]
                 if e["type"] == "order.succeeded"]  # fmt: skip
    assert sorted(e["data"]["object"]["id"] for e in succeeded) == sorted(order_ids)
    gateway.assert_books_balance()


def test_refunds_racing_over_http_never_over_refund(gateway: Gateway) -> None:
    """Ten merchants' threads refund 400 each of a 2,500 order at once: six pass, four are
    refused `refund_exceeds_paid`; the channel and the ledger both see 2,400 returned."""
    order = gateway.client.create_order(out_trade_no="RR-1", amount=2_500, subject="团餐",
                                        method="wechat_native")  # fmt: skip
    gateway.pay(order["id"], "success")
    gateway.wait_for_order(order["id"], "succeeded")
    clients = [gateway.sdk() for _ in range(10)]
    for client in clients:
        client.platform_public_keys()  # fetched before the race, not during it

    def refund(n: int) -> Callable[[], Any]:
        return lambda: clients[n].create_refund(order_id=order["id"], out_refund_no=f"RR-{n}",
                                                amount=400)  # fmt: skip

    results = _race([refund(n) for n in range(10)])
    refunds = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, CloudPayAPIError)]
    assert len(refunds) == 6, results
    assert [(e.status, e.code) for e in refused] == [(400, "refund_exceeds_paid")] * 4, results
    for made in refunds:
        assert gateway.wait_for_refund(made["id"])["status"] == "succeeded"
    final = gateway.client.get_order(order["id"])
    assert (final["status"], final["amount_refunded"]) == ("partially_refunded", 2_400)
    [at_wechat] = gateway.sandbox._core.state.orders_snapshot(order["id"])
    assert len(at_wechat.refund_keys) == 6
    assert gateway.merchant_pending() == 100
    gateway.assert_books_balance()
    for client in clients:
        client.close()


def test_same_numbers_racing_make_one_order_and_one_refund(gateway: Gateway) -> None:
    """Retries racing with fresh Idempotency-Keys: one out_trade_no is one order, one
    out_refund_no is one refund, however many requests arrive together."""
    body = {"out_trade_no": "SAME-1", "amount": 800, "subject": "粥", "method": "wechat_native"}
    clients = [gateway.sdk() for _ in range(6)]
    for client in clients:
        client.platform_public_keys()
    created = _race([lambda c=client: c.create_order(**body) for client in clients])
    assert not [r for r in created if isinstance(r, BaseException)], created
    assert len({order["id"] for order in created}) == 1
    order_id = created[0]["id"]
    gateway.pay(order_id, "success")
    gateway.wait_for_order(order_id, "succeeded")

    refunded = _race([
        lambda c=client: c.create_refund(order_id=order_id, out_refund_no="SAME-R", amount=300)
        for client in clients
    ])  # fmt: skip
    assert not [r for r in refunded if isinstance(r, BaseException)], refunded
    assert len({refund["id"] for refund in refunded}) == 1
    gateway.wait_for_refund(refunded[0]["id"])
    assert gateway.client.get_order(order_id)["amount_refunded"] == 300
    assert gateway.merchant_pending() == 500
    gateway.assert_books_balance()
    for client in clients:
        client.close()
