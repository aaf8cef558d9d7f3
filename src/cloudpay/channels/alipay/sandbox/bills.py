"""The sandbox's trade bill rows: what happened that day, misreported on a test's request.

Fees (服务费): a payment is charged `rate × amount`, rounded half up once; a refund gives back
the fee in proportion to the share of the payment it refunds (按比例退还), rounded half up
once per refund — the rule reconciliation expects (`reconciliation.model.expected_refund_fee`).
Alipay documents the pro-rata return but not its rounding; half up is our choice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from cloudpay.channels.alipay.bill import BillRow
from cloudpay.kernel.business_time import SHANGHAI, business_date

if TYPE_CHECKING:
    from cloudpay.channels.alipay.sandbox.state import App, Refund, Trade

SANDBOX_BUYER_LOGON_ID = "san***@sandbox.com"


@dataclass(frozen=True)
class BillTamper:
    """Test-only: how the trade bill misreports one paid trade, so reconciliation tests can
    inject the mistakes a real channel's file can carry (the API answers stay truthful)."""

    amount_delta_fen: int = 0  # added to the payment's 订单金额 and 商家实收
    fee_delta_fen: int = 0  # added to the fee charged on the payment
    duplicate: bool = False  # the payment row appears twice
    paid_at: datetime | None = None  # the bill's 完成时间; may move the row to another day


def payment_fee_fen(amount_fen: int, rate_bp: int) -> int:
    return (amount_fen * rate_bp + 5_000) // 10_000


def refund_fee_fen(trade: Trade, refund: Refund, rate_bp: int) -> int:
    """The fee a refund gives back: its share of the payment's fee, rounded half up."""
    fee = payment_fee_fen(trade.total_fen, rate_bp)
    return (2 * fee * refund.amount_fen + trade.total_fen) // (2 * trade.total_fen)


def bill_rows(
    trades: Iterable[Trade], app: App, bill_date: date, rate_bp: int,
    tampering: dict[str, BillTamper],
) -> list[BillRow]:  # fmt: skip
    """The day's rows of `app`: payments by (tampered) payment time, refunds by theirs."""
    rows: list[BillRow] = []
    for trade in trades:
        if trade.app != app or trade.paid_at is None:
            continue
        rows += _payment_rows(trade, bill_date, rate_bp, tampering.get(trade.out_trade_no))
        for refund in trade.refunds.values():
            if business_date(refund.at) == bill_date:
                fee_fen = refund_fee_fen(trade, refund, rate_bp)
                number = refund.out_request_no
                rows.append(_row(trade, refund.at, -refund.amount_fen, number, fee_fen))
    return sorted(rows, key=lambda row: row.finished_at)


def _payment_rows(
    trade: Trade, bill_date: date, rate_bp: int, tamper: BillTamper | None
) -> list[BillRow]:
    assert trade.paid_at is not None
    tamper = tamper or BillTamper()
    paid_at = tamper.paid_at or trade.paid_at
    if business_date(paid_at) != bill_date:
        return []
    amount = trade.total_fen + tamper.amount_delta_fen
    fee_fen = -(payment_fee_fen(trade.total_fen, rate_bp) + tamper.fee_delta_fen)
    row = _row(trade, paid_at, amount, None, fee_fen)
    return [row, row] if tamper.duplicate else [row]


def _row(
    trade: Trade, at: datetime, amount_fen: int, refund_request_no: str | None, fee_fen: int
) -> BillRow:
    return BillRow(
        trade_no=trade.trade_no,
        out_trade_no=trade.out_trade_no,
        business_type="交易" if refund_request_no is None else "退款",
        subject=trade.subject,
        created_at=trade.created_at.astimezone(SHANGHAI),
        finished_at=at.astimezone(SHANGHAI),
        counterparty=SANDBOX_BUYER_LOGON_ID,
        order_amount_fen=amount_fen,
        received_fen=amount_fen,
        refund_request_no=refund_request_no,
        fee_fen=fee_fen,
    )
