"""The settlement run (结算): a merchant's net payable for a business date, and the payouts
that move it to the merchant's account within that account's limits.

Merchants' settlement accounts are often Class II/III e-accounts at a partner bank, which
accept only so much a day and a year from an account not bound to them (ours). What does
not fit today is never dropped: it carries over to the next days, or goes to the merchant's
Class I account, as the merchant chose.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final, TypeAlias

from cloudpay.kernel.money import MAX_AMOUNT_FEN, RateBp, apply_rate_bp, parse_rate_bp
from cloudpay.settlement.errors import PayoutLimitsInvalid
from cloudpay.settlement.model import require_amount, require_hold_days


# --- the settlement run (结算): net payable per merchant and business date --------------
@dataclass(frozen=True, slots=True)
class PaymentLine:
    amount_fen: int
    fee_fen: int


@dataclass(frozen=True, slots=True)
class RefundLine:
    amount_fen: int
    fee_return_fen: int


@dataclass(frozen=True, slots=True)
class SplitLine:
    amount_fen: int  # paid out to receivers


@dataclass(frozen=True, slots=True)
class SplitReturnLine:
    amount_fen: int  # given back by receivers on a refund


SettlementLine: TypeAlias = PaymentLine | RefundLine | SplitLine | SplitReturnLine


@dataclass(frozen=True, slots=True)
class ReservePolicy:
    """Rolling reserve (风险保证金): `rate_bp` of each day's gross held `hold_days` days."""

    rate_bp: RateBp = 0
    hold_days: int = 90

    def __post_init__(self) -> None:
        parse_rate_bp(self.rate_bp)
        require_hold_days(self.hold_days, "hold_days")


@dataclass(frozen=True, slots=True)
class SettlementResult:
    """One merchant's settlement for one business date.

    Invariant: net + (fees − fee returns) + (splits − split returns) + reserve held
    − reserve released == gross − refunds. A negative net is a debt carried to the next run.
    """

    business_date: date
    gross_fen: int
    refunds_fen: int
    fees_fen: int
    fee_returns_fen: int
    splits_fen: int
    split_returns_fen: int
    reserve_held_fen: int
    reserve_released_fen: int
    reserve_release_on: date | None
    net_fen: int


def _line_totals(lines: Iterable[SettlementLine]) -> dict[str, int]:
    totals = dict.fromkeys(("gross", "refunds", "fees", "fee_returns", "splits", "returns"), 0)
    for line in lines:
        if isinstance(line, PaymentLine):
            totals["gross"] += require_amount(line.amount_fen, "amount_fen")
            totals["fees"] += require_amount(line.fee_fen, "fee_fen")
        elif isinstance(line, RefundLine):
            totals["refunds"] += require_amount(line.amount_fen, "amount_fen")
            totals["fee_returns"] += require_amount(line.fee_return_fen, "fee_return_fen")
        elif isinstance(line, SplitLine):
            totals["splits"] += require_amount(line.amount_fen, "amount_fen")
        elif isinstance(line, SplitReturnLine):
            totals["returns"] += require_amount(line.amount_fen, "amount_fen")
        else:
            raise TypeError(f"not a settlement line: {type(line).__name__}")
    return totals


def settle_merchant(
    lines: Iterable[SettlementLine],
    *,
    business_date: date,
    reserve: ReservePolicy | None = None,
    reserve_released_fen: int = 0,
) -> SettlementResult:
    """Net payable = gross − refunds − fees + fee returns − splits + split returns
    − reserve held + reserve released (earlier holds now due).

    The reserve is `rate_bp` of the day's gross, rounded half-up once, but never more than
    the day leaves after everything else: a reserve cannot turn a payout into a debt.
    """
    policy = reserve or ReservePolicy()
    require_amount(reserve_released_fen, "reserve_released_fen")
    t = _line_totals(lines)
    before_reserve_fen = (
        t["gross"] - t["refunds"] - t["fees"] + t["fee_returns"] - t["splits"] + t["returns"]
    )
    wanted_fen = apply_rate_bp(t["gross"], policy.rate_bp)
    held_fen = max(0, min(wanted_fen, before_reserve_fen))
    release_on = business_date + timedelta(days=policy.hold_days)
    result = SettlementResult(
        business_date=business_date,
        gross_fen=t["gross"],
        refunds_fen=t["refunds"],
        fees_fen=t["fees"],
        fee_returns_fen=t["fee_returns"],
        splits_fen=t["splits"],
        split_returns_fen=t["returns"],
        reserve_held_fen=held_fen,
        reserve_released_fen=reserve_released_fen,
        reserve_release_on=release_on if held_fen else None,
        net_fen=before_reserve_fen - held_fen + reserve_released_fen,
    )
    _check_settlement(result)
    return result


def _check_settlement(result: SettlementResult) -> None:
    """The books of a run balance; a failure here is a bug, never the caller's input."""
    accounted_fen = (
        result.net_fen
        + (result.fees_fen - result.fee_returns_fen)
        + (result.splits_fen - result.split_returns_fen)
        + result.reserve_held_fen
        - result.reserve_released_fen
    )
    if accounted_fen != result.gross_fen - result.refunds_fen:
        raise AssertionError(f"settlement does not balance: {result}")


# --- payouts under account limits (Class II / III e-accounts) ---------------------------
class AccountClass(StrEnum):
    CLASS_I = "class_i"
    CLASS_II = "class_ii"
    CLASS_III = "class_iii"


@dataclass(frozen=True, slots=True)
class AccountLimits:
    """Limits on money coming in from a non-bound account (ours); None is unlimited."""

    daily_in_fen: int | None = None
    yearly_in_fen: int | None = None
    max_balance_fen: int | None = None

    def __post_init__(self) -> None:
        for name in ("daily_in_fen", "yearly_in_fen", "max_balance_fen"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{name} must be an int or None")
            if value is not None and value < 0:
                raise PayoutLimitsInvalid(f"{name} must not be negative", param=name)


# PBoC 银发〔2018〕16号 (个人银行账户分类管理): Class II takes at most 10 000 yuan a day and
# 200 000 a year from non-bound accounts; Class III 2 000 a day, 50 000 a year, and holds at
# most 2 000 at any time. Summary: https://www.leexue.com/miaozhi/664466195839192208.html
# The rule is written for personal accounts, which is what a small merchant's (小微商户) e-account
# is. Transfers to the bound Class I account are unlimited. Banks may set lower limits: configure.
PBOC_ACCOUNT_LIMITS: Final[Mapping[AccountClass, AccountLimits]] = MappingProxyType(
    {
        AccountClass.CLASS_I: AccountLimits(),
        AccountClass.CLASS_II: AccountLimits(1_000_000, 20_000_000),
        AccountClass.CLASS_III: AccountLimits(200_000, 5_000_000, 200_000),
    }
)


class OverLimitPolicy(StrEnum):
    CARRY_OVER = "carry_over"  # pay the rest on the next days, as limits allow
    REROUTE_TO_CLASS_I = "reroute_to_class_i"  # pay the rest to the merchant's Class I account


@dataclass(frozen=True, slots=True)
class PayoutPlan:
    """`pay_today_fen + to_class_i_fen + carry_over_fen == net_fen`: nothing is dropped."""

    pay_today_fen: int
    to_class_i_fen: int
    carry_over_fen: int
    limited_by: str | None = None  # the limit that bound, if any


def _room_today(
    limits: AccountLimits, used_today: int, used_year: int, balance: int
) -> tuple[int, str | None]:
    candidates = [
        (limits.daily_in_fen, used_today, "daily_limit"),
        (limits.yearly_in_fen, used_year, "yearly_limit"),
        (limits.max_balance_fen, balance, "balance_limit"),
    ]
    rooms = [(max(0, limit - used), name) for limit, used, name in candidates if limit is not None]
    return min(rooms) if rooms else (MAX_AMOUNT_FEN, None)


def plan_payouts(
    net_fen: int,
    account_class: AccountClass,
    limits: Mapping[AccountClass, AccountLimits] = PBOC_ACCOUNT_LIMITS,
    already_used_today_fen: int = 0,
    already_used_this_year_fen: int = 0,
    balance_fen: int = 0,
    policy: OverLimitPolicy = OverLimitPolicy.CARRY_OVER,
) -> PayoutPlan:
    """Today's payout to the settlement account within its limits; the rest per `policy`.

    A negative net (refunds beyond the day's takings) pays nothing and is carried as a debt.
    """
    if isinstance(net_fen, bool) or not isinstance(net_fen, int):
        raise TypeError("net_fen must be an int")
    used = (already_used_today_fen, already_used_this_year_fen, balance_fen)
    names = ("already_used_today_fen", "already_used_this_year_fen", "balance_fen")
    for name, value in zip(names, used, strict=True):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int")
        if value < 0:
            raise PayoutLimitsInvalid(f"{name} must not be negative", param=name)
    if net_fen <= 0:
        return PayoutPlan(0, 0, net_fen)
    room_fen, limit_name = _room_today(limits[account_class], *used)
    today_fen = min(net_fen, room_fen)
    excess_fen = net_fen - today_fen
    if not excess_fen:
        return PayoutPlan(today_fen, 0, 0)
    if policy is OverLimitPolicy.REROUTE_TO_CLASS_I:
        return PayoutPlan(today_fen, excess_fen, 0, limit_name)
    return PayoutPlan(today_fen, 0, excess_fen, limit_name)
