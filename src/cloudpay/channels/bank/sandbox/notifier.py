"""Timed work for the sandbox bank: processing transfers that settle later, and webhooks
POSTed to the platform until it answers 2xx.

Retries follow the platform-wide webhook schedule (DESIGN.md) — 15s, 15s, 30s, 3m, 10m, …;
each attempt is re-signed with a fresh timestamp and nonce, so a retry is never a replay.
Delays are sandbox seconds × `time_scale`.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import httpx

from cloudpay.kernel.clock import Clock

RETRY_SCHEDULE_S = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800)
MAX_PENDING_JOBS = 100_000
MAX_ATTEMPTS_KEPT = 10_000
ATTEMPT_TIMEOUT_S = 5.0
WORKERS = 4


@dataclass(frozen=True)
class DeliveryAttempt:
    event_id: str
    event_type: str
    transfer_id: str
    url: str
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Webhook:
    url: str
    event_id: str
    event_type: str
    transfer_id: str
    body: bytes


class Scheduler:
    """Runs callables after a delay on a small thread pool; bounded queue."""

    def __init__(self, *, time_scale: float) -> None:
        self._time_scale = time_scale
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopping = False
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="bank-sandbox")
        self._thread = threading.Thread(target=self._run, name="bank-scheduler", daemon=True)
        self._thread.start()

    def later(self, delay_s: float, job: Callable[[], None]) -> None:
        due = time.monotonic() + max(delay_s, 0.0) * self._time_scale
        with self._wake:
            if len(self._queue) >= MAX_PENDING_JOBS:
                raise RuntimeError("sandbox job queue is full")
            heapq.heappush(self._queue, (due, next(self._order), job))
            self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not (
                    self._queue and self._queue[0][0] <= time.monotonic()
                ):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._wake.wait(timeout)
                if self._stopping:
                    return
                _, _, job = heapq.heappop(self._queue)
            self._pool.submit(job)


class Notifier:
    """Delivers signed webhooks with retries and remembers every attempt."""

    def __init__(
        self, *, scheduler: Scheduler, sign: Callable[[bytes], dict[str, str]], clock: Clock
    ) -> None:
        self._scheduler, self._sign, self._clock = scheduler, sign, clock
        self._http = httpx.Client(timeout=ATTEMPT_TIMEOUT_S)
        self._attempts: deque[DeliveryAttempt] = deque(maxlen=MAX_ATTEMPTS_KEPT)
        self._lock = threading.Lock()

    def submit(self, webhook: Webhook, attempt: int = 1, delay_s: float = 0.0) -> None:
        self._scheduler.later(delay_s, lambda: self._attempt(webhook, attempt))

    def attempts(self, transfer_id: str | None = None) -> list[DeliveryAttempt]:
        with self._lock:
            return [a for a in self._attempts if transfer_id in (None, a.transfer_id)]

    def close(self) -> None:
        self._http.close()

    def _attempt(self, webhook: Webhook, attempt: int) -> None:
        status_code, error = None, None
        headers = {"Content-Type": "application/json", **self._sign(webhook.body)}
        try:
            status_code = self._http.post(
                webhook.url, content=webhook.body, headers=headers
            ).status_code
        except httpx.HTTPError as failure:
            error = repr(failure)
        record = DeliveryAttempt(
            event_id=webhook.event_id,
            event_type=webhook.event_type,
            transfer_id=webhook.transfer_id,
            url=webhook.url,
            attempt=attempt,
            at=self._clock.now(),
            status_code=status_code,
            error=error,
        )
        with self._lock:
            self._attempts.append(record)
        if not record.delivered and attempt <= len(RETRY_SCHEDULE_S):
            self.submit(webhook, attempt + 1, RETRY_SCHEDULE_S[attempt - 1])
