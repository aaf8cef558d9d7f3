"""splits (分账): receivers bound by merchants, their split configuration, delayed splits
and the parts each receiver gets or gives back, and the split instruction on orders

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def _order_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("split", sa.JSON, nullable=True),
        sa.Column("split_mode", sa.String(8), nullable=True),
        sa.Column("split_released_at", TIMESTAMP, nullable=True),
    )


def _merchant_tables() -> None:
    op.create_table(
        "split_receivers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("merchant_id", sa.String(32), sa.ForeignKey("merchants.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("reference_id", sa.String(40), nullable=True),
        sa.Column("bank_code", sa.String(12), nullable=True),
        sa.Column("account_class", sa.String(4), nullable=True),
        sa.Column("account_no_encrypted", sa.Text, nullable=True),
        sa.Column("account_no_masked", sa.String(40), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_split_receivers_merchant", "split_receivers", ["merchant_id", "id"])
    op.create_table(
        "split_configs",
        sa.Column("merchant_id", sa.String(32), sa.ForeignKey("merchants.id"), primary_key=True),
        sa.Column("cap_centi_bp", sa.Integer, nullable=False),
        sa.Column("auto_unfreeze_days", sa.Integer, nullable=False),
        sa.Column("rules", sa.JSON, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )


def _settlement_tables() -> None:
    op.create_table(
        "settlement_splits",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("out_split_no", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("finish", sa.Integer, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint(
            "merchant_id", "out_split_no", name="uq_settlement_splits_out_split_no"
        ),
    )
    op.create_index("ix_settlement_splits_order", "settlement_splits", ["order_id", "id"])
    op.create_table(
        "settlement_split_parts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("receiver_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("source_id", sa.String(40), nullable=False),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("split_from", sa.String(40), nullable=True),
        sa.Column("line_id", sa.String(40), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint(
            "order_id",
            "receiver_id",
            "kind",
            "source_id",
            name="uq_settlement_split_parts_source",
        ),
    )
    op.create_index("ix_settlement_split_parts_line", "settlement_split_parts", ["line_id"])
    op.create_index(
        "ix_settlement_split_parts_receiver", "settlement_split_parts", ["receiver_id", "id"]
    )


def upgrade() -> None:
    _merchant_tables()
    _settlement_tables()
    with op.batch_alter_table("orders") as batch:
        for column in _order_columns():
            batch.add_column(column)
    op.create_index("ix_orders_split_released", "orders", ["split_released_at"])


def downgrade() -> None:
    op.drop_index("ix_orders_split_released", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        for column in reversed(_order_columns()):
            batch.drop_column(column.name)
    op.drop_table("settlement_split_parts")
    op.drop_table("settlement_splits")
    op.drop_table("split_configs")
    op.drop_table("split_receivers")
