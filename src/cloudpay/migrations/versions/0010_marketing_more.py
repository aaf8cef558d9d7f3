"""marketing, more: red packets, lottery, points, anti-abuse flags, redemption places

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def _red_packets() -> None:
    op.create_table(
        "marketing_red_packets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("funder_account_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("total_fen", sa.BigInteger, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("max_part_fen", sa.BigInteger, nullable=False),
        sa.Column("claimed_count", sa.Integer, nullable=False),
        sa.Column("claimed_fen", sa.BigInteger, nullable=False),
        sa.Column("returned_fen", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claim_ends_at", TIMESTAMP, nullable=False),
        sa.Column("return_due_at", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_index(
        "ix_marketing_red_packets_status_return_due",
        "marketing_red_packets",
        ["status", "return_due_at"],
    )
    op.create_table(
        "marketing_red_packet_parts",
        sa.Column(
            "red_packet_id",
            sa.String(32),
            sa.ForeignKey("marketing_red_packets.id"),
            primary_key=True,
        ),
        sa.Column("part_no", sa.Integer, primary_key=True),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("citizen_id", sa.String(32), nullable=True),
        sa.Column("claimed_at", TIMESTAMP, nullable=True),
        sa.UniqueConstraint(
            "red_packet_id", "citizen_id", name="uq_marketing_red_packet_parts_citizen"
        ),
    )


def _lottery() -> None:
    with op.batch_alter_table("marketing_campaigns") as batch:
        batch.add_column(
            sa.Column("issuance", sa.String(16), nullable=False, server_default="first_come")
        )
        batch.add_column(sa.Column("draw_seed", sa.String(64), nullable=True))
        batch.add_column(sa.Column("drawn_at", TIMESTAMP, nullable=True))
    op.create_table(
        "marketing_lottery_entries",
        sa.Column(
            "campaign_id",
            sa.String(32),
            sa.ForeignKey("marketing_campaigns.id"),
            primary_key=True,
        ),
        sa.Column("citizen_id", sa.String(32), primary_key=True),
        sa.Column("registered_at", TIMESTAMP, nullable=False),
        sa.Column("won", sa.Boolean, nullable=True),
    )


def _points() -> None:
    op.create_table(
        "marketing_points_rules",
        sa.Column("merchant_id", sa.String(32), primary_key=True),
        sa.Column("points_per_yuan", sa.Integer, nullable=False),
        sa.Column("validity_days", sa.Integer, nullable=False),
        sa.Column("multipliers", sa.JSON, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "marketing_points_lots",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("citizen_id", sa.String(32), nullable=False),
        sa.Column("merchant_id", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("remaining", sa.BigInteger, nullable=False),
        sa.Column("earned_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("order_id", name="uq_marketing_points_lots_order"),
    )
    op.create_index(
        "ix_marketing_points_lots_citizen_earned",
        "marketing_points_lots",
        ["citizen_id", "earned_at"],
    )
    op.create_index("ix_marketing_points_lots_expires", "marketing_points_lots", ["expires_at"])


# The rules a fresh database starts with, as data (thresholds are tuned through the API). The
# values are written out, not imported, so this migration stays what it was when it ran.
DEFAULT_ABUSE_RULES = [
    {"code": "many_wallets", "description": "one person paying with many wallets",
     "threshold": 3, "window_hours": 0, "enabled": True},
    {"code": "identical_amounts", "description": "a merchant's voucher orders of one amount",
     "threshold": 5, "window_hours": 24, "enabled": True},
    {"code": "redeem_refund_loop", "description": "voucher orders refunded again and again",
     "threshold": 3, "window_hours": 72, "enabled": True},
]  # fmt: skip


def _abuse() -> None:
    rules = op.create_table(
        "marketing_abuse_rules",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("description", sa.String(256), nullable=False),
        sa.Column("threshold", sa.Integer, nullable=False),
        sa.Column("window_hours", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
    )
    op.bulk_insert(rules, DEFAULT_ABUSE_RULES)
    op.create_table(
        "marketing_flags",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(40), nullable=False),
        sa.Column("rule_code", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("note", sa.String(512), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("reviewed_at", TIMESTAMP, nullable=True),
        sa.UniqueConstraint(
            "rule_code", "subject_kind", "subject_id", name="uq_marketing_flags_subject"
        ),
    )
    op.create_index("ix_marketing_flags_status", "marketing_flags", ["status"])


def _redemption_places() -> None:
    with op.batch_alter_table("marketing_redemptions") as batch:
        batch.add_column(sa.Column("mcc", sa.String(4), nullable=True))
        batch.add_column(sa.Column("district", sa.String(6), nullable=True))


def upgrade() -> None:
    _red_packets()
    _lottery()
    _points()
    _abuse()
    _redemption_places()


def downgrade() -> None:
    with op.batch_alter_table("marketing_redemptions") as batch:
        batch.drop_column("district")
        batch.drop_column("mcc")
    op.drop_index("ix_marketing_flags_status", table_name="marketing_flags")
    op.drop_table("marketing_flags")
    op.drop_table("marketing_abuse_rules")
    op.drop_index("ix_marketing_points_lots_expires", table_name="marketing_points_lots")
    op.drop_index("ix_marketing_points_lots_citizen_earned", table_name="marketing_points_lots")
    op.drop_table("marketing_points_lots")
    op.drop_table("marketing_points_rules")
    op.drop_table("marketing_lottery_entries")
    with op.batch_alter_table("marketing_campaigns") as batch:
        batch.drop_column("drawn_at")
        batch.drop_column("draw_seed")
        batch.drop_column("issuance")
    op.drop_table("marketing_red_packet_parts")
    op.drop_index("ix_marketing_red_packets_status_return_due", table_name="marketing_red_packets")
    op.drop_table("marketing_red_packets")
