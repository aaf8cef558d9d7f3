"""Settlement's money rules, pure: fees, agent commission (分润), refund fee returns and
splits (分账). No database; the settlement run and payouts are in `run`.

Every amount is integer fen. Every rate is applied by `cloudpay.kernel.money.apply_rate_bp`:
exact, then rounded **once, half-up, per fee line** (one order's fee, one surcharge, one
reserve holdback). Whenever a rounded whole is shared (a fee among agents, an order among
split receivers, a refund among the parts it unwinds) it is divided by largest remainder
(`allocate`), so the parts always sum to the whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN
from enum import StrEnum
from itertools import pairwise
from typing import Final

from cloudpay.kernel.money import (
    BASIS_POINTS_PER_UNIT,
    MAX_AMOUNT_FEN,
    RATE_BP_DECIMAL_PLACES,
    RateBp,
    allocate,
    apply_rate_bp,
    clamp_fee,
    parse_rate_bp,
)
from cloudpay.settlement.errors import (
    AmountInvalid,
    CommissionChainInvalid,
    FeePlanInvalid,
    FeeReturnInvalid,
    RefundExceedsOrder,
    SplitRefused,
)

# --- limits -----------------------------------------------------------------------------
MAX_AGENT_LEVELS: Final = 5  # the merchants context's MAX_AGENT_DEPTH: 省/市/区/网点 + 1
# WeChat Pay: "分账接收方列表，不超过50个" per split request, and by default at most 30 % of an
# order may go to others (more needs WeChat's approval); Alipay's 分账 has the same shape.
# https://pay.weixin.qq.com/wiki/doc/api/allocation.php?chapter=27_6&index=2
MAX_SPLIT_RECEIVERS: Final = 50
DEFAULT_SPLIT_CAP_BP: Final = 3_000
MAX_SPLIT_LEVELS: Final = 3  # HQ → franchise store → supplier
DEFAULT_AUTO_UNFREEZE_DAYS: Final = 30  # our default for delayed splits; per merchant
MAX_HOLD_DAYS: Final = 366
# Rates have at most RATE_BP_DECIMAL_PLACES decimals, so this scale makes them exact integer
# weights for `allocate`.
_RATE_SCALE: Final = 10**RATE_BP_DECIMAL_PLACES
_WHOLE_WEIGHT: Final = BASIS_POINTS_PER_UNIT * _RATE_SCALE


def require_amount(amount_fen: int, param: str, *, positive: bool = False) -> int:
    """`amount_fen` if it is a whole number of fen in range (≥ 1 when `positive`)."""
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
        raise TypeError(f"{param} must be an int, got {type(amount_fen).__name__}")
    lowest = 1 if positive else 0
    if not lowest <= amount_fen <= MAX_AMOUNT_FEN:
        raise AmountInvalid(f"{param} must be {lowest} to {MAX_AMOUNT_FEN} fen", param=param)
    return amount_fen


def _rate_weight(rate_bp: RateBp) -> int:
    return int(parse_rate_bp(rate_bp).scaleb(RATE_BP_DECIMAL_PLACES))


# --- fees (手续费) -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FeePlan:
    """A fee plan, snapshotted on each order: percent (with 保底 min / 封顶 max) or fixed.

    The same shape prices a channel route's cost to us (`channel_cost_for`).
    `same_day_surcharge_bp` is the extra rate a merchant on D+0 pays for the advance of funds.
    """

    rate_bp: RateBp = 0
    fixed_fen: int | None = None
    min_fen: int = 0
    max_fen: int | None = None
    same_day_surcharge_bp: RateBp = 0

    def __post_init__(self) -> None:
        # Rates are kept as exact Decimals so 38, "38" and Decimal("38.0") are the same plan.
        rate = parse_rate_bp(self.rate_bp)
        object.__setattr__(self, "rate_bp", rate)
        object.__setattr__(self, "same_day_surcharge_bp", parse_rate_bp(self.same_day_surcharge_bp))
        require_amount(self.min_fen, "min_fen")
        if self.max_fen is not None:
            require_amount(self.max_fen, "max_fen")
            if self.max_fen < self.min_fen:
                raise FeePlanInvalid("max_fen is below min_fen", param="max_fen")
        if self.fixed_fen is not None:
            require_amount(self.fixed_fen, "fixed_fen")
            if rate or self.min_fen or self.max_fen is not None:
                raise FeePlanInvalid(
                    "a fixed fee plan has no rate, minimum or maximum", param="fixed_fen"
                )

    @classmethod
    def percent(
        cls,
        rate_bp: RateBp,
        *,
        min_fen: int = 0,
        max_fen: int | None = None,
        same_day_surcharge_bp: RateBp = 0,
    ) -> FeePlan:
        return cls(rate_bp, None, min_fen, max_fen, same_day_surcharge_bp)

    @classmethod
    def fixed(cls, fixed_fen: int, *, same_day_surcharge_bp: RateBp = 0) -> FeePlan:
        return cls(0, fixed_fen, same_day_surcharge_bp=same_day_surcharge_bp)

    def snapshot(self) -> dict[str, str | int | None]:
        """The plan as an order stores it: JSON-safe, rates as exact decimal strings."""
        return {
            "rate_bp": format(parse_rate_bp(self.rate_bp), "f"),
            "fixed_fen": self.fixed_fen,
            "min_fen": self.min_fen,
            "max_fen": self.max_fen,
            "same_day_surcharge_bp": format(parse_rate_bp(self.same_day_surcharge_bp), "f"),
        }

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, object]) -> FeePlan:
        """The plan an order stored with `snapshot`, checked again on the way in."""
        if set(snapshot) != _SNAPSHOT_FIELDS:
            raise FeePlanInvalid("a fee plan snapshot has exactly the plan's fields")
        rates = [snapshot["rate_bp"], snapshot["same_day_surcharge_bp"]]
        amounts = [snapshot["fixed_fen"], snapshot["min_fen"], snapshot["max_fen"]]
        if not all(isinstance(rate, str) for rate in rates) or not all(
            amount is None or (isinstance(amount, int) and not isinstance(amount, bool))
            for amount in amounts
        ):
            raise FeePlanInvalid("a fee plan snapshot has string rates and integer amounts")
        rate, surcharge = (str(rate) for rate in rates)
        fixed, minimum, maximum = (
            amount if isinstance(amount, int) else None for amount in amounts
        )
        return cls(rate, fixed, minimum or 0, maximum, surcharge)


_SNAPSHOT_FIELDS: Final = frozenset(FeePlan.__dataclass_fields__)


def fee_for(plan: FeePlan, amount_fen: int, *, same_day: bool = False) -> int:
    """The fee of one order of `amount_fen`, computed once when the order succeeds.

    Rounding rule: `amount x rate / 10000` exactly, rounded once half-up to whole fen at the
    order level, then held between the plan's minimum and maximum (12 345 fen at 38 bp is
    46.911 → 47 fen). A D+0 order adds a second line, the surcharge, rounded the same way on
    its own and never capped by the plan's maximum (which bounds the acquiring fee only).
    """
    require_amount(amount_fen, "amount_fen", positive=True)
    if plan.fixed_fen is not None:
        base_fen = plan.fixed_fen
    else:
        raw_fen = apply_rate_bp(amount_fen, plan.rate_bp)
        base_fen = clamp_fee(raw_fen, min_fen=plan.min_fen, max_fen=plan.max_fen)
    surcharge_fen = apply_rate_bp(amount_fen, plan.same_day_surcharge_bp) if same_day else 0
    return base_fen + surcharge_fen


def channel_cost_for(route_cost: FeePlan, amount_fen: int) -> int:
    """What the channel (WeChat, Alipay, the bank) charges us for this order on this route."""
    return fee_for(route_cost, amount_fen)


def margin_fen(fee_fen: int, channel_cost_fen: int) -> int:
    """The platform's margin on an order: fee − channel cost.

    Deliberately not clamped at zero: a promotional merchant rate below the channel's cost
    (0-rate campaigns are common) is a real loss the reports must show.
    """
    return fee_fen - channel_cost_fen


# --- agent commission (分润) -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AgentTier:
    """One agent in the chain, with its cost rate (结算底价): what its parent charges it."""

    agent_id: str
    cost_rate_bp: RateBp


@dataclass(frozen=True, slots=True)
class FeeShare:
    """A fee shared along the agent chain: `platform_fen + sum(commissions) == fee_fen`."""

    fee_fen: int
    platform_fen: int
    commissions: tuple[tuple[str, int], ...]  # (agent_id, fen), level 1 first

    def platform_net_fen(self, channel_cost_fen: int) -> int:
        """The platform's share after paying the channel; negative is a loss, not clamped."""
        return self.platform_fen - channel_cost_fen


def share_fee(fee_fen: int, merchant_rate_bp: RateBp, chain: Sequence[AgentTier]) -> FeeShare:
    """Split a merchant's fee between the platform and its agent chain (分润).

    Spread model, the usual one in Chinese acquiring: each agent earns the spread between the
    rate it sells at (the next agent's cost rate, or the merchant's rate for the last agent)
    and its own cost rate; the platform keeps the level-1 agent's cost rate. Commission per
    agent = amount x (sell rate − cost rate), as in e.g. https://9m8m.com/1302383.html
    ("代理商收益=交易金额×(基准费率-结算成本)"). The fee actually charged (after min/max
    clamping) is shared in proportion to those spreads by largest remainder, so the parts
    equal the fee exactly. Cost rates must rise down the chain and stay ≤ the merchant rate:
    an agent selling below its cost would earn a negative commission, which we refuse.
    A chain priced at 0 % everywhere (a fixed-fee plan) leaves the whole fee to the platform.
    """
    require_amount(fee_fen, "fee_fen")
    if len(chain) > MAX_AGENT_LEVELS:
        raise CommissionChainInvalid(
            f"at most {MAX_AGENT_LEVELS} agent levels",
            code="commission_chain_too_deep",
            param="chain",
        )
    agent_ids = [tier.agent_id for tier in chain]
    if len(set(agent_ids)) != len(agent_ids):
        raise CommissionChainInvalid("an agent appears twice in the chain", param="chain")
    bounds = [_rate_weight(tier.cost_rate_bp) for tier in chain] + [_rate_weight(merchant_rate_bp)]
    if any(lower > upper for lower, upper in pairwise(bounds)):
        raise CommissionChainInvalid(
            "cost rates must not fall down the chain nor exceed the merchant rate",
            param="chain",
        )
    weights = [bounds[0]] + [upper - lower for lower, upper in pairwise(bounds)]
    if sum(weights) == 0:
        return FeeShare(fee_fen, fee_fen, tuple((agent_id, 0) for agent_id in agent_ids))
    platform_fen, *commissions = allocate(fee_fen, weights)
    return FeeShare(fee_fen, platform_fen, tuple(zip(agent_ids, commissions, strict=True)))


# --- refund fee returns (退款退手续费) ----------------------------------------------------
class RefundFeePolicy(StrEnum):
    PROPORTIONAL = "proportional"  # default: the fee comes back in proportion to the refund
    NONE = "none"  # the fee is kept whatever is refunded
    FULL_ON_FULL_REFUND = "full_on_full_refund"  # all of it, once the order is fully refunded


def fee_return_for(
    policy: RefundFeePolicy,
    *,
    order_amount_fen: int,
    fee_fen: int,
    refunded_before_fen: int,
    fee_returned_before_fen: int,
    refund_amount_fen: int,
) -> int:
    """The part of the order's fee returned to the merchant with this refund.

    Proportional returns are cumulative: after this refund, the fee returned in total is
    `fee x refunded / order` rounded half-up, less what was returned before. That total only
    grows with each refund, reaches exactly `fee_fen` on the last one, and so never exceeds
    the fee charged however the order is refunded in parts.
    """
    require_amount(order_amount_fen, "order_amount_fen", positive=True)
    require_amount(fee_fen, "fee_fen")
    require_amount(refunded_before_fen, "refunded_before_fen")
    require_amount(refund_amount_fen, "refund_amount_fen", positive=True)
    require_amount(fee_returned_before_fen, "fee_returned_before_fen")
    refunded_after_fen = refunded_before_fen + refund_amount_fen
    if refunded_after_fen > order_amount_fen:
        raise RefundExceedsOrder("refunds would exceed the order amount", param="refund_amount_fen")
    if fee_returned_before_fen > fee_fen:
        raise FeeReturnInvalid("more fee returned than charged", param="fee_returned_before_fen")
    fully_refunded = refunded_after_fen == order_amount_fen
    if policy is RefundFeePolicy.NONE:
        return 0
    if policy is RefundFeePolicy.FULL_ON_FULL_REFUND:
        return fee_fen - fee_returned_before_fen if fully_refunded else 0
    numerator = 2 * fee_fen * refunded_after_fen + order_amount_fen
    returned_in_total_fen = numerator // (2 * order_amount_fen)  # half-up on non-negatives
    # A history from another policy may already exceed the proportional total: return 0.
    return max(0, returned_in_total_fen - fee_returned_before_fen)


# --- splits (分账 / 二次清分) --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SplitRule:
    """One receiver's share: a rate or a fixed amount, of the order or of another share.

    `split_from=None` takes the share from the order's splittable amount (order − fee): level
    1. `split_from="store_1"` takes it from store_1's share: level 2, and so on (HQ → franchise
    store → supplier). A per-order instruction is a fixed rule (`SplitRule.fixed`).
    """

    receiver_id: str
    rate_bp: RateBp | None = None
    fixed_fen: int | None = None
    split_from: str | None = None

    @classmethod
    def percent(
        cls, receiver_id: str, rate_bp: RateBp, *, split_from: str | None = None
    ) -> SplitRule:
        return cls(receiver_id, rate_bp, None, split_from)

    @classmethod
    def fixed(cls, receiver_id: str, fixed_fen: int, *, split_from: str | None = None) -> SplitRule:
        return cls(receiver_id, None, fixed_fen, split_from)


@dataclass(frozen=True, slots=True)
class SplitConfig:
    """A merchant's split setup: receivers bound in advance and the cap on others' share."""

    bound_receivers: frozenset[str]
    cap_bp: RateBp = DEFAULT_SPLIT_CAP_BP

    def __post_init__(self) -> None:
        parse_rate_bp(self.cap_bp)


@dataclass(frozen=True, slots=True)
class SplitPart:
    """What one receiver keeps: its share less what it passed on to the level below."""

    receiver_id: str
    amount_fen: int
    level: int
    split_from: str | None = None


@dataclass(frozen=True, slots=True)
class SplitPlan:
    """`sum(parts) + merchant_keeps_fen == splittable_fen` (the order less its fee)."""

    splittable_fen: int
    parts: tuple[SplitPart, ...]
    merchant_keeps_fen: int

    @property
    def total_split_fen(self) -> int:
        return sum(part.amount_fen for part in self.parts)


def _refuse(code: str, message: str, param: str = "rules") -> SplitRefused:
    return SplitRefused(message, code=code, param=param)


def _check_split_rules(rules: Sequence[SplitRule], config: SplitConfig) -> None:
    if len(rules) > MAX_SPLIT_RECEIVERS:
        raise _refuse("split_receivers_too_many", f"at most {MAX_SPLIT_RECEIVERS} receivers")
    seen: set[str] = set()
    for rule in rules:
        if rule.receiver_id in seen:
            raise _refuse("split_receiver_duplicate", f"{rule.receiver_id} is named twice")
        seen.add(rule.receiver_id)
        if rule.receiver_id not in config.bound_receivers:
            raise _refuse("split_receiver_unbound", f"{rule.receiver_id} is not a bound receiver")
        if (rule.rate_bp is None) == (rule.fixed_fen is None):
            raise _refuse("split_rule_invalid", "a rule has either rate_bp or fixed_fen")
        if rule.fixed_fen is not None:
            require_amount(rule.fixed_fen, "fixed_fen")
        if rule.rate_bp is not None:
            parse_rate_bp(rule.rate_bp)


def _split_levels(rules: Sequence[SplitRule]) -> dict[str, int]:
    """Each receiver's level, walking down from the order; refuses orphans and cycles."""
    levels: dict[str, int] = {}
    frontier: set[str | None] = {None}
    for level in range(1, MAX_SPLIT_LEVELS + 1):
        found = {rule.receiver_id for rule in rules if rule.split_from in frontier}
        levels.update(dict.fromkeys(found, level))
        frontier = set(found)
    if len(levels) != len(rules):
        raise _refuse(
            "split_chain_invalid",
            f"each rule must split from the order or a receiver, at most "
            f"{MAX_SPLIT_LEVELS} levels deep",
        )
    return levels


def _carve(base_fen: int, rules: Sequence[SplitRule]) -> tuple[int, dict[str, int]]:
    """Take `rules`' shares out of `base_fen`: (what is left, share per receiver)."""
    percent = [rule for rule in rules if rule.rate_bp is not None]
    weights = [_rate_weight(rule.rate_bp) for rule in percent if rule.rate_bp is not None]
    if sum(weights) > _WHOLE_WEIGHT:
        raise _refuse("split_exceeds_available", "split rates add up to more than 100 %")
    *percent_parts, left_fen = allocate(base_fen, [*weights, _WHOLE_WEIGHT - sum(weights)])
    shares = {rule.receiver_id: part for rule, part in zip(percent, percent_parts, strict=True)}
    for rule in rules:
        if rule.fixed_fen is not None:
            shares[rule.receiver_id] = rule.fixed_fen
            left_fen -= rule.fixed_fen
    if left_fen < 0:
        raise _refuse("split_exceeds_available", "the parts exceed the amount they come from")
    return left_fen, shares


def plan_split(
    order_amount_fen: int, fee_fen: int, rules: Sequence[SplitRule], config: SplitConfig
) -> SplitPlan:
    """Split an order's proceeds (order − fee) among bound receivers, exactly to the fen.

    Checks in order of precedence: too many receivers, a duplicate, an unbound receiver, a
    malformed rule, a broken chain, more than the money available, over the merchant's cap.
    The cap bounds what leaves the merchant (the level-1 shares, which include what they pass
    on) as a share of the order amount, rounded down so it is never exceeded.
    """
    require_amount(order_amount_fen, "order_amount_fen", positive=True)
    require_amount(fee_fen, "fee_fen")
    if fee_fen > order_amount_fen:
        raise AmountInvalid("the fee exceeds the order: nothing to split", param="fee_fen")
    _check_split_rules(rules, config)
    levels = _split_levels(rules)
    splittable_fen = order_amount_fen - fee_fen
    merchant_keeps_fen, gross = _carve(splittable_fen, [r for r in rules if r.split_from is None])
    cap_fen = apply_rate_bp(order_amount_fen, config.cap_bp, rounding=ROUND_DOWN)
    if sum(gross.values()) > cap_fen:
        raise _refuse(
            "split_over_cap", f"others' share exceeds the cap of {cap_fen} fen on this order"
        )
    kept = dict(gross)
    for rule in sorted(rules, key=lambda rule: levels[rule.receiver_id]):
        children = [child for child in rules if child.split_from == rule.receiver_id]
        if children:
            kept[rule.receiver_id], shares = _carve(gross[rule.receiver_id], children)
            gross.update(shares)
            kept.update(shares)
    parts = tuple(
        SplitPart(r.receiver_id, kept[r.receiver_id], levels[r.receiver_id], r.split_from)
        for r in rules
    )
    return SplitPlan(splittable_fen, parts, merchant_keeps_fen)


def split_return(
    original_parts: Sequence[SplitPart],
    refund_amount_fen: int,
    order_amount_fen: int,
    *,
    refunded_before_fen: int = 0,
    returned_before: Mapping[str, int] | None = None,
) -> tuple[SplitPart, ...]:
    """What each receiver gives back (分账回退) when a split order is refunded.

    The total returned after this refund is `split total x refunded / order`, rounded
    half-up, less what came back before; that amount is shared over what each receiver still
    holds by largest remainder. No receiver ever returns more than it holds, and the refund
    that completes the order returns every remaining fen.
    """
    require_amount(order_amount_fen, "order_amount_fen", positive=True)
    require_amount(refund_amount_fen, "refund_amount_fen", positive=True)
    require_amount(refunded_before_fen, "refunded_before_fen")
    if refunded_before_fen + refund_amount_fen > order_amount_fen:
        raise RefundExceedsOrder("refunds would exceed the order", param="refund_amount_fen")
    before = dict(returned_before or {})
    if not before.keys() <= {part.receiver_id for part in original_parts}:
        raise SplitRefused("returns from a receiver not in the split", code="split_return_invalid")
    holding = [part.amount_fen - before.get(part.receiver_id, 0) for part in original_parts]
    if any(amount < 0 for amount in holding) or any(v < 0 for v in before.values()):
        raise SplitRefused("returns exceed the parts", code="split_return_invalid")
    split_total_fen = sum(part.amount_fen for part in original_parts)
    refunded_after_fen = refunded_before_fen + refund_amount_fen
    due_in_total_fen = (2 * split_total_fen * refunded_after_fen + order_amount_fen) // (
        2 * order_amount_fen
    )
    due_now_fen = min(sum(holding), max(0, due_in_total_fen - sum(before.values())))
    amounts = allocate(due_now_fen, holding) if sum(holding) else [0] * len(holding)
    return tuple(
        SplitPart(part.receiver_id, amount, part.level, part.split_from)
        for part, amount in zip(original_parts, amounts, strict=True)
    )


def require_hold_days(days: int, param: str) -> int:
    """`days` if it is a whole number of days a hold may last."""
    if isinstance(days, bool) or not isinstance(days, int):
        raise TypeError(f"{param} must be an int")
    if not 0 <= days <= MAX_HOLD_DAYS:
        raise AmountInvalid(f"{param} must be 0 to {MAX_HOLD_DAYS} days", param=param)
    return days


def auto_unfreeze_date(held_on: date, after_days: int = DEFAULT_AUTO_UNFREEZE_DAYS) -> date:
    """The day funds held for a delayed split are released to the merchant if not split."""
    return held_on + timedelta(days=require_hold_days(after_days, "after_days"))


def unfreeze(held_fen: int, split_so_far_fen: int) -> int:
    """Ending a delayed split (`unfreeze`): what is released to the merchant."""
    require_amount(held_fen, "held_fen")
    require_amount(split_so_far_fen, "split_so_far_fen")
    if split_so_far_fen > held_fen:
        raise SplitRefused("more split than was held", code="split_exceeds_available")
    return held_fen - split_so_far_fen
