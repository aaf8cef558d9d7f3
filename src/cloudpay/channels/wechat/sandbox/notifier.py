"""Notification delivery: POST to the merchant's notify_url until it answers 2xx.

WeChat retries a notification that did not get a 200/204 on the schedule
15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h (24h4m), and re-signs every attempt with
a fresh timestamp and nonce (https://pay.wechatpay.cn/docs/merchant/development/
interface-rules/build-verify-sign-src.html). Delays here are sandbox seconds multiplied by
`time_scale`, so tests run the whole schedule in a fraction of a second.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

import httpx

from cloudpay.channels.wechat import wire
from cloudpay.channels.wechat.sandbox.payloads import refund_resource, transaction_view
from cloudpay.channels.wechat.sandbox.state import RETRY_SCHEDULE_S, Notice
from cloudpay.channels.wechat.transformers import format_time
from cloudpay.kernel.clock import Clock
from cloudpay.kernel.masking import Secret

MAX_PENDING_DELIVERIES = 100_000
MAX_ATTEMPTS_KEPT = 10_000
ATTEMPT_TIMEOUT_S = 5.0  # WeChat gives a notify_url about 5 s to answer
DELIVERY_WORKERS = 4


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    notification_id: str
    event_type: str
    out_trade_no: str
    out_refund_no: str | None
    copy: int  # 1 for the notification, 2.. for deliberate duplicates
    attempts_made: int = 0


@dataclass(frozen=True)
class DeliveryAttempt:
    notification_id: str
    event_type: str
    out_trade_no: str
    out_refund_no: str | None
    url: str
    copy: int
    attempt: int  # 1 = first try, 2.. = retries
    at: datetime
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


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


class Notifier:
    """A scheduler thread plus a few sender threads; bounded queue, bounded history."""

    def __init__(
        self,
        *,
        sign: Callable[[bytes], dict[str, str]],
        clock: Clock,
        time_scale: float,
        attempt_timeout_s: float = ATTEMPT_TIMEOUT_S,
    ) -> None:
        self._sign, self._clock, self._time_scale = sign, clock, time_scale
        self._http = httpx.Client(timeout=attempt_timeout_s)
        self._senders = ThreadPoolExecutor(DELIVERY_WORKERS, thread_name_prefix="wx-notify")
        self._queue: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._attempts: deque[DeliveryAttempt] = deque(maxlen=MAX_ATTEMPTS_KEPT)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="wx-notifier", daemon=True)
        self._thread.start()

    def submit(self, delivery: Delivery, delay_s: float) -> None:
        """Deliver after `delay_s` sandbox seconds."""
        due = _monotonic() + max(delay_s, 0.0) * self._time_scale
        with self._wake:
            if len(self._queue) >= MAX_PENDING_DELIVERIES:
                raise RuntimeError("sandbox notification queue is full")
            heapq.heappush(self._queue, (due, next(self._order), delivery))
            self._wake.notify()

    def attempts(self, out_trade_no: str | None = None) -> list[DeliveryAttempt]:
        with self._wake:
            return [a for a in self._attempts if out_trade_no in (None, a.out_trade_no)]

    def pending(self) -> int:
        with self._wake:
            return len(self._queue)

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=5)
        self._senders.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not self._due():
                    timeout = self._queue[0][0] - _monotonic() if self._queue else None
                    self._wake.wait(timeout)
                if self._stopping:
                    return
                _, _, delivery = heapq.heappop(self._queue)
            self._senders.submit(self._attempt, delivery)

    def _due(self) -> bool:
        return bool(self._queue) and self._queue[0][0] <= _monotonic()

    def _attempt(self, delivery: Delivery) -> None:
        delivery = replace(delivery, attempts_made=delivery.attempts_made + 1)
        status_code, error = None, None
        headers = {"Content-Type": "application/json", "User-Agent": "Mozilla/4.0"}
        try:
            response = self._http.post(
                delivery.url,
                content=delivery.body,
                headers={**headers, **self._sign(delivery.body)},
            )
            status_code = response.status_code
        except httpx.HTTPError as failure:
            error = repr(failure)
        attempt = DeliveryAttempt(
            notification_id=delivery.notification_id,
            event_type=delivery.event_type,
            out_trade_no=delivery.out_trade_no,
            out_refund_no=delivery.out_refund_no,
            url=delivery.url,
            copy=delivery.copy,
            attempt=delivery.attempts_made,
            at=self._clock.now(),
            status_code=status_code,
            error=error,
        )
        with self._wake:
            self._attempts.append(attempt)
        retries_used = delivery.attempts_made - 1
        if not attempt.delivered and retries_used < len(RETRY_SCHEDULE_S) and not self._stopping:
            self.submit(delivery, RETRY_SCHEDULE_S[retries_used])


def _monotonic() -> float:
    # Monotonic on purpose: a wall clock stepped by NTP must not fire or stall retries.
    return time.monotonic()
