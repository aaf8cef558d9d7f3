"""Payment use cases, one transaction each. Channel calls happen between them (`flows.py`).

Every change of an order's status goes through `_move`, which checks the state machine,
records the transition and queues the merchant's event in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from cloudpay import merchants
from cloudpay.channels.protocol import (
    ChannelError,
    ChannelPaymentStatus,
    ChannelRefundStatus,
    PaymentCreated,
    PaymentStatus,
)
from cloudpay.channels.protocol import (
    RefundStatus as ChannelRefund,
)
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import ChannelFailed, Conflict, InvalidRequest, NotFound
from cloudpay.kernel.ids import new_id
from cloudpay.payments import discounts, events, postings, repository
from cloudpay.payments.model import (
    AGGREGATED_QR,
    CHANNEL_OF_METHOD,
    MAX_AMOUNT_FEN,
    META_METHODS,
    MICROPAY,
    MICROPAY_EXPIRY,
    MICROPAY_METHODS,
    MICROPAY_POLL_EVERY,
    MIN_AMOUNT_FEN,
    OPEN_STATUSES,
    PAID_STATUSES,
    SUPPORTED_CURRENCIES,
    OrderStatus,
    Refundable,
    RefundStatus,
    check_order_transition,
    resolve_expiry,
    status_after_refund,
)
from cloudpay.payments.repository import OrderRow, RefundRow
from cloudpay.payments.schemas import order_view, refund_view
from cloudpay.payments.wallets import (
    IN_WALLET_METHOD,
    MICROPAY_METHOD,
    Wallet,
    wallet_of_payment_code,
)
from cloudpay.routing import Decision, cost_known

POLL_FIRST_AFTER = timedelta(seconds=5)
POLL_BACKOFF_CAP = timedelta(minutes=5)
PAYER_ID_METHODS = frozenset({"wechat_jsapi", "alipay_jsapi"})  # pay as a known payer
# Plans a payment's route: (unit of work, merchant id, channel method, amount) → decision.
PlanRoute = Callable[[UnitOfWork, str, str, int], Decision]


LATER_FIELDS_UNUSED: dict[str, Any] = {
    "citizen_id": None, "claim_ids": None, "discount": discounts.AUTO, "split": None,
    "points": None,
}  # fmt: skip


@dataclass(frozen=True)
class OrderRequest:
    app_id: str
    merchant_id: str
    out_trade_no: str
    amount: int
    currency: str
    subject: str
    method: str
    expire_at: datetime | None
    notify_url: str | None
    metadata: dict[str, str]
    payer_id: str | None = None
    wallet: str | None = None  # aggregated_qr: the wallet the payer's browser is
    auth_code: str | None = None  # micropay: the payment code the payer shows
    return_url: str | None = None  # wap: where the payer's browser returns
    citizen_id: str | None = None  # the payer, for vouchers and coupons (or via payer_id)
    claim_ids: tuple[str, ...] | None = None  # the instruments the payer chose
    discount: str = discounts.AUTO  # auto: the payer's best instruments; none
    split: dict[str, Any] | None = None  # 分账: {"mode": "delayed"} or "now" with parts
    points: int | None = None  # 积分: the identified payer's points paying part of it

    def fingerprint(self) -> str:
        fields = asdict(self)
        fields["expire_at"] = self.expire_at.isoformat() if self.expire_at else None
        # Fields added later are left out while unused, so an order stored before them
        # still replays with the same body.
        for name, unused in LATER_FIELDS_UNUSED.items():
            if fields[name] == unused:
                del fields[name]
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class ResolvedMethod:
    channel_method: str  # what the channel is asked for
    channel: str
    wallet: str


def _validate(request: OrderRequest, enabled_methods: frozenset[str]) -> ResolvedMethod:
    if not MIN_AMOUNT_FEN <= request.amount <= MAX_AMOUNT_FEN:
        raise InvalidRequest(
            f"amount must be {MIN_AMOUNT_FEN}–{MAX_AMOUNT_FEN} fen", code="amount_invalid",
            param="amount",
        )  # fmt: skip
    if request.currency not in SUPPORTED_CURRENCIES:
        raise InvalidRequest("only CNY is supported", code="currency_unsupported", param="currency")
    resolved = resolve_method(request)
    enabled = request.method in enabled_methods or (
        request.method in META_METHODS and resolved.channel_method in enabled_methods
    )
    if not enabled:
        raise InvalidRequest(
            f"method {request.method} is not enabled for this app", code="method_not_enabled",
            param="method",
        )  # fmt: skip
    if resolved.channel_method in PAYER_ID_METHODS and not request.payer_id:
        raise InvalidRequest(f"{resolved.channel_method} needs payer_id (openid / user id)",
                             code="parameter_missing", param="payer_id")  # fmt: skip
    return resolved


def resolve_method(request: OrderRequest) -> ResolvedMethod:
    """The channel method behind the merchant's: a payment code's wallet, the payer's wallet."""
    method = request.method
    if method == MICROPAY or method in MICROPAY_METHODS:
        if not request.auth_code:
            raise InvalidRequest(f"{method} needs auth_code (the payer's payment code)",
                                 code="parameter_missing", param="auth_code")  # fmt: skip
        wallet = wallet_of_payment_code(request.auth_code)
        if method != MICROPAY and CHANNEL_OF_METHOD[method] != wallet.value:
            raise InvalidRequest(
                f"this payment code is a {wallet.value} code, not for {method}",
                code="payment_code_wallet_mismatch", param="auth_code",
            )  # fmt: skip
        return ResolvedMethod(MICROPAY_METHOD[wallet], wallet.value, wallet.value)
    if method == AGGREGATED_QR:
        try:
            wallet = Wallet(request.wallet or "")
        except ValueError:
            raise InvalidRequest("aggregated_qr needs wallet: wechat, alipay or unionpay",
                                 code="wallet_invalid", param="wallet") from None  # fmt: skip
        channel_method = IN_WALLET_METHOD[wallet]
        return ResolvedMethod(channel_method, CHANNEL_OF_METHOD[channel_method], wallet.value)
    channel = CHANNEL_OF_METHOD.get(method)
    if channel is None:
        raise InvalidRequest(f"unknown method {method}", code="method_unknown", param="method")
    return ResolvedMethod(method, channel, channel)


def _route(
    uow: UnitOfWork, plan: PlanRoute, request: OrderRequest, resolved: ResolvedMethod,
    amount_fen: int,
) -> Decision:  # fmt: skip
    decision = plan(uow, request.merchant_id, resolved.channel_method, amount_fen)
    if not decision.candidates:
        raise ChannelFailed(
            f"no channel serves {resolved.channel_method} on this deployment; configure its "
            "credentials", code="channel_not_configured", param="method",
        )  # fmt: skip
    if decision.chosen is None:
        raise ChannelFailed(
            f"every route for {resolved.channel_method} is disabled or failing; try later",
            code="no_route_available", param="method",
        )  # fmt: skip
    return decision


# --- orders -----------------------------------------------------------------------------
def open_order(
    uow: UnitOfWork, *, request: OrderRequest, enabled_methods: frozenset[str], plan: PlanRoute
) -> OrderRow:
    """A new order in `created` with its route, or the existing one for the same
    `out_trade_no` and body."""
    resolved = _validate(request, enabled_methods)
    request_hash = request.fingerprint()
    existing = repository.find_order_by_out_trade_no(
        uow.connection, request.app_id, request.out_trade_no
    )
    if existing is not None:
        if existing.request_hash != request_hash:
            raise Conflict(
                "out_trade_no was already used with different parameters",
                code="out_trade_no_used", param="out_trade_no",
            )  # fmt: skip
        return existing
    now = uow.clock.now()
    order_id = new_id("ord")
    micropay = resolved.channel_method in MICROPAY_METHODS
    applied = _apply_discount(uow, order_id, request, resolved, micropay=micropay)
    split = merchants.check_order_split(
        uow, merchant_id=request.merchant_id, amount_fen=applied.payer_fen, split=request.split
    )
    decision = _route(uow, plan, request, resolved, applied.payer_fen)
    chosen = decision.chosen
    assert chosen is not None
    expire_at = (request.expire_at or now + MICROPAY_EXPIRY) if micropay else request.expire_at
    repository.insert_order(
        uow.connection,
        {
            "id": order_id, "app_id": request.app_id, "merchant_id": request.merchant_id,
            "out_trade_no": request.out_trade_no, "request_hash": request_hash,
            **applied.order_columns(), "currency": request.currency, "subject": request.subject,
            "method": request.method, "channel": resolved.channel,
            "channel_method": resolved.channel_method, "wallet": resolved.wallet,
            "route_id": chosen.route_id, "connector": chosen.connector,
            "route_cost_fen": chosen.cost_fen if cost_known(chosen.route_id) else None,
            "routing": {"decision": decision.as_dict(), "attempts": []},
            "auth_code": request.auth_code, "return_url": request.return_url,
            "status": OrderStatus.CREATED.value,
            "expire_at": resolve_expiry(expire_at, now), "notify_url": request.notify_url,
            "metadata": request.metadata, "payer_id": request.payer_id,
            "refunded_amount": 0, "refund_reserved_amount": 0, "poll_attempts": 0,
            "next_poll_at": now + POLL_FIRST_AFTER, "created_at": now, "updated_at": now,
            "split": split, "split_mode": split["mode"] if split else None,
        },
    )  # fmt: skip
    repository.record_transition(
        uow.connection, order_id=order_id, from_status=None, to_status="created",
        source="api", reason=None, now=now,
    )  # fmt: skip
    return _order(uow, order_id)


def _apply_discount(
    uow: UnitOfWork, order_id: str, request: OrderRequest, resolved: ResolvedMethod, *,
    micropay: bool,
) -> discounts.Applied:  # fmt: skip
    ask = discounts.DiscountAsk(
        request.citizen_id, request.payer_id, request.claim_ids, request.discount,
        resolved.channel, micropay, request.points,
    )  # fmt: skip
    return discounts.apply_discount(
        uow, order_id=order_id, ask=ask, merchant_id=request.merchant_id,
        amount_fen=request.amount, currency=request.currency,
    )  # fmt: skip


def _order(uow: UnitOfWork, order_id: str, *, lock: bool = False) -> OrderRow:
    order = repository.get_order(uow.connection, order_id, lock=lock)
    if order is None:
        raise NotFound(f"no order {order_id}", code="order_not_found", param="id")
    return order


def get_order(uow: UnitOfWork, *, order_id: str, app_id: str | None = None) -> OrderRow:
    order = _order(uow, order_id)
    if app_id is not None and order.app_id != app_id:
        raise NotFound(f"no order {order_id}", code="order_not_found", param="id")
    return order


def find_order(uow: UnitOfWork, *, app_id: str, out_trade_no: str) -> OrderRow:
    order = repository.find_order_by_out_trade_no(uow.connection, app_id, out_trade_no)
    if order is None:
        raise NotFound(f"no order {out_trade_no}", code="order_not_found", param="out_trade_no")
    return order


def list_orders(
    uow: UnitOfWork, *, app_id: str | None = None, merchant_id: str | None = None,
    status: str | None = None, limit: int = 20, starting_after: str | None = None,
) -> list[OrderRow]:  # fmt: skip
    return repository.list_orders(
        uow.connection, merchant_id=merchant_id, app_id=app_id, status=status,
        limit=min(limit, 101), starting_after=starting_after,
    )  # fmt: skip


def _move(
    uow: UnitOfWork, order: OrderRow, target: OrderStatus, *, source: str,
    reason: str | None = None, event_type: str | None = None, **changes: object,
) -> OrderRow:  # fmt: skip
    check_order_transition(order.status, target)
    discounts.on_status(uow, order, target)
    now = uow.clock.now()
    if target not in OPEN_STATUSES and order.auth_code is not None:
        changes["auth_code"] = None  # a spent payment code is kept no longer than needed
    repository.update_order(
        uow.connection, order.id, status=target.value, updated_at=now, **changes
    )
    repository.record_transition(
        uow.connection, order_id=order.id, from_status=order.status.value,
        to_status=target.value, source=source, reason=reason, now=now,
    )  # fmt: skip
    moved = _order(uow, order.id)
    if event_type is not None:
        events.emit(
            uow, event_type=event_type, app_id=moved.app_id, merchant_id=moved.merchant_id,
            url=moved.notify_url, data_object=order_view(moved),
        )  # fmt: skip
    return moved


def record_channel_created(uow: UnitOfWork, *, order_id: str, created: PaymentCreated) -> OrderRow:
    order = _order(uow, order_id, lock=True)
    if order.status is not OrderStatus.CREATED:
        return order  # a concurrent retry of the same request got there first
    answered = created.status
    if answered is not None and answered.status not in _STILL_WAITING:
        # Micropay answered at once (paid, or refused): no paying stage to wait through.
        return apply_payment_status(uow, order_id=order.id, status=answered, source="api")
    pay_params = dict(created.pay_params) if created.pay_params else None
    if created.redirect_url:
        pay_params = {**(pay_params or {}), "redirect_url": created.redirect_url,
                      "redirect_method": created.redirect_method}  # fmt: skip
    return _move(
        uow, order, OrderStatus.PAYING, source="api", code_url=created.code_url,
        pay_params=pay_params, next_poll_at=uow.clock.now() + _poll_interval(order),
    )  # fmt: skip


_STILL_WAITING = frozenset({ChannelPaymentStatus.PAYING, ChannelPaymentStatus.NOT_PAID})


def _poll_interval(order: OrderRow) -> timedelta:
    return MICROPAY_POLL_EVERY if order.paid_with in MICROPAY_METHODS else POLL_FIRST_AFTER


def record_channel_refused(uow: UnitOfWork, *, order_id: str, error: ChannelError) -> OrderRow:
    order = _order(uow, order_id, lock=True)
    if order.status is not OrderStatus.CREATED:
        return order
    return _move(
        uow, order, OrderStatus.FAILED, source="api", reason=error.message,
        event_type=events.ORDER_FAILED, failure_code=error.code or error.kind.value,
        failure_message=error.message[:256], next_poll_at=None,
    )  # fmt: skip


def apply_payment_status(
    uow: UnitOfWork, *, order_id: str, status: PaymentStatus, source: str
) -> OrderRow:
    """Move an order to what the channel says, once; repeats and late news change nothing."""
    order = _order(uow, order_id, lock=True)
    paid = status.status in (ChannelPaymentStatus.SUCCEEDED, ChannelPaymentStatus.REFUNDED)
    if paid and order.status not in PAID_STATUSES and order.status not in OPEN_STATUSES:
        # Money taken for an order we closed (a QR scanned after an early close): never drop
        # it silently; refusing keeps the channel retrying and reconciliation raises it.
        raise Conflict(f"the channel reports a payment for a {order.status} order",
                       code="channel_paid_after_close")  # fmt: skip
    if order.status in PAID_STATUSES or order.status not in OPEN_STATUSES:
        return order
    if paid:
        return _capture(uow, order, status, source)
    if status.status is ChannelPaymentStatus.FAILED:
        return _move(uow, order, OrderStatus.FAILED, source=source, reason=status.failure_reason,
                     event_type=events.ORDER_FAILED, failure_code="payment_failed",
                     failure_message=(status.failure_reason or "the payer's payment failed")[:256],
                     next_poll_at=None)  # fmt: skip
    if status.status is ChannelPaymentStatus.CLOSED:
        # Closed by the channel itself once expire_at passed: the order expired, no one closed it.
        expired = uow.clock.now() >= order.expire_at
        return mark_closed(uow, order_id=order.id, source=source, expired=expired)
    return schedule_next_poll(uow, order)


def _capture(uow: UnitOfWork, order: OrderRow, status: PaymentStatus, source: str) -> OrderRow:
    if status.amount_fen is not None and status.amount_fen != order.amount:
        # Money moved that does not match the order: never book it silently.
        raise Conflict(
            f"channel reports {status.amount_fen} fen paid for an order of {order.amount}",
            code="channel_amount_mismatch",
        )
    if order.status is OrderStatus.CREATED:
        order = _move(uow, order, OrderStatus.PAYING, source=source, reason="paid before we knew")
    postings.post_capture(
        uow, order_id=order.id, channel=order.channel, merchant_id=order.merchant_id,
        amount_fen=order.amount, currency=order.currency,
    )  # fmt: skip
    discounts.on_paid(uow, order, payer_id=status.payer_id)
    return _move(
        uow, order, OrderStatus.SUCCEEDED, source=source, event_type=events.ORDER_SUCCEEDED,
        channel_transaction_id=status.channel_transaction_id,
        paid_at=status.paid_at or uow.clock.now(), booked_at=uow.clock.now(),
        payer_id=status.payer_id or order.payer_id, next_poll_at=None,
    )  # fmt: skip


def mark_closed(uow: UnitOfWork, *, order_id: str, source: str, expired: bool) -> OrderRow:
    order = _order(uow, order_id, lock=True)
    if order.status not in OPEN_STATUSES:
        return order
    target = (
        OrderStatus.EXPIRED
        if expired and order.status is OrderStatus.PAYING
        else OrderStatus.CLOSED
    )
    event_type = events.ORDER_EXPIRED if target is OrderStatus.EXPIRED else events.ORDER_CLOSED
    return _move(uow, order, target, source=source, event_type=event_type, next_poll_at=None)


def fail_over(
    uow: UnitOfWork, *, order_id: str, failed_route_id: str, error: ChannelError,
    is_open: Callable[[str], bool],
) -> OrderRow | None:  # fmt: skip
    """Move an order whose channel was unavailable (nothing done there) to the next route of
    its plan. None when no route is left; the order then waits for the poller as before."""
    order = _order(uow, order_id, lock=True)
    if order.status is not OrderStatus.CREATED or order.route_id != failed_route_id:
        return order  # another attempt moved it already
    routing: dict[str, Any] = dict(order.routing or {"decision": {}, "attempts": []})
    attempts = [*routing.get("attempts", []), _attempt(uow, failed_route_id, error)]
    tried = {a["route_id"] for a in attempts}
    plan = routing.get("decision", {}).get("candidates", [])
    ahead = [c for c in plan if c["skipped"] is None and c["route_id"] not in tried]
    following = next((c for c in ahead if not is_open(c["route_id"])), None)
    routing["attempts"] = attempts
    if following is None:
        repository.update_order(uow.connection, order.id, routing=routing)
        return None
    repository.update_order(
        uow.connection, order.id, routing=routing, route_id=following["route_id"],
        connector=following["connector"], route_cost_fen=following["cost_fen"],
        updated_at=uow.clock.now(),
    )  # fmt: skip
    return _order(uow, order.id)


def _attempt(uow: UnitOfWork, route_id: str, error: ChannelError) -> dict[str, Any]:
    return {"route_id": route_id, "outcome": error.kind.value, "code": error.code,
            "at": uow.clock.now().isoformat()}  # fmt: skip


def schedule_next_poll(uow: UnitOfWork, order: OrderRow) -> OrderRow:
    """Back off: 5 s, 10 s, 20 s … capped at 5 min, while the order is open; a till waiting
    for a payer to confirm a payment code asks every 5 s until the code's minute is up."""
    delay = min(POLL_FIRST_AFTER * (2 ** min(order.poll_attempts, 10)), POLL_BACKOFF_CAP)
    if order.paid_with in MICROPAY_METHODS:
        delay = MICROPAY_POLL_EVERY
    repository.update_order(
        uow.connection, order.id, poll_attempts=order.poll_attempts + 1,
        next_poll_at=uow.clock.now() + delay,
    )  # fmt: skip
    return replace(order, poll_attempts=order.poll_attempts + 1)


def orders_due_for_poll(uow: UnitOfWork, *, limit: int = 100) -> list[str]:
    return repository.orders_due_for_poll(uow.connection, now=uow.clock.now(), limit=limit)


def order_history(uow: UnitOfWork, *, order_id: str) -> list[dict[str, object]]:
    return repository.transitions_of(uow.connection, order_id)


# --- refunds ----------------------------------------------------------------------------
def open_refund(
    uow: UnitOfWork, *, app_id: str, order: OrderRow, out_refund_no: str, amount: int,
    reason: str | None,
) -> RefundRow:  # fmt: skip
    """Reserve the amount on the order and in the ledger, then it is the channel's turn."""
    request_hash = hashlib.sha256(f"{order.id}|{amount}|{reason}".encode()).hexdigest()
    existing = repository.find_refund_by_out_refund_no(uow.connection, app_id, out_refund_no)
    if existing is not None:
        if existing.request_hash != request_hash:
            raise Conflict("out_refund_no was already used with different parameters",
                           code="out_refund_no_used", param="out_refund_no")  # fmt: skip
        return existing
    locked = _order(uow, order.id, lock=True)
    if locked.status not in PAID_STATUSES:
        raise Conflict(
            f"order is {locked.status}, not paid", code="order_not_paid", param="order_id"
        )
    Refundable(locked.amount, locked.refunded_amount, locked.refund_reserved_amount).check(amount)
    refund_id = new_id("rfd")
    now = uow.clock.now()
    repository.insert_refund(
        uow.connection,
        {
            "id": refund_id, "order_id": locked.id, "app_id": app_id,
            "merchant_id": locked.merchant_id, "out_refund_no": out_refund_no,
            "request_hash": request_hash, "amount": amount, "currency": locked.currency,
            "reason": reason, "status": RefundStatus.PROCESSING.value,
            "next_poll_at": now + POLL_FIRST_AFTER, "created_at": now, "updated_at": now,
        },
    )  # fmt: skip
    repository.update_order(
        uow.connection, locked.id, refund_reserved_amount=locked.refund_reserved_amount + amount,
        updated_at=now,
    )  # fmt: skip
    postings.hold_refund(
        uow, refund_id=refund_id, order_id=locked.id, channel=locked.channel,
        merchant_id=locked.merchant_id, amount_fen=amount, currency=locked.currency,
    )  # fmt: skip
    discounts.check_refund_covered(uow, locked, amount)
    return _refund(uow, refund_id)


def _refund(uow: UnitOfWork, refund_id: str, *, lock: bool = False) -> RefundRow:
    refund = repository.get_refund(uow.connection, refund_id, lock=lock)
    if refund is None:
        raise NotFound(f"no refund {refund_id}", code="refund_not_found", param="id")
    return refund


def get_refund(uow: UnitOfWork, *, refund_id: str, app_id: str | None = None) -> RefundRow:
    refund = _refund(uow, refund_id)
    if app_id is not None and refund.app_id != app_id:
        raise NotFound(f"no refund {refund_id}", code="refund_not_found", param="id")
    return refund


def apply_refund_status(
    uow: UnitOfWork, *, refund_id: str, status: ChannelRefund, source: str
) -> RefundRow:
    """Settle a refund once, from a notification, a poll or the create call's answer."""
    refund = _refund(uow, refund_id, lock=True)
    if refund.status is not RefundStatus.PROCESSING:
        return refund
    if status.status is ChannelRefundStatus.PROCESSING:
        repository.update_refund(
            uow.connection, refund.id, next_poll_at=uow.clock.now() + POLL_FIRST_AFTER * 2
        )
        return refund
    succeeded = status.status is ChannelRefundStatus.SUCCEEDED
    return _finish_refund(uow, refund, succeeded, status, source)


def _finish_refund(
    uow: UnitOfWork, refund: RefundRow, succeeded: bool, status: ChannelRefund, source: str
) -> RefundRow:
    now = uow.clock.now()
    order = _order(uow, refund.order_id, lock=True)
    postings.settle_refund(uow, refund_id=refund.id, succeeded=succeeded)
    refunded = order.refunded_amount + (refund.amount if succeeded else 0)
    repository.update_order(
        uow.connection, order.id, refunded_amount=refunded,
        refund_reserved_amount=order.refund_reserved_amount - refund.amount, updated_at=now,
    )  # fmt: skip
    subsidy_back = 0
    if succeeded:
        _move(uow, replace(order, refunded_amount=refunded),
              status_after_refund(order.amount, refunded), source=source,
              reason=f"refund {refund.id}")  # fmt: skip
        subsidy_back = discounts.on_refunded(uow, order, refund_id=refund.id, refunded_fen=refunded)
    repository.update_refund(
        uow.connection, refund.id, subsidy_reversed_amount=subsidy_back or None,
        status=(RefundStatus.SUCCEEDED if succeeded else RefundStatus.FAILED).value,
        channel_refund_id=status.channel_refund_id,
        succeeded_at=(status.succeeded_at or now) if succeeded else None,
        booked_at=now if succeeded else None,
        failure_code=None if succeeded else f"channel_{status.status.value}",
        next_poll_at=None, updated_at=now,
    )  # fmt: skip
    finished = _refund(uow, refund.id)
    events.emit(
        uow, event_type=events.REFUND_SUCCEEDED if succeeded else events.REFUND_FAILED,
        app_id=finished.app_id, merchant_id=finished.merchant_id, url=order.notify_url,
        data_object=refund_view(finished),
    )  # fmt: skip
    return finished


def refunds_due_for_poll(uow: UnitOfWork, *, limit: int = 100) -> list[str]:
    return repository.refunds_due_for_poll(uow.connection, now=uow.clock.now(), limit=limit)


def refunds_of_order(uow: UnitOfWork, *, order_id: str) -> list[RefundRow]:
    return repository.refunds_of(uow.connection, order_id)


def remember_notification(
    uow: UnitOfWork, *, channel: str, notification_id: str, kind: str, subject_id: str | None,
    outcome: str,
) -> bool:  # fmt: skip
    return repository.remember_notification(
        uow.connection, channel=channel, notification_id=notification_id, kind=kind,
        subject_id=subject_id, outcome=outcome, now=uow.clock.now(),
    )  # fmt: skip
