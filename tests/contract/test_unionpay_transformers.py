"""Pure UnionPay mapping: order numbers, times, outcome codes, and the fields we send."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cloudpay.channels.protocol import ChannelPaymentStatus, ChannelRefundStatus, CreatePayment
from cloudpay.channels.unionpay import transformers as tf

ACQUIRER = tf.MerchantIds("898111948161234", "1", "48020000")


def test_order_numbers_drop_the_underscore_and_refuse_the_impossible() -> None:
    """Our ids become 8–40 letters and digits; anything else is refused, not mangled."""
    assert tf.order_number("ord_01JD5Z2V4Q8N3X") == "ord01JD5Z2V4Q8N3X"
    for bad in ("ord_1", "ord-0123456789", "x" * 41, "ord_订单01234567"):
        with pytest.raises(ValueError, match="orderId"):
            tf.order_number(bad)


def test_txn_time_is_beijing_wall_time() -> None:
    """txnTime is yyyyMMddHHmmss in Beijing time, 8 hours ahead of UTC, and reads back."""
    instant = datetime(2026, 11, 25, 16, 30, 5, tzinfo=UTC)
    assert tf.format_txn_time(instant) == "20261126003005"
    assert tf.parse_txn_time("20261126003005") == instant
    with pytest.raises(tf.UnexpectedField):
        tf.parse_txn_time("2026-11-26")


@pytest.mark.parametrize(
    ("code", "payment", "refund"),
    [
        ("00", ChannelPaymentStatus.SUCCEEDED, ChannelRefundStatus.SUCCEEDED),
        ("05", ChannelPaymentStatus.NOT_PAID, ChannelRefundStatus.PROCESSING),
        ("04", ChannelPaymentStatus.PAYING, ChannelRefundStatus.PROCESSING),
        ("03", ChannelPaymentStatus.PAYING, ChannelRefundStatus.PROCESSING),
        ("60", ChannelPaymentStatus.FAILED, ChannelRefundStatus.ABNORMAL),
    ],
)
def test_outcome_codes(
    code: str, payment: ChannelPaymentStatus, refund: ChannelRefundStatus
) -> None:
    """origRespCode maps to our payment and refund states (03/04/05: not decided yet)."""
    assert tf.payment_state(code) is payment
    assert tf.refund_state(code) is refund


def test_qr_fields_for_an_acquirer() -> None:
    """A QR apply is 01/07/000000 in fen and CNY 156, names the acquirer, expires at payTimeout."""
    now = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    request = CreatePayment(
        order_id="ord_01JD5Z2V4Q8N3X",
        amount_fen=1999,
        currency="CNY",
        subject="s",
        method=tf.METHOD_QR,
        notify_url="https://hub.example/notify",
        expire_at=now + timedelta(minutes=5),
    )
    fields = tf.create_fields(ACQUIRER, request, now)
    assert (fields["txnType"], fields["txnSubType"], fields["bizType"]) == ("01", "07", "000000")
    assert (fields["txnAmt"], fields["currencyCode"]) == ("1999", "156")
    assert (fields["accessType"], fields["acqInsCode"]) == ("1", "48020000")
    assert (fields["txnTime"], fields["payTimeout"]) == ("20261125120000", "20261125120500")
    assert fields["reqReserved"] == request.order_id
    with pytest.raises(ValueError, match="auth_code"):
        tf.create_fields(ACQUIRER, replace(request, method=tf.METHOD_MICROPAY), now)


def test_answers_naming_another_order_are_unexpected() -> None:
    """reqReserved must produce the orderId it travels with, or the answer is not ours."""
    fields = {"reqReserved": "ord_01JD5Z2V4Q8N3X", "orderId": "ord01JD5Z2V4Q8N3Y", "txnAmt": "1"}
    with pytest.raises(tf.UnexpectedField, match="reqReserved"):
        tf.payment_status(fields, outcome_code="00")
