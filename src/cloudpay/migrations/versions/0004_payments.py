"""payments: orders, transitions, refunds, channel notification inbox, webhook attempts

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("app_id", sa.String(40), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("out_trade_no", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("expire_at", TIMESTAMP, nullable=False),
        sa.Column("notify_url", sa.String(512), nullable=True),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("payer_id", sa.String(128), nullable=True),
        sa.Column("code_url", sa.String(512), nullable=True),
        sa.Column("pay_params", sa.Text, nullable=True),
        sa.Column("channel_transaction_id", sa.String(64), nullable=True),
        sa.Column("paid_at", TIMESTAMP, nullable=True),
        sa.Column("failure_code", sa.String(64), nullable=True),
        sa.Column("failure_message", sa.String(256), nullable=True),
        sa.Column("refunded_amount", sa.BigInteger, nullable=False),
        sa.Column("refund_reserved_amount", sa.BigInteger, nullable=False),
        sa.Column("next_poll_at", TIMESTAMP, nullable=True),
        sa.Column("poll_attempts", sa.Integer, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("app_id", "out_trade_no", name="uq_orders_app_out_trade_no"),
    )
    op.create_index("ix_orders_merchant_created", "orders", ["merchant_id", "id"])
    op.create_index("ix_orders_poll", "orders", ["status", "next_poll_at"])
    op.create_table(
        "order_transitions",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("from_status", sa.String(24), nullable=True),
        sa.Column("to_status", sa.String(24), nullable=False),
        sa.Column("source", sa.String(24), nullable=False),
        sa.Column("reason", sa.String(256), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_transitions")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_transitions_order_id_orders")
        ),
    )
    op.create_index(op.f("ix_order_transitions_order_id"), "order_transitions", ["order_id"])
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("app_id", sa.String(40), nullable=False),
        sa.Column("merchant_id", sa.String(40), nullable=False),
        sa.Column("out_refund_no", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.String(256), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("channel_refund_id", sa.String(64), nullable=True),
        sa.Column("failure_code", sa.String(64), nullable=True),
        sa.Column("succeeded_at", TIMESTAMP, nullable=True),
        sa.Column("next_poll_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_refunds_order_id_orders")
        ),
        sa.UniqueConstraint("app_id", "out_refund_no", name="uq_refunds_app_out_refund_no"),
    )
    op.create_index(op.f("ix_refunds_order_id"), "refunds", ["order_id"])
    op.create_index("ix_refunds_poll", "refunds", ["status", "next_poll_at"])
    op.create_table(
        "channel_notifications",
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("notification_id", sa.String(96), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(40), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint(
            "channel", "notification_id", name=op.f("pk_channel_notifications")
        ),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("url", sa.String(512), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.String(512), nullable=True),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("attempted_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index(op.f("ix_webhook_attempts_event_id"), "webhook_attempts", ["event_id"])


def downgrade() -> None:
    for table in ("webhook_attempts", "channel_notifications", "refunds", "order_transitions"):
        op.drop_table(table)
    op.drop_table("orders")
