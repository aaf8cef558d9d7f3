"""Business days and settlement cycles on China's 2026 calendar (holidays and 调休 workdays)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudpay.settlement import (
    CHINA_2026,
    D0,
    T1,
    BusinessCalendar,
    CalendarInvalid,
    CycleKind,
    SettlementCycle,
    SettlementCycleInvalid,
    settlement_date,
)
from cloudpay.settlement.calendar import CHINA_2026_EXTRA_WORKDAYS, CHINA_2026_HOLIDAYS

days_2025_to_2027 = st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31))


def test_the_2026_table_matches_the_state_council_notice() -> None:
    """33 holiday days in seven runs and six 调休 workdays, every one of them a weekend day."""
    assert len(CHINA_2026_HOLIDAYS) == 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert date(2026, 2, 15) in CHINA_2026_HOLIDAYS
    assert date(2026, 2, 23) in CHINA_2026_HOLIDAYS
    assert all(day.weekday() >= 5 for day in CHINA_2026_EXTRA_WORKDAYS)
    assert len(CHINA_2026_EXTRA_WORKDAYS) == 6


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 11, 25), True),  # an ordinary Wednesday
        (date(2026, 11, 28), False),  # an ordinary Saturday
        (date(2026, 1, 1), False),  # 元旦, a Thursday
        (date(2026, 1, 4), True),  # Sunday made a workday for 元旦
        (date(2026, 2, 14), True),  # Saturday made a workday for 春节
        (date(2026, 2, 23), False),  # Monday, last day of 春节
        (date(2026, 10, 10), True),  # Saturday made a workday for 国庆
        (date(2026, 10, 7), False),  # Wednesday, last day of 国庆
    ],
)
def test_is_business_day(day: date, expected: bool) -> None:
    """Weekends, holidays and 调休 workdays are told apart."""
    assert CHINA_2026.is_business_day(day) is expected


@pytest.mark.parametrize(
    ("trade_date", "cycle", "expected"),
    [
        (date(2026, 11, 25), "T+1", date(2026, 11, 26)),  # Wednesday → Thursday
        (date(2026, 11, 27), "T+1", date(2026, 11, 30)),  # Friday → Monday
        (date(2026, 11, 28), "T+1", date(2026, 11, 30)),  # Saturday → Monday
        (date(2026, 2, 13), "T+1", date(2026, 2, 14)),  # Friday → the 调休 Saturday
        (date(2026, 2, 13), "T+2", date(2026, 2, 24)),  # over the Spring Festival
        (date(2026, 9, 30), "T+1", date(2026, 10, 8)),  # over National Day
        (date(2026, 9, 24), "T+1", date(2026, 9, 28)),  # over Mid-Autumn
        (date(2026, 4, 3), "T+3", date(2026, 4, 9)),  # over Qingming: 7, 8, 9
        (date(2026, 10, 1), "D+0", date(2026, 10, 1)),  # D+0 pays on holidays too
        (date(2026, 10, 1), "D+1", date(2026, 10, 2)),
        (date(2026, 12, 31), "T+1", date(2027, 1, 1)),  # outside the table: weekends only
    ],
)
def test_settlement_date(trade_date: date, cycle: str, expected: date) -> None:
    """T+N counts business days after the trade date; D+N counts calendar days."""
    assert settlement_date(CHINA_2026, SettlementCycle.parse(cycle), trade_date) == expected


def test_adding_zero_business_days_rolls_a_holiday_forward() -> None:
    """Zero days from a business day is that day; from a holiday, the next business day."""
    assert CHINA_2026.add_business_days(date(2026, 11, 25), 0) == date(2026, 11, 25)
    assert CHINA_2026.add_business_days(date(2026, 2, 21), 0) == date(2026, 2, 24)
    assert CHINA_2026.add_business_days(date(2026, 2, 12), 2) == date(2026, 2, 14)


def test_cycles_parse_and_print() -> None:
    """The default cycle T+1 and the same-day D+0 parse from text and print back."""
    assert SettlementCycle.parse("T+1") == T1
    assert SettlementCycle.parse(" d+0 ") == D0
    assert D0.is_same_day
    assert str(SettlementCycle(CycleKind.TRADE_DAYS, 3)) == "T+3"


@pytest.mark.parametrize("text", ["T+0", "T+31", "D+31", "X+1", "T1", "T+-1", "T+", "T+١"])
def test_bad_cycles_are_refused(text: str) -> None:
    """T+0, out-of-range days and anything not T+N or D+N are `settlement_cycle_invalid`."""
    with pytest.raises(SettlementCycleInvalid) as caught:
        SettlementCycle.parse(text)
    assert caught.value.code == "settlement_cycle_invalid"


def test_calendar_refuses_contradictions_and_runaway_steps() -> None:
    """A day both holiday and workday, or a negative or huge step count, is a 400."""
    with pytest.raises(CalendarInvalid):
        BusinessCalendar(frozenset({date(2026, 1, 1)}), frozenset({date(2026, 1, 1)}))
    with pytest.raises(CalendarInvalid):
        CHINA_2026.add_business_days(date(2026, 1, 5), -1)
    with pytest.raises(CalendarInvalid):
        CHINA_2026.add_business_days(date(2026, 1, 5), 367)
    every_day = frozenset(date(2026, 1, 1) + timedelta(days=n) for n in range(400))
    with pytest.raises(CalendarInvalid):
        BusinessCalendar(every_day, frozenset()).next_business_day(date(2026, 1, 1))


def test_datetimes_are_not_dates() -> None:
    """A datetime must be turned into a Shanghai business date first, never truncated here."""
    with pytest.raises(TypeError):
        CHINA_2026.is_business_day(datetime(2026, 1, 5, 12))


@given(day=days_2025_to_2027, days=st.integers(1, 10))
def test_t_plus_n_is_a_business_day_after_the_trade_date(day: date, days: int) -> None:
    """T+N is always a business day, later than the trade date, with N business days in between."""
    paid_on = settlement_date(CHINA_2026, SettlementCycle(CycleKind.TRADE_DAYS, days), day)
    assert paid_on > day
    assert CHINA_2026.is_business_day(paid_on)
    span = [day + timedelta(days=n) for n in range(1, (paid_on - day).days + 1)]
    assert sum(CHINA_2026.is_business_day(d) for d in span) == days


@given(day=days_2025_to_2027)
def test_adding_zero_to_a_business_day_is_itself(day: date) -> None:
    """add_business_days(d, 0) is d on business days and the next business day otherwise."""
    result = CHINA_2026.add_business_days(day, 0)
    if CHINA_2026.is_business_day(day):
        assert result == day
    else:
        assert result == CHINA_2026.next_business_day(day) > day


@given(day=days_2025_to_2027, days=st.integers(0, 30))
def test_d_plus_n_is_n_calendar_days(day: date, days: int) -> None:
    """D+N ignores the calendar: N natural days later."""
    cycle = SettlementCycle(CycleKind.NATURAL_DAYS, days)
    assert settlement_date(CHINA_2026, cycle, day) == day + timedelta(days=days)
