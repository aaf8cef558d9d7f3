"""Business time: instants are stored in UTC, business dates are Asia/Shanghai dates.

A bill day, a settlement day (T+1) or a daily limit is a Shanghai calendar day, which runs
from 16:00 UTC the day before to 16:00 UTC. These helpers are the only place that converts,
so no code computes a business date from a UTC date by accident.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Loaded from the `tzdata` package when the OS has no zoneinfo database (slim images).
SHANGHAI = ZoneInfo("Asia/Shanghai")

SHANGHAI_FORMAT = "%Y-%m-%d %H:%M:%S"


def _require_aware(instant: datetime) -> datetime:
    if not isinstance(instant, datetime):
        raise TypeError(f"expected a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime refused: {instant.isoformat()} has no time zone")
    return instant


def _require_date(day: date) -> date:
    # datetime is a date subclass; taking its date silently would drop the time zone question.
    if not isinstance(day, date) or isinstance(day, datetime):
        raise TypeError(f"expected a date, got {type(day).__name__}")
    return day


def to_shanghai(instant: datetime) -> datetime:
    """The same instant expressed in Shanghai time."""
    return _require_aware(instant).astimezone(SHANGHAI)


def business_date(instant: datetime) -> date:
    """The Shanghai calendar date on which `instant` falls."""
    return to_shanghai(instant).date()


def day_bounds_utc(day: date) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of Shanghai business day `day`."""
    _require_date(day)
    start = datetime.combine(day, time.min, tzinfo=SHANGHAI)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=SHANGHAI)
    return start.astimezone(UTC), end.astimezone(UTC)


def format_shanghai(instant: datetime) -> str:
    """Shanghai wall time as channels and statements print it: "2026-11-25 23:59:59"."""
    return to_shanghai(instant).strftime(SHANGHAI_FORMAT)


def parse_shanghai(text: str) -> datetime:
    """Read a "2026-11-25 23:59:59" Shanghai wall time (as in Alipay bills) as a UTC instant."""
    wall_time = datetime.strptime(text, SHANGHAI_FORMAT)
    return wall_time.replace(tzinfo=SHANGHAI).astimezone(UTC)
