"""A merchant's trade day as settlement sees it, pure: from the SQL sums of its orders and
its refunds to the `SettlementResult` and the agents' commission (分润).

Commission is shared on the day's fee total per plan version (the same chain and rates apply
to every order of a version), rounded once by largest remainder: the parts equal the fee.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Final

from cloudpay.settlement.errors import CommissionChainInvalid, FeePlanInvalid
from cloudpay.settlement.model import AgentTier, RefundFeePolicy, fee_return_for, share_fee
from cloudpay.settlement.run import (
    PaymentLine,
    RefundLine,
    ReservePolicy,
    SettlementLine,
    SettlementResult,
    settle_merchant,
)

CENTI: Final = Decimal(100)


def to_centi_bp(rate_bp: Decimal, param: str) -> int:
    """A rate in hundredths of a basis point, the finest step the SQL pricing keeps exactly."""
    scaled = rate_bp * CENTI
    if scaled != scaled.to_integral_value():
        raise FeePlanInvalid("rates have at most 2 decimal places of a basis point", param=param)
    return int(scaled)


def from_centi_bp(centi_bp: int) -> Decimal:
    return Decimal(centi_bp) / CENTI


@dataclass(frozen=True, slots=True)
class PlanSums:
    """One merchant's orders of the day under one fee plan version (from the SQL feed)."""

    fee_plan_id: str | None
    method: str
    orders_count: int
    gross_fen: int
    fees_fen: int
    surcharge_fen: int
    channel_cost_fen: int


@dataclass(frozen=True, slots=True)
class RefundFacts:
    fee_plan_id: str | None
    amount_fen: int
    order_amount_fen: int
    order_fee_fen: int
    refunded_before_fen: int
    policy: RefundFeePolicy


@dataclass(frozen=True, slots=True)
class MerchantDay:
    result: SettlementResult
    orders_count: int
    unpriced_orders: int
    channel_cost_fen: int
    commissions: dict[str, int]
    fee_plan_ids: list[str]

    @property
    def commissions_fen(self) -> int:
        return sum(self.commissions.values())


def _commissions(
    sums: Sequence[PlanSums],
    plan_rates: Mapping[str, Decimal | None],
    chain_for: Mapping[str, Sequence[AgentTier]],
    same_day: bool,
) -> dict[str, int]:
    """Each agent's share of the day's fees; a plan without a percent rate, or a chain that
    prices above the merchant, leaves the whole fee to the platform."""
    shares: dict[str, int] = {}
    for plan in sums:
        rate = plan_rates.get(plan.fee_plan_id) if plan.fee_plan_id else None
        chain = chain_for.get(plan.method, ())
        fee_fen = plan.fees_fen + (plan.surcharge_fen if same_day else 0)
        if rate is None or not chain or not fee_fen:
            continue
        try:
            shared = share_fee(fee_fen, rate, chain)
        except CommissionChainInvalid:
            continue
        for agent_id, amount in shared.commissions:
            shares[agent_id] = shares.get(agent_id, 0) + amount
    return {agent: fen for agent, fen in shares.items() if fen}


def settle_day(
    *,
    trade_date: date,
    sums: Sequence[PlanSums],
    refunds: Sequence[RefundFacts],
    reserve: ReservePolicy,
    same_day: bool,
    plan_rates: Mapping[str, Decimal | None],
    chain_for: Mapping[str, Sequence[AgentTier]],
) -> MerchantDay:
    """The merchant's settlement for `trade_date`; fee returns follow each order's policy.

    Refund fee returns are computed per refund with `fee_return_for`; the fee charged before
    is approximated as returned in proportion to earlier refunds (cumulative, so exact under
    the proportional policy, which is the default)."""
    lines: list[SettlementLine] = []
    for plan in sums:
        fee = plan.fees_fen + (plan.surcharge_fen if same_day else 0)
        lines.append(PaymentLine(plan.gross_fen, fee))
    for refund in refunds:
        returned_before = fee_return_for(
            RefundFeePolicy.PROPORTIONAL, order_amount_fen=refund.order_amount_fen,
            fee_fen=refund.order_fee_fen, refunded_before_fen=0, fee_returned_before_fen=0,
            refund_amount_fen=refund.refunded_before_fen,
        ) if refund.refunded_before_fen else 0  # fmt: skip
        fee_return = fee_return_for(
            refund.policy, order_amount_fen=refund.order_amount_fen,
            fee_fen=refund.order_fee_fen, refunded_before_fen=refund.refunded_before_fen,
            fee_returned_before_fen=returned_before, refund_amount_fen=refund.amount_fen,
        )  # fmt: skip
        lines.append(RefundLine(refund.amount_fen, fee_return))
    result = settle_merchant(lines, business_date=trade_date, reserve=reserve)
    return MerchantDay(
        result=result,
        orders_count=sum(plan.orders_count for plan in sums),
        unpriced_orders=sum(plan.orders_count for plan in sums if plan.fee_plan_id is None),
        channel_cost_fen=sum(plan.channel_cost_fen for plan in sums),
        commissions=_commissions(sums, plan_rates, chain_for, same_day),
        fee_plan_ids=sorted({plan.fee_plan_id for plan in sums if plan.fee_plan_id}),
    )
