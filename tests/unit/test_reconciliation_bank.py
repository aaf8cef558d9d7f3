"""The bank leg's pure rules: a channel's settlement net from its bill, credits matched by
reference (missing, different, unexpected, repeated), the strict statement read, and the day
the daily schedule reconciles."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

import polars as pl
import pytest

from cloudpay.channels.bank.protocol import Direction, StatementLine
from cloudpay.channels.bank.statement import parse_statement, render_statement
from cloudpay.channels.sandbox_settlement import fee_fen, net_fen, settlement_reference
from cloudpay.kernel.business_time import SHANGHAI
from cloudpay.reconciliation.bank import (
    EXPECTED_SCHEMA,
    StatementRejected,
    credit_frame,
    match_credits,
    read_statement,
    settlement_net_fen,
)
from cloudpay.reconciliation.model import FRAME_SCHEMA, conform
from cloudpay.reconciliation.model import settlement_reference as our_reference
from cloudpay.reconciliation.schedule import due_bill_date

DAY = date(2026, 11, 25)
BOOKED = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def _statement(*credits: tuple[str, int], day: date = DAY) -> bytes:
    balance, lines = 1_000_00, []
    for number, (reference, amount) in enumerate(credits):
        balance += amount
        lines.append(StatementLine(BOOKED, Direction.CREDIT, amount, "9100****0018", reference,
                                   f"WFCB{number:010d}", balance))  # fmt: skip
    return render_statement(
        bank_code="WFCB", account_no="WFCB0001000000000001", statement_date=day,
        opening_balance_fen=1_000_00, lines=lines,
    )  # fmt: skip


def _expected(*rows: tuple[str, int]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=EXPECTED_SCHEMA, orient="row")


def test_the_channel_and_we_name_a_settlement_the_same_way() -> None:
    """The sandbox's credit reference is the one the bank leg looks for."""
    assert settlement_reference("WXPAY", DAY) == our_reference("wechat", DAY)
    assert our_reference("wechat", DAY) == "WXPAY-SETTLE-20261125"
    assert our_reference("unknown", DAY) is None


def test_a_bills_net_is_payments_less_refunds_less_fees_and_agrees_with_the_sandbox() -> None:
    """Fees are per row, rounded half away from zero; a refund gives its fee share back."""
    bill = conform(pl.DataFrame({
        "kind": ["payment", "payment", "refund"], "order_id": ["ord_a", "ord_b", "ord_b"],
        "refund_id": [None, None, "rfd_b"], "channel_txn_id": ["t1", "t2", "r1"],
        "amount_fen": [10_000, 250, 100], "fee_fen": [60, 2, -1],
        "status": ["success"] * 3, "time": [BOOKED] * 3,
    }, schema=FRAME_SCHEMA))  # fmt: skip
    assert settlement_net_fen(bill) == 10_000 + 250 - 100 - (60 + 2 - 1)
    sandbox_rows = [(10_000, 0, fee_fen(Decimal("0.60000"))), (250, 0, fee_fen(Decimal("0.01500"))),
                    (0, 100, fee_fen(Decimal("-0.00600")))]  # fmt: skip
    assert net_fen(sandbox_rows) == settlement_net_fen(bill)


def test_each_bank_difference_gets_its_type_and_matches_raise_nothing() -> None:
    """Matched, missing, different, unknown, and the same reference credited twice."""
    statement = parse_statement(_statement(
        ("WXPAY-SETTLE-20261124", 9_000), ("ALIPAY-SETTLE-20261124", 5_001),
        ("JDPAY-SETTLE-20261124", 700), ("WXPAY-SETTLE-20261124", 9_000),
        ("topup-123", 50_000),
    ))  # fmt: skip
    outcome = match_credits(
        _expected(
            ("WXPAY-SETTLE-20261124", 9_000),
            ("ALIPAY-SETTLE-20261124", 5_000),
            ("UNIONPAY-SETTLE-20261124", 3_000),
        ),
        credit_frame(statement),
    )
    raised = {(row["type"], row["key"]) for row in outcome.breaks.iter_rows(named=True)}
    assert raised == {
        ("bank_credit_mismatch", "ALIPAY-SETTLE-20261124"),
        ("bank_credit_missing", "UNIONPAY-SETTLE-20261124"),
        ("bank_credit_unexpected", "JDPAY-SETTLE-20261124"),
        ("bank_credit_unexpected", "WXPAY-SETTLE-20261124#WFCB0000000003"),
    }
    assert outcome.matched.rows() == [("WXPAY-SETTLE-20261124", 9_000)]
    mismatch = outcome.breaks.filter(pl.col("type") == "bank_credit_mismatch").row(0, named=True)
    assert (mismatch["channel_amount_fen"], mismatch["platform_amount_fen"]) == (5_001, 5_000)


def test_two_connectors_of_one_channel_share_a_reference_and_a_credit() -> None:
    """Expected amounts of the same reference add up before the credit is compared."""
    outcome = match_credits(
        _expected(("WXPAY-SETTLE-20261124", 4_000), ("WXPAY-SETTLE-20261124", 5_000)),
        credit_frame(parse_statement(_statement(("WXPAY-SETTLE-20261124", 9_000)))),
    )
    assert (outcome.matched.height, outcome.breaks.height) == (1, 0)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_statement(("WXPAY-SETTLE-20261124", 1))[:-20], "truncated"),
        (_statement(("WXPAY-SETTLE-20261124", 1)).replace(b",1,", b",2,"), "SHA-256"),
        (_statement(day=date(2026, 11, 24)), "not WFCB of 2026-11-25"),
    ],
)
def test_a_statement_that_is_not_whole_and_of_the_day_is_rejected(data: bytes, reason: str) -> None:
    """Truncated, altered, or another day's: a clear 400, never a partial import."""
    with pytest.raises(StatementRejected) as rejected:
        read_statement(data, bank_code="WFCB", statement_date=DAY)
    assert reason in rejected.value.message
    assert (rejected.value.http_status, rejected.value.code) == (400, "statement_rejected")


@pytest.mark.parametrize(
    ("shanghai", "bill_date"),
    [
        (datetime(2026, 11, 25, 10, 0), date(2026, 11, 24)),
        (datetime(2026, 11, 25, 9, 59), date(2026, 11, 23)),
        (datetime(2026, 11, 25, 0, 30), date(2026, 11, 23)),
        (datetime(2026, 11, 25, 23, 59), date(2026, 11, 24)),
    ],
)
def test_the_schedule_reconciles_yesterday_once_the_bills_are_out(
    shanghai: datetime, bill_date: date
) -> None:
    """From 10:00 Shanghai the day before; earlier, the day before that (catch-up)."""
    now = shanghai.replace(tzinfo=SHANGHAI).astimezone(UTC)
    assert due_bill_date(now, time(10, 0)) == bill_date
