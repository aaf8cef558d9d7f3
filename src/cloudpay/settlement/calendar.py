"""The business-day calendar and settlement cycles (结算周期): what "T+1" means on a date.

A business day (工作日) is a Monday–Friday that is not a public holiday, or a weekend day the
State Council has made a workday (调休上班). The holidays are a table, configured per year
from the State Council's notice, never computed: the lunar festivals and the 调休 swaps are
decided by decree each November for the following year.

Cycles, in the words acquirers use:
- T+N: paid on the N-th business day after the trade date (N ≥ 1). A trade on a Saturday
  settles like one on the Friday before: the first business day after it is T+1.
- D+N: paid N natural (calendar) days after the trade date, holidays included; D+0 is the
  same day, the "instant settlement" merchants pay an extra fee for (see `FeePlan`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Final

from cloudpay.settlement.errors import CalendarInvalid, SettlementCycleInvalid

# A bound on every walk through the calendar: longer than the longest cycle or holiday run
# anyone would configure, short enough that a typo cannot spin for long.
MAX_BUSINESS_DAYS_STEP: Final = 366
MAX_CYCLE_DAYS: Final = 30


def _require_date(day: date) -> date:
    # datetime is a date subclass whose time zone question must be answered first
    # (`cloudpay.kernel.business_time.business_date`), so it is refused here.
    if type(day) is not date:
        raise TypeError(f"expected a date, got {type(day).__name__}")
    return day


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Holidays and extra workdays (调休) over the Monday–Friday week."""

    holidays: frozenset[date]
    extra_workdays: frozenset[date]

    def __post_init__(self) -> None:
        for day in self.holidays | self.extra_workdays:
            _require_date(day)
        both = sorted(self.holidays & self.extra_workdays)
        if both:
            raise CalendarInvalid(
                f"{both[0].isoformat()} is both a holiday and an extra workday",
                param="extra_workdays",
            )

    def is_business_day(self, day: date) -> bool:
        """Workday by decree, else not a holiday and not a weekend."""
        _require_date(day)
        if day in self.extra_workdays:
            return True
        return day not in self.holidays and day.weekday() < 5

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after `day`."""
        candidate = day
        for _ in range(MAX_BUSINESS_DAYS_STEP):
            candidate += timedelta(days=1)
            if self.is_business_day(candidate):
                return candidate
        raise CalendarInvalid(
            f"no business day within {MAX_BUSINESS_DAYS_STEP} days after {day.isoformat()}",
            param="holidays",
        )

    def add_business_days(self, day: date, count: int) -> date:
        """The `count`-th business day after `day`.

        `count == 0` gives `day` itself when it is a business day, else the next business day
        (a payout due on a holiday is made on the next day the banks work).
        """
        _require_date(day)
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"count must be an int, got {type(count).__name__}")
        if not 0 <= count <= MAX_BUSINESS_DAYS_STEP:
            raise CalendarInvalid(
                f"business days to add must be 0 to {MAX_BUSINESS_DAYS_STEP}", param="count"
            )
        if count == 0:
            return day if self.is_business_day(day) else self.next_business_day(day)
        result = day
        for _ in range(count):
            result = self.next_business_day(result)
        return result


class CycleKind(StrEnum):
    TRADE_DAYS = "T"  # business days
    NATURAL_DAYS = "D"  # calendar days


@dataclass(frozen=True, slots=True)
class SettlementCycle:
    """T+N or D+N; `SettlementCycle.parse("T+1")`."""

    kind: CycleKind
    days: int

    def __post_init__(self) -> None:
        if isinstance(self.days, bool) or not isinstance(self.days, int):
            raise TypeError(f"days must be an int, got {type(self.days).__name__}")
        lowest = 1 if self.kind is CycleKind.TRADE_DAYS else 0
        if not lowest <= self.days <= MAX_CYCLE_DAYS:
            raise SettlementCycleInvalid(
                f"{self.kind.value}+N needs {lowest} ≤ N ≤ {MAX_CYCLE_DAYS}", param="cycle"
            )

    @classmethod
    def parse(cls, text: str) -> SettlementCycle:
        kind_text, plus, days_text = text.strip().upper().partition("+")
        if not plus or kind_text not in ("T", "D") or not days_text.isascii():
            raise SettlementCycleInvalid(f"cycle {text!r} is not T+N or D+N", param="cycle")
        if not days_text.isdigit() or len(days_text) > 2:
            raise SettlementCycleInvalid(f"cycle {text!r} is not T+N or D+N", param="cycle")
        return cls(CycleKind(kind_text), int(days_text))

    @property
    def is_same_day(self) -> bool:
        return self.kind is CycleKind.NATURAL_DAYS and self.days == 0

    def __str__(self) -> str:
        return f"{self.kind.value}+{self.days}"


T1: Final = SettlementCycle(CycleKind.TRADE_DAYS, 1)  # the default cycle
D0: Final = SettlementCycle(CycleKind.NATURAL_DAYS, 0)


def settlement_date(calendar: BusinessCalendar, cycle: SettlementCycle, trade_date: date) -> date:
    """The date a trade of `trade_date` is paid out under `cycle`."""
    _require_date(trade_date)
    if cycle.kind is CycleKind.NATURAL_DAYS:
        return trade_date + timedelta(days=cycle.days)
    result = trade_date
    for _ in range(cycle.days):
        result = calendar.next_business_day(result)
    return result


def _days(first: date, last: date) -> frozenset[date]:
    return frozenset(first + timedelta(days=n) for n in range((last - first).days + 1))


# 国务院办公厅关于2026年部分节假日安排的通知 (published 2025-11-04 by Xinhua), full text:
# https://politics.gmw.cn/2025-11/04/content_38391083.htm — holidays with their 调休 workdays.
CHINA_2026_HOLIDAYS: Final = frozenset[date]().union(
    _days(date(2026, 1, 1), date(2026, 1, 3)),  # 元旦
    _days(date(2026, 2, 15), date(2026, 2, 23)),  # 春节
    _days(date(2026, 4, 4), date(2026, 4, 6)),  # 清明节
    _days(date(2026, 5, 1), date(2026, 5, 5)),  # 劳动节
    _days(date(2026, 6, 19), date(2026, 6, 21)),  # 端午节
    _days(date(2026, 9, 25), date(2026, 9, 27)),  # 中秋节
    _days(date(2026, 10, 1), date(2026, 10, 7)),  # 国庆节
)
CHINA_2026_EXTRA_WORKDAYS: Final = frozenset(
    {
        date(2026, 1, 4),  # Sunday, for 元旦
        date(2026, 2, 14),  # Saturday, for 春节
        date(2026, 2, 28),  # Saturday, for 春节
        date(2026, 5, 9),  # Saturday, for 劳动节
        date(2026, 9, 20),  # Sunday, for 国庆节
        date(2026, 10, 10),  # Saturday, for 国庆节
    }
)
CHINA_2026: Final = BusinessCalendar(CHINA_2026_HOLIDAYS, CHINA_2026_EXTRA_WORKDAYS)
"""China's 2026 business days. Outside 2026 it knows only weekends: add next year's notice."""
