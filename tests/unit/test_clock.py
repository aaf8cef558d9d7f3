from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudpay.kernel.clock import (
    Clock,
    FixedClock,
    SystemClock,
    datetime_from_ns,
    ns_from_datetime,
    require_utc,
)

SHANGHAI_OFFSET = timezone(timedelta(hours=8))


def test_both_clocks_satisfy_the_clock_protocol() -> None:
    """SystemClock and FixedClock can be injected wherever a Clock is expected."""
    clocks: list[Clock] = [SystemClock(), FixedClock()]
    assert all(isinstance(clock, Clock) for clock in clocks)


def test_system_clock_reports_aware_utc_near_the_real_time() -> None:
    """SystemClock.now() is timezone-aware UTC and agrees with the machine clock."""
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_system_clock_never_goes_backwards_across_threads() -> None:
    """now_ns() is non-decreasing for one clock, even when read from several threads."""
    clock = SystemClock()
    readings: list[list[int]] = [[] for _ in range(4)]

    def read(into: list[int]) -> None:
        into.extend(clock.now_ns() for _ in range(2000))

    threads = [threading.Thread(target=read, args=(into,)) for into in readings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for into in readings:
        assert into == sorted(into)


def test_system_clock_holds_back_when_the_wall_clock_steps_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An NTP step backwards is absorbed: the clock repeats its last reading instead."""
    wall = iter([2_000, 1_000, 3_000])
    monkeypatch.setattr("cloudpay.kernel.clock.time.time_ns", lambda: next(wall))
    clock = SystemClock()
    assert [clock.now_ns(), clock.now_ns(), clock.now_ns()] == [2_000, 2_000, 3_000]


def test_fixed_clock_stands_still_until_moved() -> None:
    """A FixedClock returns the same instant until advanced, in UTC."""
    clock = FixedClock(datetime(2026, 11, 25, 15, 59, 59, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2026, 11, 25, 15, 59, 59, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    assert clock.now_ns() == ns_from_datetime(clock.now())


def test_fixed_clock_defaults_to_a_documented_instant() -> None:
    """Without a start the FixedClock begins at FixedClock.DEFAULT_START."""
    assert FixedClock().now() == FixedClock.DEFAULT_START


def test_fixed_clock_advances_by_seconds_minutes_hours_and_days() -> None:
    """advance() moves forward by the sum of its arguments and returns the new now."""
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.advance(1.5) == datetime(2026, 1, 1, 0, 0, 1, 500_000, tzinfo=UTC)
    clock.advance(seconds=30, minutes=1, hours=1, days=1)
    assert clock.now() == datetime(2026, 1, 2, 1, 1, 31, 500_000, tzinfo=UTC)


def test_fixed_clock_converts_aware_input_to_utc() -> None:
    """A start or set time in another zone is stored as the same instant in UTC."""
    clock = FixedClock(datetime(2026, 11, 26, 0, 0, tzinfo=SHANGHAI_OFFSET))
    assert clock.now() == datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC
    clock.set(datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI_OFFSET))
    assert clock.now() == datetime(2026, 11, 26, 1, 0, tzinfo=UTC)


def test_fixed_clock_refuses_to_go_backwards() -> None:
    """set() to an earlier instant and negative advance() break the Clock contract and fail."""
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="back"):
        clock.set(datetime(2025, 12, 31, tzinfo=UTC))
    with pytest.raises(ValueError, match="negative"):
        clock.advance(-1)
    assert clock.now() == datetime(2026, 1, 1, tzinfo=UTC)


def test_naive_datetimes_are_refused() -> None:
    """A datetime without a zone is refused wherever a clock takes one."""
    naive = datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="naive"):
        FixedClock(naive)
    with pytest.raises(ValueError, match="naive"):
        FixedClock().set(datetime(2027, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        require_utc(naive)


@given(st.datetimes(timezones=st.just(UTC), min_value=datetime(1970, 1, 1)))
def test_datetime_and_nanoseconds_round_trip(instant: datetime) -> None:
    """Converting a UTC datetime to epoch nanoseconds and back is exact (no floats)."""
    assert datetime_from_ns(ns_from_datetime(instant)) == instant
