"""Route health: a circuit breaker per route over its recent channel calls.

Each process keeps its own board, as Envoy's outlier detection and Hystrix do: a failing
route is noticed by the callers that suffer it, with no shared hot row to update on every
call. Transitions (not every call) are reported to a listener, which persists them so
operators see them: transitions queue up in the board and the caller drains them into the
database outside its transaction (`drain_transitions`), never from inside one.

States (Martin Fowler's CircuitBreaker, with a sliding window):
- closed: calls flow; the last `window` outcomes are kept. At `min_samples` or more, a
  failure rate ≥ `failure_rate_to_open`, or `consecutive_to_open` failures in a row, opens it.
- open: the route is skipped for `open_for_s`.
- half-open: after that, `probes` calls are let through; a success closes the circuit (a
  fresh window), a failure opens it again for another `open_for_s`.

A failure is the channel being unavailable or not answering (timeout). A business refusal
(insufficient funds, closed order) is a success here: the channel is up and answering.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cloudpay.kernel.clock import Clock


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    window: int = 20
    min_samples: int = 5
    failure_rate_to_open: float = 0.5  # a ratio of counts, not money
    consecutive_to_open: int = 3
    open_for_s: float = 30.0
    probes: int = 1


@dataclass(frozen=True)
class HealthSnapshot:
    route_id: str
    state: CircuitState
    samples: int
    failures: int
    consecutive_failures: int
    opened_until: datetime | None
    last_error: str | None
    changed_at: datetime | None

    @property
    def success_rate_pct(self) -> int | None:
        if not self.samples:
            return None
        return round(100 * (self.samples - self.failures) / self.samples)

    def as_dict(self) -> dict[str, Any]:
        return {
            "route_id": self.route_id, "state": self.state.value, "samples": self.samples,
            "failures": self.failures, "success_rate_pct": self.success_rate_pct,
            "consecutive_failures": self.consecutive_failures,
            "opened_until": self.opened_until.isoformat() if self.opened_until else None,
            "last_error": self.last_error,
            "changed_at": self.changed_at.isoformat() if self.changed_at else None,
        }  # fmt: skip


@dataclass
class _Breaker:
    policy: BreakerPolicy
    outcomes: deque[bool] = field(default_factory=deque)  # True = failure
    state: CircuitState = CircuitState.CLOSED
    consecutive: int = 0
    opened_until: datetime | None = None
    probes_in_flight: int = 0
    last_error: str | None = None
    changed_at: datetime | None = None

    def allows(self, now: datetime) -> bool:
        if self.state is CircuitState.OPEN and self.opened_until and now >= self.opened_until:
            self._move(CircuitState.HALF_OPEN, now)
        if self.state is CircuitState.HALF_OPEN:
            return self.probes_in_flight < self.policy.probes
        return self.state is CircuitState.CLOSED

    def begin(self) -> None:
        if self.state is CircuitState.HALF_OPEN:
            self.probes_in_flight += 1

    def record(self, failed: bool, now: datetime, error: str | None) -> None:
        if self.state is CircuitState.HALF_OPEN:
            self.probes_in_flight = max(0, self.probes_in_flight - 1)
            if failed:
                self._open(now, error)
            else:
                self.outcomes.clear()
                self.consecutive = 0
                self._move(CircuitState.CLOSED, now)
            return
        self.outcomes.append(failed)
        while len(self.outcomes) > self.policy.window:
            self.outcomes.popleft()
        self.consecutive = self.consecutive + 1 if failed else 0
        if failed:
            self.last_error = error
        if self.state is CircuitState.CLOSED and self._should_open():
            self._open(now, error)

    def _should_open(self) -> bool:
        failures = sum(self.outcomes)
        by_rate = len(
            self.outcomes
        ) >= self.policy.min_samples and failures >= self.policy.failure_rate_to_open * len(
            self.outcomes
        )
        return by_rate or self.consecutive >= self.policy.consecutive_to_open

    def _open(self, now: datetime, error: str | None) -> None:
        self.opened_until = now + timedelta(seconds=self.policy.open_for_s)
        self.last_error = error
        self._move(CircuitState.OPEN, now)

    def _move(self, state: CircuitState, now: datetime) -> None:
        self.state, self.changed_at = state, now
        if state is not CircuitState.HALF_OPEN:
            self.probes_in_flight = 0

    def snapshot(self, route_id: str) -> HealthSnapshot:
        return HealthSnapshot(
            route_id=route_id, state=self.state, samples=len(self.outcomes),
            failures=sum(self.outcomes), consecutive_failures=self.consecutive,
            opened_until=self.opened_until if self.state is CircuitState.OPEN else None,
            last_error=self.last_error, changed_at=self.changed_at,
        )  # fmt: skip


class HealthBoard:
    """This process's breakers, one per route; thread-safe."""

    MAX_PENDING = 1_000  # transitions waiting to be written; older ones are dropped first

    def __init__(self, clock: Clock, policy: BreakerPolicy | None = None) -> None:
        self.clock, self.policy = clock, policy or BreakerPolicy()
        self._pending: deque[HealthSnapshot] = deque(maxlen=self.MAX_PENDING)
        self._breakers: dict[str, _Breaker] = {}
        self._lock = threading.Lock()

    def _breaker(self, route_id: str) -> _Breaker:
        return self._breakers.setdefault(route_id, _Breaker(self.policy))

    def is_open(self, route_id: str) -> bool:
        """True while the route must be skipped (open, or half-open with its probe out)."""
        with self._lock:
            breaker = self._breaker(route_id)
            before = breaker.state
            allowed = breaker.allows(self.clock.now())
            if breaker.state is not before:
                self._pending.append(breaker.snapshot(route_id))
        return not allowed

    def begin_call(self, route_id: str) -> None:
        with self._lock:
            self._breaker(route_id).begin()

    def record(self, route_id: str, *, failed: bool, error: str | None = None) -> None:
        with self._lock:
            breaker = self._breaker(route_id)
            before = breaker.state
            breaker.record(failed, self.clock.now(), error)
            if breaker.state is not before:
                self._pending.append(breaker.snapshot(route_id))

    def snapshot(self, route_id: str) -> HealthSnapshot:
        with self._lock:
            return self._breaker(route_id).snapshot(route_id)

    def open_circuits(self, route_ids: list[str]) -> dict[str, bool]:
        return {route_id: self.is_open(route_id) for route_id in route_ids}

    def drain_transitions(self) -> list[HealthSnapshot]:
        """Transitions since the last drain, oldest first, for the caller to persist."""
        with self._lock:
            drained = list(self._pending)
            self._pending.clear()
        return drained
