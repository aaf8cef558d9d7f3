"""The in-memory `FakeChannel` (the WeChat stand-in of service tests) behaves like the WeChat
sandbox where service tests rely on it: scripted payment codes, reverse, and outages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloudpay.channels.fake import FakeChannel
from cloudpay.channels.protocol import (
    ChannelError,
    ChannelErrorKind,
    ChannelPaymentStatus,
    CreatePayment,
    RefundRequest,
)


def order(
    order_id: str, method: str = "wechat_micropay", auth_code: str = "134567890123456789"
) -> CreatePayment:
    return CreatePayment(
        order_id=order_id,
        amount_fen=500,
        currency="CNY",
        subject="test",
        method=method,
        notify_url="http://127.0.0.1:9/n",
        expire_at=datetime.now(UTC) + timedelta(minutes=5),
        auth_code=auth_code if method == "wechat_micropay" else None,
    )


def test_micropay_outcomes_are_scripted_per_auth_code() -> None:
    """Unscripted codes pay at once; `paying` waits for the payer; `failed` carries a reason."""
    fake = FakeChannel(micropay_outcomes={"111": "paying", "222": "failed"})
    paid = fake.create_payment(order("ord_paid01", auth_code="999")).status
    assert paid is not None
    assert (paid.status, paid.amount_fen) == (ChannelPaymentStatus.SUCCEEDED, 500)
    assert paid.channel_transaction_id
    pending = fake.create_payment(order("ord_wait01", auth_code="111")).status
    assert pending is not None
    assert pending.status is ChannelPaymentStatus.PAYING
    fake.customer_pays("ord_wait01")
    assert fake.query_payment("ord_wait01").status is ChannelPaymentStatus.SUCCEEDED
    refused = fake.create_payment(order("ord_fail01", auth_code="222")).status
    assert refused is not None
    assert refused.status is ChannelPaymentStatus.FAILED
    assert refused.failure_reason
    again = fake.create_payment(order("ord_paid01", auth_code="999")).status
    assert again is not None
    assert again.channel_transaction_id == paid.channel_transaction_id


def test_cancel_closes_unpaid_and_refunds_paid() -> None:
    """Reverse closes an order nobody paid and gives a paid one's money back in full."""
    fake = FakeChannel(micropay_outcomes={"111": "paying"})
    fake.create_payment(order("ord_wait02", auth_code="111"))
    fake.cancel_payment("ord_wait02")
    assert fake.query_payment("ord_wait02").status is ChannelPaymentStatus.CLOSED
    fake.create_payment(order("ord_paid02"))
    fake.cancel_payment("ord_paid02")
    assert fake.query_payment("ord_paid02").status is ChannelPaymentStatus.REFUNDED
    with pytest.raises(ChannelError, match="not enough"):
        fake.refund(RefundRequest("rfd_1", "ord_paid02", 1, 500, "CNY"))
    with pytest.raises(ChannelError) as unknown:
        fake.cancel_payment("ord_nobody")
    assert (unknown.value.kind, unknown.value.code) == (
        ChannelErrorKind.REJECTED,
        "ORDER_NOT_EXIST",
    )


def test_unavailable_channel_refuses_everything_until_back() -> None:
    """`set_available(False)` makes every call UNAVAILABLE without effect; True restores it."""
    fake = FakeChannel()
    fake.set_available(False)
    calls = (
        lambda: fake.create_payment(order("ord_down01", method="wechat_native")),
        lambda: fake.query_payment("ord_down01"),
        lambda: fake.close_payment("ord_down01"),
        lambda: fake.cancel_payment("ord_down01"),
        lambda: fake.query_refund("rfd_1"),
    )
    for attempt in calls:
        with pytest.raises(ChannelError) as down:
            attempt()
        assert down.value.kind is ChannelErrorKind.UNAVAILABLE
    fake.set_available(True)
    assert fake.query_payment("ord_down01").status is ChannelPaymentStatus.NOT_FOUND
    assert fake.create_payment(order("ord_down01", method="wechat_native")).code_url
