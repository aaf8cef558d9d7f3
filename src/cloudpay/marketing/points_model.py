"""Points (积分), pure: how many a payment earns, and how many can pay part of a payment.

Points are not money. They live on their own ledger, `PTS`, whose unit is one point, so no
transfer can ever mix them with fen. A merchant's earn rule gives `points_per_yuan` per yuan
paid (pro rata to the fen), times the multiplier of any promotion window open at the time of payment
(the highest when windows overlap). Rounding is down at one point, once, after the multiplier:
a merchant never gives a fraction more than its rule says.

Paying with points: the city's exchange rate is `points_per_yuan_redeemed` points for one
yuan; a payment may cover at most `max_share_bp` of its amount with points and always leaves
`MIN_PAYABLE_FEN` for the wallet (no channel takes a zero payment).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cloudpay.marketing.errors import InvalidCampaign
from cloudpay.marketing.model import BASIS_POINTS, MIN_PAYABLE_FEN

POINTS_LEDGER: Final = "PTS"
FEN_PER_YUAN: Final = 100
MAX_POINTS_PER_YUAN: Final = 1_000
MAX_MULTIPLIER_BP: Final = 10 * BASIS_POINTS  # at most ten times the base rate
MAX_MULTIPLIER_WINDOWS: Final = 20
MAX_VALIDITY_DAYS: Final = 3 * 366
# The city's exchange rate and cap for paying with points: 100 points buy one yuan, and points
# pay at most half of a payment (the channel is asked for the rest).
CITY_POINTS_PER_YUAN_REDEEMED: Final = 100
CITY_MAX_POINTS_SHARE_BP: Final = 5_000


@dataclass(frozen=True)
class MultiplierWindow:
    """Points × `multiplier_bp` / 10,000 for payments in [starts_at, ends_at)."""

    starts_at: datetime
    ends_at: datetime
    multiplier_bp: int


@dataclass(frozen=True)
class EarnRule:
    merchant_id: str
    points_per_yuan: int
    validity_days: int  # points expire this many days after they are earned
    windows: tuple[MultiplierWindow, ...] = ()


def check_earn_rule(rule: EarnRule) -> EarnRule:
    """A rule whose values are in range and whose windows are well formed."""
    _require(1 <= rule.points_per_yuan <= MAX_POINTS_PER_YUAN,
             f"points_per_yuan is 1–{MAX_POINTS_PER_YUAN}", "points_per_yuan")  # fmt: skip
    _require(1 <= rule.validity_days <= MAX_VALIDITY_DAYS,
             f"validity_days is 1–{MAX_VALIDITY_DAYS}", "validity_days")  # fmt: skip
    _require(len(rule.windows) <= MAX_MULTIPLIER_WINDOWS,
             f"at most {MAX_MULTIPLIER_WINDOWS} multiplier windows", "multipliers")  # fmt: skip
    for window in rule.windows:
        _require(window.starts_at < window.ends_at,
                 "a multiplier window must start before it ends", "multipliers")  # fmt: skip
        _require(BASIS_POINTS <= window.multiplier_bp <= MAX_MULTIPLIER_BP,
                 f"multiplier_bp is {BASIS_POINTS}–{MAX_MULTIPLIER_BP}", "multipliers")  # fmt: skip
    return rule


def _require(condition: bool, message: str, param: str) -> None:
    if not condition:
        raise InvalidCampaign(message, param=param)


def multiplier_at(windows: Sequence[MultiplierWindow], at: datetime) -> int:
    """The multiplier in basis points at `at`: the highest open window's, else 1×."""
    open_windows = [w.multiplier_bp for w in windows if w.starts_at <= at < w.ends_at]
    return max(open_windows, default=BASIS_POINTS)


def points_earned(rule: EarnRule, amount_fen: int, at: datetime) -> int:
    """Points for a payment of `amount_fen` (what the citizen paid) at `at`, rounded down."""
    if amount_fen <= 0:
        return 0
    multiplier = multiplier_at(rule.windows, at)
    return amount_fen * rule.points_per_yuan * multiplier // (FEN_PER_YUAN * BASIS_POINTS)


@dataclass(frozen=True)
class PointsTender:
    """Points put towards a payment: `points` are spent to cover `covered_fen` of it."""

    points: int
    covered_fen: int


def points_tender(
    amount_fen: int,
    points_available: int,
    *,
    points_per_yuan_redeemed: int,
    max_share_bp: int,
) -> PointsTender:
    """The most of `amount_fen` the citizen's points may pay, and the points that costs.

    The fen covered is chosen first (whole fen only), then the points are rounded up, so the
    points spent always buy at least the fen covered, and never more than the citizen holds.
    """
    if points_per_yuan_redeemed < 1 or not 0 <= max_share_bp <= BASIS_POINTS:
        raise ValueError("points_per_yuan_redeemed ≥ 1 and max_share_bp 0–10,000 are required")
    affordable_fen = max(points_available, 0) * FEN_PER_YUAN // points_per_yuan_redeemed
    covered = min(
        amount_fen - MIN_PAYABLE_FEN, amount_fen * max_share_bp // BASIS_POINTS, affordable_fen
    )
    if covered <= 0:
        return PointsTender(0, 0)
    points = -(-covered * points_per_yuan_redeemed // FEN_PER_YUAN)  # ceiling division
    return PointsTender(points, covered)


@dataclass(frozen=True)
class PointsLot:
    """Points earned by one payment; spending and expiry take from the oldest lot first."""

    id: str
    citizen_id: str
    merchant_id: str
    points: int
    remaining: int
    earned_at: datetime
    expires_at: datetime


def take_first_in_first_out(lots: Sequence[PointsLot], points: int) -> list[tuple[str, int]]:
    """Which lots a spend of `points` takes from, oldest first: (lot id, points taken)."""
    if points < 0 or points > sum(lot.remaining for lot in lots):
        raise ValueError("points must be between 0 and what the lots hold")
    taken: list[tuple[str, int]] = []
    for lot in sorted(lots, key=lambda lot: (lot.earned_at, lot.id)):
        if points == 0:
            break
        take = min(lot.remaining, points)
        if take:
            taken.append((lot.id, take))
            points -= take
    return taken


def points_value_fen(
    points: int, points_per_yuan_redeemed: int = CITY_POINTS_PER_YUAN_REDEEMED
) -> int:
    """What `points` can buy at the redemption rate, whole fen, rounded down: the most a
    payment can take off for them (`points_tender` rounds the points up, never the fen)."""
    return max(points, 0) * FEN_PER_YUAN // points_per_yuan_redeemed


def points_for_value(
    fen: int, points_per_yuan_redeemed: int = CITY_POINTS_PER_YUAN_REDEEMED
) -> int:
    """The most points worth at most `fen` (the cap that keeps an issuer's funding within
    what the payer paid)."""
    return max(fen, 0) * points_per_yuan_redeemed // FEN_PER_YUAN


def refunded_share(total: int, *, refunded_fen: int, amount_fen: int) -> int:
    """The part of `total` that follows refunds of `refunded_fen` out of `amount_fen`:
    proportional, rounded down, all of it once the refunds add up to the amount."""
    if refunded_fen >= amount_fen:
        return total
    return total * max(refunded_fen, 0) // amount_fen
