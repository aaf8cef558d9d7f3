"""Orders and refunds: the one state machine, and the rules for amounts. Pure.

    created ──▶ paying ──▶ succeeded ──▶ partially_refunded ──▶ refunded
       │           ├──▶ failed                   └────────────────▲
       ├──▶ failed ├──▶ closed
       └──▶ closed └──▶ expired

`created` lasts only while we call the channel; `paying` means the payer holds what they need
(a QR code, wallet parameters) and the outcome comes by notification or by our polling.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from cloudpay.kernel.errors import Conflict, InvalidRequest


class OrderStatus(StrEnum):
    CREATED = "created"
    PAYING = "paying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CLOSED = "closed"
    EXPIRED = "expired"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class RefundStatus(StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


ORDER_TRANSITIONS: Final[dict[OrderStatus, frozenset[OrderStatus]]] = {
    OrderStatus.CREATED: frozenset({OrderStatus.PAYING, OrderStatus.FAILED, OrderStatus.CLOSED}),
    OrderStatus.PAYING: frozenset(
        {OrderStatus.SUCCEEDED, OrderStatus.FAILED, OrderStatus.CLOSED, OrderStatus.EXPIRED}
    ),
    OrderStatus.SUCCEEDED: frozenset({OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}),
    OrderStatus.PARTIALLY_REFUNDED: frozenset(
        {OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}
    ),
    OrderStatus.FAILED: frozenset(),
    OrderStatus.CLOSED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}
PAID_STATUSES: Final = frozenset(
    {OrderStatus.SUCCEEDED, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}
)
OPEN_STATUSES: Final = frozenset({OrderStatus.CREATED, OrderStatus.PAYING})

REFUND_TRANSITIONS: Final[dict[RefundStatus, frozenset[RefundStatus]]] = {
    RefundStatus.PROCESSING: frozenset({RefundStatus.SUCCEEDED, RefundStatus.FAILED}),
    RefundStatus.SUCCEEDED: frozenset(),
    RefundStatus.FAILED: frozenset(),
}

# Limits, each with its reason.
MIN_AMOUNT_FEN: Final = 1
MAX_AMOUNT_FEN: Final = 10_000_000_00  # 10 million yuan: above any wallet's single-payment cap
SUPPORTED_CURRENCIES: Final = frozenset({"CNY"})  # the wallets settle domestic payments in CNY
MIN_EXPIRY: Final = timedelta(minutes=1)  # WeChat refuses time_expire closer than a minute
MAX_EXPIRY: Final = timedelta(days=7)
DEFAULT_EXPIRY: Final = timedelta(minutes=30)
MAX_SUBJECT_LENGTH: Final = 127  # WeChat's description limit
MAX_OUT_TRADE_NO_LENGTH: Final = 32  # WeChat's out_trade_no limit, [A-Za-z0-9_-|*]
MAX_METADATA_KEYS: Final = 20
MAX_METADATA_VALUE_LENGTH: Final = 500


# The channel behind each method a channel adapter serves.
CHANNEL_OF_METHOD: Final[dict[str, str]] = {
    "wechat_native": "wechat", "wechat_jsapi": "wechat", "wechat_micropay": "wechat",
    "alipay_qr": "alipay", "alipay_wap": "alipay", "alipay_jsapi": "alipay",
    "alipay_micropay": "alipay",
    "unionpay_qr": "unionpay", "unionpay_wap": "unionpay", "unionpay_micropay": "unionpay",
}  # fmt: skip
# Methods a merchant may ask for that become a channel method per payment: `micropay` from
# the payment code's wallet, `aggregated_qr` from the wallet the payer's browser is.
MICROPAY = "micropay"
AGGREGATED_QR = "aggregated_qr"
META_METHODS: Final = frozenset({MICROPAY, AGGREGATED_QR})
MICROPAY_METHODS: Final = frozenset(m for m in CHANNEL_OF_METHOD if m.endswith("_micropay"))
# A till waits for the payer to confirm (password, PIN) this long before revoking the payment;
# WeChat's cashier guidance is to query for about 30 s, then reverse.
MICROPAY_EXPIRY: Final = timedelta(seconds=60)
MICROPAY_POLL_EVERY: Final = timedelta(seconds=5)


class IllegalTransition(Conflict):
    default_code = "illegal_state_transition"


def check_order_transition(current: OrderStatus, target: OrderStatus) -> None:
    if target not in ORDER_TRANSITIONS[current]:
        raise IllegalTransition(
            f"an order cannot go from {current} to {target}", code=f"order_{current}"
        )


def check_refund_transition(current: RefundStatus, target: RefundStatus) -> None:
    if target not in REFUND_TRANSITIONS[current]:
        raise IllegalTransition(f"a refund cannot go from {current} to {target}")


def status_after_refund(amount_fen: int, refunded_fen: int) -> OrderStatus:
    """The order's status once `refunded_fen` in total has been returned."""
    if refunded_fen <= 0:
        return OrderStatus.SUCCEEDED
    return OrderStatus.REFUNDED if refunded_fen >= amount_fen else OrderStatus.PARTIALLY_REFUNDED


@dataclass(frozen=True)
class Refundable:
    """How much of a paid order can still be refunded, counting refunds in flight."""

    amount_fen: int
    refunded_fen: int
    reserved_fen: int

    @property
    def remaining_fen(self) -> int:
        return self.amount_fen - self.refunded_fen - self.reserved_fen

    def check(self, requested_fen: int) -> None:
        if requested_fen <= 0:
            raise InvalidRequest(
                "refund amount must be positive", code="amount_invalid", param="amount"
            )
        if requested_fen > self.remaining_fen:
            raise InvalidRequest(
                f"refund of {requested_fen} fen exceeds the {self.remaining_fen} fen refundable",
                code="refund_exceeds_paid",
                param="amount",
            )


def resolve_expiry(requested: datetime | None, now: datetime) -> datetime:
    if requested is None:
        return now + DEFAULT_EXPIRY
    if requested.tzinfo is None:
        raise InvalidRequest(
            "expire_at needs a time zone", code="parameter_invalid", param="expire_at"
        )
    if requested < now + MIN_EXPIRY or requested > now + MAX_EXPIRY:
        raise InvalidRequest(
            "expire_at must be between 1 minute and 7 days from now",
            code="expire_at_out_of_range",
            param="expire_at",
        )
    return requested


# Ledger transfer ids derived from our ids, so a retried posting is a replay, not a double.
def capture_transfer_id(order_id: str) -> str:
    return f"{order_id}:capture"


def refund_hold_transfer_id(refund_id: str) -> str:
    return f"{refund_id}:hold"


def refund_post_transfer_id(refund_id: str) -> str:
    return f"{refund_id}:post"


def refund_void_transfer_id(refund_id: str) -> str:
    return f"{refund_id}:void"
