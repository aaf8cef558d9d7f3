"""A reversed WeChat payment-code payment (撤销: a SUCCESS row and a REVOKED row in the same
bill) reads as the payment closed, so it matches the order we closed and nothing else."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl

from cloudpay.channels.wechat.bill import TradeBillRow, render_trade_bill
from cloudpay.reconciliation.bills import read_wechat_trade_bill
from cloudpay.reconciliation.model import platform_frame, reconcile

AT = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


def _row(order: str, state: str, amount: int) -> TradeBillRow:
    paid = state == "SUCCESS"
    return TradeBillRow(
        traded_at=AT, appid="wx8888888888888888", mchid="1900000109", sub_mchid="0",
        device_info="", transaction_id=f"4200{order[-2:]}", out_trade_no=order, openid="o",
        trade_type="MICROPAY", trade_state=state, bank_type="OTHERS", currency="CNY",
        settlement_total_fen=amount if paid else 0, coupon_fen=0,
        refund_id="0" if paid else f"5000{order[-2:]}", out_refund_no="0", refund_fen=0
        if paid else amount, coupon_refund_fen=0, refund_type="" if paid else "ORIGINAL",
        refund_status="" if paid else "SUCCESS", description="x", attach="",
        fee_yuan=Decimal("0.06") if paid else Decimal("-0.06"), fee_rate="0.60%",
        order_total_fen=amount if paid else 0, refund_requested_fen=0 if paid else amount,
        fee_rate_note="",
    )  # fmt: skip


UTC_US = pl.Datetime("us", "UTC")
REFUND_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(), "order_id": pl.String(), "amount": pl.Int64(), "status": pl.String(),
    "channel_refund_id": pl.String(), "succeeded_at": UTC_US, "created_at": UTC_US,
    "order_amount": pl.Int64(), "route_cost_fen": pl.Int64(),
}  # fmt: skip


def _ours(order_id: str, status: str) -> pl.DataFrame:
    orders = pl.DataFrame(
        {"id": [order_id], "amount": [1_000], "status": [status], "route_cost_fen": [6],
         "channel_transaction_id": ["4200" + order_id[-2:]], "paid_at": [AT], "created_at": [AT]},
    ).cast({"paid_at": UTC_US, "created_at": UTC_US})  # fmt: skip
    return platform_frame(orders, pl.DataFrame(schema=REFUND_SCHEMA))


BILL = render_trade_bill([_row("ord_01", "SUCCESS", 1_000), _row("ord_01", "REVOKED", 1_000)])


def test_a_revoked_payment_is_one_closed_payment_row() -> None:
    """The SUCCESS and REVOKED rows of one order net to a single closed payment."""
    frame = read_wechat_trade_bill(BILL)
    assert frame.select("kind", "order_id", "refund_id", "status").rows() == [
        ("payment", "ord_01", None, "closed")
    ]


def test_it_matches_the_order_we_closed_and_is_raised_against_one_we_think_paid() -> None:
    """Closed on both sides raises nothing; paid on ours is a status mismatch."""
    channel = read_wechat_trade_bill(BILL)
    day = date(2026, 11, 24)
    assert reconcile(channel, _ours("ord_01", "closed"), business_date=day).breaks.height == 0
    raised = reconcile(channel, _ours("ord_01", "succeeded"), business_date=day).breaks
    assert raised.select("type", "key").rows() == [("status_mismatch", "ord_01")]
