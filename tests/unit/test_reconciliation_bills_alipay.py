"""The column-wise Alipay trade bill reader on hand-built bills: the same facts as the
channel's row parser, and every malformed file rejected with a clear reason."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest

from cloudpay.channels.alipay.bill import BillRow, parse_trade_bill, render_trade_bill
from cloudpay.kernel.business_time import SHANGHAI
from cloudpay.reconciliation.bills import BillRejected, reader_for
from cloudpay.reconciliation.bills_alipay import read_alipay_trade_bill

DAY = date(2026, 11, 24)
LATE = datetime(2026, 11, 24, 23, 59, 58, tzinfo=SHANGHAI)


def _row(order: str, amount: int, fee: int, refund_no: str | None = None) -> BillRow:
    sign = -1 if refund_no else 1
    return BillRow(
        trade_no=f"2026112422001{order[-3:]}", out_trade_no=order,
        business_type="退款" if refund_no else "交易", subject="肉火烧, 两个", created_at=LATE,
        finished_at=LATE, counterparty="san***@sandbox.com", order_amount_fen=sign * amount,
        received_fen=sign * amount, refund_request_no=refund_no, fee_fen=fee,
    )  # fmt: skip


ROWS = [_row("ord_001", 10_000, -60), _row("ord_002", 150, -1), _row("ord_001", 2_500, 15, "rfd_9")]
GOOD = render_trade_bill(account="2088000000000001", bill_date=DAY, rows=ROWS, exported_at=LATE)


def test_reader_agrees_with_the_channel_row_parser() -> None:
    """Kinds, ids, amounts (positive), fees (ours: charged positive, returned negative) and
    times match `parse_trade_bill`; every row is a completed movement."""
    frame = reader_for("alipay")(GOOD)
    parsed = parse_trade_bill(GOOD).rows
    assert frame.get_column("kind").to_list() == ["payment", "payment", "refund"]
    assert frame.get_column("order_id").to_list() == [r.out_trade_no for r in parsed]
    assert frame.get_column("refund_id").to_list() == [None, None, "rfd_9"]
    assert frame.get_column("channel_txn_id").to_list()[2] == f"{parsed[2].trade_no}/rfd_9"
    assert frame.get_column("amount_fen").to_list() == [10_000, 150, 2_500]
    assert frame.get_column("fee_fen").to_list() == [60, 1, -15]
    assert frame.get_column("status").to_list() == ["success"] * 3
    assert frame.get_column("time").to_list() == [LATE.astimezone(UTC)] * 3


def test_an_empty_day_is_an_empty_frame() -> None:
    """A bill without rows (nothing moved) reads as no rows, not as an error."""
    empty = render_trade_bill(account="2088000000000001", bill_date=DAY, rows=[], exported_at=LATE)
    assert read_alipay_trade_bill(empty).height == 0


def _rewrite(detail: Callable[[str], str] = str, summary: Callable[[str], str] = str,
             encoding: str = "gbk") -> bytes:  # fmt: skip
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(GOOD)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            change = summary if info.filename.endswith("(汇总).csv") else detail
            target.writestr(info, change(source.read(info).decode("gbk")).encode(encoding))
    return out.getvalue()


def _lines(text: str) -> list[str]:
    return text.split("\r\n")


def _drop_row(text: str) -> str:
    lines = _lines(text)
    return "\r\n".join(lines[:6] + lines[7:])  # the second data row


def _short_row(text: str) -> str:
    lines = _lines(text)
    lines[5] = lines[5].rsplit(",", 1)[0]
    return "\r\n".join(lines)


CORRUPT: dict[str, tuple[bytes, str]] = {
    "not a zip": (b"PK\x03\x04 not really", "zip"),
    "truncated zip": (GOOD[:-40], "zip"),
    "UTF-8 member": (_rewrite(encoding="utf-8"), "GBK"),
    "unknown header": (_rewrite(lambda t: t.replace("服务费（元）", "手续费（元）")), "header"),
    "row dropped": (_rewrite(_drop_row), "footer counts"),
    "short row": (_rewrite(_short_row), "fields"),
    "list end missing": (_rewrite(lambda t: t.replace("列表结束", "列表")), "truncated"),
    "bad amount": (_rewrite(lambda t: t.replace("100.00", "100.0", 1)), "订单金额"),
    "wrong sign": (_rewrite(lambda t: t.replace(",-25.00,", ",25.00,", 1)), "sign"),
    "id without tab": (_rewrite(lambda t: t.replace("ord_002\t", "ord_002")), "商户订单号"),
    "unknown kind": (_rewrite(lambda t: t.replace(",交易,", ",转账,", 1)), "业务类型"),
    "fee total off": (_rewrite(summary=lambda t: t.replace("-0.46", "-0.47")), "summary totals"),
    "other account": (_rewrite(summary=lambda t: t.replace("[2088", "[3088")), "account"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_a_malformed_bill_is_rejected_with_its_reason(case: str) -> None:
    """Each corruption raises `BillRejected` naming what is wrong; no partial frame."""
    data, reason = CORRUPT[case]
    with pytest.raises(BillRejected) as raised:
        read_alipay_trade_bill(data)
    assert reason in raised.value.message
    assert raised.value.code == "bill_rejected"
