"""The injected source of time.

Services receive a `Clock` instead of calling `datetime.now()`, so tests move time with a
`FixedClock` and production uses `SystemClock`. Both are UTC and never go backwards per
instance: a wall clock stepped back by NTP must not make a hold expire before it was placed
or order two postings the wrong way round.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER_MICROSECOND = 1_000


@runtime_checkable
class Clock(Protocol):
    """UTC time that never decreases for a given clock."""

    def now(self) -> datetime:
        """A timezone-aware UTC datetime (microsecond resolution)."""
        ...

    def now_ns(self) -> int:
        """Nanoseconds since the Unix epoch, UTC; non-decreasing across calls."""
        ...


def require_utc(instant: datetime) -> datetime:
    """`instant` converted to UTC; a naive datetime is refused, its zone being a guess."""
    if not isinstance(instant, datetime):
        raise TypeError(f"expected a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime refused: {instant.isoformat()} has no time zone")
    return instant.astimezone(UTC)


def datetime_from_ns(epoch_ns: int) -> datetime:
    """The UTC datetime of `epoch_ns`, truncated to microseconds (integer maths, no floats)."""
    return _EPOCH + timedelta(microseconds=epoch_ns // _NS_PER_MICROSECOND)


def ns_from_datetime(instant: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime, exact."""
    return (require_utc(instant) - _EPOCH) // timedelta(microseconds=1) * _NS_PER_MICROSECOND


class SystemClock:
    """The machine's wall clock, held back rather than ever reported going backwards."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ns = 0

    def now_ns(self) -> int:
        with self._lock:
            self._last_ns = max(self._last_ns, time.time_ns())
            return self._last_ns

    def now(self) -> datetime:
        return datetime_from_ns(self.now_ns())


class FixedClock:
    """A clock for tests: stands still until `set` or `advance` moves it forward."""

    DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._ns = ns_from_datetime(start)

    def now_ns(self) -> int:
        return self._ns

    def now(self) -> datetime:
        return datetime_from_ns(self._ns)

    def set(self, instant: datetime) -> None:
        """Jump to `instant`; going backwards is refused, as the Clock contract forbids it."""
        target_ns = ns_from_datetime(instant)
        if target_ns < self._ns:
            raise ValueError(f"FixedClock cannot go back to {instant.isoformat()}")
        self._ns = target_ns

    def advance(
        self, seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0
    ) -> datetime:
        """Move forward by the given amount and return the new now."""
        step = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if step < timedelta(0):
            raise ValueError("FixedClock cannot advance by a negative amount")
        self._ns += step // timedelta(microseconds=1) * _NS_PER_MICROSECOND
        return self.now()
