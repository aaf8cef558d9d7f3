"""Payment-code pay (付款码), reverse (撤销) and outages of `WeChatPayChannel` against the
sandbox: each scripted payer outcome, polling a pending payment, revoking paid and unpaid
orders, the trade bill's MICROPAY / REVOKED lines, and the availability switch."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloudpay.channels.protocol import (
    ChannelError,
    ChannelErrorKind,
    ChannelPaymentStatus,
    CreatePayment,
    PaymentStatus,
)
from cloudpay.channels.wechat import WeChatPayChannel
from cloudpay.channels.wechat.bill import parse_trade_bill
from cloudpay.channels.wechat.sandbox import WeChatSandbox, start_wechat_sandbox
from cloudpay.channels.wechat.sandbox.state import CustomerRefused
from cloudpay.kernel.business_time import SHANGHAI
from cloudpay.kernel.clock import FixedClock

SUB_MCHID = "1900000110"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[WeChatSandbox]:
    with start_wechat_sandbox(time_scale=0.001) as sandbox:
        yield sandbox


@pytest.fixture
def channel(sandbox: WeChatSandbox) -> Iterator[WeChatPayChannel]:
    with WeChatPayChannel(sandbox.adapter_config()) as channel:
        yield channel


def payment_code() -> str:
    """A fresh, well-formed WeChat payment code: 18 digits starting 10..15."""
    return f"1{secrets.randbelow(6)}{secrets.randbelow(10**16):016d}"


def micropay(auth_code: str | None = None, amount_fen: int = 2500) -> CreatePayment:
    return CreatePayment(
        order_id=f"ord_{uuid.uuid4().hex[:24]}",
        amount_fen=amount_fen,
        currency="CNY",
        subject="便利店",
        method="wechat_micropay",
        notify_url="http://127.0.0.1:9/unused",
        expire_at=datetime.now(UTC) + timedelta(minutes=5),
        auth_code=auth_code or payment_code(),
        client_ip="10.0.0.8",
    )


def paid_at_once(channel: WeChatPayChannel, request: CreatePayment) -> PaymentStatus:
    created = channel.create_payment(request)
    assert created.status is not None
    return created.status


def test_payment_code_paid_at_once(channel: WeChatPayChannel) -> None:
    """By default the payer is charged at once: SUCCEEDED with transaction id and amount."""
    request = micropay(amount_fen=2500)
    status = paid_at_once(channel, request)
    assert status.status is ChannelPaymentStatus.SUCCEEDED
    assert (status.order_id, status.amount_fen) == (request.order_id, 2500)
    assert status.channel_transaction_id
    assert status.paid_at is not None
    assert status.raw["trade_type"] == "MICROPAY"
    assert channel.query_payment(request.order_id) == status


def test_password_pending_then_confirmed_is_found_by_polling(
    sandbox: WeChatSandbox, channel: WeChatPayChannel
) -> None:
    """USERPAYING answers PAYING; once the payer enters the password a query says SUCCEEDED."""
    request = micropay()
    sandbox.expect_micropay(str(request.auth_code), "password_pending")
    status = paid_at_once(channel, request)
    assert (status.status, status.raw["code"]) == (ChannelPaymentStatus.PAYING, "USERPAYING")
    assert channel.query_payment(request.order_id).status is ChannelPaymentStatus.PAYING
    sandbox.pay(request.order_id, "confirm")
    polled = channel.query_payment(request.order_id)
    assert polled.status is ChannelPaymentStatus.SUCCEEDED
    assert polled.amount_fen == request.amount_fen


def test_password_abandoned_is_a_failed_payment(
    sandbox: WeChatSandbox, channel: WeChatPayChannel
) -> None:
    """A payer who closes the password box leaves the order PAYERROR: FAILED on the next poll."""
    request = micropay()
    sandbox.expect_micropay(str(request.auth_code), "password_pending")
    channel.create_payment(request)
    sandbox.pay(request.order_id, "abandon")
    assert channel.query_payment(request.order_id).status is ChannelPaymentStatus.FAILED


@pytest.mark.parametrize(
    ("outcome", "code"),
    [("insufficient_balance", "NOTENOUGH"), ("invalid_code", "AUTH_CODE_INVALID")],
)
def test_definite_refusals_are_failed_with_reason(
    sandbox: WeChatSandbox, channel: WeChatPayChannel, outcome: str, code: str
) -> None:
    """A refusal that certainly charged nobody comes back FAILED with WeChat's code as reason."""
    request = micropay()
    sandbox.expect_micropay(str(request.auth_code), outcome)
    status = paid_at_once(channel, request)
    assert status.status is ChannelPaymentStatus.FAILED
    assert status.failure_reason is not None
    assert status.failure_reason.startswith(code)


def test_foreign_or_reused_payment_codes_are_refused(channel: WeChatPayChannel) -> None:
    """An Alipay-style code is refused without a call; a code used once cannot pay again."""
    foreign = micropay(auth_code="281234567890123456")
    assert paid_at_once(channel, foreign).status is ChannelPaymentStatus.FAILED
    assert channel.query_payment(foreign.order_id).status is ChannelPaymentStatus.NOT_FOUND
    code = payment_code()
    assert paid_at_once(channel, micropay(code)).status is ChannelPaymentStatus.SUCCEEDED
    reused = paid_at_once(channel, micropay(code))
    assert reused.status is ChannelPaymentStatus.FAILED
    assert reused.failure_reason is not None
    assert "AUTH_CODE_INVALID" in reused.failure_reason


def test_resent_payment_answers_its_first_outcome(channel: WeChatPayChannel) -> None:
    """Sending the same payment again (lost answer) reports the first payment, no second one."""
    request = micropay()
    first = paid_at_once(channel, request)
    again = paid_at_once(channel, request)
    assert again.channel_transaction_id == first.channel_transaction_id
    assert again.status is ChannelPaymentStatus.SUCCEEDED


def test_system_error_leaves_the_outcome_open(
    sandbox: WeChatSandbox, channel: WeChatPayChannel
) -> None:
    """A 500 SYSTEM_ERROR on a payment code is PAYING (query to learn), not an exception."""
    request = micropay()
    sandbox.inject_fault("server_error")
    status = paid_at_once(channel, request)
    assert (status.status, status.raw["code"]) == (ChannelPaymentStatus.PAYING, "SYSTEM_ERROR")
    assert channel.query_payment(request.order_id).status is ChannelPaymentStatus.NOT_FOUND


def test_reverse_closes_an_unpaid_order(sandbox: WeChatSandbox, channel: WeChatPayChannel) -> None:
    """Reversing a payment still waiting for the password closes it; the payer cannot confirm."""
    request = micropay()
    sandbox.expect_micropay(str(request.auth_code), "password_pending")
    channel.create_payment(request)
    channel.cancel_payment(request.order_id)
    status = channel.query_payment(request.order_id)
    assert (status.status, status.raw["trade_state"]) == (ChannelPaymentStatus.CLOSED, "REVOKED")
    with pytest.raises(CustomerRefused, match="REVOKED"):
        sandbox.pay(request.order_id, "confirm")


def test_reverse_refunds_a_paid_order_and_is_idempotent(channel: WeChatPayChannel) -> None:
    """Reversing a paid order returns its money (REFUNDED); reversing again changes nothing."""
    request = micropay()
    paid_at_once(channel, request)
    channel.cancel_payment(request.order_id)
    channel.cancel_payment(request.order_id)
    status = channel.query_payment(request.order_id)
    assert (status.status, status.raw["trade_state"]) == (
        ChannelPaymentStatus.REFUNDED,
        "REVOKED",
    )
    resent = paid_at_once(channel, request)
    assert resent.status is ChannelPaymentStatus.FAILED
    assert resent.failure_reason is not None
    assert resent.failure_reason.startswith("ORDERREVERSED")


def test_reverse_retries_a_lost_answer_and_refuses_unknown_orders(
    sandbox: WeChatSandbox, channel: WeChatPayChannel
) -> None:
    """A 5xx on reverse is retried at once (WeChat revokes once); an unknown order is REJECTED."""
    request = micropay()
    paid_at_once(channel, request)
    sandbox.inject_fault("server_error", count=2)
    channel.cancel_payment(request.order_id)
    assert channel.query_payment(request.order_id).status is ChannelPaymentStatus.REFUNDED
    with pytest.raises(ChannelError) as refused:
        channel.cancel_payment(micropay().order_id)
    assert (refused.value.kind, refused.value.code) == (
        ChannelErrorKind.REJECTED,
        "ORDER_NOT_EXIST",
    )


def test_partner_micropay_and_reverse(sandbox: WeChatSandbox) -> None:
    """A service provider takes a payment code and reverses it for its sub-merchant."""
    with WeChatPayChannel(sandbox.adapter_config(sub_mchid=SUB_MCHID)) as partner:
        request = micropay()
        status = paid_at_once(partner, request)
        assert status.status is ChannelPaymentStatus.SUCCEEDED
        assert status.raw["sub_mchid"] == SUB_MCHID
        partner.cancel_payment(request.order_id)
        assert partner.query_payment(request.order_id).status is ChannelPaymentStatus.REFUNDED


def test_bill_lists_micropay_payments_and_revoked_money() -> None:
    """The trade bill has a MICROPAY payment line and, for a reversed one, a REVOKED line."""
    clock = FixedClock(datetime(2026, 4, 2, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai
    with (
        start_wechat_sandbox(clock=clock) as sandbox,
        WeChatPayChannel(sandbox.adapter_config(), clock=clock) as channel,
    ):
        kept, reversed_ = micropay(amount_fen=300), micropay(amount_fen=700)
        paid_at_once(channel, kept)
        paid_at_once(channel, reversed_)
        clock.advance(minutes=1)
        channel.cancel_payment(reversed_.order_id)
        bill = parse_trade_bill(channel.download_bill(clock.now().astimezone(SHANGHAI).date()))
    lines = [(r.out_trade_no, r.trade_type, r.trade_state, r.refund_fen) for r in bill.rows]
    assert lines == [
        (kept.order_id, "MICROPAY", "SUCCESS", 0),
        (reversed_.order_id, "MICROPAY", "SUCCESS", 0),
        (reversed_.order_id, "MICROPAY", "REVOKED", 700),
    ]
    assert all(row.device_info == "cloudpay" for row in bill.rows)


def test_outage_is_unavailable_then_service_resumes(
    sandbox: WeChatSandbox, channel: WeChatPayChannel
) -> None:
    """While switched off every call is UNAVAILABLE and nothing happens; on again, all works."""
    request = micropay()
    sandbox.set_available(False)
    try:
        for attempt in (
            lambda: channel.create_payment(request),
            lambda: channel.query_payment(request.order_id),
            lambda: channel.cancel_payment(request.order_id),
        ):
            with pytest.raises(ChannelError) as down:
                attempt()
            assert (down.value.kind, down.value.code) == (
                ChannelErrorKind.UNAVAILABLE,
                "SYSTEM_ERROR",
            )
    finally:
        sandbox.set_available(True)
    assert channel.query_payment(request.order_id).status is ChannelPaymentStatus.NOT_FOUND
    assert paid_at_once(channel, request).status is ChannelPaymentStatus.SUCCEEDED
