"""Read-only views of payments for the operator console: totals by channel, search by any id,
an order with everything that happened to it.

Every query is bounded by an index: the primary keys (ids are time-ordered, so a time window
is an id range), or `(merchant_id, id)` when the reader sees only some merchants.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select

from cloudpay.db import outbox
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import NotFound
from cloudpay.payments import repository, webhooks
from cloudpay.payments.events import WEBHOOK_TOPIC
from cloudpay.payments.model import (
    OPEN_STATUSES,
    PAID_STATUSES,
    RefundStatus,
    capture_transfer_id,
    refund_hold_transfer_id,
    refund_post_transfer_id,
    refund_void_transfer_id,
)
from cloudpay.payments.schemas import order_view, refund_view
from cloudpay.payments.tables import orders, refunds

MAX_SEARCH_PAGE = 101  # 100 shown + 1 to know whether there is more
MAX_EVENTS_SHOWN = 50
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Ids carry the wall clock; `created_at` carries the injected clock (a test's clock may run
# ahead of it by minutes). The id bound only prunes, with this much slack; `created_at` decides.
_ID_CLOCK_SLACK = timedelta(hours=1)
SHANGHAI_OFFSET_HOURS = 8  # Asia/Shanghai has kept UTC+8 without daylight saving since 1991
_PAID = [status.value for status in PAID_STATUSES]
_FINISHED = [status.value for status in PAID_STATUSES] + ["failed", "closed", "expired"]


@dataclass(frozen=True)
class ChannelTotals:
    """One channel's orders created in a time window, and refunds opened in it."""

    channel: str
    orders_count: int
    succeeded_count: int
    finished_count: int  # succeeded + failed + closed + expired: the success-rate denominator
    succeeded_amount: int
    refunds_count: int
    refunded_amount: int


def id_floor(prefix: str, instant: datetime) -> str:
    """The smallest id minted at `instant` (ULID layout: 48-bit ms, then 80 random bits)."""
    millis = int(instant.timestamp() * 1000) if instant.timestamp() > 0 else 0
    value = millis << 80
    chars = [_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5)]
    return f"{prefix}_{''.join(chars)}"


def _window(table: Any, prefix: str, start: datetime, end: datetime) -> Any:
    return and_(
        table.c.id >= id_floor(prefix, start - _ID_CLOCK_SLACK),
        table.c.created_at >= start,
        table.c.created_at < end,
    )


def _scoped(query: Any, table: Any, merchant_ids: Collection[str] | None) -> Any:
    return query if merchant_ids is None else query.where(table.c.merchant_id.in_(merchant_ids))


def channel_totals(
    uow: UnitOfWork, *, start: datetime, end: datetime, merchant_ids: Collection[str] | None
) -> list[ChannelTotals]:
    """Totals per channel of orders created in [start, end); refunds by the day they opened."""
    paid = orders.c.status.in_(_PAID)
    order_query = _scoped(
        select(
            orders.c.channel,
            func.count(),
            func.sum(case((paid, 1), else_=0)),
            func.sum(case((orders.c.status.in_(_FINISHED), 1), else_=0)),
            func.sum(case((paid, orders.c.amount), else_=0)),
        )
        .where(_window(orders, "ord", start, end))
        .group_by(orders.c.channel),
        orders,
        merchant_ids,
    )
    refund_query = _scoped(
        select(orders.c.channel, func.count(), func.sum(refunds.c.amount))
        .select_from(refunds.join(orders, orders.c.id == refunds.c.order_id))
        .where(_window(refunds, "rfd", start, end))
        .where(refunds.c.status == RefundStatus.SUCCEEDED.value)
        .group_by(orders.c.channel),
        refunds,
        merchant_ids,
    )
    refunded = {
        row[0]: (int(row[1]), int(row[2] or 0)) for row in uow.connection.execute(refund_query)
    }
    totals = []
    for channel, count, succeeded, finished, amount in uow.connection.execute(order_query):
        refund_count, refund_amount = refunded.pop(channel, (0, 0))
        totals.append(ChannelTotals(channel, int(count), int(succeeded or 0), int(finished or 0),
                                    int(amount or 0), refund_count, refund_amount))  # fmt: skip
    totals += [ChannelTotals(channel, 0, 0, 0, 0, n, a) for channel, (n, a) in refunded.items()]
    return sorted(totals, key=lambda t: t.channel)


@dataclass(frozen=True)
class DayTotals:
    """Orders created on one Shanghai business day through one channel."""

    business_day: str  # YYYY-MM-DD
    channel: str
    orders_count: int
    succeeded_count: int
    finished_count: int
    succeeded_amount: int


def _business_day(uow: UnitOfWork) -> Any:
    if uow.dialect == "postgresql":
        local = func.timezone("Asia/Shanghai", orders.c.created_at)
        return func.to_char(local, "YYYY-MM-DD")
    # SQLite keeps UTC text; date() with a fixed offset is exact for Shanghai (no DST).
    return func.date(orders.c.created_at, f"+{SHANGHAI_OFFSET_HOURS} hours")


def daily_totals(
    uow: UnitOfWork, *, start: datetime, end: datetime, merchant_ids: Collection[str] | None
) -> list[DayTotals]:
    """Per business day and channel, orders created in [start, end), in one grouped query."""
    day = _business_day(uow).label("business_day")
    paid = orders.c.status.in_(_PAID)
    query = _scoped(
        select(
            day, orders.c.channel, func.count(), func.sum(case((paid, 1), else_=0)),
            func.sum(case((orders.c.status.in_(_FINISHED), 1), else_=0)),
            func.sum(case((paid, orders.c.amount), else_=0)),
        )
        .where(_window(orders, "ord", start, end))
        .group_by(day, orders.c.channel),
        orders,
        merchant_ids,
    )  # fmt: skip
    return [
        DayTotals(str(d), c, int(n), int(ok or 0), int(done or 0), int(amount or 0))
        for d, c, n, ok, done, amount in uow.connection.execute(query)
    ]


def paid_spend(
    uow: UnitOfWork, merchant_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, int]:
    """What payers spent at each merchant in [start, end) by payment time: the price of
    every paid order (wallet + vouchers + points), refunded ones included as they were spent
    first; marketing's incremental leverage compares this before and during a campaign."""
    if not merchant_ids:
        return {}
    price = func.coalesce(orders.c.gross_amount, orders.c.amount)
    query = (
        select(orders.c.merchant_id, func.sum(price))
        .where(
            orders.c.merchant_id.in_(list(merchant_ids)),
            orders.c.paid_at >= start,
            orders.c.paid_at < end,
            orders.c.status.in_(_PAID),
        )
        .group_by(orders.c.merchant_id)
    )
    return {merchant: int(total or 0) for merchant, total in uow.connection.execute(query)}


# --- search ------------------------------------------------------------------------------
def search_orders(
    uow: UnitOfWork, *, text: str | None, status: str | None,
    merchant_ids: Collection[str] | None, limit: int, starting_after: str | None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Newest first. `text` is any id: ours (`ord_…`, a refund's `rfd_…`), the merchant's
    `out_trade_no`, or the channel's transaction id."""
    query = select(*_LISTED).order_by(orders.c.id.desc()).limit(min(limit, MAX_SEARCH_PAGE))
    query = _scoped(query, orders, merchant_ids)
    if text:
        query = query.where(_any_id(text.strip()))
    if status:
        query = query.where(orders.c.status == status)
    if starting_after:
        query = query.where(orders.c.id < starting_after)
    return [dict(row._mapping) for row in uow.connection.execute(query)]


_LISTED = (
    orders.c.id, orders.c.merchant_id, orders.c.app_id, orders.c.out_trade_no, orders.c.amount,
    orders.c.refunded_amount, orders.c.currency, orders.c.subject, orders.c.channel,
    orders.c.status, orders.c.channel_transaction_id, orders.c.created_at,
)  # fmt: skip


def _any_id(text: str) -> Any:
    if text.startswith("ord_"):
        return orders.c.id == text
    if text.startswith("rfd_"):
        refund_order = select(refunds.c.order_id).where(refunds.c.id == text)
        return orders.c.id.in_(refund_order.scalar_subquery())
    return or_(orders.c.out_trade_no == text, orders.c.channel_transaction_id == text)


# --- one order, everything about it ------------------------------------------------------
def order_detail(uow: UnitOfWork, *, order_id: str) -> dict[str, Any]:
    """The order as the API shows it, its state history, refunds, webhook events (with their
    delivery attempts) and the ids of the ledger transfers it made."""
    order = repository.get_order(uow.connection, order_id)
    if order is None:
        raise NotFound(f"no order {order_id}", code="order_not_found", param="id")
    its_refunds = repository.refunds_of(uow.connection, order_id)
    transfer_ids = [capture_transfer_id(order_id)]
    for refund in its_refunds:
        transfer_ids += [refund_hold_transfer_id(refund.id), refund_post_transfer_id(refund.id),
                         refund_void_transfer_id(refund.id)]  # fmt: skip
    return {
        "order": order_view(order),
        "open": order.status in OPEN_STATUSES,
        "refundable_amount": order.amount - order.refunded_amount - order.refund_reserved_amount,
        "history": repository.transitions_of(uow.connection, order_id),
        "refunds": [refund_view(refund) for refund in its_refunds],
        "events": _events_about(uow, app_id=order.app_id, subject_ids={order_id}
                                | {refund.id for refund in its_refunds}, since=order.created_at),
        "ledger_transfer_ids": transfer_ids,
    }  # fmt: skip


def _events_about(
    uow: UnitOfWork, *, app_id: str, subject_ids: set[str], since: datetime
) -> list[dict[str, Any]]:
    """Webhook events whose object is one of `subject_ids` (the app's events since the order
    was created, matched on the payload: events carry no column for their object)."""
    table = outbox.outbox_events
    matches = [table.c.payload.contains(f'"{subject_id}"') for subject_id in subject_ids]
    query = (
        select(table.c.id)
        .where(table.c.topic == WEBHOOK_TOPIC, table.c.aggregate_id == app_id)
        .where(table.c.id >= id_floor("evt", since - _ID_CLOCK_SLACK), or_(*matches))
        .order_by(table.c.id)
        .limit(MAX_EVENTS_SHOWN)
    )
    views = []
    for (event_id,) in uow.connection.execute(query):
        event = webhooks.get_event(uow, event_id=event_id, app_id=app_id)
        views.append(webhooks.event_view(uow, event))
    return views


def event_merchant_id(uow: UnitOfWork, *, event_id: str) -> str | None:
    """The merchant a webhook event belongs to (for the console's scope check)."""
    event = webhooks.get_event(uow, event_id=event_id, app_id=None)
    merchant_id = event.payload.get("merchant_id")
    return str(merchant_id) if merchant_id is not None else None


def resend_event(uow: UnitOfWork, *, event_id: str) -> dict[str, Any]:
    """Queue a webhook event for delivery again; its view after the change."""
    event = webhooks.resend(uow, event_id=event_id, app_id=None)
    return webhooks.event_view(uow, event)
