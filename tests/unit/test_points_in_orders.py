"""The pure arithmetic of points inside orders: value at the city's rate, refunded shares and
where given-back points return."""

from __future__ import annotations

import pytest

from cloudpay.marketing.points_model import points_for_value, points_value_fen, refunded_share
from cloudpay.marketing.points_orders import RefundShare, _allocated, points_limit


def test_points_are_worth_whole_fen_rounded_down() -> None:
    """At 100 points a yuan a point is a fen; at 150, 100 points buy 66 fen, not 67."""
    assert points_value_fen(800) == 800
    assert points_value_fen(100, 150) == 66
    assert points_for_value(66, 150) == 99  # the most points worth at most 66 fen
    assert points_value_fen(-5) == 0


@pytest.mark.parametrize(
    ("refunded_fen", "expected"),
    [(0, 0), (1_100, 400), (1_099, 399), (2_199, 799), (2_200, 800), (9_999, 800)],
)
def test_a_refunded_share_rounds_down_and_the_last_refund_takes_the_rest(
    refunded_fen: int, expected: int
) -> None:
    """800 points on a 2,200-fen payment: proportional, down, and all of them once refunded."""
    assert refunded_share(800, refunded_fen=refunded_fen, amount_fen=2_200) == expected


def test_refunds_in_parts_add_up_to_the_whole() -> None:
    """Three refunds of a 1,000-fen payment give back 333 points in total, never one more."""
    figures = [(0, 300), (300, 600), (600, 1_000)]
    shares = [RefundShare("r", "o", "c", "m", 1_000, a, b).share(333) for a, b in figures]
    assert shares == [99, 100, 134]
    assert sum(shares) == 333


def test_points_given_back_return_to_the_newest_lot_first() -> None:
    """Taken 300 from an old lot and 200 from a newer one: 250 back fill the newer one first."""
    takes = (("old", 300), ("new", 200))
    assert _allocated(takes, 250) == {"new": 200, "old": 50}
    assert _allocated(takes, 0) == {"new": 0, "old": 0}


def test_the_limit_is_half_the_payment_and_leaves_one_fen() -> None:
    """A 10-yuan payment takes at most 500 points; a 1-fen payment takes none."""
    assert (points_limit(1_000).points, points_limit(1_000).covered_fen) == (500, 500)
    assert points_limit(1).points == 0
