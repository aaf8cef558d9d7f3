"""Notification delivery: form POST to the merchant's backUrl until it answers HTTP 200.

UnionPay counts only HTTP 200 as delivered and sends the notification again otherwise. We
could not open a source giving the exact schedule; `RETRY_SCHEDULE_S` (1, 2, 4, 8, 16
minutes after the first attempt) is our assumption, not a UnionPay fact. Delays are sandbox
seconds multiplied by `time_scale`. Each notification is signed once; retries and deliberate
duplicates carry the same bytes, as a resend of the same message does.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudpay.channels.sandbox_kit import AttemptRecord, RetryingNotifier
from cloudpay.channels.unionpay.sandbox.state import RETRY_SCHEDULE_S
from cloudpay.kernel.clock import Clock

ATTEMPT_TIMEOUT_S = 10.0
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    order_id: str
    copy: int  # 1 for the notification, 2.. for deliberate duplicates


@dataclass(frozen=True, kw_only=True)
class DeliveryAttempt(AttemptRecord):
    order_id: str
    copy: int

    @property
    def delivered(self) -> bool:
        return self.status_code == 200


class Notifier(RetryingNotifier[Delivery, DeliveryAttempt]):
    """Attempts filed by UnionPay order number (orderId)."""

    def __init__(self, *, clock: Clock, time_scale: float) -> None:
        super().__init__(
            clock=clock,
            schedule_s=RETRY_SCHEDULE_S,
            attempt_timeout_s=ATTEMPT_TIMEOUT_S,
            name="up-notifier",
            time_scale=time_scale,
        )

    def _headers(self, delivery: Delivery) -> dict[str, str]:
        return {"Content-Type": FORM_CONTENT_TYPE}

    def _record(self, delivery: Delivery, outcome: AttemptRecord) -> DeliveryAttempt:
        return DeliveryAttempt(
            order_id=delivery.order_id, copy=delivery.copy, **outcome.base_fields()
        )

    def _filed_under(self, attempt: DeliveryAttempt) -> str:
        return attempt.order_id
