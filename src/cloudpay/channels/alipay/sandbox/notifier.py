"""Async notification delivery: a signed form POST, retried until the body is `success`.

Alipay posts `application/x-www-form-urlencoded` in the app's charset and keeps the same
`notify_id` until the merchant answers exactly `success`; otherwise it retries on the schedule
4m,10m,10m,1h,2h,6h,15h (8 deliveries within 25 hours,
https://opendocs.alipay.com/open/270/105902). Delays are sandbox seconds × `time_scale`.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlencode

import httpx

from cloudpay.channels.alipay import wire
from cloudpay.channels.alipay.sandbox.state import RETRY_SCHEDULE_S
from cloudpay.kernel.clock import Clock

MAX_PENDING_DELIVERIES = 100_000
MAX_ATTEMPTS_KEPT = 10_000
ATTEMPT_TIMEOUT_S = 5.0
DELIVERY_WORKERS = 4
ACKNOWLEDGED = b"success"


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    notify_id: str
    trade_status: str
    out_trade_no: str
    out_biz_no: str | None
    copy: int  # 1 for the notification, 2.. for deliberate duplicates
    attempts_made: int = 0


@dataclass(frozen=True)
class DeliveryAttempt:
    notify_id: str
    trade_status: str
    out_trade_no: str
    out_biz_no: str | None
    url: str
    copy: int
    attempt: int  # 1 = first try, 2.. = retries
    at: datetime
    status_code: int | None
    answer: bytes
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code == 200 and self.answer == ACKNOWLEDGED


def signed_form(params: dict[str, str], sign: Callable[[str], str]) -> bytes:
    """The notification body: every parameter plus `sign_type` and `sign`, form-encoded."""
    unsigned = {**params, "sign_type": wire.SIGN_TYPE}
    signature = sign(wire.signing_string(unsigned, exclude=wire.NOTIFICATION_EXCLUDED))
    return urlencode({**unsigned, "sign": signature}).encode(wire.CHARSET)


class Notifier:
    """A scheduler thread plus a few sender threads; bounded queue, bounded history."""

    def __init__(
        self, *, clock: Clock, time_scale: float, attempt_timeout_s: float = ATTEMPT_TIMEOUT_S
    ) -> None:
        self._clock, self._time_scale = clock, time_scale
        self._http = httpx.Client(timeout=attempt_timeout_s)
        self._senders = ThreadPoolExecutor(DELIVERY_WORKERS, thread_name_prefix="ali-notify")
        self._queue: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._attempts: deque[DeliveryAttempt] = deque(maxlen=MAX_ATTEMPTS_KEPT)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="ali-notifier", daemon=True)
        self._thread.start()

    def submit(self, delivery: Delivery, delay_s: float) -> None:
        due = time.monotonic() + max(delay_s, 0.0) * self._time_scale
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
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._wake.wait(timeout)
                if self._stopping:
                    return
                _, _, delivery = heapq.heappop(self._queue)
            self._senders.submit(self._attempt, delivery)

    def _due(self) -> bool:
        # Monotonic on purpose: a wall clock stepped by NTP must not fire or stall retries.
        return bool(self._queue) and self._queue[0][0] <= time.monotonic()

    def _attempt(self, delivery: Delivery) -> None:
        delivery = replace(delivery, attempts_made=delivery.attempts_made + 1)
        status_code, answer, error = None, b"", None
        content_type = f"application/x-www-form-urlencoded; charset={wire.CHARSET}"
        try:
            response = self._http.post(
                delivery.url,
                content=delivery.body,
                headers={"Content-Type": content_type, "User-Agent": "Mozilla/4.0"},
            )
            status_code, answer = response.status_code, response.content[:64]
        except httpx.HTTPError as failure:
            error = repr(failure)
        attempt = DeliveryAttempt(
            notify_id=delivery.notify_id,
            trade_status=delivery.trade_status,
            out_trade_no=delivery.out_trade_no,
            out_biz_no=delivery.out_biz_no,
            url=delivery.url,
            copy=delivery.copy,
            attempt=delivery.attempts_made,
            at=self._clock.now(),
            status_code=status_code,
            answer=answer,
            error=error,
        )
        with self._wake:
            self._attempts.append(attempt)
        retries_used = delivery.attempts_made - 1
        if not attempt.delivered and retries_used < len(RETRY_SCHEDULE_S) and not self._stopping:
            self.submit(delivery, RETRY_SCHEDULE_S[retries_used])
