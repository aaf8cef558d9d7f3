"""Settlement tables: fee plan versions, agent cost rates, merchants' settlement profiles,
runs per business date, settlement lines per merchant and trade date, and payouts."""

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from cloudpay.db.metadata import metadata
from cloudpay.db.types import UtcDateTime

# Immutable: a new price is a new row with a later `effective_from`; an order is priced by
# the version in force at its `created_at` (the "snapshot on each order").
settlement_fee_plans = Table(
    "settlement_fee_plans",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), nullable=False),
    Column("method", String(32), nullable=False),
    Column("effective_from", UtcDateTime, nullable=False),
    # The next version's start, written when it is added (None: still in force), so pricing
    # an order is an index lookup rather than a window over every version.
    Column("effective_to", UtcDateTime, nullable=True),
    Column("rate_centi_bp", BigInteger, nullable=False),  # hundredths of a basis point
    Column("fixed_fen", BigInteger, nullable=True),
    Column("min_fen", BigInteger, nullable=False),
    Column("max_fen", BigInteger, nullable=True),
    Column("surcharge_centi_bp", BigInteger, nullable=False),  # D+0 advance of funds
    Column("refund_policy", String(24), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint(
        "merchant_id", "method", "effective_from", name="uq_settlement_fee_plans_version"
    ),
)

# 结算底价: what an agent's parent charges it, per payment method.
settlement_agent_rates = Table(
    "settlement_agent_rates",
    metadata,
    Column("agent_id", String(40), primary_key=True),
    Column("method", String(32), primary_key=True),
    Column("cost_rate_centi_bp", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

settlement_profiles = Table(
    "settlement_profiles",
    metadata,
    Column("merchant_id", String(40), primary_key=True),
    Column("bank_code", String(12), nullable=False),
    Column("account_no", String(32), nullable=False),  # the Class II/III e-account
    Column("account_class", String(4), nullable=False),  # II or III
    Column("class_i_card", String(19), nullable=True),  # the bound Class I card
    Column("account_name", String(128), nullable=False),
    Column("cycle", String(5), nullable=False),  # T+1, D+0, T+3 …
    Column("reserve_rate_centi_bp", BigInteger, nullable=False),
    Column("reserve_hold_days", Integer, nullable=False),
    Column("over_limit_policy", String(24), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

settlement_runs = Table(
    "settlement_runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("business_date", Date, nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # running, completed
    Column("merchants_total", Integer, nullable=False),
    Column("merchants_done", Integer, nullable=False),
    Column("payouts_sent", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
)

# One row per merchant and trade date: the unique key is what makes a run idempotent.
settlement_lines = Table(
    "settlement_lines",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("run_id", String(40), nullable=False),
    Column("merchant_id", String(40), nullable=False),
    Column("trade_date", Date, nullable=False),
    Column("business_date", Date, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("orders_count", Integer, nullable=False),
    Column("unpriced_orders", Integer, nullable=False),  # no fee plan in force: fee 0, shown
    Column("gross_fen", BigInteger, nullable=False),
    Column("refunds_fen", BigInteger, nullable=False),
    Column("fees_fen", BigInteger, nullable=False),
    Column("fee_returns_fen", BigInteger, nullable=False),
    Column("channel_cost_fen", BigInteger, nullable=False),
    Column("commissions_fen", BigInteger, nullable=False),
    Column("commissions", Text, nullable=False),  # JSON {agent_id: fen}
    Column("fee_plan_ids", Text, nullable=False),  # JSON list: the versions applied
    Column("splits_fen", BigInteger, nullable=False),
    Column("split_returns_fen", BigInteger, nullable=False),
    Column("reserve_held_fen", BigInteger, nullable=False),
    Column("reserve_release_on", Date, nullable=True),
    Column("reserve_released_on", Date, nullable=True),
    Column("net_fen", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # settled, refused
    Column("refusal", String(64), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("merchant_id", "trade_date", name="uq_settlement_lines_merchant_day"),
    Index("ix_settlement_lines_run", "run_id", "id"),
    Index("ix_settlement_lines_release", "reserve_release_on"),
)

settlement_payouts = Table(
    "settlement_payouts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("run_id", String(40), nullable=False),
    Column("merchant_id", String(40), nullable=False),
    Column("pay_date", Date, nullable=False),
    Column("destination_kind", String(16), nullable=False),  # e_account, class_i
    Column("bank_code", String(12), nullable=False),
    Column("destination_account", String(32), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),  # sending, succeeded, failed, returned
    Column("limited_by", String(32), nullable=True),
    Column("failure_reason", String(64), nullable=True),
    Column("bank_serial", String(64), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint(
        "merchant_id", "pay_date", "destination_kind", name="uq_settlement_payouts_day"
    ),
    Index("ix_settlement_payouts_run", "run_id", "status"),
    Index("ix_settlement_payouts_status", "status", "id"),
)

# A delayed split (`POST /v1/splits`): one row a request, idempotent by out_split_no.
settlement_splits = Table(
    "settlement_splits",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), nullable=False),
    Column("order_id", String(40), nullable=False),
    Column("out_split_no", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("finish", Integer, nullable=False),  # 1: no more splits, the rest is released
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("merchant_id", "out_split_no", name="uq_settlement_splits_out_split_no"),
    Index("ix_settlement_splits_order", "order_id", "id"),
)

# What each receiver gets of an order (kind "split") or gives back on a refund ("return");
# `line_id` is the merchant's settlement line that moved it (NULL: not settled yet).
settlement_split_parts = Table(
    "settlement_split_parts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("merchant_id", String(40), nullable=False),
    Column("receiver_id", String(40), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("source_id", String(40), nullable=False),  # split id, "order" or the refund id
    Column("amount_fen", BigInteger, nullable=False),
    Column("level", Integer, nullable=False),
    Column("split_from", String(40), nullable=True),
    Column("line_id", String(40), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint(
        "order_id", "receiver_id", "kind", "source_id", name="uq_settlement_split_parts_source"
    ),
    Index("ix_settlement_split_parts_line", "line_id"),
    Index("ix_settlement_split_parts_receiver", "receiver_id", "id"),
)
