"""What every channel sandbox needs besides its protocol: a loopback server, timed jobs, and
notification delivery with retries.

- `LoopbackServer` runs an ASGI app with uvicorn in a daemon thread and knows its URL;
  `SandboxHandle` is the lifecycle a sandbox's handle offers on top (`wait`, `stop`, `with`).
- `Scheduler` runs callables after a delay in sandbox seconds × `time_scale`, so a test runs a
  day-long retry schedule in seconds.
- `RetryingNotifier` POSTs a delivery, logs every attempt and retries on the channel's schedule
  until the answer counts as acknowledged. A channel says only what differs: the headers of an
  attempt, its attempt record (whose `delivered` decides what is acknowledged), the schedule.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

import httpx
import uvicorn
from starlette.types import ASGIApp

from cloudpay.kernel.clock import Clock

STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
MAX_PENDING_JOBS = 100_000
MAX_ATTEMPTS_KEPT = 10_000
ANSWER_BYTES_KEPT = 64  # enough for any acknowledgement body (Alipay's is `success`)
WORKERS = 4


class LoopbackServer:
    """An ASGI app served by uvicorn from a daemon thread; `start` returns once it listens."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        self._server, self._thread = server, thread
        port = server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://{server.config.host}:{port}"

    @classmethod
    def start(
        cls,
        app: ASGIApp,
        *,
        name: str,
        host: str = "127.0.0.1",
        port: int = 0,
        on_failure: Callable[[], None] = lambda: None,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
    ) -> LoopbackServer:
        """Serve `app` on `host:port` (`port=0` picks a free one). If it is not listening
        within `startup_timeout_s`: `on_failure()` (to stop what was started for the app),
        then `RuntimeError` naming `name`."""
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=1,
        )  # fmt: skip
        server = uvicorn.Server(config)
        thread = threading.Thread(target=_serve, args=(server,), name=name, daemon=True)
        thread.start()
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                server.should_exit = True
                on_failure()
                raise RuntimeError(f"{name} did not start on {host}:{port}")
            time.sleep(0.01)
        return cls(server, thread)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self) -> None:
        """Block until the server stops; short joins so Ctrl-C reaches the caller."""
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=STOP_TIMEOUT_S)


def _serve(server: uvicorn.Server) -> None:
    # uvicorn calls sys.exit when it cannot start (a port taken): `start` reports that instead.
    with contextlib.suppress(SystemExit):
        server.run()


class SandboxHandle:
    """A running sandbox's lifecycle: its base URL, `wait`, `stop` (the server, then the
    sandbox's background work through `on_stop`) and use as a context manager."""

    def __init__(self, server: LoopbackServer, *, on_stop: Callable[[], None]) -> None:
        self._loopback, self._on_stop = server, on_stop
        self.base_url = server.base_url

    def wait(self) -> None:
        """Block until the server stops (the CLI's foreground mode; Ctrl-C to leave)."""
        self._loopback.wait()

    def stop(self) -> None:
        self._loopback.stop()
        self._on_stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Scheduler:
    """Runs callables after a delay on a small thread pool; bounded queue.

    Delays are sandbox seconds × `time_scale`, measured on the monotonic clock on purpose: a
    wall clock stepped by NTP (or a test's fixed clock) must not fire or stall the jobs."""

    def __init__(
        self, *, time_scale: float, name: str = "sandbox", max_pending: int = MAX_PENDING_JOBS
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._time_scale, self._max_pending = time_scale, max_pending
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()  # ties run first come, first served
        self._wake = threading.Condition()
        self._stopping = False
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix=f"{name}-worker")
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def later(self, delay_s: float, job: Callable[[], None]) -> None:
        """Run `job` after `delay_s` sandbox seconds (now if not positive)."""
        due = time.monotonic() + max(delay_s, 0.0) * self._time_scale
        with self._wake:
            if len(self._queue) >= self._max_pending:
                raise RuntimeError("sandbox job queue is full")
            heapq.heappush(self._queue, (due, next(self._order), job))
            self._wake.notify()

    def pending(self) -> int:
        """Jobs waiting for their time (not those running)."""
        with self._wake:
            return len(self._queue)

    def stop(self) -> None:
        """Stop taking due jobs; the queue is dropped, running jobs are not waited for."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not self._due():
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._wake.wait(timeout)
                if self._stopping:
                    return
                _, _, job = heapq.heappop(self._queue)
            self._pool.submit(job)

    def _due(self) -> bool:
        return bool(self._queue) and self._queue[0][0] <= time.monotonic()


class Deliverable(Protocol):
    """A notification ready to POST: where, and the exact bytes."""

    @property
    def url(self) -> str: ...

    @property
    def body(self) -> bytes: ...


@dataclass(frozen=True, kw_only=True)
class AttemptRecord:
    """One POST of a notification and what came back. A channel's record extends it with the
    ids it files attempts under, and overrides `delivered` if 2xx is not its acknowledgement."""

    url: str
    attempt: int  # 1 = first try, 2.. = retries
    at: datetime
    status_code: int | None
    answer: bytes = b""  # the answer's first `ANSWER_BYTES_KEPT` bytes
    error: str | None = None  # the transport error, when there was no answer

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def base_fields(self) -> dict[str, Any]:
        """The fields this base class defines, to build a channel's record from."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(AttemptRecord)}


D = TypeVar("D", bound=Deliverable)
A = TypeVar("A", bound=AttemptRecord)


class RetryingNotifier(ABC, Generic[D, A]):
    """POSTs deliveries, retries each on `schedule_s` until delivered, remembers the attempts.

    The first try is attempt 1; retry n waits `schedule_s[n - 1]` sandbox seconds after the
    previous attempt, so a delivery gets at most `1 + len(schedule_s)` attempts. With a
    `scheduler` the notifier shares it (and leaves stopping it to its owner); without one it
    runs its own at `time_scale`."""

    def __init__(
        self,
        *,
        clock: Clock,
        schedule_s: Sequence[float],
        attempt_timeout_s: float,
        name: str,
        time_scale: float = 1.0,
        scheduler: Scheduler | None = None,
    ) -> None:
        self._clock, self._schedule_s = clock, tuple(schedule_s)
        self._owns_scheduler = scheduler is None
        self._scheduler = scheduler or Scheduler(time_scale=time_scale, name=name)
        self._http = httpx.Client(timeout=attempt_timeout_s)
        self._attempts: deque[A] = deque(maxlen=MAX_ATTEMPTS_KEPT)
        self._lock = threading.Lock()

    @abstractmethod
    def _headers(self, delivery: D) -> dict[str, str]:
        """The headers of one attempt (signed afresh if the channel signs each attempt)."""

    @abstractmethod
    def _record(self, delivery: D, outcome: AttemptRecord) -> A:
        """The channel's attempt record: `outcome` plus the delivery's ids."""

    @abstractmethod
    def _filed_under(self, attempt: A) -> str:
        """The id `attempts(...)` selects on: an order number, a transfer id."""

    def submit(self, delivery: D, delay_s: float = 0.0) -> None:
        """Deliver after `delay_s` sandbox seconds, then retry on the schedule."""
        self._scheduler.later(delay_s, lambda: self._attempt(delivery, 1))

    def attempts(self, filed_under: str | None = None) -> list[A]:
        """Every attempt kept (the last `MAX_ATTEMPTS_KEPT`), oldest first; or one id's."""
        with self._lock:
            return [a for a in self._attempts if filed_under in (None, self._filed_under(a))]

    def pending(self) -> int:
        return self._scheduler.pending()

    def stop(self) -> None:
        if self._owns_scheduler:
            self._scheduler.stop()
        self._http.close()

    def _attempt(self, delivery: D, attempt: int) -> None:
        status_code, answer, error = None, b"", None
        try:
            response = self._http.post(
                delivery.url, content=delivery.body, headers=self._headers(delivery)
            )
            status_code, answer = response.status_code, response.content[:ANSWER_BYTES_KEPT]
        except httpx.HTTPError as failure:
            error = repr(failure)
        outcome = AttemptRecord(
            url=delivery.url,
            attempt=attempt,
            at=self._clock.now(),
            status_code=status_code,
            answer=answer,
            error=error,
        )
        record = self._record(delivery, outcome)
        with self._lock:
            self._attempts.append(record)
        retries_used = attempt - 1
        if record.delivered or retries_used >= len(self._schedule_s) or self._scheduler.stopping:
            return
        self._scheduler.later(
            self._schedule_s[retries_used], lambda: self._attempt(delivery, attempt + 1)
        )
