"""Notification delivery: form POST to the merchant's backUrl until it answers HTTP 200.

UnionPay counts only HTTP 200 as delivered and sends the notification again otherwise. We
could not open a source giving the exact schedule; `RETRY_SCHEDULE_S` (1, 2, 4, 8, 16
minutes after the first attempt) is our assumption, not a UnionPay fact. Delays are sandbox
seconds multiplied by `time_scale`. Each notification is signed once; retries and deliberate
duplicates carry the same bytes, as a resend of the same message does.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

import httpx

from cloudpay.channels.unionpay.sandbox.state import RETRY_SCHEDULE_S
from cloudpay.kernel.clock import Clock

MAX_PENDING_DELIVERIES = 100_000
MAX_ATTEMPTS_KEPT = 10_000
ATTEMPT_TIMEOUT_S = 10.0
DELIVERY_WORKERS = 4
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    order_id: str
    copy: int  # 1 for the notification, 2.. for deliberate duplicates
    attempts_made: int = 0


@dataclass(frozen=True)
class DeliveryAttempt:
    order_id: str
    url: str
    copy: int
    attempt: int  # 1 = first try, 2.. = retries
    at: datetime
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code == 200


class Notifier:
    """A scheduler thread plus a few sender threads; bounded queue, bounded history."""

    def __init__(self, *, clock: Clock, time_scale: float) -> None:
        self._clock, self._time_scale = clock, time_scale
        self._http = httpx.Client(timeout=ATTEMPT_TIMEOUT_S)
        self._senders = ThreadPoolExecutor(DELIVERY_WORKERS, thread_name_prefix="up-notify")
        self._queue: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._attempts: deque[DeliveryAttempt] = deque(maxlen=MAX_ATTEMPTS_KEPT)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="up-notifier", daemon=True)
        self._thread.start()

    def submit(self, delivery: Delivery, delay_s: float) -> None:
        """Deliver after `delay_s` sandbox seconds."""
        due = time.monotonic() + max(delay_s, 0.0) * self._time_scale
        with self._wake:
            if len(self._queue) >= MAX_PENDING_DELIVERIES:
                raise RuntimeError("sandbox notification queue is full")
            heapq.heappush(self._queue, (due, next(self._order), delivery))
            self._wake.notify()

    def attempts(self, order_id: str | None = None) -> list[DeliveryAttempt]:
        with self._wake:
            return [a for a in self._attempts if order_id in (None, a.order_id)]

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
        return bool(self._queue) and self._queue[0][0] <= time.monotonic()

    def _attempt(self, delivery: Delivery) -> None:
        delivery = replace(delivery, attempts_made=delivery.attempts_made + 1)
        status_code, error = None, None
        try:
            response = self._http.post(
                delivery.url, content=delivery.body, headers={"Content-Type": FORM_CONTENT_TYPE}
            )
            status_code = response.status_code
        except httpx.HTTPError as failure:
            error = repr(failure)
        attempt = DeliveryAttempt(
            order_id=delivery.order_id,
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
