"""Notification delivery: POST to the merchant's notify_url until it answers 2xx.

WeChat retries a notification that did not get a 200/204 on the schedule
15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h (24h4m), and re-signs every attempt with
a fresh timestamp and nonce (https://pay.wechatpay.cn/docs/merchant/development/
interface-rules/build-verify-sign-src.html). Delays here are sandbox seconds multiplied by
`time_scale`, so tests run the whole schedule in a fraction of a second.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cloudpay.channels.sandbox_kit import AttemptRecord, RetryingNotifier
from cloudpay.channels.wechat import wire
from cloudpay.channels.wechat.sandbox.payloads import refund_resource, transaction_view
from cloudpay.channels.wechat.sandbox.state import RETRY_SCHEDULE_S, Notice
from cloudpay.channels.wechat.transformers import format_time
from cloudpay.kernel.clock import Clock
from cloudpay.kernel.masking import Secret

ATTEMPT_TIMEOUT_S = 5.0  # WeChat gives a notify_url about 5 s to answer
HEADERS = {"Content-Type": "application/json", "User-Agent": "Mozilla/4.0"}


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    notification_id: str
    event_type: str
    out_trade_no: str
    out_refund_no: str | None
    copy: int  # 1 for the notification, 2.. for deliberate duplicates


@dataclass(frozen=True, kw_only=True)
class DeliveryAttempt(AttemptRecord):
    """Delivered on any 2xx (WeChat: 200 or 204)."""

    notification_id: str
    event_type: str
    out_trade_no: str
    out_refund_no: str | None
    copy: int


def envelope(notice: Notice, *, apiv3_key: Secret[str], now: datetime) -> tuple[str, bytes]:
    """(id, body) of a notification, the resource frozen as it is now and encrypted."""
    if notice.refund is not None:
        resource = refund_resource(notice.refund)
    else:
        resource = transaction_view(notice.order)
    plaintext = json.dumps(resource, ensure_ascii=False).encode()
    notification_id = str(uuid.uuid4())
    body = {
        "id": notification_id,
        "create_time": format_time(now),
        "resource_type": "encrypt-resource",
        "event_type": notice.event_type,
        "summary": notice.summary,
        "resource": {
            "original_type": notice.original_type,
            **wire.encrypt_resource(
                plaintext, apiv3_key=apiv3_key, associated_data=notice.original_type
            ),
        },
    }
    return notification_id, json.dumps(body, ensure_ascii=False).encode()


class Notifier(RetryingNotifier[Delivery, DeliveryAttempt]):
    """Each attempt re-signed with a fresh timestamp and nonce; attempts filed by order."""

    def __init__(
        self,
        *,
        sign: Callable[[bytes], dict[str, str]],
        clock: Clock,
        time_scale: float,
        attempt_timeout_s: float = ATTEMPT_TIMEOUT_S,
    ) -> None:
        super().__init__(
            clock=clock,
            schedule_s=RETRY_SCHEDULE_S,
            attempt_timeout_s=attempt_timeout_s,
            name="wx-notifier",
            time_scale=time_scale,
        )
        self._sign = sign

    def _headers(self, delivery: Delivery) -> dict[str, str]:
        return {**HEADERS, **self._sign(delivery.body)}

    def _record(self, delivery: Delivery, outcome: AttemptRecord) -> DeliveryAttempt:
        return DeliveryAttempt(
            notification_id=delivery.notification_id,
            event_type=delivery.event_type,
            out_trade_no=delivery.out_trade_no,
            out_refund_no=delivery.out_refund_no,
            copy=delivery.copy,
            **outcome.base_fields(),
        )

    def _filed_under(self, attempt: DeliveryAttempt) -> str:
        return attempt.out_trade_no
