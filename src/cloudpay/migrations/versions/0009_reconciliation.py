"""reconciliation: bill files kept, runs, breaks and their audit trail, carry-over pool

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def _files_and_runs() -> None:
    op.create_table(
        "recon_files",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("bill_date", sa.Date, nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("channel", "bill_date", "sha256", name="uq_recon_files_content"),
    )
    op.create_table(
        "recon_runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("bill_date", sa.Date, nullable=False),
        sa.Column("file_id", sa.String(40), sa.ForeignKey("recon_files.id"), nullable=True),
        sa.Column("bill_format", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.String(512), nullable=True),
        sa.Column("channel_rows", sa.Integer, nullable=False),
        sa.Column("matched_count", sa.Integer, nullable=False),
        sa.Column("matched_amount_fen", sa.BigInteger, nullable=False),
        sa.Column("break_count", sa.Integer, nullable=False),
        sa.Column("breaks_by_type", sa.Text, nullable=False),
        sa.Column("carried_over_count", sa.Integer, nullable=False),
        sa.Column("carry_in_count", sa.Integer, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_recon_runs_channel_date", "recon_runs", ["channel", "bill_date"])


def _breaks() -> None:
    op.create_table(
        "recon_breaks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("recon_runs.id"), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("bill_date", sa.Date, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("match_key", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.Column("refund_id", sa.String(64), nullable=True),
        sa.Column("channel_txn_id", sa.String(64), nullable=True),
        sa.Column("channel_amount_fen", sa.BigInteger, nullable=True),
        sa.Column("platform_amount_fen", sa.BigInteger, nullable=True),
        sa.Column("channel_fee_fen", sa.BigInteger, nullable=True),
        sa.Column("platform_fee_fen", sa.BigInteger, nullable=True),
        sa.Column("channel_status", sa.String(24), nullable=True),
        sa.Column("platform_status", sa.String(24), nullable=True),
        sa.Column("occurred_at", TIMESTAMP, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolution", sa.String(24), nullable=True),
        sa.Column("resolution_note", sa.String(512), nullable=True),
        sa.Column("ledger_transfer_id", sa.String(64), nullable=True),
        sa.Column("resolved_by", sa.String(64), nullable=True),
        sa.Column("resolved_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint(
            "channel", "bill_date", "type", "match_key", name="uq_recon_breaks_once"
        ),
    )
    op.create_index("ix_recon_breaks_status", "recon_breaks", ["status", "id"])
    op.create_table(
        "recon_break_events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("break_id", sa.String(40), sa.ForeignKey("recon_breaks.id"), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("action", sa.String(24), nullable=True),
        sa.Column("note", sa.String(512), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_recon_break_events_break_id", "recon_break_events", ["break_id"])


def _carry_over() -> None:
    op.create_table(
        "recon_carry_over",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("carried_from", sa.Date, nullable=False),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("refund_id", sa.String(64), nullable=True),
        sa.Column("channel_txn_id", sa.String(64), nullable=True),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("fee_fen", sa.BigInteger, nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("created_run_id", sa.String(40), nullable=False),
        sa.Column("consumed_run_id", sa.String(40), nullable=True),
    )
    op.create_index("ix_recon_carry_channel_date", "recon_carry_over", ["channel", "carried_from"])


def upgrade() -> None:
    _files_and_runs()
    _breaks()
    _carry_over()


def downgrade() -> None:
    op.drop_table("recon_carry_over")
    op.drop_table("recon_break_events")
    op.drop_table("recon_breaks")
    op.drop_table("recon_runs")
    op.drop_table("recon_files")
