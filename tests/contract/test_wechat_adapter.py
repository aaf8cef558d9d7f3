"""WeChat-specific behaviour of `WeChatPayChannel` against the sandbox, beyond the shared
scenarios: JSAPI parameters, order idempotency, authentication, notification retries and
freshness, refunds notified, service-provider mode, expiry and bills across days."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import httpx
import pytest

from cloudpay.channels.protocol import (
    ChannelError,
    ChannelErrorKind,
    ChannelPaymentStatus,
    ChannelRefundStatus,
    CreatePayment,
    NotificationKind,
    NotificationRejected,
    RefundRequest,
)
from cloudpay.channels.wechat import WeChatPayChannel
from cloudpay.channels.wechat.bill import parse_trade_bill
from cloudpay.channels.wechat.sandbox import WeChatSandbox, start_wechat_sandbox
from cloudpay.kernel.business_time import SHANGHAI
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.crypto import rsa_verify
from cloudpay.kernel.masking import Secret
from tests.contract.receiver import NotificationReceiver

SUB_MCHID = "1900000110"
T = TypeVar("T")


@pytest.fixture(scope="module")
def receiver() -> Iterator[NotificationReceiver]:
    receiver = NotificationReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[WeChatSandbox]:
    with start_wechat_sandbox(time_scale=0.001, refund_delay_s=5.0) as sandbox:
        yield sandbox


@pytest.fixture
def channel(sandbox: WeChatSandbox) -> Iterator[WeChatPayChannel]:
    with WeChatPayChannel(sandbox.adapter_config()) as channel:
        yield channel


def eventually(read: Callable[[], list[T]], count: int, timeout_s: float = 5.0) -> list[T]:
    """`read()` once it holds `count` items (the sandbox records an attempt after it ends)."""
    deadline = time.monotonic() + timeout_s
    while len(found := read()) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    return found


def order(method: str = "wechat_native", amount_fen: int = 100, **changes: object) -> CreatePayment:
    fields: dict[str, object] = {
        "order_id": f"ord_{uuid.uuid4().hex[:24]}",
        "amount_fen": amount_fen,
        "currency": "CNY",
        "subject": "Pharmacy 药房",
        "method": method,
        "notify_url": "http://127.0.0.1:9/unused",
        "expire_at": datetime.now(UTC) + timedelta(minutes=30),
        "payer_id": "o_adapter_payer_0001",
        **changes,
    }
    return CreatePayment(**fields)  # type: ignore[arg-type]


def test_jsapi_pay_params_are_signed_by_the_merchant(
    sandbox: WeChatSandbox, channel: WeChatPayChannel
) -> None:
    """JSAPI returns prepay_id and pay parameters whose paySign verifies with the merchant key."""
    created = channel.create_payment(order("wechat_jsapi"))
    params = created.pay_params
    assert params is not None
    assert params["package"] == f"prepay_id={created.channel_reference}"
    assert params["signType"] == "RSA"
    message = (
        f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    )
    assert rsa_verify(sandbox.merchant.public_key_pem, message.encode(), params["paySign"])


def test_same_order_twice_is_one_order_other_parameters_refused(channel: WeChatPayChannel) -> None:
    """Resending an order returns the same code_url; reusing its number differently is refused."""
    request = order()
    assert channel.create_payment(request).code_url == channel.create_payment(request).code_url
    with pytest.raises(ChannelError) as refused:
        channel.create_payment(order(order_id=request.order_id, amount_fen=101))
    assert (refused.value.kind, refused.value.code) == (
        ChannelErrorKind.REJECTED,
        "OUT_TRADE_NO_USED",
    )


def test_stale_request_timestamp_is_refused(sandbox: WeChatSandbox) -> None:
    """A request signed 6 minutes in the past gets 401 SIGN_ERROR → AUTHENTICATION."""
    stale = FixedClock(datetime.now(UTC) - timedelta(minutes=6))
    channel = WeChatPayChannel(sandbox.adapter_config(), clock=stale)
    with channel, pytest.raises(ChannelError) as refused:
        channel.query_payment("ord_whatever01")
    assert (refused.value.kind, refused.value.code) == (
        ChannelErrorKind.AUTHENTICATION,
        "SIGN_ERROR",
    )


def test_unreachable_channel_is_unavailable(sandbox: WeChatSandbox) -> None:
    """Nothing listening on the port is UNAVAILABLE (safe to retry), not TIMEOUT."""
    closed = dataclasses.replace(sandbox.adapter_config(), base_url="http://127.0.0.1:9")
    with WeChatPayChannel(closed) as channel, pytest.raises(ChannelError) as failure:
        channel.query_payment("ord_whatever01")
    assert failure.value.kind is ChannelErrorKind.UNAVAILABLE


def test_notification_retried_on_schedule_until_acknowledged(
    sandbox: WeChatSandbox, channel: WeChatPayChannel
) -> None:
    """A notify_url failing 3 times gets retries (freshly signed) until its 4th answer, 204."""
    receiver = NotificationReceiver(answer=lambda index: 500 if index < 3 else 204)
    try:
        request = order(notify_url=f"{receiver.url}/retry")
        channel.create_payment(request)
        sandbox.pay(request.order_id, "success")
        attempts = receiver.wait_for("/retry", 4)
        assert len({a.headers["Wechatpay-Nonce"] for a in attempts}) == 4
        first, *retries = [channel.parse_notification(a.headers, a.body) for a in attempts]
        assert all(retry == first for retry in retries)  # one notification, four deliveries
        recorded = eventually(lambda: sandbox.notification_attempts(request.order_id), 4)
        assert [a.attempt for a in recorded] == [1, 2, 3, 4]
        assert [a.delivered for a in recorded] == [False, False, False, True]
    finally:
        receiver.close()


def test_late_notification_arrives_late(
    sandbox: WeChatSandbox, channel: WeChatPayChannel, receiver: NotificationReceiver
) -> None:
    """A notification delayed by 300 sandbox seconds is not there at once, then arrives."""
    request = order(notify_url=f"{receiver.url}/late")
    channel.create_payment(request)
    sandbox.pay(request.order_id, "success", notify_delay_s=300)
    assert receiver.captured("/late") == []
    assert channel.query_payment(request.order_id).status is ChannelPaymentStatus.SUCCEEDED
    (late,) = receiver.wait_for("/late", 1)
    assert channel.parse_notification(late.headers, late.body).payment is not None


def test_stale_or_foreign_notification_rejected(
    sandbox: WeChatSandbox, channel: WeChatPayChannel, receiver: NotificationReceiver
) -> None:
    """A notification replayed 6 minutes later, or read with another APIv3 key, is rejected."""
    request = order(notify_url=f"{receiver.url}/stale")
    channel.create_payment(request)
    sandbox.pay(request.order_id, "success")
    (captured,) = receiver.wait_for("/stale", 1)
    later = FixedClock(datetime.now(UTC) + timedelta(minutes=6))
    replayed = WeChatPayChannel(sandbox.adapter_config(), clock=later)
    with replayed, pytest.raises(NotificationRejected, match="5 minutes"):
        replayed.parse_notification(captured.headers, captured.body)
    other_key = dataclasses.replace(sandbox.adapter_config(), apiv3_key=Secret("k" * 32))
    with WeChatPayChannel(other_key) as foreign, pytest.raises(NotificationRejected):
        foreign.parse_notification(captured.headers, captured.body)


def test_refund_processing_then_notified_success(
    sandbox: WeChatSandbox, channel: WeChatPayChannel, receiver: NotificationReceiver
) -> None:
    """A refund answers PROCESSING, then a REFUND.SUCCESS notification and query say SUCCEEDED."""
    request = order(amount_fen=900)
    channel.create_payment(request)
    sandbox.pay(request.order_id, "success")
    refund_id = f"rfd_{uuid.uuid4().hex[:20]}"
    accepted = channel.refund(
        RefundRequest(
            refund_id, request.order_id, 400, 900, "CNY", notify_url=f"{receiver.url}/refund"
        )
    )
    assert accepted.status is ChannelRefundStatus.PROCESSING
    (captured,) = receiver.wait_for("/refund", 1)
    notification = channel.parse_notification(captured.headers, captured.body)
    assert notification.kind is NotificationKind.REFUND
    assert notification.refund is not None
    assert (notification.refund.refund_id, notification.refund.amount_fen) == (refund_id, 400)
    assert notification.refund.status is ChannelRefundStatus.SUCCEEDED
    assert channel.query_refund(refund_id).status is ChannelRefundStatus.SUCCEEDED


def test_service_provider_mode(sandbox: WeChatSandbox, receiver: NotificationReceiver) -> None:
    """With sub_mchid the adapter uses the partner API and accepts that sub-merchant's notices."""
    with WeChatPayChannel(sandbox.adapter_config(sub_mchid=SUB_MCHID)) as partner:
        request = order(notify_url=f"{receiver.url}/partner")
        assert partner.create_payment(request).code_url
        sandbox.pay(request.order_id, "success")
        assert partner.query_payment(request.order_id).status is ChannelPaymentStatus.SUCCEEDED
        (captured,) = receiver.wait_for("/partner", 1)
        notification = partner.parse_notification(captured.headers, captured.body)
        assert notification.merchant_id == sandbox.merchant.mchid
        direct = WeChatPayChannel(sandbox.adapter_config())
        with direct, pytest.raises(NotificationRejected, match="merchant"):
            direct.parse_notification(captured.headers, captured.body)


def test_tampered_bill_fails_its_sha1(sandbox: WeChatSandbox, channel: WeChatPayChannel) -> None:
    """A bill file altered on the way does not match the SHA1 of the signed bill answer."""
    request = order()
    channel.create_payment(request)
    sandbox.pay(request.order_id, "success")

    def tamper(request: httpx.Request) -> httpx.Response:
        with httpx.Client() as real:
            response = real.send(request)
        if request.url.path == "/v3/billdownload/file":
            return httpx.Response(200, content=response.content[:-8] + b"\x00" * 8)
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.content
        )

    tampering = httpx.Client(transport=httpx.MockTransport(tamper))
    victim = WeChatPayChannel(sandbox.adapter_config(), http=tampering)
    with tampering, pytest.raises(ChannelError) as failure:
        victim.download_bill(datetime.now(SHANGHAI).date())
    assert failure.value.kind is ChannelErrorKind.INVALID_RESPONSE


def test_day_without_transactions_has_no_bill(channel: WeChatPayChannel) -> None:
    """A day with nothing paid answers NO_STATEMENT_EXIST, a business refusal."""
    with pytest.raises(ChannelError) as refused:
        channel.download_bill(datetime(2020, 1, 1).date())
    assert refused.value.code == "NO_STATEMENT_EXIST"


def test_expiry_and_bill_days_follow_the_sandbox_clock() -> None:
    """An unpaid order closes at its time_expire; a bill holds only its Shanghai day's rows."""
    clock = FixedClock(datetime(2026, 3, 1, 15, 50, tzinfo=UTC))  # 23:50 in Shanghai
    with (
        start_wechat_sandbox(clock=clock) as sandbox,
        WeChatPayChannel(sandbox.adapter_config(), clock=clock) as channel,
    ):
        late = order(expire_at=clock.now() + timedelta(minutes=30))
        expiring = order(expire_at=clock.now() + timedelta(minutes=5))
        channel.create_payment(late)
        channel.create_payment(expiring)
        sandbox.pay(late.order_id, "success")
        clock.advance(minutes=20)  # 00:10 the next day in Shanghai
        assert channel.query_payment(expiring.order_id).status is ChannelPaymentStatus.CLOSED
        first_day = parse_trade_bill(channel.download_bill(datetime(2026, 3, 1).date()))
        assert [row.out_trade_no for row in first_day.rows] == [late.order_id]
        with pytest.raises(ChannelError, match="NO_STATEMENT_EXIST"):
            channel.download_bill(datetime(2026, 3, 2).date())


def test_acknowledgements_in_v3_format(channel: WeChatPayChannel) -> None:
    """Accepted → 204 without a body; refused → 5xx with {"code": "FAIL", "message"}."""
    assert channel.acknowledge(accepted=True).status_code == 204
    refused = channel.acknowledge(accepted=False, message="order unknown")
    assert refused.status_code >= 500
    assert json.loads(refused.body) == {"code": "FAIL", "message": "order unknown"}
