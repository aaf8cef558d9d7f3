"""Alipay-specific behaviour of `AlipayChannel` against the sandbox, beyond the shared
scenarios: every payment method, micropay outcomes, cancel, OAuth, notifications and retries,
and how failures map to `ChannelError` kinds."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from cloudpay.channels.alipay import AlipayChannel, wire
from cloudpay.channels.alipay.sandbox import AlipaySandbox, start_alipay_sandbox
from cloudpay.channels.protocol import (
    ChannelError,
    ChannelErrorKind,
    ChannelPaymentStatus,
    CreatePayment,
    NotificationKind,
    NotificationRejected,
    PayerIdentityProvider,
    PaymentChannel,
    PaymentCreated,
    RefundRequest,
)
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.crypto import generate_rsa_key_pair, rsa_sign
from cloudpay.kernel.masking import Secret
from tests.contract.harness_alipay import AlipayNotifyReceiver

AUTH_CODE_PREFIX = "28"


@pytest.fixture(scope="module")
def receiver() -> Iterator[AlipayNotifyReceiver]:
    receiver = AlipayNotifyReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[AlipaySandbox]:
    with start_alipay_sandbox(time_scale=0.001, fault_hold_s=1.0) as sandbox:
        yield sandbox


@pytest.fixture
def channel(sandbox: AlipaySandbox) -> Iterator[AlipayChannel]:
    with AlipayChannel(sandbox.adapter_config()) as channel:
        yield channel


def new_order_id() -> str:
    return f"ord_{uuid.uuid4().hex[:20]}"


def new_auth_code() -> str:
    return AUTH_CODE_PREFIX + str(uuid.uuid4().int)[:16]


def create(
    channel: AlipayChannel,
    receiver: AlipayNotifyReceiver,
    method: str = "alipay_qr",
    amount_fen: int = 1000,
    **extra: str,
) -> tuple[str, PaymentCreated]:
    order_id = new_order_id()
    created = channel.create_payment(
        CreatePayment(
            order_id=order_id,
            amount_fen=amount_fen,
            currency="CNY",
            subject="Dumplings 饺子",
            method=method,
            notify_url=f"{receiver.url}/{order_id}",
            expire_at=datetime.now(UTC) + timedelta(minutes=30),
            **extra,
        )
    )
    return order_id, created


def test_adapter_implements_both_protocols(channel: AlipayChannel) -> None:
    """AlipayChannel is a PaymentChannel and a PayerIdentityProvider for all four methods."""
    assert isinstance(channel, PaymentChannel)
    assert isinstance(channel, PayerIdentityProvider)
    assert channel.methods == {"alipay_qr", "alipay_wap", "alipay_jsapi", "alipay_micropay"}


def test_jsapi_gives_the_trade_no_for_tradepay(
    channel: AlipayChannel, receiver: AlipayNotifyReceiver, sandbox: AlipaySandbox
) -> None:
    """alipay_jsapi creates the trade for the payer and returns tradeNO for AlipayJSBridge."""
    payer = sandbox.sandbox_user_id()
    order_id, created = create(channel, receiver, "alipay_jsapi", payer_id=payer)
    assert created.pay_params == {"tradeNO": created.channel_reference}
    status = channel.query_payment(order_id)
    assert (status.status, status.payer_id) == (ChannelPaymentStatus.NOT_PAID, payer)
    assert status.channel_transaction_id == created.channel_reference


def test_wap_redirect_is_a_signed_gateway_url(
    channel: AlipayChannel, receiver: AlipayNotifyReceiver, sandbox: AlipaySandbox
) -> None:
    """The wap redirect URL carries a verifiable RSA2 signature and return_url, and opening it
    in the payer's browser creates the trade (no server call before)."""
    order_id, created = create(
        channel, receiver, "alipay_wap", return_url="https://shop.example/back"
    )
    assert created.redirect_url is not None
    assert created.redirect_url.startswith(sandbox.gateway_url + "?")
    params = dict(parse_qsl(urlsplit(created.redirect_url).query))
    assert params["method"] == "alipay.trade.wap.pay"
    assert params["return_url"] == "https://shop.example/back"
    assert wire.verify_params(params, sandbox.app.public_key_pem, exclude=wire.REQUEST_EXCLUDED)
    assert channel.query_payment(order_id).status is ChannelPaymentStatus.NOT_FOUND
    page = httpx.get(created.redirect_url)
    assert page.status_code == 200
    assert "10.00" in page.text
    assert channel.query_payment(order_id).status is ChannelPaymentStatus.NOT_PAID


def test_micropay_succeeds_at_once(channel: AlipayChannel, receiver: AlipayNotifyReceiver) -> None:
    """A payment code with no registered outcome pays at once and is notified."""
    order_id, created = create(channel, receiver, "alipay_micropay", auth_code=new_auth_code())
    assert created.status is not None
    assert created.status.status is ChannelPaymentStatus.SUCCEEDED
    assert created.status.amount_fen == 1000
    (post,) = receiver.wait_for(f"/{order_id}", 1)
    notification = channel.parse_notification(post.headers, post.body)
    assert notification.payment is not None
    assert notification.payment.channel_transaction_id == created.status.channel_transaction_id


def test_micropay_waits_for_the_password_then_confirms(
    channel: AlipayChannel, receiver: AlipayNotifyReceiver, sandbox: AlipaySandbox
) -> None:
    """10003 is PAYING; once the payer confirms, the query says SUCCEEDED."""
    auth_code = new_auth_code()
    sandbox.register_auth_code(auth_code, "password_pending")
    order_id, created = create(channel, receiver, "alipay_micropay", auth_code=auth_code)
    assert created.status is not None
    assert created.status.status is ChannelPaymentStatus.PAYING
    assert channel.query_payment(order_id).status is ChannelPaymentStatus.NOT_PAID
    sandbox.pay(order_id, "success")
    assert channel.query_payment(order_id).status is ChannelPaymentStatus.SUCCEEDED


def test_micropay_abandoned_is_cancelled(
    channel: AlipayChannel, receiver: AlipayNotifyReceiver, sandbox: AlipaySandbox
) -> None:
    """A payer who never types the password: cancel closes the trade, and can be repeated."""
    auth_code = new_auth_code()
    sandbox.register_auth_code(auth_code, "password_pending")
    order_id, _ = create(channel, receiver, "alipay_micropay", auth_code=auth_code)
    sandbox.pay(order_id, "timeout")
    channel.cancel_payment(order_id)
    assert channel.query_payment(order_id).status is ChannelPaymentStatus.CLOSED
    channel.cancel_payment(order_id)
    channel.cancel_payment(new_order_id())  # a trade Alipay never saw needs nothing


@pytest.mark.parametrize(
    ("auth_code", "registered", "reason"),
    [
        ("1234", None, "ACQ.PAYMENT_AUTH_CODE_INVALID"),
        (None, "insufficient_balance", "ACQ.BUYER_BALANCE_NOT_ENOUGH"),
    ],
)
def test_micropay_payer_declines_are_failed(
    channel: AlipayChannel,
    receiver: AlipayNotifyReceiver,
    sandbox: AlipaySandbox,
    auth_code: str | None,
    registered: str | None,
    reason: str,
) -> None:
    """A payer-side refusal is a FAILED payment with Alipay's sub_code as the reason."""
    code = auth_code or new_auth_code()
    if registered:
        sandbox.register_auth_code(code, registered)
    _, created = create(channel, receiver, "alipay_micropay", auth_code=code)
    assert created.status is not None
    assert created.status.status is ChannelPaymentStatus.FAILED
    assert created.status.failure_reason is not None
    assert created.status.failure_reason.startswith(reason)


def test_cancel_refunds_a_paid_trade(
    channel: AlipayChannel, receiver: AlipayNotifyReceiver
) -> None:
    """Cancelling a paid micropay returns the money: the trade then queries as REFUNDED."""
    order_id, _ = create(channel, receiver, "alipay_micropay", auth_code=new_auth_code())
    channel.cancel_payment(order_id)
    assert channel.query_payment(order_id).status is ChannelPaymentStatus.REFUNDED


def test_refund_is_notified_with_our_refund_id(
    channel: AlipayChannel, receiver: AlipayNotifyReceiver, sandbox: AlipaySandbox
) -> None:
    """A refund's notification carries out_biz_no = our refund id and parses as REFUND."""
    order_id, _ = create(channel, receiver)
    sandbox.pay(order_id, "success")
    refund_id = f"rfd_{uuid.uuid4().hex[:16]}"
    channel.refund(RefundRequest(refund_id, order_id, 250, 1000, "CNY"))
    posts = receiver.wait_for(f"/{order_id}", 2)  # in either order, as Alipay's may arrive
    parsed = [channel.parse_notification(p.headers, p.body) for p in posts[:2]]
    assert sorted(n.kind for n in parsed) == [NotificationKind.PAYMENT, NotificationKind.REFUND]
    (refund_notice,) = [n for n in parsed if n.kind is NotificationKind.REFUND]
    assert refund_notice.refund is not None
    assert refund_notice.refund.refund_id == refund_id
    assert channel.query_refund(refund_id).amount_fen == 250


def test_refund_query_of_an_unknown_refund_is_rejected(channel: AlipayChannel) -> None:
    """A refund this adapter never made cannot be queried (Alipay needs its trade)."""
    with pytest.raises(ChannelError) as refused:
        channel.query_refund("rfd_never_made")
    assert refused.value.kind is ChannelErrorKind.REJECTED


def test_close_is_notified_as_closed(
    channel: AlipayChannel, receiver: AlipayNotifyReceiver
) -> None:
    """Closing an unpaid trade sends TRADE_CLOSED, which parses as CLOSED."""
    order_id, _ = create(channel, receiver)
    channel.close_payment(order_id)
    (post,) = receiver.wait_for(f"/{order_id}", 1)
    notification = channel.parse_notification(post.headers, post.body)
    assert notification.payment is not None
    assert notification.payment.status is ChannelPaymentStatus.CLOSED


def test_notifications_retry_until_success(channel: AlipayChannel, sandbox: AlipaySandbox) -> None:
    """An answer other than `success` is retried on Alipay's schedule with the same notify_id."""
    answers = [b"", b"fail", b"success"]
    receiver = AlipayNotifyReceiver(answer=lambda index: answers[min(index, 2)])
    try:
        order_id, _ = create(channel, receiver)
        sandbox.pay(order_id, "success")
        posts = receiver.wait_for(f"/{order_id}", 3)
        ids = {channel.parse_notification(p.headers, p.body).notification_id for p in posts}
        assert len(ids) == 1
        deadline = time.monotonic() + 5  # the sandbox records an attempt once answered
        while len(sandbox.notification_attempts(order_id)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        attempts = sandbox.notification_attempts(order_id)
        assert [a.attempt for a in attempts] == [1, 2, 3]
        assert [a.delivered for a in attempts] == [False, False, True]
    finally:
        receiver.close()


def test_notification_for_another_app_is_rejected(
    sandbox: AlipaySandbox, receiver: AlipayNotifyReceiver
) -> None:
    """A correctly signed notification addressed to another app_id is refused."""
    with AlipayChannel(sandbox.adapter_config()) as payer_side:
        order_id, _ = create(payer_side, receiver)
    sandbox.pay(order_id, "success")
    (post,) = receiver.wait_for(f"/{order_id}", 1)
    config = dataclasses.replace(sandbox.adapter_config(), app_id="2021000000009999")
    with AlipayChannel(config) as other, pytest.raises(NotificationRejected):
        other.parse_notification(post.headers, post.body)


def test_acknowledgements_are_alipays_plain_words(channel: AlipayChannel) -> None:
    """Accepted is exactly `success` (text/plain); refused is `fail`."""
    accepted = channel.acknowledge(accepted=True)
    assert (accepted.status_code, accepted.body, accepted.content_type) == (
        200,
        b"success",
        "text/plain",
    )
    assert channel.acknowledge(accepted=False).body == b"fail"


def test_oauth_round_trip(channel: AlipayChannel, sandbox: AlipaySandbox) -> None:
    """The authorize URL comes back with auth_code and state; the code resolves once."""
    url = channel.payer_authorize_url(redirect_uri="https://shop.example/cb", state="s-42")
    assert url.startswith(sandbox.oauth_url + "?")
    assert dict(parse_qsl(urlsplit(url).query))["scope"] == "auth_base"
    back = httpx.get(url, follow_redirects=False)
    assert back.status_code == 302
    location = back.headers["location"]
    assert location.startswith("https://shop.example/cb?")
    returned = dict(parse_qsl(urlsplit(location).query))
    assert returned["state"] == "s-42"
    assert channel.resolve_payer(returned["auth_code"]) == sandbox.sandbox_user_id()
    with pytest.raises(ChannelError) as reused:
        channel.resolve_payer(returned["auth_code"])
    assert (reused.value.kind, reused.value.code) == (ChannelErrorKind.REJECTED, "isv.code-invalid")


def test_availability_switch_is_unavailable_and_does_nothing(
    channel: AlipayChannel, receiver: AlipayNotifyReceiver, sandbox: AlipaySandbox
) -> None:
    """While the sandbox is down calls are UNAVAILABLE and no trade is created."""
    sandbox.set_available(False)
    try:
        with pytest.raises(ChannelError) as down:
            create(channel, receiver)
        assert down.value.kind is ChannelErrorKind.UNAVAILABLE
        switch = httpx.post(f"{sandbox.base_url}/sandbox/availability", json={"available": True})
        assert switch.status_code == 200
        assert channel.query_payment(new_order_id()).status is ChannelPaymentStatus.NOT_FOUND
    finally:
        sandbox.set_available(True)


def test_bad_signature_on_a_micropay_is_invalid_response(
    channel: AlipayChannel, receiver: AlipayNotifyReceiver, sandbox: AlipaySandbox
) -> None:
    """A corrupted answer signature is INVALID_RESPONSE, whose outcome is unknown."""
    sandbox.inject_fault("bad_signature")
    with pytest.raises(ChannelError) as failure:
        create(channel, receiver, "alipay_micropay", auth_code=new_auth_code())
    assert failure.value.kind is ChannelErrorKind.INVALID_RESPONSE
    assert failure.value.outcome_unknown


def test_timeout_on_refund_is_timeout(
    sandbox: AlipaySandbox, receiver: AlipayNotifyReceiver
) -> None:
    """A refund whose answer never comes is TIMEOUT; repeating it refunds once."""
    with AlipayChannel(sandbox.adapter_config(timeout_s=0.3)) as channel:
        order_id, _ = create(channel, receiver)
        sandbox.pay(order_id, "success")
        request = RefundRequest("rfd_timeout_1", order_id, 1000, 1000, "CNY")
        sandbox.inject_fault("timeout")
        with pytest.raises(ChannelError) as failure:
            channel.refund(request)
        assert failure.value.kind is ChannelErrorKind.TIMEOUT
        assert channel.refund(request).amount_fen == 1000
        assert channel.query_payment(order_id).status is ChannelPaymentStatus.REFUNDED


def test_wrong_key_and_unknown_app_are_authentication(sandbox: AlipaySandbox) -> None:
    """Requests Alipay cannot authenticate (wrong key, unknown app, stale clock) are refused
    as AUTHENTICATION."""
    config = sandbox.adapter_config()
    wrong_key = dataclasses.replace(
        config, app_private_key_pem=generate_rsa_key_pair().private_key_pem
    )
    unknown_app = dataclasses.replace(config, app_id="2021000000009999")
    stale = FixedClock(datetime.now(UTC) - timedelta(hours=1))
    for bad, clock in ((wrong_key, None), (unknown_app, None), (config, stale)):
        with AlipayChannel(bad, clock=clock) as channel, pytest.raises(ChannelError) as refused:
            channel.query_payment(new_order_id())
        assert refused.value.kind is ChannelErrorKind.AUTHENTICATION


def test_unreachable_gateway_is_unavailable(sandbox: AlipaySandbox) -> None:
    """A refused connection is UNAVAILABLE: nothing was sent."""
    config = dataclasses.replace(
        sandbox.adapter_config(), gateway_url="http://127.0.0.1:9/gateway.do"
    )
    with AlipayChannel(config) as channel, pytest.raises(ChannelError) as failure:
        channel.query_payment(new_order_id())
    assert failure.value.kind is ChannelErrorKind.UNAVAILABLE


def test_response_text_is_found_exactly() -> None:
    """The signed `_response` text is located by JSON structure, not by counting braces."""
    content = '{"code":"10000","subject":"a}b{\\"c","nested":{"x":[1,{"y":2}]}}'
    raw = f'{{"other":"{{","alipay_trade_query_response": {content} ,"sign":"abc"}}'
    assert wire.response_content(raw, "alipay_trade_query_response") == content
    assert wire.response_content(raw, "missing_response") is None


def test_service_provider_calls_need_a_valid_app_auth_token(sandbox: AlipaySandbox) -> None:
    """With the merchant's app_auth_token calls succeed; an unknown token is 20001, i.e.
    AUTHENTICATION."""
    config = sandbox.adapter_config()
    granted = dataclasses.replace(
        config,
        app_auth_token=Secret(sandbox.issue_app_auth_token()),
        sys_service_provider_id="2088000000000099",
    )
    with AlipayChannel(granted) as channel:
        assert channel.query_payment(new_order_id()).status is ChannelPaymentStatus.NOT_FOUND
    forged = dataclasses.replace(config, app_auth_token=Secret("not-a-grant"))
    with AlipayChannel(forged) as channel, pytest.raises(ChannelError) as refused:
        channel.query_payment(new_order_id())
    assert (refused.value.kind, refused.value.code) == (
        ChannelErrorKind.AUTHENTICATION,
        "aop.invalid-app-auth-token",
    )


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/sandbox/customer/pay", b"not json", 400, "invalid_request"),
        ("/sandbox/customer/pay", b'{"out_trade_no": "ord_unknown"}', 409, "customer_refused"),
        ("/sandbox/customer/pay", b'{"out_trade_no": "o", "outcome": "dance"}', 400, None),
        ("/sandbox/faults", b'{"kind": "meteor"}', 400, None),
        ("/sandbox/availability", b'{"available": "no"}', 400, None),
        ("/sandbox/micropay/auth_codes", b'{"auth_code": "12", "outcome": "success"}', 400, None),
    ],
)
def test_control_api_refuses_bad_input_with_4xx(
    sandbox: AlipaySandbox, path: str, body: bytes, status: int, code: str | None
) -> None:
    """Bad control requests get a 4xx in CloudPay's error shape, never a 500."""
    answer = httpx.post(sandbox.base_url + path, content=body)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["type"]
    assert error["message"]
    if code is not None:
        assert error["code"] == code


def test_trade_finishes_after_the_refund_window(receiver: AlipayNotifyReceiver) -> None:
    """Past the refund window a paid trade is TRADE_FINISHED: still SUCCEEDED for us, but a
    refund is refused with ACQ.TRADE_HAS_FINISHED."""
    clock = FixedClock(datetime.now(UTC))
    with (
        start_alipay_sandbox(time_scale=0.001, clock=clock, refund_window_s=86400) as sandbox,
        AlipayChannel(sandbox.adapter_config(), clock=clock) as channel,
    ):
        order_id, _ = create(channel, receiver)
        sandbox.pay(order_id, "success")
        clock.advance(days=1, seconds=1)
        status = channel.query_payment(order_id)
        assert status.status is ChannelPaymentStatus.SUCCEEDED
        assert status.raw["trade_status"] == "TRADE_FINISHED"
        with pytest.raises(ChannelError) as refused:
            channel.refund(RefundRequest("rfd_late", order_id, 100, 1000, "CNY"))
        assert refused.value.code == "ACQ.TRADE_HAS_FINISHED"


def _answering(sandbox: AlipaySandbox, body: str, alipay_public_key_pem: str) -> AlipayChannel:
    """An adapter whose gateway answers `body`, trusting `alipay_public_key_pem`."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text=body))
    config = dataclasses.replace(
        sandbox.adapter_config(), alipay_public_key_pem=alipay_public_key_pem
    )
    return AlipayChannel(config, http=httpx.Client(transport=transport))


QUERY_KEY = "alipay_trade_query_response"
QUERY_TEXT = (
    '{ "code": "10000", "msg": "Success", "out_trade_no": "ord_x", "trade_no": "t1",'
    ' "trade_status": "WAIT_BUYER_PAY", "total_amount": "1.00", "subject": "a}{" }'
)


def test_answers_verify_over_their_exact_text(sandbox: AlipaySandbox) -> None:
    """The signature covers the `_response` text as sent (spaces, braces in strings and all);
    an unsigned or altered success is INVALID_RESPONSE."""
    alipay_key = generate_rsa_key_pair()
    signature = rsa_sign(alipay_key.private_key_pem, QUERY_TEXT.encode())
    signed = f'{{"{QUERY_KEY}":{QUERY_TEXT},"sign":"{signature}"}}'
    with _answering(sandbox, signed, alipay_key.public_key_pem) as channel:
        assert channel.query_payment("ord_x").status is ChannelPaymentStatus.NOT_PAID
    unsigned = f'{{"{QUERY_KEY}":{QUERY_TEXT}}}'
    altered = signed.replace('"1.00"', '"9.00"')
    for body in (unsigned, altered, "<html>gateway error</html>"):
        with (
            _answering(sandbox, body, alipay_key.public_key_pem) as channel,
            pytest.raises(ChannelError) as bad,
        ):
            channel.query_payment("ord_x")
        assert bad.value.kind is ChannelErrorKind.INVALID_RESPONSE
