"""Points, pure: earning by rule and multiplier windows, paying part of a payment with points,
and first-in-first-out lots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudpay.marketing.errors import InvalidCampaign
from cloudpay.marketing.points_model import (
    EarnRule,
    MultiplierWindow,
    PointsLot,
    check_earn_rule,
    multiplier_at,
    points_earned,
    points_tender,
    take_first_in_first_out,
)

NOON = datetime(2026, 5, 1, 4, tzinfo=UTC)
DOUBLE_DAY = MultiplierWindow(NOON - timedelta(hours=4), NOON + timedelta(hours=20), 20_000)
TRIPLE_HOUR = MultiplierWindow(NOON, NOON + timedelta(hours=1), 30_000)
RULE = EarnRule("mch_1", points_per_yuan=2, validity_days=365, windows=(DOUBLE_DAY, TRIPLE_HOUR))


def test_points_are_per_yuan_times_the_open_multiplier() -> None:
    """2 points a yuan, pro rata: 12.34 yuan earns 24 outside windows, 49 on the double day,
    74 in the triple hour (the highest open window wins); rounding is down, once."""
    assert points_earned(RULE, 1_234, NOON - timedelta(days=1)) == 24
    assert points_earned(RULE, 1_234, NOON - timedelta(hours=1)) == 49
    assert points_earned(RULE, 1_234, NOON + timedelta(minutes=30)) == 74
    assert points_earned(RULE, 0, NOON) == 0


def test_a_window_is_half_open() -> None:
    """A window covers its start and not its end."""
    assert multiplier_at([TRIPLE_HOUR], TRIPLE_HOUR.starts_at) == 30_000
    assert multiplier_at([TRIPLE_HOUR], TRIPLE_HOUR.ends_at) == 10_000


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"points_per_yuan": 0}, "points_per_yuan"),
        ({"validity_days": 0}, "validity_days"),
        ({"windows": (MultiplierWindow(NOON, NOON, 20_000),)}, "multipliers"),
        ({"windows": (MultiplierWindow(NOON, NOON + timedelta(1), 5_000),)}, "multipliers"),
    ],
)
def test_bad_earn_rules_are_refused(changes: dict[str, object], param: str) -> None:
    """Zero rates, empty windows and multipliers below 1× are refused, naming the field."""
    fields: dict[str, object] = {"merchant_id": "mch_1", "points_per_yuan": 1, "validity_days": 1}
    fields.update(changes)
    with pytest.raises(InvalidCampaign) as refused:
        check_earn_rule(EarnRule(**fields))  # type: ignore[arg-type]
    assert refused.value.param == param


@given(st.integers(1, 10**8), st.integers(0, 10**8), st.integers(1, 1_000), st.integers(0, 10_000))
def test_points_never_buy_more_than_they_are_worth(
    amount: int, held: int, rate: int, share_bp: int
) -> None:
    """The tender never spends more points than held, covers no more than the share allowed,
    leaves at least 1 fen to pay, and the points spent are worth at least the fen covered."""
    tender = points_tender(amount, held, points_per_yuan_redeemed=rate, max_share_bp=share_bp)
    assert 0 <= tender.points <= held
    assert 0 <= tender.covered_fen <= amount * share_bp // 10_000
    assert tender.covered_fen <= amount - 1
    assert tender.points * 100 >= tender.covered_fen * rate


def test_a_tender_example() -> None:
    """100 points a yuan, half the payment at most: 30 yuan with 1,234 points uses 1,234
    points for 12.34 yuan; with plenty of points it stops at 15 yuan."""
    small = points_tender(3_000, 1_234, points_per_yuan_redeemed=100, max_share_bp=5_000)
    assert (small.points, small.covered_fen) == (1_234, 1_234)
    large = points_tender(3_000, 10**6, points_per_yuan_redeemed=100, max_share_bp=5_000)
    assert (large.points, large.covered_fen) == (1_500, 1_500)


def _lot(lot_id: str, days_ago: int, remaining: int) -> PointsLot:
    earned = NOON - timedelta(days=days_ago)
    return PointsLot(lot_id, "ctz", "mch", remaining, remaining, earned, earned + timedelta(365))


def test_spending_takes_the_oldest_lots_first() -> None:
    """70 points from lots of 50 (oldest), 30, 40: all of the oldest, 20 of the next."""
    lots = [_lot("new", 1, 40), _lot("old", 9, 50), _lot("mid", 5, 30)]
    assert take_first_in_first_out(lots, 70) == [("old", 50), ("mid", 20)]
    assert take_first_in_first_out(lots, 0) == []
    with pytest.raises(ValueError, match="between"):
        take_first_in_first_out(lots, 121)
