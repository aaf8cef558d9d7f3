"""Reconciliation tables: bill files kept, runs, breaks with their audit trail, carry-over."""

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from cloudpay.db.metadata import metadata
from cloudpay.db.types import UtcDateTime

# The raw bytes stay in the database, so a run can be repeated from exactly the same file on
# any node; a day's bill of a busy merchant is tens of megabytes, well within a BYTEA/BLOB.
recon_files = Table(
    "recon_files",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("channel", String(32), nullable=False),
    Column("bill_date", Date, nullable=False),
    Column("source", String(256), nullable=False),  # download:<connector> | file:<name>
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("channel", "bill_date", "sha256", name="uq_recon_files_content"),
)

recon_runs = Table(
    "recon_runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("channel", String(32), nullable=False),
    Column("bill_date", Date, nullable=False),
    Column("file_id", String(40), ForeignKey("recon_files.id"), nullable=True),
    Column("bill_format", String(16), nullable=False),  # the reader used: wechat | …
    Column("status", String(16), nullable=False),  # completed | rejected
    Column("error", String(512), nullable=True),
    Column("channel_rows", Integer, nullable=False),
    Column("matched_count", Integer, nullable=False),
    Column("matched_amount_fen", BigInteger, nullable=False),
    Column("break_count", Integer, nullable=False),
    Column("breaks_by_type", Text, nullable=False),  # JSON {type: count}
    Column("carried_over_count", Integer, nullable=False),
    Column("carry_in_count", Integer, nullable=False),  # rows carried from the day before
    Column("actor", String(64), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Index("ix_recon_runs_channel_date", "channel", "bill_date"),
)

recon_breaks = Table(
    "recon_breaks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("run_id", String(40), ForeignKey("recon_runs.id"), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("bill_date", Date, nullable=False),
    Column("type", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("match_key", String(64), nullable=False),  # our order id or refund id
    Column("order_id", String(64), nullable=True),
    Column("refund_id", String(64), nullable=True),
    Column("channel_txn_id", String(64), nullable=True),
    Column("channel_amount_fen", BigInteger, nullable=True),
    Column("platform_amount_fen", BigInteger, nullable=True),
    Column("channel_fee_fen", BigInteger, nullable=True),
    Column("platform_fee_fen", BigInteger, nullable=True),
    Column("channel_status", String(24), nullable=True),
    Column("platform_status", String(24), nullable=True),
    Column("occurred_at", UtcDateTime, nullable=True),
    Column("status", String(16), nullable=False),  # open | investigating | resolved
    Column("resolution", String(24), nullable=True),  # the action that resolved it
    Column("resolution_note", String(512), nullable=True),
    Column("ledger_transfer_id", String(64), nullable=True),  # an `adjust`'s journal
    Column("resolved_by", String(64), nullable=True),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # A repeated run of the same day finds the same differences: one break each, not two.
    UniqueConstraint("channel", "bill_date", "type", "match_key", name="uq_recon_breaks_once"),
    Index("ix_recon_breaks_status", "status", "id"),
)

recon_break_events = Table(
    "recon_break_events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("break_id", String(40), ForeignKey("recon_breaks.id"), nullable=False, index=True),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("action", String(24), nullable=True),
    Column("note", String(512), nullable=True),
    Column("actor", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

recon_carry_over = Table(
    "recon_carry_over",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("channel", String(32), nullable=False),
    Column("carried_from", Date, nullable=False),  # the business date it was first seen
    Column("side", String(16), nullable=False),  # channel | platform
    Column("kind", String(16), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("refund_id", String(64), nullable=True),
    Column("channel_txn_id", String(64), nullable=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=True),
    Column("status", String(24), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("created_run_id", String(40), nullable=False),
    Column("consumed_run_id", String(40), nullable=True),  # the next day's run that used it
    Index("ix_recon_carry_channel_date", "channel", "carried_from"),
)
