"""Async notification delivery: a signed form POST, retried until the body is `success`.

Alipay posts `application/x-www-form-urlencoded` in the app's charset and keeps the same
`notify_id` until the merchant answers exactly `success`; otherwise it retries on the schedule
4m,10m,10m,1h,2h,6h,15h (8 deliveries within 25 hours,
https://opendocs.alipay.com/open/270/105902). Delays are sandbox seconds × `time_scale`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from cloudpay.channels.alipay import wire
from cloudpay.channels.alipay.sandbox.state import RETRY_SCHEDULE_S
from cloudpay.channels.sandbox_kit import AttemptRecord, RetryingNotifier
from cloudpay.kernel.clock import Clock

ATTEMPT_TIMEOUT_S = 5.0
ACKNOWLEDGED = b"success"
HEADERS = {
    "Content-Type": f"application/x-www-form-urlencoded; charset={wire.CHARSET}",
    "User-Agent": "Mozilla/4.0",
}


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    notify_id: str
    trade_status: str
    out_trade_no: str
    out_biz_no: str | None
    copy: int  # 1 for the notification, 2.. for deliberate duplicates


@dataclass(frozen=True, kw_only=True)
class DeliveryAttempt(AttemptRecord):
    notify_id: str
    trade_status: str
    out_trade_no: str
    out_biz_no: str | None
    copy: int

    @property
    def delivered(self) -> bool:
        return self.status_code == 200 and self.answer == ACKNOWLEDGED


def signed_form(params: dict[str, str], sign: Callable[[str], str]) -> bytes:
    """The notification body: every parameter plus `sign_type` and `sign`, form-encoded."""
    unsigned = {**params, "sign_type": wire.SIGN_TYPE}
    signature = sign(wire.signing_string(unsigned, exclude=wire.NOTIFICATION_EXCLUDED))
    return urlencode({**unsigned, "sign": signature}).encode(wire.CHARSET)


class Notifier(RetryingNotifier[Delivery, DeliveryAttempt]):
    """Every attempt carries the same signed bytes; attempts filed by out_trade_no."""

    def __init__(
        self, *, clock: Clock, time_scale: float, attempt_timeout_s: float = ATTEMPT_TIMEOUT_S
    ) -> None:
        super().__init__(
            clock=clock,
            schedule_s=RETRY_SCHEDULE_S,
            attempt_timeout_s=attempt_timeout_s,
            name="ali-notifier",
            time_scale=time_scale,
        )

    def _headers(self, delivery: Delivery) -> dict[str, str]:
        return HEADERS

    def _record(self, delivery: Delivery, outcome: AttemptRecord) -> DeliveryAttempt:
        return DeliveryAttempt(
            notify_id=delivery.notify_id,
            trade_status=delivery.trade_status,
            out_trade_no=delivery.out_trade_no,
            out_biz_no=delivery.out_biz_no,
            copy=delivery.copy,
            **outcome.base_fields(),
        )

    def _filed_under(self, attempt: DeliveryAttempt) -> str:
        return attempt.out_trade_no
