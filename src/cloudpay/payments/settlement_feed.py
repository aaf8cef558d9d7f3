"""What settlement reads of payments: a business day's succeeded orders and succeeded refunds,
aggregated in SQL.

Set-based on purpose: a day of a million orders is summed by the database, not walked in
Python. Settlement owns the prices, payments owns the orders, so the caller passes its fee
plan versions as a selectable (`pricing`) with the columns `id, merchant_id, method,
effective_from, effective_to, rate_centi_bp, fixed_fen, min_fen, max_fen,
surcharge_centi_bp`; an order is priced by the version in force at its `created_at`.

Rounding is the settlement model's: `amount x rate` rounded once half-up per order, then held
between the plan's minimum and maximum. The product is split as `(a div D) x r + ((a mod D) x
r + D/2) div D` so it never leaves 64-bit integers, whatever the amount.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    FromClause,
    and_,
    case,
    func,
    literal,
    or_,
    select,
)

from cloudpay.payments.model import OrderStatus, RefundStatus, capture_transfer_id
from cloudpay.payments.tables import orders, refunds

CENTI_BP_PER_UNIT: Final = 1_000_000  # 10 000 bp x 100
PAGE_SIZE: Final = 5_000
SETTLED_STATUSES: Final = (
    OrderStatus.SUCCEEDED.value,
    OrderStatus.PARTIALLY_REFUNDED.value,
    OrderStatus.REFUNDED.value,
)


@dataclass(frozen=True, slots=True)
class PricedOrders:
    """A merchant's orders of the window under one fee plan version (None: no plan)."""

    merchant_id: str
    method: str
    fee_plan_id: str | None
    currency: str
    orders_count: int
    gross_fen: int
    fees_fen: int
    surcharge_fen: int  # what the D+0 surcharge would add, summed per order
    channel_cost_fen: int
    first_order_id: str = ""  # one of these orders: its capture names the pending account


@dataclass(frozen=True, slots=True)
class PricedRefund:
    """A succeeded refund with what its order was charged and refunded before it."""

    refund_id: str
    order_id: str
    merchant_id: str
    method: str
    fee_plan_id: str | None
    currency: str
    amount_fen: int
    order_amount_fen: int
    order_fee_fen: int
    refunded_before_fen: int


def rate_of(amount: ColumnElement[Any], rate_centi_bp: ColumnElement[Any]) -> ColumnElement[Any]:
    """`amount x rate`, rounded half-up to whole fen, in integer SQL."""
    unit = CENTI_BP_PER_UNIT
    whole = (amount // unit) * rate_centi_bp
    return whole + ((amount % unit) * rate_centi_bp + unit // 2) // unit


def _fee(amount: ColumnElement[Any], pricing: FromClause) -> ColumnElement[Any]:
    p = pricing.c
    raw = rate_of(amount, p.rate_centi_bp)
    low = case((raw < p.min_fen, p.min_fen), else_=raw)
    clamped = case((p.max_fen.is_not(None) & (low > p.max_fen), p.max_fen), else_=low)
    return case(
        (p.id.is_(None), literal(0, BigInteger)),
        (p.fixed_fen.is_not(None), p.fixed_fen),
        else_=clamped,
    )


def _priced_join(pricing: FromClause) -> FromClause:
    p = pricing.c
    in_force = and_(
        p.merchant_id == orders.c.merchant_id,
        p.method == orders.c.method,
        orders.c.created_at >= p.effective_from,
        or_(p.effective_to.is_(None), orders.c.created_at < p.effective_to),
    )
    return orders.outerjoin(pricing, in_force)


def priced_orders(
    connection: Connection,
    *,
    start: datetime,
    end: datetime,
    pricing: FromClause,
    merchant_ids: FromClause | None = None,
    page_size: int = PAGE_SIZE,
) -> Iterator[list[PricedOrders]]:
    """Pages of per-merchant, per-plan sums of the orders paid in [start, end)."""
    amount = orders.c.amount
    surcharge = case(
        (pricing.c.id.is_(None), literal(0, BigInteger)),
        else_=rate_of(amount, pricing.c.surcharge_centi_bp),
    )
    cost = func.coalesce(orders.c.route_cost_fen, 0)
    query = (
        select(
            orders.c.merchant_id,
            orders.c.method,
            pricing.c.id,
            orders.c.currency,
            func.count(),
            func.sum(amount),
            func.sum(_fee(amount, pricing)),
            func.sum(surcharge),
            func.sum(cost),
            func.min(orders.c.id),
        )
        .select_from(_priced_join(pricing))
        .where(
            orders.c.paid_at >= start,
            orders.c.paid_at < end,
            orders.c.status.in_(SETTLED_STATUSES),
        )
        .group_by(orders.c.merchant_id, orders.c.method, pricing.c.id, orders.c.currency)
        .order_by(orders.c.merchant_id)
    )
    if merchant_ids is not None:
        query = query.where(orders.c.merchant_id.in_(select(merchant_ids.c.merchant_id)))
    result = connection.execution_options(yield_per=page_size).execute(query)
    for page in result.partitions(page_size):
        yield [_priced(row) for row in page]


def _priced(row: Any) -> PricedOrders:
    count, gross, fees, surcharge, cost = (int(value or 0) for value in row[4:9])
    return PricedOrders(
        row[0], row[1], row[2], row[3], count, gross, fees, surcharge, cost, first_order_id=row[9]
    )


def priced_refunds(
    connection: Connection,
    *,
    start: datetime,
    end: datetime,
    pricing: FromClause,
    merchant_ids: FromClause | None = None,
) -> list[PricedRefund]:
    """The refunds that succeeded in [start, end), each with its order's fee and the
    amount refunded before it (refunds are few next to orders: one row each)."""
    earlier = refunds.alias("earlier")
    refunded_before = (
        select(func.coalesce(func.sum(earlier.c.amount), 0))
        .where(
            earlier.c.order_id == refunds.c.order_id,
            earlier.c.status == RefundStatus.SUCCEEDED.value,
            or_(
                earlier.c.succeeded_at < refunds.c.succeeded_at,
                and_(earlier.c.succeeded_at == refunds.c.succeeded_at, earlier.c.id < refunds.c.id),
            ),
        )
        .scalar_subquery()
    )
    query = (
        select(
            refunds.c.id,
            orders.c.id,
            orders.c.merchant_id,
            orders.c.method,
            pricing.c.id,
            orders.c.currency,
            refunds.c.amount,
            orders.c.amount,
            _fee(orders.c.amount, pricing),
            refunded_before,
        )
        .select_from(_priced_join(pricing).join(refunds, refunds.c.order_id == orders.c.id))
        .where(
            refunds.c.status == RefundStatus.SUCCEEDED.value,
            refunds.c.succeeded_at >= start,
            refunds.c.succeeded_at < end,
        )
        .order_by(orders.c.merchant_id, refunds.c.id)
    )
    if merchant_ids is not None:
        query = query.where(orders.c.merchant_id.in_(select(merchant_ids.c.merchant_id)))
    rows = connection.execute(query).all()
    return [PricedRefund(*(row[:6]), *(int(v or 0) for v in row[6:])) for row in rows]


def capture_transfer_ids(order_ids: Iterable[str]) -> dict[str, str]:
    """The ledger transfer that captured each order (it credits the merchant's pending
    account, so settlement finds those accounts in bulk instead of one query each)."""
    return {order_id: capture_transfer_id(order_id) for order_id in order_ids}


def paid_orders_baseline(connection: Connection, *, start: datetime, end: datetime) -> int:
    """The bare aggregate the settlement benchmark compares against: count and sum per
    merchant of the window's paid orders, no pricing. Returns the number of merchants."""
    query = (
        select(orders.c.merchant_id, func.count(), func.sum(orders.c.amount))
        .where(
            orders.c.paid_at >= start,
            orders.c.paid_at < end,
            orders.c.status.in_(SETTLED_STATUSES),
        )
        .group_by(orders.c.merchant_id)
    )
    return len(connection.execute(query).all())
