"""The pure Alipay mapping and wire rules: amounts, signing strings, trade states, error codes
and request bodies, without a sandbox."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cloudpay.channels.alipay import transformers as tf
from cloudpay.channels.alipay import wire
from cloudpay.channels.protocol import ChannelErrorKind, ChannelPaymentStatus, CreatePayment
from cloudpay.kernel.crypto import generate_rsa_key_pair


@pytest.mark.parametrize(
    ("text", "amount_fen"), [("0.01", 1), ("12.3", 1230), ("12.34", 1234), ("100", 10000)]
)
def test_yuan_strings_become_fen(text: str, amount_fen: int) -> None:
    """Alipay's yuan strings convert to integer fen exactly, and back for two decimals."""
    assert wire.fen(text) == amount_fen
    assert wire.fen(wire.yuan(amount_fen)) == amount_fen


@pytest.mark.parametrize("text", ["", "1.234", "-1.00", "1e3", "01.00", " ", "NaN"])
def test_malformed_amounts_are_refused(text: str) -> None:
    """Anything but digits with at most two decimals is a wire format error."""
    with pytest.raises(wire.WireFormatError):
        wire.fen(text)


def test_signing_string_sorts_and_drops_sign_and_empty_values() -> None:
    """Requests sign sign_type too; notifications leave sign and sign_type out."""
    params = {"b": "2", "a": "1", "sign": "x", "sign_type": "RSA2", "empty": ""}
    assert wire.signing_string(params, exclude=wire.REQUEST_EXCLUDED) == "a=1&b=2&sign_type=RSA2"
    assert wire.signing_string(params, exclude=wire.NOTIFICATION_EXCLUDED) == "a=1&b=2"


def test_signed_request_verifies_and_detects_changes() -> None:
    """A signed request verifies with the public key and fails once a value changes."""
    keys = generate_rsa_key_pair()
    signed = wire.signed_request({"app_id": "1", "biz_content": '{"a":"面"}'}, keys.private_key_pem)
    assert wire.verify_params(signed, keys.public_key_pem, exclude=wire.REQUEST_EXCLUDED)
    altered = {**signed, "app_id": "2"}
    assert not wire.verify_params(altered, keys.public_key_pem, exclude=wire.REQUEST_EXCLUDED)


@pytest.mark.parametrize(
    ("trade_status", "paid", "expected"),
    [
        ("WAIT_BUYER_PAY", False, ChannelPaymentStatus.NOT_PAID),
        ("TRADE_SUCCESS", True, ChannelPaymentStatus.SUCCEEDED),
        ("TRADE_FINISHED", True, ChannelPaymentStatus.SUCCEEDED),
        ("TRADE_CLOSED", False, ChannelPaymentStatus.CLOSED),
        ("TRADE_CLOSED", True, ChannelPaymentStatus.REFUNDED),
    ],
)
def test_trade_states_map(trade_status: str, paid: bool, expected: ChannelPaymentStatus) -> None:
    """Each trade_status maps to our status; a closed trade that was paid is REFUNDED."""
    data = {"out_trade_no": "ord_1", "trade_no": "t1", "trade_status": trade_status}
    if paid:
        data["send_pay_date"] = "2026-11-25 12:00:00"
    status = tf.payment_status({**data, "total_amount": "1.00"})
    assert status.status is expected
    assert status.amount_fen == 100
    assert (status.paid_at is not None) == (expected in ("succeeded", "refunded"))


def test_unknown_trade_status_is_refused() -> None:
    """A trade_status we do not know is not guessed at."""
    with pytest.raises(tf.UnexpectedField):
        tf.payment_status({"out_trade_no": "o", "trade_status": "TRADE_PENDING"})


@pytest.mark.parametrize(
    ("api", "code", "sub_code", "kind"),
    [
        (tf.QUERY, "20000", "isp.unknow-error", ChannelErrorKind.UNAVAILABLE),
        (tf.PAY, "20000", "isp.unknow-error", ChannelErrorKind.TIMEOUT),
        (tf.REFUND, "20000", "isp.unknow-error", ChannelErrorKind.TIMEOUT),
        (tf.QUERY, "20001", "aop.invalid-auth-token", ChannelErrorKind.AUTHENTICATION),
        (tf.QUERY, "40002", "isv.invalid-signature", ChannelErrorKind.AUTHENTICATION),
        (tf.QUERY, "40002", "isv.invalid-signature-type", ChannelErrorKind.AUTHENTICATION),
        (tf.QUERY, "40006", "isv.insufficient-isv-permissions", ChannelErrorKind.AUTHENTICATION),
        (tf.CLOSE, "40004", "ACQ.TRADE_STATUS_ERROR", ChannelErrorKind.REJECTED),
        (tf.QUERY, "40001", "isv.missing-out-trade-no", ChannelErrorKind.REJECTED),
        (tf.QUERY, "99999", "", ChannelErrorKind.INVALID_RESPONSE),
    ],
)
def test_error_codes_map_to_kinds(api: str, code: str, sub_code: str, kind: str) -> None:
    """Alipay's public codes map to kinds; the sub_code becomes the error code."""
    error = tf.error_of(api, {"code": code, "msg": "m", "sub_code": sub_code, "sub_msg": "s"})
    assert error.kind == kind
    assert error.code == (sub_code or code)


def _request(method: str, **extra: str) -> CreatePayment:
    return CreatePayment(
        order_id="ord_1",
        amount_fen=1234,
        currency="CNY",
        subject="面",
        method=method,
        notify_url="https://example.com/n",
        expire_at=datetime(2026, 11, 25, 4, 0, tzinfo=UTC),
        **extra,
    )


def test_create_bodies_per_method() -> None:
    """Each method gets its product code and fields; times are Beijing wall time."""
    qr = tf.create_biz(_request("alipay_qr", attach="a1"))
    assert qr == {
        "out_trade_no": "ord_1",
        "total_amount": "12.34",
        "subject": "面",
        "product_code": "FACE_TO_FACE_PAYMENT",
        "time_expire": "2026-11-25 12:00:00",
        "passback_params": "a1",
    }
    user = tf.create_biz(_request("alipay_jsapi", payer_id="2088102169481075"))
    opened = tf.create_biz(_request("alipay_jsapi", payer_id="074a1CcTG1LelxKe4xQC0zgNdId0nxi9"))
    assert (user["buyer_id"], "buyer_id" in opened) == ("2088102169481075", False)
    micropay = tf.create_biz(_request("alipay_micropay", auth_code="286000000000000000"))
    assert (micropay["scene"], micropay["auth_code"]) == ("bar_code", "286000000000000000")


@pytest.mark.parametrize("method", ["alipay_jsapi", "alipay_micropay", "wechat_native"])
def test_incomplete_create_requests_are_caller_errors(method: str) -> None:
    """A method Alipay lacks, or JSAPI/micropay without payer or code, is a ValueError."""
    with pytest.raises(ValueError, match=r"(?i)alipay"):
        tf.create_biz(_request(method))
