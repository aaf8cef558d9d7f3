"""Reconciliation rules (对账), pure and set-based: one channel's day against ours.

Both sides arrive as one normalised frame (`FRAME_SCHEMA`): a payment or a refund, keyed by
our order id (payments) or our refund id (refunds) — the ids the channel echoes back as
out_trade_no / out_refund_no — with amount and fee in integer fen, a status in our words
(`success`, `processing`, `open`, `failed`, `closed`) and the instant it happened (UTC).
Matching is a few polars joins and expressions over whole frames, never a Python loop over
rows, so a million-row bill reconciles in about the time it takes to read it.

Fees: the channel's fee for a payment must equal the order's `route_cost_fen` (what its route
says the channel charges). On a refund the channel gives back the fee share proportional to
the refunded amount: `round_half_up(route_cost_fen * refund / order_amount)`, negative; orders
without a route cost (before routing existed) are not fee-checked.

Voids: a channel that lists a same-day void of a payment (UnionPay 消费撤销) beside the
payment itself shows the order `closed` in the void's row; the payment's row is then folded
into it (`fold_voided_payments`), so the order is one row, closed, like ours.

Timing: a row seen on only one side within `carry_window` of the end of the business day
(Asia/Shanghai) is carried over to the next day's run instead of raised — its counterpart
may simply have been stamped after midnight. A carried row is matched once more and, if it
still has no counterpart, raised then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

import polars as pl

from cloudpay.kernel.business_time import day_bounds_utc

DEFAULT_CARRY_WINDOW = timedelta(minutes=5)
UTC_INSTANT = pl.Datetime("us", "UTC")
FRAME_SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.String(),  # payment | refund
    "order_id": pl.String(),
    "refund_id": pl.String(),  # null on a payment
    "channel_txn_id": pl.String(),
    "amount_fen": pl.Int64(),
    "fee_fen": pl.Int64(),  # ours: the expected fee; null when unknown
    "status": pl.String(),
    "time": UTC_INSTANT,
}
CARRIED_COLUMN = "carried_from"  # the business date a carried row was first seen, else null


class Kind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"
    SETTLEMENT = "settlement"  # a channel's daily net credited to custody (the bank leg)


class BreakType(StrEnum):
    """What kind of difference a break is, in the order the rules test them."""

    DUPLICATE = "duplicate"  # the channel lists the same payment or refund twice
    MISSING_IN_PLATFORM = "missing_in_platform"  # the channel has it; we don't (or still open)
    MISSING_IN_CHANNEL = "missing_in_channel"  # we have it; the channel doesn't
    STATUS_MISMATCH = "status_mismatch"
    AMOUNT_MISMATCH = "amount_mismatch"
    FEE_MISMATCH = "fee_mismatch"
    # The bank leg (`reconciliation.bank`): a channel's daily settlement credit in custody.
    BANK_CREDIT_MISSING = "bank_credit_missing"
    BANK_CREDIT_MISMATCH = "bank_credit_mismatch"  # credited, but not the bill's net
    BANK_CREDIT_UNEXPECTED = "bank_credit_unexpected"  # a settlement credit no bill explains


# The bank leg: a channel pays a bill day's net into custody the next day (T+1), the credit's
# reference naming the channel (by its bill format) and the day: `WXPAY-SETTLE-20261124`.
BANK_FORMAT = "bank"  # the `bill_format` of a bank leg's runs
SETTLEMENT_LAG = timedelta(days=1)
SETTLEMENT_PREFIXES = {"wechat": "WXPAY", "alipay": "ALIPAY", "unionpay": "UNIONPAY"}


def settlement_reference(bill_format: str, bill_date: date) -> str | None:
    prefix = SETTLEMENT_PREFIXES.get(bill_format)
    return None if prefix is None else f"{prefix}-SETTLE-{bill_date:%Y%m%d}"


class Side(StrEnum):
    CHANNEL = "channel"
    PLATFORM = "platform"


SUCCESS = "success"
_MATCHED = "matched"
_CARRY = "carry"
_IGNORED = "ignored"


def empty_frame(*, carried: bool = False) -> pl.DataFrame:
    schema = dict(FRAME_SCHEMA)
    if carried:
        schema[CARRIED_COLUMN] = pl.Date()
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame's normalised columns, in order and type (a programmer error if one lacks)."""
    missing = set(FRAME_SCHEMA) - set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks {sorted(missing)}")
    return frame.select(pl.col(name).cast(kind) for name, kind in FRAME_SCHEMA.items())


def expected_refund_fee(
    route_cost_fen: pl.Expr, refund_fen: pl.Expr, order_amount_fen: pl.Expr
) -> pl.Expr:
    """The fee share a refund gives back: proportional, rounded half up, negative.

    The channels return a refund's fee pro rata (WeChat's trade bill lists it as a negative
    手续费 on the REFUND row, https://pay.weixin.qq.com/docs/merchant/products/bill-download/
    format-trade.html; Alipay's as a positive 服务费 on the 退款 row,
    https://opendocs.alipay.com/open/204/106262); none documents the rounding, so this is
    ours: the refunded share of the fee charged, half up, once per refund. The WeChat, Alipay
    and UnionPay sandboxes bill exactly this (`channels/*/sandbox`, `refund_fee_fen`/`_fee_fen`).
    """
    return -((2 * route_cost_fen * refund_fen + order_amount_fen) // (2 * order_amount_fen))


@dataclass(frozen=True)
class Outcome:
    matched: pl.DataFrame  # key, kind, amount_fen, fee_fen of every matched row
    breaks: pl.DataFrame  # one row a break: type, key, both sides' facts
    carry_over: pl.DataFrame  # FRAME_SCHEMA + side + carried_from: tomorrow's extra rows

    @property
    def matched_amount_fen(self) -> int:
        return int(self.matched.get_column("amount_fen").sum())

    def breaks_by_type(self) -> dict[str, int]:
        counts = self.breaks.group_by("type").len()
        return {str(row[0]): int(row[1]) for row in counts.iter_rows()}


def reconcile(
    channel: pl.DataFrame,
    platform: pl.DataFrame,
    *,
    business_date: date,
    carried_channel: pl.DataFrame | None = None,
    carried_platform: pl.DataFrame | None = None,
    carry_window: timedelta = DEFAULT_CARRY_WINDOW,
) -> Outcome:
    """Classify every row of both sides: matched, a break of one `BreakType`, or carried."""
    channel_side = fold_voided_payments(_with_carried(channel, carried_channel)).with_columns(
        pl.col("key").is_first_distinct().alias("first_seen")
    )
    platform_side = _with_carried(platform, carried_platform)
    _, day_end = day_bounds_utc(business_date)
    # One eager join, materialised once: the four results below are cheap filters of it.
    classified = (
        channel_side.filter("first_seen")
        .join(platform_side, on="key", how="full", suffix="_ours", coalesce=True)
        .with_columns(_verdict(day_end - carry_window).alias("verdict"))
        .lazy()
    )
    duplicates = channel_side.lazy().filter(~pl.col("first_seen"))
    matched, duplicate_breaks, other_breaks, carry_over = pl.collect_all(
        [_matched(classified), _duplicate_breaks(duplicates), _breaks(classified),
         _carry_over(classified, business_date)]
    )  # fmt: skip
    return Outcome(
        matched=matched,
        breaks=pl.concat([duplicate_breaks, other_breaks], how="vertical"),
        carry_over=carry_over,
    )


def _with_carried(fresh: pl.DataFrame, carried: pl.DataFrame | None) -> pl.DataFrame:
    today = conform(fresh).with_columns(pl.lit(None, pl.Date()).alias(CARRIED_COLUMN))
    if carried is not None and carried.height:
        earlier = conform(carried).with_columns(carried.get_column(CARRIED_COLUMN).cast(pl.Date))
        today = pl.concat([today, earlier], how="vertical")
    # Our ids are prefixed (ord_…, rfd_…), so one key column serves both kinds.
    key = pl.when(pl.col("kind") == Kind.PAYMENT).then("order_id").otherwise("refund_id")
    return today.with_columns(key.alias("key"))


def fold_voided_payments(channel_side: pl.DataFrame) -> pl.DataFrame:
    """Drop the payment row a void of the same order supersedes: one successful row of each
    order that also has a `closed` payment row. One, not all: a payment listed twice still
    leaves a row to be raised."""
    is_payment = pl.col("kind") == Kind.PAYMENT
    voided = channel_side.filter(is_payment & (pl.col("status") == "closed")).get_column("key")
    if voided.is_empty():  # the common case (every channel but UnionPay): no extra pass
        return channel_side
    superseded = is_payment & (pl.col("status") == SUCCESS) & pl.col("key").is_in(voided.implode())
    first_superseded = superseded & pl.when(superseded).then(pl.col("key")).is_first_distinct()
    return channel_side.filter(~first_superseded)


def _verdict(carry_from: datetime) -> pl.Expr:
    on_channel, on_ours = pl.col("kind").is_not_null(), pl.col("kind_ours").is_not_null()
    channel_ok, ours_ok = pl.col("status") == SUCCESS, pl.col("status_ours") == SUCCESS
    ours_open = pl.col("status_ours").is_in(["open", "processing"])
    carry_channel = pl.col(CARRIED_COLUMN).is_null() & (pl.col("time") >= carry_from)
    carry_ours = pl.col(f"{CARRIED_COLUMN}_ours").is_null() & (pl.col("time_ours") >= carry_from)
    fee_differs = pl.col("fee_fen_ours").is_not_null() & (
        pl.col("fee_fen") != pl.col("fee_fen_ours")
    )
    return (
        pl.when(on_channel & ~on_ours & channel_ok & carry_channel).then(pl.lit(_CARRY))
        .when(on_channel & ~on_ours & channel_ok).then(pl.lit(BreakType.MISSING_IN_PLATFORM))
        .when(on_channel & ~on_ours).then(pl.lit(_IGNORED))
        .when(~on_channel & ours_ok & carry_ours).then(pl.lit(_CARRY))
        .when(~on_channel & ours_ok).then(pl.lit(BreakType.MISSING_IN_CHANNEL))
        .when(~on_channel).then(pl.lit(_IGNORED))
        .when(channel_ok & ours_open).then(pl.lit(BreakType.MISSING_IN_PLATFORM))
        .when(pl.col("status") != pl.col("status_ours")).then(pl.lit(BreakType.STATUS_MISMATCH))
        .when(~channel_ok).then(pl.lit(_IGNORED))  # both agree it has not happened (yet)
        .when(pl.col("amount_fen") != pl.col("amount_fen_ours"))
        .then(pl.lit(BreakType.AMOUNT_MISMATCH))
        .when(fee_differs).then(pl.lit(BreakType.FEE_MISMATCH))
        .otherwise(pl.lit(_MATCHED))
    )  # fmt: skip


def _matched(classified: pl.LazyFrame) -> pl.LazyFrame:
    return classified.filter(pl.col("verdict") == _MATCHED).select(
        "key", "kind", "amount_fen", "fee_fen"
    )


BREAK_COLUMNS = (
    "type", "key", "kind", "order_id", "refund_id", "channel_txn_id", "channel_amount_fen",
    "platform_amount_fen", "channel_fee_fen", "platform_fee_fen", "channel_status",
    "platform_status", "occurred_at",
)  # fmt: skip


def _breaks(classified: pl.LazyFrame) -> pl.LazyFrame:
    raised = classified.filter(~pl.col("verdict").is_in([_MATCHED, _CARRY, _IGNORED]))
    return raised.select(
        pl.col("verdict").alias("type"),
        "key",
        pl.coalesce("kind", "kind_ours").alias("kind"),
        pl.coalesce("order_id", "order_id_ours").alias("order_id"),
        pl.coalesce("refund_id", "refund_id_ours").alias("refund_id"),
        pl.coalesce("channel_txn_id", "channel_txn_id_ours").alias("channel_txn_id"),
        pl.col("amount_fen").alias("channel_amount_fen"),
        pl.col("amount_fen_ours").alias("platform_amount_fen"),
        pl.col("fee_fen").alias("channel_fee_fen"),
        pl.col("fee_fen_ours").alias("platform_fee_fen"),
        pl.col("status").alias("channel_status"),
        pl.col("status_ours").alias("platform_status"),
        pl.coalesce("time", "time_ours").alias("occurred_at"),
    )


def _duplicate_breaks(duplicates: pl.LazyFrame) -> pl.LazyFrame:
    return duplicates.select(
        pl.lit(BreakType.DUPLICATE.value).alias("type"),
        "key", "kind", "order_id", "refund_id", "channel_txn_id",
        pl.col("amount_fen").alias("channel_amount_fen"),
        pl.lit(None, pl.Int64).alias("platform_amount_fen"),
        pl.col("fee_fen").alias("channel_fee_fen"),
        pl.lit(None, pl.Int64).alias("platform_fee_fen"),
        pl.col("status").alias("channel_status"),
        pl.lit(None, pl.String).alias("platform_status"),
        pl.col("time").alias("occurred_at"),
    )  # fmt: skip


def _carry_over(classified: pl.LazyFrame, business_date: date) -> pl.LazyFrame:
    carried = classified.filter(pl.col("verdict") == _CARRY)
    from_channel = carried.filter(pl.col("kind").is_not_null()).select(
        *FRAME_SCHEMA, pl.lit(Side.CHANNEL.value).alias("side")
    )
    from_ours = carried.filter(pl.col("kind").is_null()).select(
        *(pl.col(f"{name}_ours").alias(name) for name in FRAME_SCHEMA),
        pl.lit(Side.PLATFORM.value).alias("side"),
    )
    both = pl.concat([from_channel, from_ours], how="vertical")
    return both.with_columns(pl.lit(business_date).alias(CARRIED_COLUMN))


# ---------------------------------------------------------------- our side

ORDER_COLUMNS: dict[str, pl.DataType] = {
    "id": pl.String(), "amount": pl.Int64(), "status": pl.String(),
    "route_cost_fen": pl.Int64(), "channel_transaction_id": pl.String(),
    "paid_at": UTC_INSTANT, "created_at": UTC_INSTANT,
}  # fmt: skip
REFUND_COLUMNS: dict[str, pl.DataType] = {
    "id": pl.String(), "order_id": pl.String(), "amount": pl.Int64(), "status": pl.String(),
    "channel_refund_id": pl.String(), "succeeded_at": UTC_INSTANT, "created_at": UTC_INSTANT,
    "order_amount": pl.Int64(), "route_cost_fen": pl.Int64(),
}  # fmt: skip
# Our order and refund states in the bill's words: has the money moved, is it still open.
ORDER_STATUS_WORDS = {
    "succeeded": SUCCESS, "partially_refunded": SUCCESS, "refunded": SUCCESS,
    "created": "open", "paying": "open", "failed": "failed", "closed": "closed",
    "expired": "closed",
}  # fmt: skip
REFUND_STATUS_WORDS = {"succeeded": SUCCESS, "processing": "processing", "failed": "failed"}


def platform_frame(orders: pl.DataFrame, refunds: pl.DataFrame) -> pl.DataFrame:
    """Our orders and refunds (columns `ORDER_COLUMNS`, `REFUND_COLUMNS`) as one frame."""
    order_rows = orders.select(
        pl.lit(Kind.PAYMENT.value).alias("kind"),
        pl.col("id").alias("order_id"),
        pl.lit(None, pl.String).alias("refund_id"),
        pl.col("channel_transaction_id").alias("channel_txn_id"),
        pl.col("amount").alias("amount_fen"),
        pl.col("route_cost_fen").alias("fee_fen"),
        pl.col("status").replace_strict(ORDER_STATUS_WORDS, return_dtype=pl.String),
        pl.coalesce("paid_at", "created_at").alias("time"),
    )
    refund_rows = refunds.select(
        pl.lit(Kind.REFUND.value).alias("kind"),
        "order_id",
        pl.col("id").alias("refund_id"),
        pl.col("channel_refund_id").alias("channel_txn_id"),
        pl.col("amount").alias("amount_fen"),
        expected_refund_fee(pl.col("route_cost_fen"), pl.col("amount"), pl.col("order_amount"))
        .alias("fee_fen"),
        pl.col("status").replace_strict(REFUND_STATUS_WORDS, return_dtype=pl.String),
        pl.coalesce("succeeded_at", "created_at").alias("time"),
    )  # fmt: skip
    return pl.concat([conform(order_rows), conform(refund_rows)], how="vertical")


def platform_frame_from_rows(rows: list[tuple[object, ...]]) -> pl.DataFrame:
    """`payments.reconciliation_rows` (kind, id, order_id, amount, status, route_cost_fen,
    order_amount, channel_txn_id, done_at, created_at) as our normalised side."""
    table = pl.DataFrame(
        rows, orient="row", schema={
            "kind": pl.String(), "id": pl.String(), "order_id": pl.String(),
            "amount": pl.Int64(), "status": pl.String(), "route_cost_fen": pl.Int64(),
            "order_amount": pl.Int64(), "channel_txn_id": pl.String(), "done_at": UTC_INSTANT,
            "created_at": UTC_INSTANT,
        },
    )  # fmt: skip
    payments = table.filter(pl.col("kind") == Kind.PAYMENT).select(
        "id", "amount", "status", "route_cost_fen",
        pl.col("channel_txn_id").alias("channel_transaction_id"),
        pl.col("done_at").alias("paid_at"), "created_at",
    )  # fmt: skip
    refunds = table.filter(pl.col("kind") == Kind.REFUND).select(
        "id", "order_id", "amount", "status", pl.col("channel_txn_id").alias("channel_refund_id"),
        pl.col("done_at").alias("succeeded_at"), "created_at", "order_amount", "route_cost_fen",
    )  # fmt: skip
    return platform_frame(payments, refunds)


# ---------------------------------------------------------------- a break's life


class BreakStatus(StrEnum):
    OPEN = "open"
    INVESTIGATING = "investigating"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    """How an operator closes a break."""

    REPAIR_ORDER = "repair_order"  # 补单: bring our order to the channel's truth
    ADJUST = "adjust"  # a ledger journal (named by its transfer id) corrects the books
    REFUND = "refund"  # the money went back to the payer
    WRITE_OFF = "write_off"  # accepted as a loss or gain, with the reason


# What each resolution can close: a repair only fixes an order the channel has and we lack.
REPAIRABLE = frozenset({BreakType.MISSING_IN_PLATFORM, BreakType.STATUS_MISMATCH})
NEXT_STATUSES: dict[BreakStatus, frozenset[BreakStatus]] = {
    BreakStatus.OPEN: frozenset({BreakStatus.INVESTIGATING, BreakStatus.RESOLVED}),
    BreakStatus.INVESTIGATING: frozenset({BreakStatus.RESOLVED}),
    BreakStatus.RESOLVED: frozenset(),
}
AGEING_BUCKETS: tuple[tuple[str, int], ...] = (("0-1d", 1), ("2-3d", 3), ("4-7d", 7))
OLDEST_BUCKET = ">7d"


def can_move(current: BreakStatus, target: BreakStatus) -> bool:
    return target in NEXT_STATUSES[current]


def age_days(bill_date: date, today: date) -> int:
    return max((today - bill_date).days, 0)


def ageing_bucket(days: int) -> str:
    """The bucket of an unresolved break by days since its bill date (T+1 is day 1)."""
    return next((name for name, limit in AGEING_BUCKETS if days <= limit), OLDEST_BUCKET)
