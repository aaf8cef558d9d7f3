"""An in-memory channel for service tests and benchmarks: scriptable, with no network.

It keeps the channel-side truth (orders, payments, refunds) so tests can make the payer pay
and then deliver or withhold the notification, exactly like the sandboxes but in-process.
Payment-code (micropay) outcomes are scripted per auth code; `set_available(False)` makes every
call fail `UNAVAILABLE`, as a channel outage would (routing and failover tests).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

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
    PaymentCreated,
    PaymentStatus,
    RefundRequest,
    RefundStatus,
)

MICROPAY_METHOD = "wechat_micropay"
MICROPAY_OUTCOMES = frozenset({"success", "paying", "failed"})


@dataclass
class _FakeOrder:
    request: CreatePayment
    status: ChannelPaymentStatus = ChannelPaymentStatus.NOT_PAID
    transaction_id: str | None = None
    refunded_fen: int = 0


@dataclass
class FakeChannel:
    """`fail_next` queues errors for the next calls: e.g. `[ChannelErrorKind.TIMEOUT]`.

    `micropay_outcomes` maps an auth code to `success` (the default), `paying` (password
    pending: `customer_pays` settles it later) or `failed` (a definite refusal).
    """

    code: str = "wechat"
    methods: frozenset[str] = frozenset({"wechat_native", "wechat_jsapi", MICROPAY_METHOD})
    refunds_settle_immediately: bool = True
    fail_next: list[ChannelErrorKind] = field(default_factory=list)
    micropay_outcomes: dict[str, str] = field(default_factory=dict)
    available: bool = True
    orders: dict[str, _FakeOrder] = field(default_factory=dict)
    refunds: dict[str, RefundStatus] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def set_available(self, available: bool) -> None:
        """While unavailable every call raises `ChannelError(UNAVAILABLE)` and changes nothing."""
        self.available = available

    def _maybe_fail(self) -> None:
        if not self.available:
            raise ChannelError(ChannelErrorKind.UNAVAILABLE, "fake channel down", code="FAKE_DOWN")
        if self.fail_next:
            kind = self.fail_next.pop(0)
            raise ChannelError(kind, f"fake {kind.value}", code="FAKE")

    def create_payment(self, request: CreatePayment) -> PaymentCreated:
        with self._lock:
            self._maybe_fail()
            order = self.orders.setdefault(request.order_id, _FakeOrder(request))
            if request.method == MICROPAY_METHOD:
                return self._micropay(order)
            code_url = f"weixin://wxpay/bizpayurl?pr={request.order_id}"
            return PaymentCreated(channel_reference=f"prepay_{request.order_id}", code_url=code_url)

    def _micropay(self, order: _FakeOrder) -> PaymentCreated:
        outcome = self.micropay_outcomes.get(order.request.auth_code or "", "success")
        if outcome not in MICROPAY_OUTCOMES:
            raise ValueError(f"micropay outcome is one of {sorted(MICROPAY_OUTCOMES)}")
        if order.status is ChannelPaymentStatus.NOT_PAID:  # a resent payment keeps its outcome
            if outcome == "success":
                order.status = ChannelPaymentStatus.SUCCEEDED
                order.transaction_id = f"4200{next(self._serial):020d}"
            else:
                paying = outcome == "paying"
                order.status = (
                    ChannelPaymentStatus.PAYING if paying else ChannelPaymentStatus.FAILED
                )
        status = self._status(order)
        if status.status is ChannelPaymentStatus.FAILED:
            status = PaymentStatus(order.request.order_id, status.status,
                                   failure_reason="NOTENOUGH: fake refusal")  # fmt: skip
        return PaymentCreated(channel_reference=order.transaction_id, status=status)

    def query_payment(self, order_id: str) -> PaymentStatus:
        with self._lock:
            self._maybe_fail()
            order = self.orders.get(order_id)
            if order is None:
                return PaymentStatus(order_id, ChannelPaymentStatus.NOT_FOUND)
            return self._status(order)

    def _status(self, order: _FakeOrder) -> PaymentStatus:
        paid = order.status in (ChannelPaymentStatus.SUCCEEDED, ChannelPaymentStatus.REFUNDED)
        return PaymentStatus(
            order.request.order_id, order.status,
            amount_fen=order.request.amount_fen if paid else None, currency="CNY",
            channel_transaction_id=order.transaction_id,
            paid_at=datetime(2026, 1, 1, tzinfo=UTC) if paid else None,
        )  # fmt: skip

    def close_payment(self, order_id: str) -> None:
        with self._lock:
            self._maybe_fail()
            order = self.orders.get(order_id)
            if order is None:
                return
            if order.status is ChannelPaymentStatus.SUCCEEDED:
                raise ChannelError(ChannelErrorKind.REJECTED, "order paid", code="ORDERPAID")
            order.status = ChannelPaymentStatus.CLOSED

    def cancel_payment(self, order_id: str) -> None:
        """Reverse: closes an unpaid order, refunds what is left of a paid one."""
        with self._lock:
            self._maybe_fail()
            order = self.orders.get(order_id)
            if order is None:
                raise ChannelError(ChannelErrorKind.REJECTED, "no order", code="ORDER_NOT_EXIST")
            paid = (ChannelPaymentStatus.SUCCEEDED, ChannelPaymentStatus.REFUNDED)
            if order.status in paid:
                order.refunded_fen = order.request.amount_fen
                order.status = ChannelPaymentStatus.REFUNDED
            else:
                order.status = ChannelPaymentStatus.CLOSED

    def refund(self, request: RefundRequest) -> RefundStatus:
        with self._lock:
            self._maybe_fail()
            if request.refund_id in self.refunds:
                return self.refunds[request.refund_id]
            order = self.orders[request.order_id]
            if order.refunded_fen + request.amount_fen > order.request.amount_fen:
                raise ChannelError(ChannelErrorKind.REJECTED, "not enough", code="NOT_ENOUGH")
            order.refunded_fen += request.amount_fen
            status = (ChannelRefundStatus.SUCCEEDED if self.refunds_settle_immediately
                      else ChannelRefundStatus.PROCESSING)  # fmt: skip
            result = RefundStatus(request.refund_id, status, request.amount_fen,
                                  f"fake_refund_{next(self._serial)}")  # fmt: skip
            self.refunds[request.refund_id] = result
            return result

    def query_refund(self, refund_id: str, *, order_id: str | None = None) -> RefundStatus:
        with self._lock:
            self._maybe_fail()
            return self.refunds.get(refund_id) or RefundStatus(
                refund_id, ChannelRefundStatus.CLOSED
            )

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ChannelNotification:
        if headers.get("x-fake-signature") != "valid":
            raise NotificationRejected("fake signature missing")
        payload = json.loads(body)
        order = self.orders[payload["order_id"]]
        return ChannelNotification(
            NotificationKind.PAYMENT, payload["id"], payment=self._status(order)
        )

    def acknowledge(self, *, accepted: bool, message: str = "") -> NotificationAck:
        body = b"" if accepted else json.dumps({"code": "FAIL", "message": message}).encode()
        return NotificationAck(200 if accepted else 500, body)

    def download_bill(self, bill_date: date) -> bytes:
        return b""

    # --- the payer's side --------------------------------------------------------------
    def customer_pays(self, order_id: str, *, succeed: bool = True) -> None:
        """The payer pays (or fails to); also settles a micropay left `PAYING`."""
        with self._lock:
            order = self.orders[order_id]
            order.status = (
                ChannelPaymentStatus.SUCCEEDED if succeed else ChannelPaymentStatus.FAILED
            )
            order.transaction_id = f"4200{next(self._serial):020d}" if succeed else None

    def notification_for(
        self, order_id: str, notification_id: str = "n1"
    ) -> tuple[dict[str, str], bytes]:
        body = json.dumps({"id": notification_id, "order_id": order_id}).encode()
        return {"x-fake-signature": "valid"}, body
