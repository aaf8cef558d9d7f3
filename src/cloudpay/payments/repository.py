"""The payments context's SQL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from cloudpay.db.retry import RetryableConflict
from cloudpay.kernel.ids import new_id
from cloudpay.payments.model import OrderStatus, RefundStatus
from cloudpay.payments.tables import channel_notifications, order_transitions, orders, refunds


@dataclass(frozen=True)
class OrderRow:
    id: str
    app_id: str
    merchant_id: str
    out_trade_no: str
    request_hash: str
    amount: int
    currency: str
    subject: str
    method: str
    channel: str
    status: OrderStatus
    expire_at: datetime
    notify_url: str | None
    metadata: dict[str, str]
    payer_id: str | None
    code_url: str | None
    pay_params: dict[str, str] | None
    channel_transaction_id: str | None
    paid_at: datetime | None
    failure_code: str | None
    failure_message: str | None
    refunded_amount: int
    refund_reserved_amount: int
    next_poll_at: datetime | None
    poll_attempts: int
    created_at: datetime
    updated_at: datetime
    channel_method: str | None = None
    wallet: str | None = None
    route_id: str | None = None
    connector: str | None = None
    route_cost_fen: int | None = None
    routing: dict[str, Any] | None = None
    auth_code: str | None = None
    return_url: str | None = None
    gross_amount: int | None = None  # the merchant's price, when a discount took part of it
    discount_amount: int | None = None
    discounts: list[dict[str, Any]] | None = None
    split: dict[str, Any] | None = None  # the split instruction (分账), None: standing rules
    split_mode: str | None = None  # "now" or "delayed"
    booked_at: datetime | None = None  # the capture journal posted (settlement windows by it)
    split_released_at: datetime | None = None  # a delayed order's hold ended (unfreeze, finish)
    citizen_id: str | None = None  # the payer, when identified as a citizen (points, vouchers)
    points_used: int | None = None  # points paying part of the order
    points_lots: str | None = None  # JSON [[lot id, points]]: where those points came from
    points_funded_amount: int | None = None  # fen the merchant funded for points earned
    points_clawed_back: int | None = None  # earned points refunds took back

    @property
    def price(self) -> int:
        """The merchant's price: what the payer paid plus what vouchers and coupons took off."""
        return self.amount if self.gross_amount is None else self.gross_amount

    @property
    def paid_with(self) -> str:
        """The channel method the payer pays with (orders before routing: `method`)."""
        return self.channel_method or self.method

    @property
    def connector_key(self) -> str:
        """The adapter this order's channel calls go to (orders before routing: the channel)."""
        return self.connector or self.channel


@dataclass(frozen=True)
class RefundRow:
    id: str
    order_id: str
    app_id: str
    merchant_id: str
    out_refund_no: str
    request_hash: str
    amount: int
    currency: str
    reason: str | None
    status: RefundStatus
    channel_refund_id: str | None
    failure_code: str | None
    succeeded_at: datetime | None
    next_poll_at: datetime | None
    created_at: datetime
    updated_at: datetime
    subsidy_reversed_amount: int | None = None  # subsidy given back to budgets with it
    points_funding_returned_amount: int | None = None  # clawed-back points' funding returned
    booked_at: datetime | None = None  # the refund journal posted


class DuplicateKey(RetryableConflict):
    """A concurrent request inserted the same natural key first; the retry will find it."""


def _order(row: Any) -> OrderRow:
    values = dict(row._mapping)
    values["status"] = OrderStatus(values["status"])
    values["metadata"] = json.loads(values["metadata"] or "{}")
    values["pay_params"] = json.loads(values["pay_params"]) if values["pay_params"] else None
    values["routing"] = json.loads(values["routing"]) if values["routing"] else None
    values["discounts"] = json.loads(values["discounts"]) if values["discounts"] else None
    return OrderRow(**values)


def _refund(row: Any) -> RefundRow:
    values = dict(row._mapping)
    values["status"] = RefundStatus(values["status"])
    return RefundRow(**values)


def _for_update(connection: Connection, query: Any) -> Any:
    return query if connection.dialect.name == "sqlite" else query.with_for_update()


# The hot statements of an order are built once, with bound parameters: building a statement
# (`.values(**row)`, `where(col == value)`) and its cache key costs 2-4x its execution on
# SQLite. Values go in as execution parameters, typed by their columns as before.
_INSERT_ORDER = insert(orders)
_GET_ORDER = select(orders).where(orders.c.id == bindparam("b_order_id"))
_GET_ORDER_LOCKED = _GET_ORDER.with_for_update()
_FIND_ORDER = select(orders).where(
    orders.c.app_id == bindparam("b_app_id"), orders.c.out_trade_no == bindparam("b_out_trade_no")
)
_UPDATE_ORDER = update(orders).where(orders.c.id == bindparam("b_order_id"))
_INSERT_TRANSITION = insert(order_transitions)


# --- orders -----------------------------------------------------------------------------
def insert_order(connection: Connection, values: dict[str, Any]) -> None:
    row = dict(values)
    row["metadata"] = json.dumps(row.get("metadata") or {}, ensure_ascii=False, sort_keys=True)
    if row.get("routing") is not None:
        row["routing"] = json.dumps(row["routing"], ensure_ascii=False, sort_keys=True)
    if row.get("discounts") is not None:
        row["discounts"] = json.dumps(row["discounts"], sort_keys=True)
    try:
        connection.execute(_INSERT_ORDER, row)
    except IntegrityError as error:
        raise DuplicateKey from error


def get_order(connection: Connection, order_id: str, *, lock: bool = False) -> OrderRow | None:
    locked = lock and connection.dialect.name != "sqlite"
    query = _GET_ORDER_LOCKED if locked else _GET_ORDER
    row = connection.execute(query, {"b_order_id": order_id}).first()
    return None if row is None else _order(row)


def find_order_by_out_trade_no(
    connection: Connection, app_id: str, out_trade_no: str
) -> OrderRow | None:
    parameters = {"b_app_id": app_id, "b_out_trade_no": out_trade_no}
    row = connection.execute(_FIND_ORDER, parameters).first()
    return None if row is None else _order(row)


def update_order(connection: Connection, order_id: str, **values: Any) -> None:
    if "pay_params" in values and values["pay_params"] is not None:
        values["pay_params"] = json.dumps(values["pay_params"], sort_keys=True)
    if "routing" in values and values["routing"] is not None:
        values["routing"] = json.dumps(values["routing"], ensure_ascii=False, sort_keys=True)
    unknown = set(values) - set(orders.c.keys())
    if unknown:  # as `.values()` would: a typo must not pass as an extra bound parameter
        raise ValueError(f"orders has no column {sorted(unknown)}")
    connection.execute(_UPDATE_ORDER, {**values, "b_order_id": order_id})


def list_orders(
    connection: Connection,
    *,
    merchant_id: str | None,
    app_id: str | None,
    status: str | None,
    limit: int,
    starting_after: str | None,
) -> list[OrderRow]:
    query = select(orders).order_by(orders.c.id.desc()).limit(limit)
    if merchant_id:
        query = query.where(orders.c.merchant_id == merchant_id)
    if app_id:
        query = query.where(orders.c.app_id == app_id)
    if status:
        query = query.where(orders.c.status == status)
    if starting_after:
        query = query.where(orders.c.id < starting_after)
    return [_order(row) for row in connection.execute(query)]


def orders_due_for_poll(connection: Connection, *, now: datetime, limit: int) -> list[str]:
    query = (
        select(orders.c.id)
        .where(
            orders.c.status.in_([OrderStatus.CREATED.value, OrderStatus.PAYING.value]),
            or_(orders.c.next_poll_at.is_(None), orders.c.next_poll_at <= now),
        )
        .order_by(orders.c.next_poll_at)
        .limit(limit)
    )
    return [row.id for row in connection.execute(query)]


def record_transition(
    connection: Connection,
    *,
    order_id: str,
    from_status: str | None,
    to_status: str,
    source: str,
    reason: str | None,
    now: datetime,
) -> None:
    connection.execute(
        _INSERT_TRANSITION,
        {
            "id": new_id("otr"), "order_id": order_id, "from_status": from_status,
            "to_status": to_status, "source": source,
            "reason": (reason or None) and reason[:256], "created_at": now,
        },
    )  # fmt: skip


def transitions_of(connection: Connection, order_id: str) -> list[dict[str, Any]]:
    query = (
        select(order_transitions)
        .where(order_transitions.c.order_id == order_id)
        .order_by(order_transitions.c.id)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


# --- refunds ----------------------------------------------------------------------------
def insert_refund(connection: Connection, values: dict[str, Any]) -> None:
    try:
        connection.execute(insert(refunds).values(**values))
    except IntegrityError as error:
        raise DuplicateKey from error


def get_refund(connection: Connection, refund_id: str, *, lock: bool = False) -> RefundRow | None:
    query = select(refunds).where(refunds.c.id == refund_id)
    row = connection.execute(_for_update(connection, query) if lock else query).first()
    return None if row is None else _refund(row)


def find_refund_by_out_refund_no(
    connection: Connection, app_id: str, out_refund_no: str
) -> RefundRow | None:
    row = connection.execute(
        select(refunds).where(refunds.c.app_id == app_id, refunds.c.out_refund_no == out_refund_no)
    ).first()
    return None if row is None else _refund(row)


def refunds_of(connection: Connection, order_id: str) -> list[RefundRow]:
    query = select(refunds).where(refunds.c.order_id == order_id).order_by(refunds.c.id)
    return [_refund(row) for row in connection.execute(query)]


def update_refund(connection: Connection, refund_id: str, **values: Any) -> None:
    connection.execute(update(refunds).where(refunds.c.id == refund_id).values(**values))


def refunds_due_for_poll(connection: Connection, *, now: datetime, limit: int) -> list[str]:
    query = (
        select(refunds.c.id)
        .where(
            refunds.c.status == RefundStatus.PROCESSING.value,
            or_(refunds.c.next_poll_at.is_(None), refunds.c.next_poll_at <= now),
        )
        .order_by(refunds.c.next_poll_at)
        .limit(limit)
    )
    return [row.id for row in connection.execute(query)]


# --- notification inbox -----------------------------------------------------------------
def remember_notification(
    connection: Connection,
    *,
    channel: str,
    notification_id: str,
    kind: str,
    subject_id: str | None,
    outcome: str,
    now: datetime,
) -> bool:
    """True the first time a notification is seen; False for a duplicate."""
    seen = connection.execute(
        select(channel_notifications.c.notification_id).where(
            and_(
                channel_notifications.c.channel == channel,
                channel_notifications.c.notification_id == notification_id,
            )
        )
    ).first()
    if seen is not None:
        return False
    try:
        connection.execute(
            insert(channel_notifications).values(
                channel=channel, notification_id=notification_id, kind=kind,
                subject_id=subject_id, outcome=outcome, received_at=now,
            )
        )  # fmt: skip
    except IntegrityError as error:
        raise DuplicateKey from error
    return True
