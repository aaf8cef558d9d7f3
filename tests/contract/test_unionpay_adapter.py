"""The UnionPay adapter against its sandbox: every method, signatures, certificates, errors."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

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
from cloudpay.channels.unionpay import UnionPayChannel, wire
from cloudpay.channels.unionpay import transformers as tf
from cloudpay.channels.unionpay.sandbox import (
    CustomerRefused,
    UnionPaySandbox,
    start_unionpay_sandbox,
)
from cloudpay.channels.unionpay.sandbox.pki import issue, new_hierarchy
from cloudpay.kernel.business_time import business_date
from cloudpay.kernel.clock import FixedClock
from tests.contract.receiver import NotificationReceiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[NotificationReceiver]:
    found = NotificationReceiver(answer=lambda index: 200)
    yield found
    found.close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[UnionPaySandbox]:
    with start_unionpay_sandbox(time_scale=0.001, fault_hold_s=1.0) as running:
        yield running


@pytest.fixture
def channel(sandbox: UnionPaySandbox) -> Iterator[UnionPayChannel]:
    with UnionPayChannel(sandbox.adapter_config()) as adapter:
        yield adapter


def _order(
    receiver: NotificationReceiver, method: str = tf.METHOD_QR, amount_fen: int = 1000, **extra: str
) -> CreatePayment:
    order_id = f"ord_{uuid.uuid4().hex[:24]}"
    return CreatePayment(
        order_id=order_id,
        amount_fen=amount_fen,
        currency="CNY",
        subject="豆浆油条",
        method=method,
        notify_url=f"{receiver.url}/up/{order_id}",
        expire_at=datetime.now(UTC) + timedelta(minutes=15),
        **extra,
    )


# ---------------------------------------------------------------- signatures and certificates


def test_signature_round_trip_and_tampering() -> None:
    """A signed form verifies; changing any signed field, even an empty one, breaks it."""
    pki = new_hierarchy(datetime.now(UTC))
    fields = wire.sign_fields(
        {"merId": "777290058110048", "txnAmt": "1", "x": ""}, pki.root.private_key_pem
    )
    key = wire.public_key_pem(wire.load_certificate(pki.root.cert_pem))
    assert wire.signature_valid(fields, key)
    assert not wire.signature_valid({**fields, "txnAmt": "2"}, key)
    assert not wire.signature_valid({**fields, "x": "1"}, key)
    assert wire.signing_string({"b": "2", "a": "1", "signature": "s"}) == "a=1&b=2"


def test_answers_are_raw_pairs_with_braced_values() -> None:
    """Answers keep `+`, `/`, `=` as sent and `{…}` values whole; malformed ones are refused."""
    body = b"signature=ab+c/d==&reserved={a=1&b=2}&respMsg=\xe6\x88\x90\xe5\x8a\x9f"
    fields = wire.decode_answer(body)
    assert fields == {"signature": "ab+c/d==", "reserved": "{a=1&b=2}", "respMsg": "成功"}
    assert wire.decode_answer(wire.encode_answer(fields)) == fields
    for bad in (b"", b"a=1&a=2", b"novalue", b"x={a=1", b"\xff=1"):
        with pytest.raises(wire.WireFormatError):
            wire.decode_answer(bad)


def test_certificate_chain_accepts_unionpay_and_refuses_other_roots() -> None:
    """The signer must chain root → middle → signer and name UnionPay; another root fails."""
    now = datetime.now(UTC)
    pki, other = new_hierarchy(now), new_hierarchy(now)
    signer = pki.unionpay_signer.cert_pem
    key = wire.verified_signer_key(
        signer, middle_pem=pki.middle.cert_pem, root_pem=pki.root.cert_pem, now=now
    )
    assert key == wire.public_key_pem(wire.load_certificate(signer))
    with pytest.raises(wire.CertificateRejected):
        wire.verified_signer_key(
            other.unionpay_signer.cert_pem,
            middle_pem=pki.middle.cert_pem,
            root_pem=pki.root.cert_pem,
            now=now,
        )
    impostor = issue("041@Z1@Some Other Company@1", now=now, issuer=pki.middle)
    with pytest.raises(wire.CertificateRejected, match="UnionPay"):
        wire.verified_signer_key(
            impostor.cert_pem, middle_pem=pki.middle.cert_pem, root_pem=pki.root.cert_pem, now=now
        )
    with pytest.raises(wire.CertificateRejected, match="validity"):
        wire.verified_signer_key(
            signer,
            middle_pem=pki.middle.cert_pem,
            root_pem=pki.root.cert_pem,
            now=now + timedelta(days=4 * 365),
        )


def test_answers_from_another_root_are_invalid(sandbox: UnionPaySandbox) -> None:
    """An adapter trusting another UnionPay root refuses the sandbox's answers."""
    other = new_hierarchy(datetime.now(UTC))
    config = replace(
        sandbox.adapter_config(),
        root_cert_pem=other.root.cert_pem,
        middle_cert_pem=other.middle.cert_pem,
    )
    with UnionPayChannel(config) as adapter, pytest.raises(ChannelError) as failure:
        adapter.query_payment("ord_nothere0001")
    assert failure.value.kind is ChannelErrorKind.INVALID_RESPONSE


# ---------------------------------------------------------------- payments


def test_qr_payment_notified_and_queried(
    sandbox: UnionPaySandbox, channel: UnionPayChannel, receiver: NotificationReceiver
) -> None:
    """A QR order gets a qrCode, is paid, notified by form POST (verified) and queried paid."""
    request = _order(receiver, amount_fen=2345)
    created = channel.create_payment(request)
    assert created.code_url
    assert created.code_url.startswith("https://qr.95516.com/")
    assert channel.query_payment(request.order_id).status is ChannelPaymentStatus.NOT_PAID
    sandbox.pay(request.order_id, "success")
    (raw,) = receiver.wait_for(f"/up/{request.order_id}", 1)
    assert raw.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    notice = channel.parse_notification(raw.headers, raw.body)
    assert notice.kind is NotificationKind.PAYMENT
    assert notice.payment is not None
    assert notice.payment.amount_fen == 2345
    assert notice.payment.order_id == request.order_id
    queried = channel.query_payment(request.order_id)
    assert queried.status is ChannelPaymentStatus.SUCCEEDED
    assert notice.notification_id == f"{queried.channel_transaction_id}:01"
    ack = channel.acknowledge(accepted=True)
    assert (ack.status_code, ack.body) == (200, b"ok")


def test_wap_form_is_signed_and_posted_by_the_browser(
    sandbox: UnionPaySandbox, channel: UnionPayChannel, receiver: NotificationReceiver
) -> None:
    """The web payment is a signed form for frontTransReq.do; once posted, it can be paid."""
    request = _order(receiver, tf.METHOD_WAP, return_url="https://shop.example/back")
    created = channel.create_payment(request)
    assert created.redirect_method == "POST"
    assert created.pay_params is not None
    assert created.redirect_url == sandbox.base_url + "/gateway/api/frontTransReq.do"
    assert created.pay_params["bizType"] == "000201"
    assert created.pay_params["channelType"] == "08"
    assert channel.query_payment(request.order_id).status is ChannelPaymentStatus.NOT_FOUND
    page = httpx.post(created.redirect_url, data=dict(created.pay_params))
    assert page.status_code == 200
    assert "10.00" in page.text
    forged = {**created.pay_params, "txnAmt": "1"}
    assert httpx.post(created.redirect_url, data=forged).status_code == 400
    sandbox.pay(request.order_id, "success")
    assert channel.query_payment(request.order_id).status is ChannelPaymentStatus.SUCCEEDED


def test_micropay_outcomes(
    sandbox: UnionPaySandbox, channel: UnionPayChannel, receiver: NotificationReceiver
) -> None:
    """A payment code pays at once, waits for a PIN (then confirms), or is declined."""
    paid = channel.create_payment(
        _order(receiver, tf.METHOD_MICROPAY, auth_code="6225000000000001")
    )
    assert paid.status is not None
    assert paid.status.status is ChannelPaymentStatus.SUCCEEDED
    sandbox.register_auth_code("6225000000000002", "pin_pending")
    waiting = _order(receiver, tf.METHOD_MICROPAY, auth_code="6225000000000002")
    pending = channel.create_payment(waiting)
    assert pending.status is not None
    assert pending.status.status is ChannelPaymentStatus.PAYING
    assert channel.query_payment(waiting.order_id).status is ChannelPaymentStatus.PAYING
    sandbox.confirm_auth_code("6225000000000002")
    assert channel.query_payment(waiting.order_id).status is ChannelPaymentStatus.SUCCEEDED
    sandbox.register_auth_code("6225000000000003", "declined")
    declined = channel.create_payment(
        _order(receiver, tf.METHOD_MICROPAY, auth_code="6225000000000003")
    )
    assert declined.status is not None
    assert declined.status.status is ChannelPaymentStatus.FAILED
    assert declined.status.failure_reason
    assert declined.status.failure_reason.startswith("60")


def test_closed_order_cannot_be_paid(
    sandbox: UnionPaySandbox, channel: UnionPayChannel, receiver: NotificationReceiver
) -> None:
    """Closing reverses (冲正) an unpaid order: the payer can no longer pay it."""
    request = _order(receiver)
    channel.create_payment(request)
    channel.close_payment(request.order_id)
    with pytest.raises(CustomerRefused):
        sandbox.pay(request.order_id, "success")
    assert channel.query_payment(request.order_id).status is ChannelPaymentStatus.NOT_FOUND


def test_expired_order_cannot_be_paid(
    sandbox: UnionPaySandbox, channel: UnionPayChannel, receiver: NotificationReceiver
) -> None:
    """After payTimeout the sandbox refuses the payment and the order is no transaction."""
    request = replace(_order(receiver), expire_at=datetime.now(UTC) - timedelta(seconds=1))
    channel.create_payment(request)
    with pytest.raises(CustomerRefused, match="expired"):
        sandbox.pay(request.order_id, "success")
    assert channel.query_payment(request.order_id).status is ChannelPaymentStatus.NOT_FOUND


def test_cancel_voids_a_paid_order_and_reverses_an_unpaid_one(
    sandbox: UnionPaySandbox, channel: UnionPayChannel, receiver: NotificationReceiver
) -> None:
    """cancel_payment voids (消费撤销) today's payment, so nothing is left to refund."""
    paid = _order(receiver, amount_fen=800)
    channel.create_payment(paid)
    sandbox.pay(paid.order_id, "success")
    channel.cancel_payment(paid.order_id)
    with pytest.raises(ChannelError) as over:
        channel.refund(RefundRequest(f"rfd_{uuid.uuid4().hex[:20]}", paid.order_id, 1, 800, "CNY"))
    assert over.value.kind is ChannelErrorKind.REJECTED
    assert over.value.code == "36"
    unpaid = _order(receiver)
    channel.create_payment(unpaid)
    channel.cancel_payment(unpaid.order_id)
    assert channel.query_payment(unpaid.order_id).status is ChannelPaymentStatus.NOT_FOUND


def test_refund_settles_and_notifies(
    sandbox: UnionPaySandbox, channel: UnionPayChannel, receiver: NotificationReceiver
) -> None:
    """A refund is accepted, then succeeds and is notified as a refund; its id is our id."""
    request = _order(receiver, amount_fen=500)
    channel.create_payment(request)
    sandbox.pay(request.order_id, "success")
    refund_id = f"rfd_{uuid.uuid4().hex[:20]}"
    refund_url = f"{receiver.url}/up-refund/{refund_id}"
    accepted = channel.refund(
        RefundRequest(refund_id, request.order_id, 200, 500, "CNY", notify_url=refund_url)
    )
    assert accepted.status is ChannelRefundStatus.PROCESSING
    assert accepted.amount_fen == 200
    (raw,) = receiver.wait_for(f"/up-refund/{refund_id}", 1)
    notice = channel.parse_notification(raw.headers, raw.body)
    assert notice.kind is NotificationKind.REFUND
    assert notice.refund is not None
    assert notice.refund.refund_id == refund_id
    assert channel.query_refund(refund_id).status is ChannelRefundStatus.SUCCEEDED


def test_notification_resent_until_http_200(sandbox: UnionPaySandbox) -> None:
    """A backUrl that answers 500 gets the same notification again until it answers 200."""
    flaky = NotificationReceiver(answer=lambda index: 500 if index < 2 else 200)
    try:
        with UnionPayChannel(sandbox.adapter_config()) as adapter:
            request = _order(flaky)
            adapter.create_payment(request)
            sandbox.pay(request.order_id, "success")
            copies = flaky.wait_for(f"/up/{request.order_id}", 3, timeout_s=10)
        assert len({c.body for c in copies}) == 1
        # The receiver records a delivery before it answers; the sandbox logs the attempt
        # once the answer is back: wait for the third entry rather than race it.
        deadline = time.monotonic() + 10
        while len(attempts := sandbox.notification_attempts(request.order_id)) < 3:
            assert time.monotonic() < deadline, attempts
            time.sleep(0.01)
        assert [a.status_code for a in attempts[:3]] == [500, 500, 200]
    finally:
        flaky.close()


def test_tampered_and_foreign_notifications_rejected(
    sandbox: UnionPaySandbox, channel: UnionPayChannel, receiver: NotificationReceiver
) -> None:
    """A changed amount or a body that is not a form raises NotificationRejected."""
    request = _order(receiver, amount_fen=1000)
    channel.create_payment(request)
    sandbox.pay(request.order_id, "success")
    (raw,) = receiver.wait_for(f"/up/{request.order_id}", 1)
    with pytest.raises(NotificationRejected):
        channel.parse_notification(raw.headers, raw.body.replace(b"txnAmt=1000", b"txnAmt=1", 1))
    with pytest.raises(NotificationRejected):
        channel.parse_notification(raw.headers, b'{"json": true}')
    assert channel.acknowledge(accepted=False).status_code == 500


# ---------------------------------------------------------------- errors


def test_errors_map_to_kinds(
    sandbox: UnionPaySandbox, channel: UnionPayChannel, receiver: NotificationReceiver
) -> None:
    """Timeout, 5xx and a bad answer signature map to TIMEOUT, UNAVAILABLE, INVALID_RESPONSE."""
    for fault, kind in (
        ("timeout", ChannelErrorKind.TIMEOUT),
        ("server_error", ChannelErrorKind.UNAVAILABLE),
        ("bad_signature", ChannelErrorKind.INVALID_RESPONSE),
    ):
        with UnionPayChannel(sandbox.adapter_config(timeout_s=0.3)) as adapter:
            sandbox.inject_fault(fault)
            with pytest.raises(ChannelError) as failure:
                adapter.create_payment(_order(receiver))
            assert failure.value.kind is kind


def test_refused_credentials_are_authentication(
    sandbox: UnionPaySandbox, receiver: NotificationReceiver
) -> None:
    """A wrong certId or a key the gateway does not know is respCode 11 → AUTHENTICATION."""
    other_key = new_hierarchy(datetime.now(UTC)).root.private_key_pem
    for config in (
        replace(sandbox.adapter_config(), signing_cert_id="12345678901"),
        replace(sandbox.adapter_config(), signing_private_key_pem=other_key),
    ):
        with UnionPayChannel(config) as adapter, pytest.raises(ChannelError) as failure:
            adapter.create_payment(_order(receiver))
        assert (failure.value.kind, failure.value.code) == (ChannelErrorKind.AUTHENTICATION, "11")


def test_stale_txn_time_and_reused_order_id_are_rejected(
    sandbox: UnionPaySandbox, channel: UnionPayChannel, receiver: NotificationReceiver
) -> None:
    """A txnTime an hour old is refused (39); the same orderId with another amount is 12."""
    late = FixedClock(datetime.now(UTC) - timedelta(hours=1))
    with (
        UnionPayChannel(sandbox.adapter_config(), clock=late) as adapter,
        pytest.raises(ChannelError) as stale,
    ):
        adapter.create_payment(_order(receiver))
    assert (stale.value.kind, stale.value.code) == (ChannelErrorKind.REJECTED, "39")
    request = _order(receiver)
    first = channel.create_payment(request)
    assert channel.create_payment(request).code_url == first.code_url  # a resend is harmless
    with pytest.raises(ChannelError) as reused:
        channel.create_payment(replace(request, amount_fen=request.amount_fen + 1))
    assert (reused.value.kind, reused.value.code) == (ChannelErrorKind.REJECTED, "12")


def test_unavailable_switch(
    sandbox: UnionPaySandbox, channel: UnionPayChannel, receiver: NotificationReceiver
) -> None:
    """While the sandbox is switched off every call is UNAVAILABLE and nothing is created."""
    request = _order(receiver)
    response = httpx.post(f"{sandbox.base_url}/sandbox/availability", json={"available": False})
    assert response.status_code == 200
    try:
        with pytest.raises(ChannelError) as failure:
            channel.create_payment(request)
        assert failure.value.kind is ChannelErrorKind.UNAVAILABLE
    finally:
        sandbox.set_available(True)
    assert channel.query_payment(request.order_id).status is ChannelPaymentStatus.NOT_FOUND
    bad = httpx.post(f"{sandbox.base_url}/sandbox/availability", json={"available": "no"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad_request"


def test_unreachable_gateway_is_unavailable(sandbox: UnionPaySandbox) -> None:
    """Nothing listening at the gateway URL is UNAVAILABLE (safe to retry)."""
    config = replace(sandbox.adapter_config(timeout_s=0.5), gateway_url="http://127.0.0.1:9")
    with UnionPayChannel(config) as adapter, pytest.raises(ChannelError) as failure:
        adapter.query_payment("ord_nothere0001")
    assert failure.value.kind is ChannelErrorKind.UNAVAILABLE


def test_control_api_refuses_bad_input(sandbox: UnionPaySandbox) -> None:
    """The customer control API answers 4xx in the one error shape, never 500."""
    base = sandbox.base_url
    assert httpx.post(f"{base}/sandbox/customer/pay", content=b"[").status_code == 400
    unknown = httpx.post(f"{base}/sandbox/customer/pay", json={"order_id": "ord_nothere0001"})
    assert unknown.status_code == 409
    assert unknown.json()["error"]["code"] == "customer_refused"
    assert httpx.post(f"{base}/sandbox/faults", json={"kind": "meteor"}).status_code == 400
    assert httpx.post(f"{base}/sandbox/auth_codes/123/eat").status_code == 400


def _zm_content(bill: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(bill)) as archive:
        (name,) = archive.namelist()
        return archive.read(name)


def test_cancel_on_a_later_day_refunds_in_full(receiver: NotificationReceiver) -> None:
    """A void is same-day only, so cancelling yesterday's payment refunds it in full, under an
    id whose orderId still fits the day's reconciliation file."""
    clock = FixedClock(datetime.now(UTC))
    with (
        start_unionpay_sandbox(time_scale=0.001, clock=clock) as own,
        UnionPayChannel(own.adapter_config(), clock=clock) as adapter,
    ):
        request = replace(
            _order(receiver, amount_fen=600), expire_at=clock.now() + timedelta(hours=1)
        )
        adapter.create_payment(request)
        own.pay(request.order_id, "success")
        clock.advance(days=1)
        adapter.cancel_payment(request.order_id)
        refund = adapter.query_refund(tf.derived_id(request.order_id, tf.CANCEL_REFUND_SUFFIX))
        assert refund.amount_fen == 600
        day = business_date(clock.now())
        clock.advance(seconds=1)  # the refund has settled (time_scale): the day's file has it
        assert tf.order_number(refund.refund_id).encode() in _zm_content(adapter.download_bill(day))
        with pytest.raises(ChannelError) as nothing_left:
            adapter.refund(RefundRequest("rfd_0123456789", request.order_id, 1, 600, "CNY"))
        assert nothing_left.value.code == "36"
