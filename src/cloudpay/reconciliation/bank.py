"""The bank leg of three-way reconciliation (三方对账): channel bill ↔ bank statement.

Each channel pays a day's net — its bill's payments − refunds − fees — into the platform's
custody account (备付金) at a partner bank the next day, with a reference that names the
channel and the bill date (`WXPAY-SETTLE-20261124`; `channels/sandbox_settlement.py`). So the
custody account's statement of day S must hold, for every channel reconciled for day
S − `SETTLEMENT_LAG`, one credit of exactly that bill's net. The statement is downloaded with
the bank client, kept like a bill (hash, size, source) and parsed by the bank channel's own
strict parser (checksum, sequence, running balances, totals).

Matching is one polars join of the expected credits with the statement's settlement credits:
a missing credit, a credit of another amount, and a settlement credit nobody expects (or the
same reference twice) are breaks (`bank_credit_missing`, `bank_credit_mismatch`,
`bank_credit_unexpected`) in the same breaks table and flow as the channel leg. A bank break's
`channel_amount_fen` is what the bank booked, its `platform_amount_fen` what the bill says.
Other custody movements (payouts, top-ups, returned payouts) are settlement's concern
(`settlement.check_custody`), not this leg's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl

from cloudpay.channels.bank.protocol import Direction, Statement
from cloudpay.channels.bank.statement import StatementError, parse_statement
from cloudpay.db.unit_of_work import Transact, UnitOfWork
from cloudpay.kernel.errors import InvalidRequest
from cloudpay.kernel.ids import new_id
from cloudpay.reconciliation import repository as repo
from cloudpay.reconciliation import runs
from cloudpay.reconciliation.bills import reader_for
from cloudpay.reconciliation.model import (
    BANK_FORMAT,
    SETTLEMENT_LAG,
    SUCCESS,
    UTC_INSTANT,
    BreakType,
    Kind,
    settlement_reference,
)

SETTLEMENT_REFERENCE = r"^[A-Z]+-SETTLE-[0-9]{8}$"
_MATCHED = "matched"


class StatementRejected(InvalidRequest):
    """The bank statement file is truncated, corrupt, or not the account and day asked for."""

    default_code = "statement_rejected"


def bank_channel_key(bank_code: str) -> str:
    """The `channel` a bank's runs and breaks are filed under: `bank_wfcb`."""
    return f"bank_{bank_code.lower()}"


# ---------------------------------------------------------------- pure rules


def settlement_net_fen(bill: pl.DataFrame) -> int:
    """A channel bill's net (normalised frame): payments − refunds − fees, in fen. A row of
    money going back (a refund, or a payment the bill shows `closed`: a UnionPay void) counts
    negative; a fee given back is a negative fee."""
    paid = (pl.col("kind") == Kind.PAYMENT) & (pl.col("status") == SUCCESS)
    signed = pl.when(paid).then("amount_fen").otherwise(-pl.col("amount_fen"))
    total = bill.select((signed - pl.col("fee_fen").fill_null(0)).sum()).item()
    return int(total or 0)


EXPECTED_SCHEMA: dict[str, pl.DataType] = {"reference": pl.String(), "expected_fen": pl.Int64()}
CREDIT_SCHEMA: dict[str, pl.DataType] = {
    "reference": pl.String(), "amount_fen": pl.Int64(), "bank_serial": pl.String(),
    "booked_at": UTC_INSTANT,
}  # fmt: skip


def credit_frame(statement: Statement) -> pl.DataFrame:
    """The statement's credits that look like a channel's settlement."""
    credits = [line for line in statement.lines if line.direction is Direction.CREDIT]
    frame = pl.DataFrame(
        {
            "reference": [line.reference for line in credits],
            "amount_fen": [line.amount_fen for line in credits],
            "bank_serial": [line.bank_serial for line in credits],
            "booked_at": [line.booked_at for line in credits],
        },
        schema=CREDIT_SCHEMA,
    )
    return frame.filter(pl.col("reference").str.contains(SETTLEMENT_REFERENCE))


@dataclass(frozen=True)
class BankOutcome:
    matched: pl.DataFrame  # reference, amount_fen of each credit that matched its bill
    breaks: pl.DataFrame  # `model.BREAK_COLUMNS`

    @property
    def matched_amount_fen(self) -> int:
        return int(self.matched.get_column("amount_fen").sum())

    def breaks_by_type(self) -> dict[str, int]:
        counts = self.breaks.group_by("type").len()
        return {str(row[0]): int(row[1]) for row in counts.iter_rows()}


def match_credits(expected: pl.DataFrame, credits: pl.DataFrame) -> BankOutcome:
    """Each expected settlement against the statement's credits, by reference."""
    wanted = expected.group_by("reference").agg(pl.col("expected_fen").sum())
    first = credits.with_columns(pl.col("reference").is_first_distinct().alias("first"))
    joined = first.filter("first").join(wanted, on="reference", how="full", coalesce=True)
    has_credit, has_bill = pl.col("amount_fen").is_not_null(), pl.col("expected_fen").is_not_null()
    verdict = (
        pl.when(has_credit & ~has_bill).then(pl.lit(BreakType.BANK_CREDIT_UNEXPECTED.value))
        .when(~has_credit).then(pl.lit(BreakType.BANK_CREDIT_MISSING.value))
        .when(pl.col("amount_fen") != pl.col("expected_fen"))
        .then(pl.lit(BreakType.BANK_CREDIT_MISMATCH.value))
        .otherwise(pl.lit(_MATCHED))
    )  # fmt: skip
    classified = joined.with_columns(verdict.alias("type"))
    # A second credit of a reference is its own break, keyed by its bank serial.
    repeated = first.filter(~pl.col("first")).with_columns(
        pl.concat_str("reference", pl.lit("#"), "bank_serial").alias("reference"),
        pl.lit(None, pl.Int64).alias("expected_fen"),
        pl.lit(BreakType.BANK_CREDIT_UNEXPECTED.value).alias("type"),
    )
    raised = pl.concat(
        [classified.filter(pl.col("type") != _MATCHED), repeated.select(classified.columns)],
        how="vertical",
    )
    return BankOutcome(
        matched=classified.filter(pl.col("type") == _MATCHED).select("reference", "amount_fen"),
        breaks=raised.select(
            "type", pl.col("reference").alias("key"), pl.lit(Kind.SETTLEMENT.value).alias("kind"),
            pl.lit(None, pl.String).alias("order_id"), pl.lit(None, pl.String).alias("refund_id"),
            pl.col("reference").alias("channel_txn_id"),  # shown to operators
            pl.col("amount_fen").alias("channel_amount_fen"),
            pl.col("expected_fen").alias("platform_amount_fen"),
            pl.lit(None, pl.Int64).alias("channel_fee_fen"),
            pl.lit(None, pl.Int64).alias("platform_fee_fen"),
            pl.lit(None, pl.String).alias("channel_status"),
            pl.lit(None, pl.String).alias("platform_status"),
            pl.col("booked_at").alias("occurred_at"),
        ),
    )  # fmt: skip


# ---------------------------------------------------------------- use cases


def expected_credits(uow: UnitOfWork, *, bill_date: date) -> pl.DataFrame:
    """What each channel reconciled for `bill_date` should have paid in: its bill's net, read
    again from the file its latest completed run kept (nothing for a day without a bill)."""
    rows: list[tuple[str, int]] = []
    for run in latest_channel_runs(uow, bill_date=bill_date):
        reference = settlement_reference(run["bill_format"], bill_date)
        if reference is None or run["file_id"] is None:
            continue
        data = repo.file_content(uow.connection, run["file_id"])
        assert data is not None, "a run's file is never deleted"
        net = settlement_net_fen(reader_for(run["bill_format"])(data))
        if net > 0:  # a day whose refunds and fees ate the payments brings no credit
            rows.append((reference, net))
    return pl.DataFrame(rows, schema=EXPECTED_SCHEMA, orient="row")


def latest_channel_runs(uow: UnitOfWork, *, bill_date: date) -> list[dict[str, Any]]:
    """The latest completed run of each channel (not bank) for the day."""
    runs = repo.list_runs(uow.connection, channel=None, bill_date=bill_date, limit=1_000,
                          starting_after=None)  # fmt: skip
    latest: dict[str, dict[str, Any]] = {}
    for run in runs:  # newest first
        if run["status"] == "completed" and run["bill_format"] != BANK_FORMAT:
            latest.setdefault(run["channel"], run)
    return list(latest.values())


def read_statement(data: bytes, *, bank_code: str, statement_date: date) -> Statement:
    """The statement, strictly checked by the bank channel's parser, for the day asked."""
    try:
        statement = parse_statement(data)
    except StatementError as error:
        raise StatementRejected(f"bank statement rejected: {error}") from error
    if (statement.bank_code, statement.statement_date) != (bank_code, statement_date):
        raise StatementRejected(
            f"the statement is {statement.bank_code} of {statement.statement_date}, "
            f"not {bank_code} of {statement_date}"
        )
    return statement


def run_bank_day(
    transact: Transact, *, bank_code: str, statement_date: date, data: bytes, source: str,
    actor: str,
) -> dict[str, Any]:  # fmt: skip
    """Keep the statement file, read it strictly, match its settlement credits against the
    channel bills of the day before; a rejected file is recorded and raised."""
    started = transact(lambda uow: uow.clock.now())
    bill = runs.BillFile(bank_channel_key(bank_code), statement_date, data, source,
                            BANK_FORMAT)  # fmt: skip
    file_id = transact(lambda uow: runs.keep_file(uow, bill=bill))
    try:
        statement = read_statement(data, bank_code=bank_code, statement_date=statement_date)
    except StatementRejected as rejected:
        reason = rejected.message
        transact(lambda uow: runs.record_rejected(uow, bill, file_id, reason, actor, started))
        raise
    credits = credit_frame(statement)
    return transact(
        lambda uow: _reconcile_statement(uow, bill, file_id, statement, credits, actor, started)
    )


def rerun_statement(transact: Transact, *, bill: runs.BillFile, actor: str) -> dict[str, Any]:
    """Reconcile a kept statement file again (its bank read from the file, checked against the
    run's channel)."""
    try:
        bank_code = parse_statement(bill.data).bank_code
    except StatementError as error:  # it was rejected the first time too
        raise StatementRejected(f"bank statement rejected: {error}") from error
    if bank_channel_key(bank_code) != bill.channel:
        raise StatementRejected(f"the statement is {bank_code}'s, not {bill.channel}'s")
    return run_bank_day(
        transact, bank_code=bank_code, statement_date=bill.bill_date, data=bill.data,
        source=bill.source, actor=actor,
    )  # fmt: skip


def _reconcile_statement(
    uow: UnitOfWork, bill: runs.BillFile, file_id: str, statement: Statement,
    credits: pl.DataFrame, actor: str, started: datetime,
) -> dict[str, Any]:  # fmt: skip
    expected = expected_credits(uow, bill_date=bill.bill_date - SETTLEMENT_LAG)
    outcome = match_credits(expected, credits)
    run_id = new_id("rcr")
    repo.insert_run(uow.connection, runs.run_values(
        run_id, bill, file_id, actor, started, uow.clock.now(),
        channel_rows=len(statement.lines), matched_count=outcome.matched.height,
        matched_amount_fen=outcome.matched_amount_fen, break_count=outcome.breaks.height,
        breaks_by_type=json.dumps(outcome.breaks_by_type(), sort_keys=True),
    ))  # fmt: skip
    runs.raise_breaks(uow, run_id, bill, outcome.breaks)
    return runs.get_run(uow, run_id)


__all__ = [
    "BANK_FORMAT",
    "SETTLEMENT_LAG",
    "BankOutcome",
    "StatementRejected",
    "bank_channel_key",
    "match_credits",
    "rerun_statement",
    "run_bank_day",
    "settlement_net_fen",
]
