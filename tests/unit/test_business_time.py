from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudpay.kernel.business_time import (
    SHANGHAI,
    business_date,
    day_bounds_utc,
    format_shanghai,
    parse_shanghai,
    to_shanghai,
)

utc_instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def test_an_instant_at_16_00_utc_is_the_next_shanghai_day() -> None:
    """Shanghai midnight is 16:00 UTC, so the business date flips there, not at UTC midnight."""
    assert business_date(datetime(2026, 11, 25, 15, 59, 59, 999999, tzinfo=UTC)) == date(
        2026, 11, 25
    )
    assert business_date(datetime(2026, 11, 25, 16, 0, tzinfo=UTC)) == date(2026, 11, 26)
    assert business_date(datetime(2026, 12, 31, 16, 0, tzinfo=UTC)) == date(2027, 1, 1)


def test_day_bounds_run_from_16_00_utc_the_day_before() -> None:
    """A Shanghai business day is [16:00 UTC the previous day, 16:00 UTC) in UTC."""
    start, end = day_bounds_utc(date(2026, 11, 26))
    assert start == datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 26, 16, 0, tzinfo=UTC)
    assert start.tzinfo is UTC
    assert end.tzinfo is UTC


@given(utc_instants)
def test_every_instant_lies_within_the_bounds_of_its_business_date(instant: datetime) -> None:
    """business_date and day_bounds_utc agree: start inclusive, end exclusive, 24 hours long."""
    start, end = day_bounds_utc(business_date(instant))
    assert start <= instant < end
    assert end - start == timedelta(hours=24)
    assert business_date(start) == business_date(instant)
    assert business_date(end) == business_date(instant) + timedelta(days=1)


def test_to_shanghai_keeps_the_instant_and_changes_the_wall_time() -> None:
    """Conversion to Shanghai time is the same instant eight hours ahead on the wall."""
    instant = datetime(2026, 11, 25, 15, 59, 59, tzinfo=UTC)
    local = to_shanghai(instant)
    assert local == instant
    assert local.tzinfo is SHANGHAI
    assert (local.hour, local.minute) == (23, 59)


def test_format_shanghai_prints_the_wall_time_channels_use() -> None:
    """Formatting gives "YYYY-MM-DD HH:MM:SS" in Shanghai time."""
    assert format_shanghai(datetime(2026, 11, 25, 15, 59, 59, tzinfo=UTC)) == "2026-11-25 23:59:59"
    assert format_shanghai(datetime(2026, 11, 25, 16, 0, 0, tzinfo=UTC)) == "2026-11-26 00:00:00"


@given(utc_instants)
def test_format_then_parse_round_trips_to_the_second(instant: datetime) -> None:
    """Parsing a formatted Shanghai wall time gives back the UTC instant, to the second."""
    assert parse_shanghai(format_shanghai(instant)) == instant.replace(microsecond=0)


def test_naive_datetimes_and_datetimes_as_dates_are_refused() -> None:
    """Naive instants have no defined business date; a datetime is not a business date."""
    naive = datetime(2026, 11, 25, 16, 0)
    for convert in (business_date, to_shanghai, format_shanghai):
        with pytest.raises(ValueError, match="naive"):
            convert(naive)
    with pytest.raises(TypeError):
        day_bounds_utc(datetime(2026, 11, 26, tzinfo=UTC))
