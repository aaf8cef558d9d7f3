"""The column-wise UnionPay ZM file reader on hand-built files: the same facts as the
channel's row parser, our ids restored, and every malformed file rejected with its reason."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime

import pytest

from cloudpay.channels.unionpay.bill import FIELD_WIDTHS as FIELD_WIDTHS_BY_NAME
from cloudpay.channels.unionpay.bill import BillLine, entry_name, parse_bill, render_bill
from cloudpay.kernel.ids import new_id
from cloudpay.reconciliation.bills import BillRejected, reader_for
from cloudpay.reconciliation.bills_unionpay import read_unionpay_bill

DAY = date(2026, 1, 1)
MER_ID = "777290058110048"
ORDER, REFUND = new_id("ord"), new_id("rfd")


def _line(txn_type: str, number: str, query: str, amount: int, fee: int, orig: str = "",
          at: str = "0101120000") -> BillLine:  # fmt: skip
    credit = txn_type == "01"
    return BillLine(
        txn_type=txn_type, txn_sub_type="07" if credit else "00", biz_type="000000",
        order_id=number, query_id=query, orig_query_id=orig, txn_time=at, trace_no="000001",
        amount_fen=amount, fee_fen=fee if credit else -fee,
        settle_fen=amount - fee if credit else -(amount - fee), mer_id=MER_ID,
    )  # fmt: skip


PAID_QUERY = "2" * 21
LINES = [
    _line("01", ORDER.replace("_", ""), PAID_QUERY, 10_000, 38, at="1231235958"),
    _line("04", REFUND.replace("_", ""), "3" * 21, 2_500, 10, PAID_QUERY),
    _line("31", "FOREIGN12345v", "4" * 21, 500, 2, "5" * 21),
]
GOOD = render_bill(LINES, settle_day=DAY, mer_id=MER_ID)


def test_reader_agrees_with_the_channel_row_parser() -> None:
    """Ids restored (the refund's order found by its original query id), amounts, fees
    (charged positive, returned negative), a void as the payment closed, the December line
    of a January file in the year before."""
    frame = reader_for("unionpay")(GOOD)
    parsed = parse_bill(GOOD).lines
    assert frame.get_column("kind").to_list() == ["payment", "refund", "payment"]
    assert frame.get_column("order_id").to_list() == [ORDER, ORDER, "FOREIGN12345"]
    assert frame.get_column("refund_id").to_list() == [None, REFUND, None]
    assert frame.get_column("channel_txn_id").to_list() == [line.query_id for line in parsed]
    assert frame.get_column("amount_fen").to_list() == [10_000, 2_500, 500]
    assert frame.get_column("fee_fen").to_list() == [line.fee_fen for line in parsed]
    assert frame.get_column("status").to_list() == ["success", "success", "closed"]
    assert frame.get_column("time").to_list()[:2] == [
        datetime(2025, 12, 31, 15, 59, 58, tzinfo=UTC),
        datetime(2026, 1, 1, 4, tzinfo=UTC),
    ]


def _zip(content: bytes, name: str = entry_name(DAY, MER_ID)) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, content)
    return out.getvalue()


with zipfile.ZipFile(io.BytesIO(GOOD)) as _archive:
    CONTENT = _archive.read(entry_name(DAY, MER_ID))
FIRST = CONTENT.split(b"\r\n")[0]

CORRUPT: dict[str, tuple[bytes, str]] = {
    "not a zip": (CONTENT, "zip"),
    "truncated zip": (GOOD[:-30], "zip"),
    "other member": (_zip(CONTENT, "notes.txt"), "ZM file"),
    "no line end": (_zip(CONTENT[:-2]), "truncated"),
    "short line": (_zip(FIRST[:-1] + b"\r\n"), "bytes long"),
    "not GBK": (_zip(FIRST[:-2] + b"\xff\xff\r\n"), "GBK"),
    "no separator": (_zip(FIRST[:3] + b"X" + FIRST[4:] + b"\r\n"), "separators"),
    "unknown record": (_zip(b"S99" + FIRST[3:] + b"\r\n"), "trade_code"),
    "bad amount": (
        _zip(FIRST.replace(b"000000010000", b"00000001000X", 1) + b"\r\n"),
        "txn_amount",
    ),
    "amount altered": (
        _zip(FIRST.replace(b"000000010000", b"000000010001", 1) + b"\r\n"),
        "net of fee",
    ),
    "bad time": (_zip(FIRST.replace(b"1231235958", b"1332235958", 1) + b"\r\n"), "txnTime"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_a_malformed_file_is_rejected_with_its_reason(case: str) -> None:
    """Each corruption raises `BillRejected` naming what is wrong; no partial frame."""
    data, reason = CORRUPT[case]
    with pytest.raises(BillRejected) as raised:
        read_unionpay_bill(data)
    assert reason in raised.value.message


def test_the_reader_reads_the_fields_it_names() -> None:
    """Every field the reader reads is a field of the channel's file, at the place it says."""
    from cloudpay.channels.unionpay import bill_format
    from cloudpay.reconciliation import bills_unionpay as reader

    names = [name for name, _ in bill_format.FIELD_WIDTHS]
    assert set(reader._FIELD_INDEXES) == set(reader._READ)
    assert all(names[at] == name for name, at in reader._FIELD_INDEXES.items())


def test_a_void_of_our_order_fits_the_file_and_names_the_order() -> None:
    """The orderId the channel gives a void (of the longest id we mint) fits the file's
    32-byte field, and the reader restores the voided order from it."""
    from cloudpay.channels.unionpay import transformers as tf

    void_number = tf.order_number(tf.derived_id(ORDER, tf.VOID_SUFFIX))
    assert len(void_number) <= dict(FIELD_WIDTHS_BY_NAME)["order_id"]
    paid = _line("01", ORDER.replace("_", ""), PAID_QUERY, 800, 3)
    void = _line("31", void_number, "6" * 21, 800, 3, PAID_QUERY)
    frame = read_unionpay_bill(render_bill([paid, void], settle_day=DAY, mer_id=MER_ID))
    assert frame.get_column("order_id").to_list() == [ORDER, ORDER]
    assert frame.get_column("status").to_list() == ["success", "closed"]


def test_a_cancel_refund_keeps_the_id_the_channel_gave_it() -> None:
    """Cancelling an earlier day's payment refunds it under a derived id; the file holds it
    and the reader gives back that id, not the order's."""
    from cloudpay.channels.unionpay import transformers as tf

    cancel_id = tf.derived_id(ORDER, tf.CANCEL_REFUND_SUFFIX)
    paid = _line("01", ORDER.replace("_", ""), PAID_QUERY, 800, 3)
    cancel = _line("04", tf.order_number(cancel_id), "7" * 21, 800, 3, PAID_QUERY)
    frame = read_unionpay_bill(render_bill([paid, cancel], settle_day=DAY, mer_id=MER_ID))
    assert frame.get_column("refund_id").to_list() == [None, cancel_id]
    assert frame.get_column("order_id").to_list() == [ORDER, ORDER]
