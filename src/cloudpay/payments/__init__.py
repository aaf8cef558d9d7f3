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
from cloudpay.payments.repair import RECONCILIATION_COLUMNS, reconciliation_rows, repair_order
from cloudpay.payments.reports import (
    ChannelTotals,
    DayTotals,
    channel_totals,
    daily_totals,
    event_merchant_id,
    order_detail,
    paid_spend,
    resend_event,
    search_orders,
)
from cloudpay.payments.repository import OrderRow, RefundRow
from cloudpay.payments.service import OrderRequest, get_order, get_refund, list_orders
from cloudpay.payments.settlement_feed import (
    PricedOrders,
    PricedRefund,
    SplitOrder,
    capture_transfer_ids,
    held_for_split,
    paid_orders_baseline,
    priced_orders,
    priced_refunds,
    release_split_hold,
    split_orders,
)

__all__ = [
    "RECONCILIATION_COLUMNS",
    "ChannelContext",
    "ChannelTotals",
    "DayTotals",
    "OrderRequest",
    "OrderRow",
    "OrderStatus",
    "PricedOrders",
    "PricedRefund",
    "RefundRow",
    "RefundStatus",
    "SplitOrder",
    "capture_transfer_ids",
    "channel_totals",
    "close_order",
    "daily_totals",
    "event_merchant_id",
    "get_order",
    "get_refund",
    "handle_notification",
    "held_for_split",
    "list_orders",
    "order_detail",
    "paid_orders_baseline",
    "paid_spend",
    "place_order",
    "poll_open_orders",
    "poll_processing_refunds",
    "priced_orders",
    "priced_refunds",
    "reconciliation_rows",
    "refund_order",
    "release_split_hold",
    "repair_order",
    "resend_event",
    "search_orders",
    "split_orders",
]
