"""The dashboard: today's totals by channel and a 30-day trend, in the reader's scope.

Platform-wide, closed business days come from `console_day_totals` (counted once their orders
can no longer change, two hours after midnight) so the trend reads a month of small rows, not
a month of orders; only today (and yesterday, in its first two hours) is counted live. A
scoped reader (an agent, a merchant) gets one grouped query over its own orders' index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from cloudpay import payments
from cloudpay.console import repository
from cloudpay.console.model import Permission, Scope, require, success_rate_basis_points
from cloudpay.console.service import Actor
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.business_time import business_date, day_bounds_utc

TREND_DAYS: Final = 30
# A closed day is cached once its orders can no longer change status (30-minute default
# expiry, plus the pollers' slack); a day cached earlier is counted again.
SETTLED_AFTER: Final = timedelta(hours=2)


@dataclass(frozen=True)
class ChannelRow:
    channel: str
    orders_count: int
    succeeded_count: int
    finished_count: int
    succeeded_amount: int
    success_rate_bp: int | None
    refunds_count: int
    refunded_amount: int


@dataclass(frozen=True)
class DayPoint:
    day: date
    succeeded_amount: int
    orders_count: int


@dataclass(frozen=True)
class Dashboard:
    today: date
    channels: list[ChannelRow]
    trend: list[DayPoint]

    @property
    def volume(self) -> int:
        return sum(row.succeeded_amount for row in self.channels)

    @property
    def orders_count(self) -> int:
        return sum(row.orders_count for row in self.channels)

    @property
    def refunded_amount(self) -> int:
        return sum(row.refunded_amount for row in self.channels)

    @property
    def success_rate_bp(self) -> int | None:
        return success_rate_basis_points(
            sum(row.succeeded_count for row in self.channels),
            sum(row.finished_count for row in self.channels),
        )


def _channel_row(totals: payments.ChannelTotals) -> ChannelRow:
    return ChannelRow(
        totals.channel, totals.orders_count, totals.succeeded_count, totals.finished_count,
        totals.succeeded_amount,
        success_rate_basis_points(totals.succeeded_count, totals.finished_count),
        totals.refunds_count, totals.refunded_amount,
    )  # fmt: skip


def _merchant_ids(scope: Scope) -> list[str] | None:
    return None if scope.merchant_ids is None else sorted(scope.merchant_ids)


def trend_days(now: datetime) -> list[date]:
    today = business_date(now)
    return [today - timedelta(days=back) for back in range(TREND_DAYS - 1, -1, -1)]


def _settled(day: date, instant: datetime) -> bool:
    return instant >= day_bounds_utc(day)[1] + SETTLED_AFTER


def _cached_settled(uow: UnitOfWork, days: list[date]) -> list[dict[str, Any]]:
    rows = repository.load_day_totals(uow.connection, [day.isoformat() for day in days])
    return [
        row for row in rows
        if _settled(date.fromisoformat(row["business_day"]), row["computed_at"])
    ]  # fmt: skip


def days_to_cache(uow: UnitOfWork) -> list[date]:
    """Settled days of the trend whose totals are not cached (or were cached too early)."""
    now = uow.clock.now()
    settled = [day for day in trend_days(now)[:-1] if _settled(day, now)]
    cached = {row["business_day"] for row in _cached_settled(uow, settled)}
    return [day for day in settled if day.isoformat() not in cached]


def cache_days(uow: UnitOfWork, days: list[date]) -> None:
    """Count `days` platform-wide in one grouped query and keep the rows (an empty day keeps
    a zero row, so it is not counted again)."""
    if not days:
        return
    now = uow.clock.now()
    start, end = day_bounds_utc(min(days))[0], day_bounds_utc(max(days))[1]
    found = payments.daily_totals(uow, start=start, end=end, merchant_ids=None)
    for day in days:
        key = day.isoformat()
        rows = [
            {"business_day": key, "channel": t.channel, "orders_count": t.orders_count,
             "succeeded_count": t.succeeded_count, "finished_count": t.finished_count,
             "succeeded_amount": t.succeeded_amount, "computed_at": now}
            for t in found if t.business_day == key
        ] or [{"business_day": key, "channel": "-", "orders_count": 0, "succeeded_count": 0,
               "finished_count": 0, "succeeded_amount": 0, "computed_at": now}]  # fmt: skip
        repository.replace_day_totals(uow.connection, key, rows)


def dashboard(uow: UnitOfWork, actor: Actor, scope: Scope) -> Dashboard:
    require(actor.role, Permission.VIEW_DASHBOARD)
    days = trend_days(uow.clock.now())
    today, past = days[-1], days[:-1]
    start, end = day_bounds_utc(today)
    ids = _merchant_ids(scope)
    totals = payments.channel_totals(uow, start=start, end=end, merchant_ids=ids)
    channels = [_channel_row(t) for t in totals]
    per_day: dict[str, tuple[int, int]] = {}
    if ids is None:
        for row in _cached_settled(uow, past):
            _add(per_day, row["business_day"], row["succeeded_amount"], row["orders_count"])
    missing = [day for day in past if day.isoformat() not in per_day]
    if missing:
        first, last = day_bounds_utc(missing[0])[0], day_bounds_utc(missing[-1])[1]
        live = payments.daily_totals(uow, start=first, end=last, merchant_ids=ids)
        wanted = {day.isoformat() for day in missing}
        for t in live:
            if t.business_day in wanted:
                _add(per_day, t.business_day, t.succeeded_amount, t.orders_count)
    trend = [DayPoint(day, *per_day.get(day.isoformat(), (0, 0))) for day in past]
    trend.append(DayPoint(today, sum(c.succeeded_amount for c in channels),
                          sum(c.orders_count for c in channels)))  # fmt: skip
    return Dashboard(today, channels, trend)


def _add(per_day: dict[str, tuple[int, int]], day: str, amount: int, count: int) -> None:
    previous_amount, previous_count = per_day.get(day, (0, 0))
    per_day[day] = (previous_amount + amount, previous_count + count)
