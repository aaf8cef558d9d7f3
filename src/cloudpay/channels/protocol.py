"""The one interface every payment channel implements, and the vocabulary it speaks.

A channel adapter = `client.py` (HTTP, signing, secrets) + `transformers.py` (pure mapping
between the provider's fields and these types). Payments code sees only this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class ChannelPaymentStatus(StrEnum):
    """A channel's view of a payment, reduced to what our state machine needs."""

    NOT_PAID = "not_paid"  # created, the payer has not paid (WeChat NOTPAY, Alipay WAIT_BUYER_PAY)
    PAYING = "paying"  # the payer is confirming (WeChat USERPAYING: password pending)
    SUCCEEDED = "succeeded"  # money taken (WeChat SUCCESS, Alipay TRADE_SUCCESS)
    FAILED = "failed"  # the payment failed (WeChat PAYERROR)
    CLOSED = "closed"  # closed before payment (WeChat CLOSED / REVOKED, Alipay TRADE_CLOSED)
    REFUNDED = "refunded"  # paid, then (partly) refunded (WeChat REFUND)
    NOT_FOUND = "not_found"  # the channel does not know the order


class ChannelRefundStatus(StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    CLOSED = "closed"
    ABNORMAL = "abnormal"  # the channel could not return the money (e.g. card closed)


class ChannelErrorKind(StrEnum):
    TIMEOUT = "timeout"  # no answer: the outcome is unknown, query before assuming anything
    UNAVAILABLE = "unavailable"  # refused to connect / 5xx: safe to retry or fail over
    REJECTED = "rejected"  # a business refusal (e.g. ORDER_CLOSED, NOT_ENOUGH): do not retry
    INVALID_RESPONSE = "invalid_response"  # bad signature or unparseable answer
    AUTHENTICATION = "authentication"  # our credentials were refused


class ChannelError(Exception):
    """A channel call failed; `kind` says whether the outcome is known and retry is safe."""

    def __init__(self, kind: ChannelErrorKind, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message

    @property
    def outcome_unknown(self) -> bool:
        return self.kind in (ChannelErrorKind.TIMEOUT, ChannelErrorKind.INVALID_RESPONSE)


class NotificationRejected(Exception):
    """An incoming notification failed verification (signature, decryption, stale timestamp)."""


@dataclass(frozen=True)
class CreatePayment:
    order_id: str  # our id; sent to the channel as its merchant order number (out_trade_no)
    amount_fen: int
    currency: str
    subject: str
    method: str  # e.g. wechat_native, wechat_jsapi, alipay_qr
    notify_url: str  # where the channel notifies us
    expire_at: datetime
    payer_id: str | None = None  # JSAPI: the payer's openid / buyer id
    sub_merchant_id: str | None = None  # service-provider mode: the channel's sub-merchant id
    client_ip: str | None = None
    attach: str | None = None  # opaque data the channel echoes back
    auth_code: str | None = None  # micropay: the payment code the payer shows (付款码)
    return_url: str | None = None  # wap: where the payer's browser returns after paying


@dataclass(frozen=True)
class PaymentStatus:
    order_id: str
    status: ChannelPaymentStatus
    amount_fen: int | None = None  # what the payer paid
    currency: str | None = None
    channel_transaction_id: str | None = None
    paid_at: datetime | None = None
    payer_id: str | None = None
    failure_reason: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentCreated:
    channel_reference: str | None = None  # e.g. WeChat prepay_id
    code_url: str | None = None  # native QR payload
    pay_params: Mapping[str, str] | None = None  # JSAPI / app parameters for the payer's wallet
    # wap: send the payer's browser here; POST means an auto-submitted form of `pay_params`
    redirect_url: str | None = None
    redirect_method: str = "GET"
    # micropay answers at once: paid, failed, or still `PAYING` while the payer confirms
    status: PaymentStatus | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundRequest:
    refund_id: str  # our id; the channel's out_refund_no (idempotent at the channel)
    order_id: str
    amount_fen: int
    order_total_fen: int
    currency: str
    reason: str | None = None
    notify_url: str | None = None


@dataclass(frozen=True)
class RefundStatus:
    refund_id: str
    status: ChannelRefundStatus
    amount_fen: int | None = None
    channel_refund_id: str | None = None
    succeeded_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


class NotificationKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


@dataclass(frozen=True)
class ChannelNotification:
    """A verified, decrypted notification; `payment` or `refund` is set according to `kind`."""

    kind: NotificationKind
    notification_id: str
    payment: PaymentStatus | None = None
    refund: RefundStatus | None = None
    merchant_id: str | None = None  # the channel's merchant id the notice was for
    app_id: str | None = None  # the channel's app id the notice was for


@dataclass(frozen=True)
class NotificationAck:
    """What to answer the channel so it stops (or keeps) retrying."""

    status_code: int
    body: bytes
    content_type: str = "application/json"


@runtime_checkable
class PaymentChannel(Protocol):
    """Every channel adapter. Calls are synchronous and never run inside a DB transaction."""

    code: str  # "wechat", "alipay", "unionpay"
    methods: frozenset[str]  # payment methods this channel serves

    def create_payment(self, request: CreatePayment) -> PaymentCreated: ...

    def query_payment(self, order_id: str) -> PaymentStatus: ...

    def close_payment(self, order_id: str) -> None: ...

    def cancel_payment(self, order_id: str) -> None:
        """Revoke a payment whatever its state (WeChat reverse, Alipay trade.cancel, UnionPay
        消费撤销): closes it if unpaid, returns the money if paid. For micropay timeouts."""
        ...

    def refund(self, request: RefundRequest) -> RefundStatus: ...

    def query_refund(self, refund_id: str, *, order_id: str | None = None) -> RefundStatus:
        """A refund's state; `order_id` is the refund's order (Alipay needs it to look a refund
        up, the others ignore it)."""
        ...

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ChannelNotification:
        """Verify the signature, decrypt, parse; raise `NotificationRejected` if it fails."""
        ...

    def acknowledge(self, *, accepted: bool, message: str = "") -> NotificationAck: ...

    def download_bill(self, bill_date: date) -> bytes:
        """The channel's daily trade bill in its own format (parsed by reconciliation)."""
        ...


@runtime_checkable
class PayerIdentityProvider(Protocol):
    """Wallets that identify the payer by OAuth before an in-wallet payment (WeChat JSAPI
    openid, Alipay buyer/user id). The aggregated QR page uses it; UnionPay does not need it."""

    code: str

    def payer_authorize_url(self, *, redirect_uri: str, state: str) -> str:
        """Where to send the payer's browser; the wallet comes back to `redirect_uri` with a
        one-time code (WeChat `code`, Alipay `auth_code`) and `state`."""
        ...

    def resolve_payer(self, code: str) -> str:
        """Exchange the one-time code for the payer id (openid / user id) used in payments."""
        ...
