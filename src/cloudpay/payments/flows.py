"""Flows that talk to a channel between transactions.

A channel call never runs inside a database transaction (it would hold locks for a network
round trip). Each flow is idempotent: if its process dies between steps, the poller (or the
merchant's retry) finds the order in its last committed state and carries on from there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import structlog

from cloudpay import routing
from cloudpay.channels.protocol import (
    ChannelError,
    ChannelErrorKind,
    ChannelNotification,
    ChannelPaymentStatus,
    ChannelRefundStatus,
    CreatePayment,
    NotificationAck,
    NotificationKind,
    NotificationRejected,
    PaymentChannel,
    PaymentCreated,
    RefundRequest,
    RefundStatus,
)
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.db.unit_of_work import Transact, UnitOfWork
from cloudpay.kernel.clock import Clock
from cloudpay.kernel.errors import ChannelFailed, CloudPayError, Conflict
from cloudpay.payments import service
from cloudpay.payments.model import MICROPAY_METHODS, OPEN_STATUSES, OrderStatus
from cloudpay.payments.repository import OrderRow, RefundRow

log = structlog.get_logger(__name__)
MAX_POLL_BATCH = 200


@dataclass(frozen=True)
class ChannelContext:
    """What flows need to reach channels: adapters, our URL for their notifications, and this
    process's view of each route's health."""

    channels: ChannelRegistry
    notify_base_url: str  # channels post to <notify_base_url>/v1/channels/<connector>/notify
    clock: Clock
    health: routing.HealthBoard | None = None  # None: a fresh board on this clock

    def __post_init__(self) -> None:
        if self.health is None:
            object.__setattr__(self, "health", routing.HealthBoard(self.clock))

    @property
    def board(self) -> routing.HealthBoard:
        assert self.health is not None
        return self.health

    def notify_url(self, connector: str) -> str:
        return f"{self.notify_base_url.rstrip('/')}/v1/channels/{connector}/notify"

    def plan(
        self, uow: UnitOfWork, merchant_id: str, channel_method: str, amount_fen: int
    ) -> routing.Decision:
        return routing.plan_payment(
            uow, registry=self.channels, board=self.board, merchant_id=merchant_id,
            method=channel_method, amount_fen=amount_fen,
        )  # fmt: skip


def place_order(
    transact: Transact,
    ctx: ChannelContext,
    *,
    request: service.OrderRequest,
    enabled_methods: frozenset[str],
) -> OrderRow:
    return place_prepared_order(transact, ctx, prepare=lambda _uow: (request, enabled_methods))


# Reads what completes the request (the app's default notify_url, its enabled methods) in the
# transaction that opens the order: one transaction fewer than reading it beforehand.
PrepareOrder = Callable[[UnitOfWork], tuple[service.OrderRequest, frozenset[str]]]


def place_prepared_order(
    transact: Transact, ctx: ChannelContext, *, prepare: PrepareOrder
) -> OrderRow:
    def open_order(uow: UnitOfWork) -> OrderRow:
        request, enabled_methods = prepare(uow)
        return service.open_order(
            uow, request=request, enabled_methods=enabled_methods, plan=ctx.plan
        )

    order = transact(open_order)
    if order.status is not OrderStatus.CREATED:
        return order  # the same request again: answer what it already became
    return _create_at_channel(transact, ctx, order)


def _create_at_channel(transact: Transact, ctx: ChannelContext, order: OrderRow) -> OrderRow:
    """Create at the order's route; fail over along its plan while a channel is unavailable.

    Only `UNAVAILABLE` moves on: the channel refused before doing anything, so the payer cannot
    be charged twice. A timeout leaves the outcome unknown; the order stays on its route and
    the poller asks that channel what happened.
    """
    for _ in range(MAX_ROUTE_ATTEMPTS):
        try:
            created = _create_on_route(ctx, order)
        except ChannelError as error:
            moved = _fail_over(transact, ctx, order, error)
            if moved is None:
                _persist_health(transact, ctx)
                return _after_create_failed(transact, order, error)
            order = moved
            continue
        _persist_health(transact, ctx)
        recorded = _record_created(transact, order.id, created)
        if recorded.connector_key != order.connector_key:
            _revoke_stray(ctx, order)
        return recorded
    return order


def _revoke_stray(ctx: ChannelContext, stray: OrderRow) -> None:
    """A concurrent attempt moved the order to another route while this one created it here:
    revoke this channel's payment so the payer can never pay the same order twice."""
    log.warning("order.stray_payment_revoked", order_id=stray.id, connector=stray.connector_key)
    try:
        ctx.channels.get(stray.connector_key).cancel_payment(stray.id)
    except ChannelError as error:  # reconciliation raises it if the revoke never lands
        log.error("order.stray_revoke_failed", order_id=stray.id, error=error.message)


def _create_on_route(ctx: ChannelContext, order: OrderRow) -> PaymentCreated:
    request = _create_request(order, ctx)
    return _call_route(
        ctx, order.route_id, order.connector_key, lambda ch: ch.create_payment(request)
    )


def _record_created(transact: Transact, order_id: str, created: PaymentCreated) -> OrderRow:
    return transact(
        lambda uow: service.record_channel_created(uow, order_id=order_id, created=created)
    )


MAX_ROUTE_ATTEMPTS = 5  # a bound on failover hops for one order


T = TypeVar("T")


def _call_route(
    ctx: ChannelContext, route_id: str | None, connector: str, call: Callable[[PaymentChannel], T]
) -> T:
    """One channel call, its outcome counted on the route's breaker."""
    board = ctx.board
    if route_id:
        board.begin_call(route_id)
    try:
        result = call(ctx.channels.get(connector))
    except ChannelError as error:
        if route_id:
            failed = error.kind in (ChannelErrorKind.UNAVAILABLE, ChannelErrorKind.TIMEOUT)
            board.record(route_id, failed=failed, error=f"{error.kind.value}: {error.message}")
        raise
    if route_id:
        board.record(route_id, failed=False)
    return result


def _fail_over(
    transact: Transact, ctx: ChannelContext, order: OrderRow, error: ChannelError
) -> OrderRow | None:
    if error.kind is not ChannelErrorKind.UNAVAILABLE or order.route_id is None:
        return None
    failed_route = order.route_id
    moved = transact(
        lambda uow: service.fail_over(
            uow, order_id=order.id, failed_route_id=failed_route, error=error,
            is_open=ctx.board.is_open,
        )
    )  # fmt: skip
    if moved is None or moved.status is not OrderStatus.CREATED or moved.route_id == failed_route:
        return None
    log.warning("order.failed_over", order_id=order.id, from_route=failed_route,
                to_route=moved.route_id)  # fmt: skip
    return moved


def _persist_health(transact: Transact, ctx: ChannelContext) -> None:
    """Write circuit transitions seen by this process, outside any order's transaction."""
    transitions = ctx.board.drain_transitions()
    if transitions:

        def write(uow: UnitOfWork) -> None:
            for transition in transitions:
                routing.record_health_transition(uow, transition)

        transact(write)


def _after_create_failed(transact: Transact, order: OrderRow, error: ChannelError) -> OrderRow:
    if error.kind in (ChannelErrorKind.REJECTED, ChannelErrorKind.AUTHENTICATION):
        return transact(
            lambda uow: service.record_channel_refused(uow, order_id=order.id, error=error)
        )
    # Unknown or unavailable: the order stays `created`; the poller asks again (creating the
    # same out_trade_no twice is idempotent at the channel).
    log.warning("order.create_unconfirmed", order_id=order.id, kind=error.kind.value)
    return transact(lambda uow: service.get_order(uow, order_id=order.id))


def _create_request(order: OrderRow, ctx: ChannelContext) -> CreatePayment:
    return CreatePayment(
        order_id=order.id, amount_fen=order.amount, currency=order.currency,
        subject=order.subject, method=order.paid_with,
        notify_url=ctx.notify_url(order.connector_key), expire_at=order.expire_at,
        payer_id=order.payer_id, attach=order.app_id, auth_code=order.auth_code,
        return_url=order.return_url,
    )  # fmt: skip


def close_order(transact: Transact, ctx: ChannelContext, *, order_id: str, app_id: str) -> OrderRow:
    order = transact(lambda uow: service.get_order(uow, order_id=order_id, app_id=app_id))
    if order.status not in OPEN_STATUSES:
        if order.status is OrderStatus.CLOSED:
            return order
        raise Conflict(
            f"order is {order.status}; only open orders close", code=f"order_{order.status}"
        )
    return _close_at_channel(transact, ctx.channels.get(order.connector_key), order, expired=False)


def _close_at_channel(
    transact: Transact, channel: PaymentChannel, order: OrderRow, *, expired: bool
) -> OrderRow:
    try:
        if order.paid_with in MICROPAY_METHODS:
            channel.cancel_payment(order.id)  # a payment code may have been charged: revoke it
        else:
            channel.close_payment(order.id)
    except ChannelError as error:
        # Paid meanwhile (WeChat ORDERPAID) or the channel is down: ask it what is true.
        status = channel.query_payment(order.id)
        order = transact(
            lambda uow: service.apply_payment_status(
                uow, order_id=order.id, status=status, source="close"
            )
        )
        if order.status not in OPEN_STATUSES:
            return order
        raise ChannelFailed(f"the channel did not close the order: {error.message}",
                            code="channel_close_failed") from error  # fmt: skip
    source = "expiry" if expired else "api"
    return transact(
        lambda uow: service.mark_closed(uow, order_id=order.id, source=source, expired=expired)
    )


def refund_order(
    transact: Transact, ctx: ChannelContext, *, app_id: str, order_id: str,
    out_refund_no: str, amount: int, reason: str | None,
) -> RefundRow:  # fmt: skip
    order = transact(lambda uow: service.get_order(uow, order_id=order_id, app_id=app_id))
    refund = transact(
        lambda uow: service.open_refund(
            uow, app_id=app_id, order=order, out_refund_no=out_refund_no, amount=amount,
            reason=reason,
        )
    )  # fmt: skip
    if refund.status.value != "processing":
        return refund
    return _refund_at_channel(transact, ctx, order, refund)


def _refund_at_channel(
    transact: Transact, ctx: ChannelContext, order: OrderRow, refund: RefundRow
) -> RefundRow:
    channel = ctx.channels.get(order.connector_key)
    request = RefundRequest(
        refund_id=refund.id, order_id=order.id, amount_fen=refund.amount,
        order_total_fen=order.amount, currency=order.currency, reason=refund.reason,
        notify_url=ctx.notify_url(order.connector_key),
    )  # fmt: skip
    try:
        status = channel.refund(request)
    except ChannelError as error:
        if error.kind is not ChannelErrorKind.REJECTED:
            log.warning("refund.unconfirmed", refund_id=refund.id, kind=error.kind.value)
            return refund  # the poller asks the channel (refunds are idempotent by id)
        status = RefundStatus(refund_id=refund.id, status=ChannelRefundStatus.CLOSED)
    return transact(
        lambda uow: service.apply_refund_status(
            uow, refund_id=refund.id, status=status, source="api"
        )
    )


def handle_notification(
    transact: Transact, channel: PaymentChannel, headers: Mapping[str, str], body: bytes
) -> NotificationAck:
    """Verify, dedupe, apply; answer in the channel's format so it stops or keeps retrying."""
    try:
        notice = channel.parse_notification(headers, body)
    except NotificationRejected as rejected:
        log.warning("notification.rejected", channel=channel.code, reason=str(rejected))
        return channel.acknowledge(accepted=False, message="verification failed")
    try:
        transact(lambda uow: _apply_notification(uow, channel.code, notice))
    except CloudPayError as refused:
        # An order we do not know, or business fields that disagree with ours (amount): never
        # book it; answer in the channel's format so it keeps retrying, and let
        # reconciliation raise it as a break.
        log.error("notification.refused", channel=channel.code, code=refused.code)
        return channel.acknowledge(accepted=False, message=refused.code)
    return channel.acknowledge(accepted=True)


def _apply_notification(uow: UnitOfWork, channel_code: str, notice: ChannelNotification) -> None:
    if notice.payment is not None:
        subject, outcome = notice.payment.order_id, notice.payment.status.value
    elif notice.refund is not None:
        subject, outcome = notice.refund.refund_id, notice.refund.status.value
    else:
        return
    first = service.remember_notification(
        uow, channel=channel_code, notification_id=notice.notification_id,
        kind=notice.kind.value, subject_id=subject, outcome=outcome,
    )  # fmt: skip
    if not first:
        return
    if notice.kind is NotificationKind.PAYMENT and notice.payment is not None:
        service.apply_payment_status(
            uow, order_id=notice.payment.order_id, status=notice.payment, source="notification"
        )
    elif notice.kind is NotificationKind.REFUND and notice.refund is not None:
        service.apply_refund_status(
            uow, refund_id=notice.refund.refund_id, status=notice.refund, source="notification"
        )


def poll_open_orders(
    transact: Transact, ctx: ChannelContext, *, limit: int = MAX_POLL_BATCH
) -> int:
    """Resolve orders whose outcome we have not heard: query, create again, or close expired."""
    due = transact(lambda uow: service.orders_due_for_poll(uow, limit=limit))
    for order_id in due:
        try:
            _poll_order(transact, ctx, order_id)
        except (ChannelError, ChannelFailed) as error:
            log.warning("order.poll_failed", order_id=order_id, error=str(error))
            _back_off(transact, order_id)
    return len(due)


def _back_off(transact: Transact, order_id: str) -> None:
    transact(lambda uow: service.schedule_next_poll(uow, service.get_order(uow, order_id=order_id)))


def _poll_order(transact: Transact, ctx: ChannelContext, order_id: str) -> None:
    order = transact(lambda uow: service.get_order(uow, order_id=order_id))
    channel = ctx.channels.get(order.connector_key)
    status = _call_route(ctx, order.route_id, order.connector_key,
                         lambda ch: ch.query_payment(order.id))  # fmt: skip
    expired = ctx.clock.now() >= order.expire_at
    if order.status is OrderStatus.CREATED and status.status in _NOT_YET_CREATED:
        # We never learnt the channel's answer to create (a timeout, a crash): ask again.
        if expired:
            transact(
                lambda uow: service.mark_closed(uow, order_id=order.id, source="poll", expired=True)
            )
        else:
            _create_at_channel(transact, ctx, order)
        return
    order = transact(
        lambda uow: service.apply_payment_status(
            uow, order_id=order.id, status=status, source="poll"
        )
    )
    if order.status in OPEN_STATUSES and expired:
        _close_at_channel(transact, channel, order, expired=True)


_NOT_YET_CREATED = frozenset(
    {ChannelPaymentStatus.NOT_FOUND, ChannelPaymentStatus.NOT_PAID, ChannelPaymentStatus.PAYING}
)


def poll_processing_refunds(
    transact: Transact, ctx: ChannelContext, *, limit: int = MAX_POLL_BATCH
) -> int:
    due = transact(lambda uow: service.refunds_due_for_poll(uow, limit=limit))
    for refund_id in due:
        try:
            _poll_refund(transact, ctx, refund_id)
        except ChannelError as error:
            log.warning("refund.poll_failed", refund_id=refund_id, error=str(error))
    return len(due)


def _poll_refund(transact: Transact, ctx: ChannelContext, refund_id: str) -> None:
    refund = transact(lambda uow: service.get_refund(uow, refund_id=refund_id))
    order = transact(lambda uow: service.get_order(uow, order_id=refund.order_id))
    status = ctx.channels.get(order.connector_key).query_refund(refund.id, order_id=order.id)
    transact(
        lambda uow: service.apply_refund_status(
            uow, refund_id=refund_id, status=status, source="poll"
        )
    )
