"""Payments tables: orders, their state history, refunds, and the channel-notification inbox."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from cloudpay.db.metadata import metadata
from cloudpay.db.types import UtcDateTime

orders = Table(
    "orders",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("app_id", String(40), nullable=False),
    Column("merchant_id", String(40), nullable=False),
    Column("out_trade_no", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("method", String(32), nullable=False),  # what the merchant asked for
    Column("channel", String(16), nullable=False),
    Column("status", String(24), nullable=False),
    # Routing (0006): the channel method paid with, the wallet, the route and its connector,
    # the route's cost and the decision (JSON: candidates, reasons, failover attempts).
    Column("channel_method", String(32), nullable=True),
    Column("wallet", String(16), nullable=True),
    Column("route_id", String(40), nullable=True),
    Column("connector", String(32), nullable=True),
    Column("route_cost_fen", BigInteger, nullable=True),
    Column("routing", Text, nullable=True),
    # A payment code is a one-minute bearer token: kept only while the payment is open, so a
    # create whose answer was lost can be sent again, and cleared when the order settles.
    Column("auth_code", String(32), nullable=True),
    Column("return_url", String(512), nullable=True),  # wap: where the payer's browser returns
    Column("expire_at", UtcDateTime, nullable=False),
    Column("notify_url", String(512), nullable=True),
    Column("metadata", Text, nullable=False, default="{}"),
    Column("payer_id", String(128), nullable=True),
    Column("code_url", String(512), nullable=True),
    Column("pay_params", Text, nullable=True),
    Column("channel_transaction_id", String(64), nullable=True),
    Column("paid_at", UtcDateTime, nullable=True),
    # When the capture journal was posted: settlement windows by it (paid_at is the channel's).
    Column("booked_at", UtcDateTime, nullable=True),
    Column("failure_code", String(64), nullable=True),
    Column("failure_message", String(256), nullable=True),
    Column("refunded_amount", BigInteger, nullable=False, default=0),
    Column("refund_reserved_amount", BigInteger, nullable=False, default=0),
    Column("next_poll_at", UtcDateTime, nullable=True),
    Column("poll_attempts", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # Discounts (0012): the merchant's price, what vouchers and coupons took off it (paid to
    # the merchant by their budgets) and the breakdown (JSON); `amount` is what the payer pays
    # through the channel. NULL on orders without a discount.
    Column("gross_amount", BigInteger, nullable=True),
    Column("discount_amount", BigInteger, nullable=True),
    Column("discounts", Text, nullable=True),
    # Points (0012): the citizen identified as the payer; the points the order uses and the
    # lots they came from (JSON [[lot id, points]]); the fen the merchant funded for the points
    # the order earned (settlement takes it off) and how many of those refunds clawed back.
    Column("citizen_id", String(32), nullable=True),
    Column("points_used", BigInteger, nullable=True),
    Column("points_lots", Text, nullable=True),
    Column("points_funded_amount", BigInteger, nullable=True),
    Column("points_clawed_back", BigInteger, nullable=True),
    # Splits (0011): the order's split instruction (分账) as the merchant sent it, its mode
    # ("now" or "delayed") for the settlement feed, and when a delayed order's hold ended (it
    # settles on that day, not the day it was paid).
    Column("split", JSON, nullable=True),
    Column("split_mode", String(8), nullable=True),
    Column("split_released_at", UtcDateTime, nullable=True),
    UniqueConstraint("app_id", "out_trade_no", name="uq_orders_app_out_trade_no"),
    Index("ix_orders_merchant_created", "merchant_id", "id"),
    Index("ix_orders_poll", "status", "next_poll_at"),
    # Operators search by any id across merchants (console); reconciliation looks orders up
    # by the channel's transaction id.
    Index("ix_orders_out_trade_no", "out_trade_no"),
    Index("ix_orders_channel_transaction_id", "channel_transaction_id"),
    Index("ix_orders_split_released", "split_released_at"),
)

order_transitions = Table(
    "order_transitions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), ForeignKey("orders.id"), nullable=False, index=True),
    Column("from_status", String(24), nullable=True),
    Column("to_status", String(24), nullable=False),
    Column("source", String(24), nullable=False),  # api, notification, poll, job
    Column("reason", String(256), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), ForeignKey("orders.id"), nullable=False, index=True),
    Column("app_id", String(40), nullable=False),
    Column("merchant_id", String(40), nullable=False),
    Column("out_refund_no", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", String(256), nullable=True),
    Column("status", String(16), nullable=False),
    Column("channel_refund_id", String(64), nullable=True),
    Column("failure_code", String(64), nullable=True),
    Column("succeeded_at", UtcDateTime, nullable=True),
    Column("booked_at", UtcDateTime, nullable=True),  # the refund journal posted
    Column("next_poll_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # The subsidy this refund gave back to the campaigns' budgets (0012): settlement takes it
    # off the merchant with the refund.
    Column("subsidy_reversed_amount", BigInteger, nullable=True),
    # Points (0012): the funding of clawed-back points returned to the merchant with it.
    Column("points_funding_returned_amount", BigInteger, nullable=True),
    UniqueConstraint("app_id", "out_refund_no", name="uq_refunds_app_out_refund_no"),
    Index("ix_refunds_poll", "status", "next_poll_at"),
)

channel_notifications = Table(
    "channel_notifications",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("notification_id", String(96), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("subject_id", String(40), nullable=True),  # our order or refund id
    Column("outcome", String(32), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("event_id", String(40), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("url", String(512), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", String(512), nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Column("attempted_at", UtcDateTime, nullable=False),
)
