"""The UnionPay reconciliation file: what the sandbox serves parses; corrupt files fail loudly."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from cloudpay.channels.protocol import ChannelError, ChannelErrorKind, CreatePayment, RefundRequest
from cloudpay.channels.unionpay import UnionPayChannel
from cloudpay.channels.unionpay import transformers as tf
from cloudpay.channels.unionpay.bill import (
    LINE_BYTES,
    BillFormatError,
    BillLine,
    entry_name,
    parse_bill,
    render_bill,
    render_line,
)
from cloudpay.channels.unionpay.sandbox import UnionPaySandbox, start_unionpay_sandbox
from cloudpay.kernel.business_time import SHANGHAI
from tests.contract.receiver import NotificationReceiver

DAY = date(2026, 11, 25)
LINE = BillLine(
    txn_type="01",
    txn_sub_type="07",
    biz_type="000000",
    order_id="ord01JABCDEF",
    query_id="202611251200000000001",
    orig_query_id="",
    txn_time="1125120000",
    trace_no="000001",
    amount_fen=1000,
    fee_fen=4,
    settle_fen=996,
    mer_id="777290058110048",
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[UnionPaySandbox]:
    with start_unionpay_sandbox(time_scale=0.001, fee_rate_bps=60) as running:
        yield running


def _zip(content: bytes, name: str = entry_name(DAY, "777290058110048")) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


def test_sandbox_bill_lists_the_days_payment_and_refund(sandbox: UnionPaySandbox) -> None:
    """Today's file holds the payment (fee at 0.60 %) and its refund, tied by origQryId."""
    receiver = NotificationReceiver(answer=lambda index: 200)
    order_id = f"ord_{uuid.uuid4().hex[:24]}"
    try:
        with UnionPayChannel(sandbox.adapter_config()) as channel:
            channel.create_payment(
                CreatePayment(
                    order_id=order_id,
                    amount_fen=8888,
                    currency="CNY",
                    subject="bill",
                    method=tf.METHOD_QR,
                    notify_url=f"{receiver.url}/bill",
                    expire_at=datetime.now(UTC) + timedelta(minutes=5),
                )
            )
            sandbox.pay(order_id, "success")
            refund_id = f"rfd_{uuid.uuid4().hex[:20]}"
            channel.refund(RefundRequest(refund_id, order_id, 888, 8888, "CNY"))
            data = channel.download_bill(datetime.now(SHANGHAI).date())
    finally:
        receiver.close()
    bill = parse_bill(data)
    assert bill.file_name.startswith("INN")
    assert "ZM_777290058110048" in bill.file_name
    (paid,) = [line for line in bill.lines if line.order_id == tf.order_number(order_id)]
    assert (paid.trade_code, paid.amount_fen, paid.fee_fen, paid.settle_fen) == (
        "S22",
        8888,
        53,
        8835,
    )
    (refunded,) = [line for line in bill.lines if line.orig_query_id == paid.query_id]
    assert (refunded.txn_type, refunded.amount_fen, refunded.order_id) == (
        "04",
        888,
        tf.order_number(refund_id),
    )
    assert refunded.settle_fen == -(888 - 5)


def test_a_day_without_transactions_is_refused(sandbox: UnionPaySandbox) -> None:
    """A settle date with nothing on it is respCode 98 (no file), a REJECTED call."""
    with UnionPayChannel(sandbox.adapter_config()) as channel, pytest.raises(ChannelError) as none:
        channel.download_bill(datetime.now(SHANGHAI).date() - timedelta(days=200))
    assert (none.value.kind, none.value.code) == (ChannelErrorKind.REJECTED, "98")


def test_round_trip_and_exact_width() -> None:
    """A rendered line is the 42 fields wide the format says and parses back to itself."""
    raw = render_line(LINE)
    assert len(raw) == LINE_BYTES == 607
    assert parse_bill(render_bill([LINE], settle_day=DAY, mer_id=LINE.mer_id)).lines == (LINE,)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (render_line(LINE)[:-10] + b"\r\n", "bytes, the format has"),
        (render_line(LINE) + b" \r\n", "bytes, the format has"),
        (render_line(LINE), "truncated"),
        (b"S99" + render_line(LINE)[3:] + b"\r\n", "unknown record"),
        (render_line(LINE).replace(b" 000001 ", b"|000001 ", 1) + b"\r\n", "no separator"),
        (render_line(LINE).replace(b"000000001000", b"0000000010x0", 1) + b"\r\n", "not digits"),
        (render_line(LINE).replace(b"C000000000996", b"X000000000996", 1) + b"\r\n", "C/D"),
    ],
)
def test_corrupt_lines_are_refused(content: bytes, message: str) -> None:
    """Truncation, wrong widths, unknown trade codes and bad numbers each fail with a reason."""
    with pytest.raises(BillFormatError, match=message):
        parse_bill(_zip(content))


def test_corrupt_archives_are_refused() -> None:
    """Not a zip, no ZM file, or a stranger in the zip: each is a BillFormatError."""
    with pytest.raises(BillFormatError, match="zip"):
        parse_bill(b"PK\x03\x04 not really")
    with pytest.raises(BillFormatError, match="no ZM file"):
        parse_bill(_zip(b"", name="INN26112588ZME_777290058110048"))
    with pytest.raises(BillFormatError, match="unexpected file"):
        parse_bill(_zip(b"", name="readme.txt"))


def test_bill_content_that_is_not_gbk_is_refused() -> None:
    """A field that is not GBK text is refused, not guessed at."""
    raw = render_line(LINE)
    broken = raw[:300] + b"\xff\xff" + raw[302:]
    with pytest.raises(BillFormatError):
        parse_bill(_zip(broken + b"\r\n"))
