"""The PBoC caps as a pure function: would this movement break one of them?

The sandbox enforces it; the platform can ask it before sending a payout (same numbers,
same order of checks), so a refusal never surprises settlement. Caps and citations:
`protocol.py`. Only *non-bound* movements count towards the daily and yearly caps; the
Class III balance cap holds whatever the counterparty.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudpay.channels.bank.protocol import ClassLimits, LimitKind


@dataclass(frozen=True)
class Usage:
    """Non-bound movements already booked in the current Shanghai day and year, in fen."""

    inflow_today_fen: int = 0
    inflow_this_year_fen: int = 0
    outflow_today_fen: int = 0
    outflow_this_year_fen: int = 0


@dataclass(frozen=True)
class LimitBreach:
    limit: LimitKind
    limit_fen: int
    remaining_fen: int  # the largest amount that would still have passed

    def describe(self, amount_fen: int) -> str:
        return (
            f"{self.limit.value}: {amount_fen} fen exceeds the {self.limit_fen} fen cap "
            f"({self.remaining_fen} fen left)"
        )


def _over(limit: LimitKind, cap: int | None, used: int, amount: int) -> LimitBreach | None:
    if cap is None or used + amount <= cap:
        return None
    return LimitBreach(limit, cap, max(cap - used, 0))


def inflow_breach(
    limits: ClassLimits, usage: Usage, *, amount_fen: int, bound: bool, balance_fen: int
) -> LimitBreach | None:
    """Why money coming into an e-account is refused, or None. Daily before yearly before
    the balance cap: the most specific reason a person can act on comes first."""
    if not bound:
        daily = _over(
            LimitKind.NONBOUND_INFLOW_DAILY,
            limits.nonbound_inflow_daily_fen,
            usage.inflow_today_fen,
            amount_fen,
        )
        yearly = _over(
            LimitKind.NONBOUND_INFLOW_YEARLY,
            limits.nonbound_inflow_yearly_fen,
            usage.inflow_this_year_fen,
            amount_fen,
        )
        if daily or yearly:
            return daily or yearly
    return _over(LimitKind.BALANCE_CAP, limits.balance_cap_fen, balance_fen, amount_fen)


def outflow_breach(
    limits: ClassLimits, usage: Usage, *, amount_fen: int, bound: bool
) -> LimitBreach | None:
    """Why money leaving an e-account is refused, or None (transfers to the bound card pass)."""
    if bound:
        return None
    daily = _over(
        LimitKind.NONBOUND_OUTFLOW_DAILY,
        limits.nonbound_outflow_daily_fen,
        usage.outflow_today_fen,
        amount_fen,
    )
    yearly = _over(
        LimitKind.NONBOUND_OUTFLOW_YEARLY,
        limits.nonbound_outflow_yearly_fen,
        usage.outflow_this_year_fen,
        amount_fen,
    )
    return daily or yearly
