"""What reconciliation needs from payments: the day's orders and refunds in one read, and the
repair of an order whose notification never arrived (补单).

The repair is the poller's own path: ask the order's channel what happened and apply the
answer through the state machine (`service.apply_payment_status`), which books the ledger and
emits the merchant's webhook exactly as the lost notification would have.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, select, union_all

from cloudpay.db.unit_of_work import Transact, UnitOfWork
from cloudpay.payments import service
from cloudpay.payments.flows import ChannelContext
from cloudpay.payments.repository import OrderRow
from cloudpay.payments.tables import orders, refunds

# The columns of `reconciliation_rows`, in order.
RECONCILIATION_COLUMNS = (
    "kind", "id", "order_id", "amount", "status", "route_cost_fen", "order_amount",
    "channel_txn_id", "done_at", "created_at",
)  # fmt: skip


def repair_order(transact: Transact, ctx: ChannelContext, *, order_id: str) -> OrderRow:
    """Bring one order to its channel's truth; returns the order as it now stands."""
    order = transact(lambda uow: service.get_order(uow, order_id=order_id))
    status = ctx.channels.get(order.connector_key).query_payment(order.id)
    return transact(
        lambda uow: service.apply_payment_status(
            uow, order_id=order.id, status=status, source="reconciliation"
        )
    )


def reconciliation_rows(
    uow: UnitOfWork, *, connector: str, start: datetime, end: datetime, open_since: datetime
) -> list[tuple[Any, ...]]:
    """One query: the connector's orders and refunds done in [start, end), and those still
    undone that were opened in [open_since, end) (a missed notification leaves them open)."""
    connector_key = func.coalesce(orders.c.connector, orders.c.channel)
    payments = select(
        literal("payment").label("kind"), orders.c.id, orders.c.id.label("order_id"),
        orders.c.amount, orders.c.status, orders.c.route_cost_fen,
        orders.c.amount.label("order_amount"), orders.c.channel_transaction_id,
        orders.c.paid_at, orders.c.created_at,
    ).where(
        connector_key == connector,
        ((orders.c.paid_at >= start) & (orders.c.paid_at < end))
        | (orders.c.paid_at.is_(None) & (orders.c.created_at >= open_since)
           & (orders.c.created_at < end)),
    )  # fmt: skip
    refunded = select(
        literal("refund").label("kind"), refunds.c.id, refunds.c.order_id, refunds.c.amount,
        refunds.c.status, orders.c.route_cost_fen, orders.c.amount.label("order_amount"),
        refunds.c.channel_refund_id, refunds.c.succeeded_at, refunds.c.created_at,
    ).join_from(refunds, orders, refunds.c.order_id == orders.c.id).where(
        connector_key == connector,
        ((refunds.c.succeeded_at >= start) & (refunds.c.succeeded_at < end))
        | (refunds.c.succeeded_at.is_(None) & (refunds.c.created_at >= open_since)
           & (refunds.c.created_at < end)),
    )  # fmt: skip
    return [tuple(row) for row in uow.connection.execute(union_all(payments, refunded))]
