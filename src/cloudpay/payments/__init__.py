"""Payments: orders and refunds across channels, notifications in, events out (webhooks).

Other contexts use these names only.
"""

from cloudpay.payments.flows import (
    ChannelContext,
    close_order,
    handle_notification,
    place_order,
    poll_open_orders,
    poll_processing_refunds,
    refund_order,
)
from cloudpay.payments.model import OrderStatus, RefundStatus
from cloudpay.payments.repository import OrderRow, RefundRow
from cloudpay.payments.service import OrderRequest, get_order, get_refund, list_orders

__all__ = [
    "ChannelContext",
    "OrderRequest",
    "OrderRow",
    "OrderStatus",
    "RefundRow",
    "RefundStatus",
    "close_order",
    "get_order",
    "get_refund",
    "handle_notification",
    "list_orders",
    "place_order",
    "poll_open_orders",
    "poll_processing_refunds",
    "refund_order",
]
