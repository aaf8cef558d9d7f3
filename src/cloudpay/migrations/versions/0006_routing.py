"""routing: routes, rules, circuit history; orders learn their channel method, route and cost,
and are indexed by out_trade_no and channel transaction id for cross-merchant search

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def _order_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("channel_method", sa.String(32), nullable=True),
        sa.Column("wallet", sa.String(16), nullable=True),
        sa.Column("route_id", sa.String(40), nullable=True),
        sa.Column("connector", sa.String(32), nullable=True),
        sa.Column("route_cost_fen", sa.BigInteger, nullable=True),
        sa.Column("routing", sa.Text, nullable=True),
        sa.Column("auth_code", sa.String(32), nullable=True),
        sa.Column("return_url", sa.String(512), nullable=True),
    )


def upgrade() -> None:
    op.create_table(
        "routes",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("connector", sa.String(32), nullable=False),
        sa.Column("methods", sa.JSON, nullable=False),
        sa.Column("cost_rate_bp", sa.Integer, nullable=False),
        sa.Column("cost_min_fen", sa.BigInteger, nullable=False),
        sa.Column("cost_max_fen", sa.BigInteger, nullable=True),
        sa.Column("cost_fixed_fen", sa.BigInteger, nullable=True),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("merchant_id", sa.String(40), nullable=True),
        sa.Column("methods", sa.JSON, nullable=False),
        sa.Column("min_amount_fen", sa.BigInteger, nullable=True),
        sa.Column("max_amount_fen", sa.BigInteger, nullable=True),
        sa.Column("window_start", sa.String(5), nullable=True),
        sa.Column("window_end", sa.String(5), nullable=True),
        sa.Column("route_ids", sa.JSON, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "route_health_events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("route_id", sa.String(40), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String(256), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_route_health_events_route", "route_health_events", ["route_id", "id"])
    with op.batch_alter_table("orders") as batch:
        for column in _order_columns():
            batch.add_column(column)
    op.create_index("ix_orders_out_trade_no", "orders", ["out_trade_no"])
    op.create_index("ix_orders_channel_transaction_id", "orders", ["channel_transaction_id"])


def downgrade() -> None:
    op.drop_index("ix_orders_channel_transaction_id", table_name="orders")
    op.drop_index("ix_orders_out_trade_no", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        for column in reversed(_order_columns()):
            batch.drop_column(column.name)
    op.drop_index("ix_route_health_events_route", table_name="route_health_events")
    op.drop_table("route_health_events")
    op.drop_table("routing_rules")
    op.drop_table("routes")
