"""What settlement reads of payments: a business day's succeeded orders and succeeded refunds,
aggregated in SQL.

Set-based on purpose: a day of a million orders is summed by the database, not walked in
Python. Settlement owns the prices, payments owns the orders, so the caller passes its fee
plan versions as a selectable (`pricing`) with the columns `id, merchant_id, method,
effective_from, effective_to, rate_centi_bp, fixed_fen, min_fen, max_fen,
surcharge_centi_bp`; an order is priced by the version in force at its `created_at`.

Vouchers and coupons: an order's `amount` is what the payer paid through the channel; the
subsidy its campaigns paid the merchant at capture (`discount_amount`) counts in the merchant's
gross, and the subsidy a refund gave back to the budgets goes with that refund. Fees are priced
on the channel amount, the same base the refunds' fee returns are proportional to.

Points (积分): the value of the points an order used is part of `discount_amount` (paid to
the merchant from the points liability at capture) and of a refund's subsidy given back, so it
counts once, like the subsidy. The fen a merchant funded for the points an order earned left
`merchant_pending` at capture: it comes off the order's gross. The funding of points a refund
clawed back came back to `merchant_pending`: it is paid on the refund's day as a line of its
own (`points_funding_returned`).

Rounding is the settlement model's: `amount x rate` rounded once half-up per order, then held
between the plan's minimum and maximum. The product is split as `(a div D) x r + ((a mod D) x
r + D/2) div D` so it never leaves 64-bit integers, whatever the amount.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    FromClause,
    Select,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    update,
)

from cloudpay.payments.model import OrderStatus, RefundStatus, capture_transfer_id
from cloudpay.payments.tables import orders, refunds

CENTI_BP_PER_UNIT: Final = 1_000_000  # 10 000 bp x 100
PAGE_SIZE: Final = 5_000
DELAYED: Final = "delayed"  # an order's split_mode while its funds wait for a split
POINTS_FUNDING: Final = "points_funding"  # the method of points funding refunds returned
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
    subsidy_fen: int = 0  # of gross_fen: what vouchers, coupons and points paid at capture


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
    subsidy_reversed_fen: int = 0  # given back to the campaigns' budgets with this refund


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


def settles_in(start: datetime, end: datetime) -> ColumnElement[bool]:
    """Orders that settle in [start, end): booked then (the capture journal posted, not the
    channel's payment time, so a success learned late still settles on a later day), or,
    for an order held for a delayed split (分账), released then (its funds stay pending
    until the split or unfreeze)."""
    not_held = or_(orders.c.split_mode.is_(None), orders.c.split_mode != DELAYED)
    return or_(
        and_(orders.c.booked_at >= start, orders.c.booked_at < end, not_held),
        and_(orders.c.split_released_at >= start, orders.c.split_released_at < end),
    )


def priced_orders(
    connection: Connection,
    *,
    start: datetime,
    end: datetime,
    pricing: FromClause,
    merchant_ids: FromClause | None = None,
    page_size: int = PAGE_SIZE,
) -> Iterator[list[PricedOrders]]:
    """Pages of per-merchant, per-plan sums of the orders paid in [start, end).

    Two steps, for the planner's sake: the day is summed per merchant, method and currency
    (PostgreSQL estimates those groups well and hashes them), then the few groups whose
    orders fell under more than one plan version (a plan changed that day, or an order came
    before the first) are summed again per version. Grouping by the plan version at once
    made PostgreSQL expect a group per order and sort the day instead."""
    query = _merchant_sums_query(start=start, end=end, pricing=pricing, merchant_ids=merchant_ids)
    # Per statement: `Connection.execution_options` would stick to the caller's connection
    # and make every later query of its transaction a server-side cursor, planned for the
    # first rows (the day's refunds went from 1 s to 20 s on PostgreSQL).
    result = connection.execute(query, execution_options={"yield_per": page_size})
    for page in result.partitions(page_size):
        mixed = sorted({row[0] for row in page if not _one_plan(row)})
        per_plan = _per_plan_sums(connection, start, end, pricing, mixed)
        yield [
            priced
            for row in page
            for priced in ([_priced(row)] if _one_plan(row) else per_plan[(row[0], row[1], row[3])])
        ]
    returned = points_funding_returned(connection, start=start, end=end, merchant_ids=merchant_ids)
    if returned:
        yield returned


def _one_plan(row: Any) -> bool:
    """A merchant-sums row whose orders were all priced by one version, or none by any."""
    priced_count, orders_count = int(row[11]), int(row[4])
    return priced_count == 0 or (priced_count == orders_count and bool(row[2] == row[12]))


def _per_plan_sums(
    connection: Connection,
    start: datetime,
    end: datetime,
    pricing: FromClause,
    merchant_ids: list[str],
) -> dict[tuple[str, str, str], list[PricedOrders]]:
    """Sums per plan version of these merchants' orders, by (merchant, method, currency)."""
    sums: dict[tuple[str, str, str], list[PricedOrders]] = {}
    if not merchant_ids:
        return sums
    query = priced_orders_query(start=start, end=end, pricing=pricing, merchant_ids=None)
    query = query.where(orders.c.merchant_id.in_(merchant_ids))
    for row in connection.execute(query):
        sums.setdefault((row[0], row[1], row[3]), []).append(_priced(row))
    return sums


def _merchant_sums_query(
    *, start: datetime, end: datetime, pricing: FromClause, merchant_ids: FromClause | None
) -> Select[Any]:
    """The day's sums per merchant, method and currency, with the lowest plan version that
    priced them (as `priced_orders_query`'s), the number of orders a version priced and
    the highest version: the caller tells groups under one version from mixed ones."""
    query = priced_orders_query(
        start=start, end=end, pricing=pricing, merchant_ids=merchant_ids, per_plan=False
    )
    return query.add_columns(func.count(pricing.c.id), func.max(pricing.c.id))


def priced_orders_query(
    *,
    start: datetime,
    end: datetime,
    pricing: FromClause,
    merchant_ids: FromClause | None,
    per_plan: bool = True,
) -> Select[Any]:
    """The day's sums per merchant, method, fee plan version and currency, by merchant
    (`per_plan=False`: per merchant, method and currency, with the lowest version)."""
    amount = orders.c.amount
    surcharge = case(
        (pricing.c.id.is_(None), literal(0, BigInteger)),
        else_=rate_of(amount, pricing.c.surcharge_centi_bp),
    )
    cost = func.coalesce(orders.c.route_cost_fen, 0)
    subsidy = func.coalesce(orders.c.discount_amount, 0)
    points_funded = func.coalesce(orders.c.points_funded_amount, 0)
    query = (
        select(
            orders.c.merchant_id,
            orders.c.method,
            pricing.c.id if per_plan else func.min(pricing.c.id),
            orders.c.currency,
            func.count(),
            func.sum(amount + subsidy - points_funded),
            func.sum(_fee(amount, pricing)),
            func.sum(surcharge),
            func.sum(cost),
            func.min(orders.c.id),
            func.sum(subsidy),
        )
        .select_from(_priced_join(pricing))
        .where(settles_in(start, end), orders.c.status.in_(SETTLED_STATUSES))
        .group_by(orders.c.merchant_id, orders.c.method, orders.c.currency)
        .order_by(orders.c.merchant_id)
    )
    if per_plan:
        query = query.group_by(pricing.c.id)
    if merchant_ids is not None:
        query = query.where(orders.c.merchant_id.in_(select(merchant_ids.c.merchant_id)))
    return query


def points_funding_returned(
    connection: Connection, *, start: datetime, end: datetime, merchant_ids: FromClause | None
) -> list[PricedOrders]:
    """Per merchant, the points funding that refunds succeeded in [start, end) returned
    (clawed-back points): back in `merchant_pending`, so paid out like a payment with no fee
    and no order (method `points_funding`)."""
    returned = func.sum(refunds.c.points_funding_returned_amount)
    query = (
        select(refunds.c.merchant_id, refunds.c.currency, returned, func.min(refunds.c.order_id))
        .where(
            refunds.c.status == RefundStatus.SUCCEEDED.value,
            refunds.c.booked_at >= start,
            refunds.c.booked_at < end,
            refunds.c.points_funding_returned_amount > 0,
        )
        .group_by(refunds.c.merchant_id, refunds.c.currency)
        .order_by(refunds.c.merchant_id)
    )
    if merchant_ids is not None:
        query = query.where(refunds.c.merchant_id.in_(select(merchant_ids.c.merchant_id)))
    return [
        PricedOrders(row[0], POINTS_FUNDING, None, row[1], 0, int(row[2]), 0, 0, 0, row[3])
        for row in connection.execute(query)
    ]


def _priced(row: Any) -> PricedOrders:
    count, gross, fees, surcharge, cost = (int(value or 0) for value in row[4:9])
    return PricedOrders(
        row[0],
        row[1],
        row[2],
        row[3],
        count,
        gross,
        fees,
        surcharge,
        cost,
        first_order_id=row[9],
        subsidy_fen=int(row[10] or 0),
    )


def priced_refunds(
    connection: Connection,
    *,
    start: datetime,
    end: datetime,
    pricing: FromClause,
    merchant_ids: FromClause | None = None,
) -> list[PricedRefund]:
    """The refunds booked in [start, end), each with its order's fee and the
    amount refunded before it (refunds are few next to orders: one row each)."""
    earlier = refunds.alias("earlier")
    refunded_before = (
        select(func.coalesce(func.sum(earlier.c.amount), 0))
        .where(
            earlier.c.order_id == refunds.c.order_id,
            earlier.c.status == RefundStatus.SUCCEEDED.value,
            or_(
                earlier.c.booked_at < refunds.c.booked_at,
                and_(earlier.c.booked_at == refunds.c.booked_at, earlier.c.id < refunds.c.id),
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
            refunds.c.subsidy_reversed_amount,
        )
        .select_from(_priced_join(pricing).join(refunds, refunds.c.order_id == orders.c.id))
        .where(
            refunds.c.status == RefundStatus.SUCCEEDED.value,
            refunds.c.booked_at >= start,
            refunds.c.booked_at < end,
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
            orders.c.booked_at >= start,
            orders.c.booked_at < end,
            orders.c.status.in_(SETTLED_STATUSES),
        )
        .group_by(orders.c.merchant_id)
    )
    return len(connection.execute(query).all())


# --- splits (分账): the orders whose proceeds are shared, and delayed-split holds ---------
@dataclass(frozen=True, slots=True)
class SplitOrder:
    """An order settling in the window that is split: its own instruction, or none and its
    merchant has standing rules. `fee_fen` is priced like the day's sums."""

    order_id: str
    merchant_id: str
    currency: str
    amount_fen: int
    fee_fen: int
    split: dict[str, Any] | None
    split_mode: str | None


def split_orders(
    connection: Connection,
    *,
    start: datetime,
    end: datetime,
    pricing: FromClause,
    merchants_with_rules: Collection[str],
) -> list[SplitOrder]:
    """The window's orders that carry a split instruction or whose merchant has rules."""
    query = (
        select(
            orders.c.id,
            orders.c.merchant_id,
            orders.c.currency,
            orders.c.amount,
            _fee(orders.c.amount, pricing),
            orders.c.split,
            orders.c.split_mode,
        )
        .select_from(_priced_join(pricing))
        .where(
            settles_in(start, end),
            orders.c.status.in_(SETTLED_STATUSES),
            or_(
                orders.c.split_mode.is_not(None),
                orders.c.merchant_id.in_(sorted(merchants_with_rules)),
            ),
        )
        .order_by(orders.c.merchant_id, orders.c.id)
    )
    return [
        SplitOrder(row[0], row[1], row[2], int(row[3]), int(row[4] or 0), row[5], row[6])
        for row in connection.execute(query)
    ]


def held_for_split(connection: Connection, *, limit: int) -> list[tuple[str, str, datetime]]:
    """Paid orders still held for a delayed split: (order id, merchant id, paid at)."""
    query = (
        select(orders.c.id, orders.c.merchant_id, orders.c.paid_at)
        .where(
            orders.c.split_mode == DELAYED,
            orders.c.split_released_at.is_(None),
            orders.c.status.in_(SETTLED_STATUSES),
        )
        .order_by(orders.c.paid_at)
        .limit(limit)
    )
    return [(row[0], row[1], row[2]) for row in connection.execute(query)]


def release_split_hold(connection: Connection, order_id: str, *, at: datetime) -> bool:
    """End a delayed order's hold (unfreeze, or its last split): it settles on `at`'s day.
    False when it was not held (not delayed, or released already)."""
    result = connection.execute(
        update(orders)
        .where(
            orders.c.id == order_id,
            orders.c.split_mode == DELAYED,
            orders.c.split_released_at.is_(None),
        )
        .values(split_released_at=at)
    )
    return bool(result.rowcount)
