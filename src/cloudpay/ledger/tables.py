"""Ledger tables. Transfers are immutable; balances are the only rows that are updated.

A balance is split into `balance_shards` rows for hot platform accounts without limit flags
(channel clearing, fee income): concurrent writers add to different rows, and a reader sums
them. Accounts with a limit flag have one row, locked while it is checked.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)

from cloudpay.db.metadata import metadata

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("ledger", String(3), nullable=False),
    Column("code", String(64), nullable=False),
    Column("owner", String(96), nullable=False),
    Column("flags", SmallInteger, nullable=False),
    Column("closed", Boolean, nullable=False, default=False),
    Column("balance_shards", SmallInteger, nullable=False, default=1),
    Column("user_data", String(128), nullable=True),
    Column("timestamp_ns", BigInteger, nullable=False),
    UniqueConstraint("owner", "code", "ledger", name="uq_ledger_accounts_owner_code_ledger"),
    CheckConstraint("balance_shards >= 1 AND balance_shards <= 64", name="shards_in_range"),
)

ledger_balances = Table(
    "ledger_balances",
    metadata,
    Column("account_id", String(64), ForeignKey("ledger_accounts.id"), primary_key=True),
    Column("shard", SmallInteger, primary_key=True),
    Column("debits_pending", BigInteger, nullable=False, default=0),
    Column("debits_posted", BigInteger, nullable=False, default=0),
    Column("credits_pending", BigInteger, nullable=False, default=0),
    Column("credits_posted", BigInteger, nullable=False, default=0),
)

ledger_transfers = Table(
    "ledger_transfers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("debit_account_id", String(64), nullable=False),
    Column("credit_account_id", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("ledger", String(3), nullable=False),
    Column("code", String(64), nullable=False),
    Column("flags", Integer, nullable=False),
    Column("pending_id", String(64), nullable=True),
    Column("timeout_s", Integer, nullable=False),
    Column("user_data", String(128), nullable=True),
    Column("timestamp_ns", BigInteger, nullable=False),
    # No foreign keys here on purpose: the batch path checks existence itself, and FK checks
    # on every insert cost a third of the ingest rate on SQLite.
    Index("ix_ledger_transfers_debit", "debit_account_id", "timestamp_ns"),
    Index("ix_ledger_transfers_credit", "credit_account_id", "timestamp_ns"),
    Index("ix_ledger_transfers_user_data", "user_data"),
)

ledger_pending = Table(
    "ledger_pending",
    metadata,
    Column("id", String(64), primary_key=True),  # the pending transfer's id
    Column("status", String(16), nullable=False),
    Column("expires_at_ns", BigInteger, nullable=True),
    Column("resolved_at_ns", BigInteger, nullable=True),
    Column("resolved_by", String(64), nullable=True),
    Index("ix_ledger_pending_due", "status", "expires_at_ns"),
)
