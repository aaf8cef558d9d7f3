"""The column-wise WeChat trade bill reader: the same facts as the channel's row parser, and
every malformed file rejected with a clear reason."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cloudpay.bench.recon import generate
from cloudpay.channels.wechat.bill import TradeBillRow, parse_trade_bill, render_trade_bill
from cloudpay.kernel.errors import InvalidRequest
from cloudpay.reconciliation.bills import BillRejected, read_wechat_trade_bill, reader_for

LATE = datetime(2026, 11, 24, 15, 59, 58, tzinfo=UTC)


def _row(
    number: int, state: str = "SUCCESS", amount: int = 1_234, fee: str = "0.07"
) -> TradeBillRow:
    paid = state == "SUCCESS"
    return TradeBillRow(
        traded_at=LATE, appid="wx8888888888888888", mchid="1900000109", sub_mchid="0",
        device_info="", transaction_id=f"42000{number}", out_trade_no=f"ord_{number}",
        openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", trade_type="NATIVE", trade_state=state,
        bank_type="OTHERS", currency="CNY", settlement_total_fen=amount if paid else 0,
        coupon_fen=0, refund_id="0" if paid else f"50000{number}",
        out_refund_no="0" if paid else f"rfd_{number}", refund_fen=0 if paid else amount,
        coupon_refund_fen=0, refund_type="" if paid else "ORIGINAL",
        refund_status="" if paid else "SUCCESS", description="面, 汤", attach="",
        fee_yuan=Decimal(fee), fee_rate="0.60%", order_total_fen=amount if paid else 0,
        refund_requested_fen=0 if paid else amount, fee_rate_note="",
    )  # fmt: skip


ROWS = [_row(1), _row(2, amount=99, fee="0.00594"), _row(1, "REFUND", 500, "-0.03")]
GOOD = render_trade_bill(ROWS)


def test_reader_agrees_with_the_channel_row_parser() -> None:
    """Kinds, ids, amounts, fees (rounded to the fen) and times match `parse_trade_bill`."""
    frame = read_wechat_trade_bill(GOOD)
    parsed = parse_trade_bill(GOOD).rows
    assert frame.height == len(parsed) == 3
    assert frame.get_column("kind").to_list() == ["payment", "payment", "refund"]
    assert frame.get_column("order_id").to_list() == [r.out_trade_no for r in parsed]
    assert frame.get_column("refund_id").to_list() == [None, None, "rfd_1"]
    assert frame.get_column("amount_fen").to_list() == [1_234, 99, 500]
    assert frame.get_column("fee_fen").to_list() == [7, 1, -3]  # 0.594 fen rounds to 1
    assert frame.get_column("time").to_list() == [r.traded_at for r in parsed]
    assert frame.get_column("status").to_list() == ["success"] * 3


def test_the_benchmark_bill_is_a_real_trade_bill() -> None:
    """The generated bill passes the channel's strict row parser, row for row."""
    generated = generate(25_000)
    assert (
        len(parse_trade_bill(generated.bill).rows) == read_wechat_trade_bill(generated.bill).height
    )


def _replace(old: str, new: str, count: int = 1) -> bytes:
    return GOOD.decode("utf-8").replace(old, new, count).encode("utf-8")


CORRUPT = {
    "truncated": (GOOD[:-30], "summary"),
    "empty": (b"", "header"),
    "gzip not opened": (gzip.compress(GOOD), "UTF-8"),
    "not utf-8": (GOOD.decode("utf-8-sig").encode("gbk"), "UTF-8"),
    "amount finer than a fen": (_replace("`12.34,", "`12.345,"), "订单金额"),
    "unknown trade state": (_replace("`SUCCESS", "`PAYING"), "交易状态"),
    "bad time": (_replace("`2026-11-24 23:59:58", "`2026-13-24 23:59:58"), "time"),
    "extra field": (_replace("`NATIVE,", "`NATIVE,`X,"), "fields"),
    "missing field": (_replace("`NATIVE,", ""), "fields"),
    "summary disagrees": (_replace("`3,`13.33", "`3,`13.34"), "summary"),
    "column renamed": (_replace("手续费,", "手续费用,"), "手续费"),
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_a_corrupt_bill_is_rejected_with_its_reason(name: str) -> None:
    """Each kind of damage raises `BillRejected` (a 400 error) that names what is wrong."""
    data, reason = CORRUPT[name]
    with pytest.raises(BillRejected) as raised:
        read_wechat_trade_bill(data)
    assert isinstance(raised.value, InvalidRequest)
    assert raised.value.code == "bill_rejected"
    assert reason in raised.value.message


def test_a_channel_without_a_reader_is_refused() -> None:
    """Only formats we can read strictly are accepted; others are a clear 400."""
    with pytest.raises(BillRejected) as raised:
        reader_for("paypal")
    assert raised.value.code == "channel_unsupported"
