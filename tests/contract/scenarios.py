"""The channel conformance scenarios, written once for every `PaymentChannel`.

A channel takes part by providing a `ChannelHarness`: its adapter pointed at its sandbox, the
simulated customer, the notifications the sandbox sent, fault injection and its bill format.
`test_channel_scenarios.py` runs every scenario against every harness.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import pytest

from cloudpay.channels.protocol import (
    ChannelError,
    ChannelErrorKind,
    ChannelNotification,
    ChannelPaymentStatus,
    ChannelRefundStatus,
    CreatePayment,
    NotificationKind,
    NotificationRejected,
    PaymentChannel,
    RefundRequest,
    RefundStatus,
)


@dataclass(frozen=True)
class RawNotification:
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class BillEntry:
    """A bill line in channel-neutral terms: a payment or a refund of an order."""

    kind: str  # "payment" | "refund"
    order_id: str
    refund_id: str | None
    amount_fen: int


class ChannelHarness(Protocol):
    method: str  # the payment method the scenarios pay with

    def channel(self, *, timeout_s: float = 5.0) -> PaymentChannel: ...

    def notify_url(self, order_id: str) -> str: ...

    def customer(
        self, order_id: str, outcome: str, *, duplicate_notifications: int = 0
    ) -> None: ...

    def notifications(self, order_id: str, count: int) -> list[RawNotification]:
        """Wait for `count` notifications about `order_id` and return them as received."""
        ...

    def inject_fault(self, kind: str) -> None:
        """The next channel call: `timeout`, `server_error` or `bad_signature`."""
        ...

    def bill_date(self) -> date: ...

    def parse_bill(self, data: bytes) -> list[BillEntry]: ...


def new_order_id() -> str:
    return f"ord_{uuid.uuid4().hex[:24]}"


def create(h: ChannelHarness, channel: PaymentChannel, amount_fen: int = 1234) -> str:
    order_id = new_order_id()
    channel.create_payment(
        CreatePayment(
            order_id=order_id,
            amount_fen=amount_fen,
            currency="CNY",
            subject="Noodles 牛肉面",
            method=h.method,
            notify_url=h.notify_url(order_id),
            expire_at=datetime.now(UTC) + timedelta(minutes=30),
            payer_id="o_scenario_payer_0001",
        )
    )
    return order_id


def paid_order(h: ChannelHarness, channel: PaymentChannel, amount_fen: int = 1000) -> str:
    order_id = create(h, channel, amount_fen)
    h.customer(order_id, "success")
    return order_id


def refund(channel: PaymentChannel, order_id: str, amount_fen: int, total_fen: int) -> RefundStatus:
    return channel.refund(
        RefundRequest(
            refund_id=f"rfd_{uuid.uuid4().hex[:20]}",
            order_id=order_id,
            amount_fen=amount_fen,
            order_total_fen=total_fen,
            currency="CNY",
        )
    )


def parsed(
    h: ChannelHarness, channel: PaymentChannel, order_id: str, count: int = 1
) -> list[ChannelNotification]:
    return [channel.parse_notification(n.headers, n.body) for n in h.notifications(order_id, count)]


# ---------------------------------------------------------------- the scenarios


def pay_notify_query(h: ChannelHarness) -> None:
    """A paid order is notified (verified, decrypted) and queried as SUCCEEDED with one id."""
    channel = h.channel()
    order_id = create(h, channel, 1234)
    assert channel.query_payment(order_id).status in (
        ChannelPaymentStatus.NOT_PAID,
        ChannelPaymentStatus.PAYING,
    )
    h.customer(order_id, "success")
    (notification,) = parsed(h, channel, order_id)
    assert notification.kind is NotificationKind.PAYMENT
    assert notification.payment is not None
    assert notification.payment.status is ChannelPaymentStatus.SUCCEEDED
    assert notification.payment.amount_fen == 1234
    queried = channel.query_payment(order_id)
    assert queried.status is ChannelPaymentStatus.SUCCEEDED
    assert queried.channel_transaction_id == notification.payment.channel_transaction_id
    assert channel.acknowledge(accepted=True).status_code in (200, 204)


def decline(h: ChannelHarness) -> None:
    """A declined payment is not taken: FAILED, or still unpaid where the channel lets the
    payer try again on the same order (Alipay keeps the trade WAIT_BUYER_PAY)."""
    channel = h.channel()
    order_id = create(h, channel)
    h.customer(order_id, "fail")
    assert channel.query_payment(order_id).status in (
        ChannelPaymentStatus.FAILED,
        ChannelPaymentStatus.NOT_PAID,
    )


def customer_times_out_then_close(h: ChannelHarness) -> None:
    """An abandoned order stays unpaid until closed, then queries CLOSED; closing is repeatable."""
    channel = h.channel()
    order_id = create(h, channel)
    h.customer(order_id, "timeout")
    assert channel.query_payment(order_id).status in (
        ChannelPaymentStatus.NOT_PAID,
        ChannelPaymentStatus.PAYING,
    )
    channel.close_payment(order_id)
    # A channel without a close API (UnionPay) reverses (冲正) the order: no transaction is left.
    assert channel.query_payment(order_id).status in (
        ChannelPaymentStatus.CLOSED,
        ChannelPaymentStatus.NOT_FOUND,
    )
    channel.close_payment(order_id)  # closing twice is harmless


def duplicate_notifications_parse_the_same(h: ChannelHarness) -> None:
    """Copies of one notification parse to equal results (callers dedupe by id)."""
    channel = h.channel()
    order_id = create(h, channel)
    h.customer(order_id, "success", duplicate_notifications=2)
    first, *others = parsed(h, channel, order_id, count=3)
    assert all(other == first for other in others)


def pay_twice_notifies_one_payment(h: ChannelHarness) -> None:
    """Paying twice takes one payment; its notification may arrive twice, identical."""
    channel = h.channel()
    order_id = create(h, channel)
    h.customer(order_id, "pay_twice")
    first, second = parsed(h, channel, order_id, count=2)
    assert first == second
    assert channel.query_payment(order_id).status is ChannelPaymentStatus.SUCCEEDED


def unknown_order_is_not_found(h: ChannelHarness) -> None:
    """Querying an order the channel never saw answers NOT_FOUND, not an error."""
    assert h.channel().query_payment(new_order_id()).status is ChannelPaymentStatus.NOT_FOUND


def paid_order_cannot_close(h: ChannelHarness) -> None:
    """Closing a paid order is a business refusal (REJECTED)."""
    channel = h.channel()
    order_id = paid_order(h, channel)
    with pytest.raises(ChannelError) as refused:
        channel.close_payment(order_id)
    assert refused.value.kind is ChannelErrorKind.REJECTED


def refunds_partial_full_and_over(h: ChannelHarness) -> None:
    """Partial then full refunds succeed; one fen more is REJECTED."""
    channel = h.channel()
    order_id = paid_order(h, channel, 1000)
    partial = refund(channel, order_id, 300, 1000)
    rest = refund(channel, order_id, 700, 1000)
    assert partial.status in (ChannelRefundStatus.PROCESSING, ChannelRefundStatus.SUCCEEDED)
    assert (partial.amount_fen, rest.amount_fen) == (300, 700)
    with pytest.raises(ChannelError) as over:
        refund(channel, order_id, 1, 1000)
    assert over.value.kind is ChannelErrorKind.REJECTED
    # UnionPay's query reports the consumption itself; its refunds are transactions of their own.
    assert channel.query_payment(order_id).status in (
        ChannelPaymentStatus.REFUNDED,
        ChannelPaymentStatus.SUCCEEDED,
    )


def refund_is_idempotent_by_id(h: ChannelHarness) -> None:
    """Resending a refund with the same id refunds once."""
    channel = h.channel()
    order_id = paid_order(h, channel, 500)
    request = RefundRequest(f"rfd_{uuid.uuid4().hex[:20]}", order_id, 500, 500, "CNY")
    first, again = channel.refund(request), channel.refund(request)
    assert first.channel_refund_id == again.channel_refund_id
    assert channel.query_refund(request.refund_id).amount_fen == 500


def channel_timeout(h: ChannelHarness) -> None:
    """An answer that never comes is ChannelError(TIMEOUT), outcome unknown."""
    channel = h.channel(timeout_s=0.3)
    h.inject_fault("timeout")
    with pytest.raises(ChannelError) as failure:
        channel.query_payment(new_order_id())
    assert failure.value.kind is ChannelErrorKind.TIMEOUT
    assert failure.value.outcome_unknown


def channel_unavailable(h: ChannelHarness) -> None:
    """A 5xx is ChannelError(UNAVAILABLE)."""
    channel = h.channel()
    h.inject_fault("server_error")
    with pytest.raises(ChannelError) as failure:
        channel.query_payment(new_order_id())
    assert failure.value.kind is ChannelErrorKind.UNAVAILABLE


def bad_response_signature(h: ChannelHarness) -> None:
    """An answer with a bad signature is ChannelError(INVALID_RESPONSE)."""
    channel = h.channel()
    order_id = create(h, channel)
    h.inject_fault("bad_signature")
    with pytest.raises(ChannelError) as failure:
        channel.query_payment(order_id)
    assert failure.value.kind is ChannelErrorKind.INVALID_RESPONSE


def tampered_notification_rejected(h: ChannelHarness) -> None:
    """A notification altered in transit raises NotificationRejected."""
    channel = h.channel()
    order_id = paid_order(h, channel)
    (raw,) = h.notifications(order_id, 1)
    # Change one digit the signature covers, whatever the channel's body format (JSON, form).
    tampered = re.sub(rb"\d", lambda digit: b"8" if digit[0] == b"9" else b"9", raw.body, count=1)
    assert tampered != raw.body
    with pytest.raises(NotificationRejected):
        channel.parse_notification(raw.headers, tampered)
    assert channel.acknowledge(accepted=False, message="bad signature").status_code >= 400


def bill_matches_the_day(h: ChannelHarness) -> None:
    """The day's bill downloads (hash checked) and lists the day's payment and refund."""
    channel = h.channel()
    paid = paid_order(h, channel, 888)
    refund(channel, paid, 88, 888)
    entries = h.parse_bill(channel.download_bill(h.bill_date()))
    assert BillEntry("payment", paid, None, 888) in entries
    assert any(e.kind == "refund" and e.order_id == paid and e.amount_fen == 88 for e in entries)


Scenario = Callable[[ChannelHarness], None]
SCENARIOS: dict[str, Scenario] = {
    scenario.__name__: scenario
    for scenario in (
        pay_notify_query,
        decline,
        customer_times_out_then_close,
        duplicate_notifications_parse_the_same,
        pay_twice_notifies_one_payment,
        unknown_order_is_not_found,
        paid_order_cannot_close,
        refunds_partial_full_and_over,
        refund_is_idempotent_by_id,
        channel_timeout,
        channel_unavailable,
        bad_response_signature,
        tampered_notification_rejected,
        bill_matches_the_day,
    )
}
