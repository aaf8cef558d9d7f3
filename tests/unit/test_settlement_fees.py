"""Settlement fees: fee plans, channel cost and margin, agent commission (分润), fee returns."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudpay.kernel.errors import InvalidRequest
from cloudpay.settlement import (
    MAX_AGENT_LEVELS,
    AgentTier,
    AmountInvalid,
    CommissionChainInvalid,
    FeePlan,
    FeePlanInvalid,
    FeeReturnInvalid,
    RefundExceedsOrder,
    RefundFeePolicy,
    channel_cost_for,
    fee_for,
    fee_return_for,
    margin_fen,
    share_fee,
)

order_amounts = st.integers(min_value=1, max_value=10**12)
rates_bp = st.integers(min_value=0, max_value=300)


# --- fee plans --------------------------------------------------------------------------


def test_percent_fee_is_rounded_once_half_up_at_the_order_level() -> None:
    """The documented rule: 12 345 fen at 38 bp is 46.911 fen, charged as 47."""
    assert fee_for(FeePlan.percent(38), 12_345) == 47
    assert fee_for(FeePlan.percent(38), 3_750) == 14  # 14.25 → 14


def test_an_exact_half_fen_rounds_up_not_to_even() -> None:
    """1 250 fen at 4 bp is exactly 0.5 fen: half-up charges 1 where half-even would charge 0."""
    assert fee_for(FeePlan.percent(4), 1_250) == 1
    assert fee_for(FeePlan.percent(4), 3_750) == 2  # 1.5 → 2 (half-even agrees here)


def test_decimal_rates_are_exact() -> None:
    """A rate of "0.6" bp is 0.006 %: 1 000 000 fen gives exactly 60 fen."""
    assert fee_for(FeePlan.percent("0.6"), 1_000_000) == 60


def test_minimum_and_maximum_bound_the_percent_fee() -> None:
    """保底 lifts a small order's fee to the minimum; 封顶 caps a large one."""
    plan = FeePlan.percent(38, min_fen=100, max_fen=2_000)
    assert fee_for(plan, 1_000) == 100  # 3.8 → 4, lifted to 100
    assert fee_for(plan, 100_000) == 380
    assert fee_for(plan, 10_000_000) == 2_000  # 38 000, capped


def test_fixed_fee_ignores_the_amount() -> None:
    """A fixed plan charges the same fen on every order."""
    assert fee_for(FeePlan.fixed(50), 1) == 50
    assert fee_for(FeePlan.fixed(50), 10**9) == 50


def test_same_day_surcharge_is_its_own_line_outside_the_cap() -> None:
    """D+0 adds amount x surcharge rounded on its own (12.345 → 12), even above the max."""
    plan = FeePlan.percent(38, max_fen=40, same_day_surcharge_bp=10)
    assert fee_for(plan, 12_345) == 40  # 47, capped at 40 on T+1
    assert fee_for(plan, 12_345, same_day=True) == 40 + 12
    assert fee_for(FeePlan.fixed(50, same_day_surcharge_bp=10), 12_345, same_day=True) == 62


@pytest.mark.parametrize(
    "build",
    [
        lambda: FeePlan(rate_bp=38, fixed_fen=50),
        lambda: FeePlan(fixed_fen=50, min_fen=10),
        lambda: FeePlan(fixed_fen=50, max_fen=100),
        lambda: FeePlan.percent(38, min_fen=200, max_fen=100),
    ],
)
def test_inconsistent_fee_plans_are_refused(build: object) -> None:
    """A fixed plan with a rate or bounds, or a maximum below the minimum, is a 400."""
    with pytest.raises(FeePlanInvalid) as caught:
        build()  # type: ignore[operator]
    assert caught.value.code == "fee_plan_invalid"
    assert caught.value.http_status == 400


@pytest.mark.parametrize("rate", [-1, 10_001, "1e3", "0.0000001"])
def test_bad_rates_are_refused_with_the_kernel_code(rate: object) -> None:
    """Rates outside 0–10000 bp or with too many decimals are `invalid_rate`."""
    with pytest.raises(InvalidRequest) as caught:
        FeePlan.percent(rate)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_rate"


@pytest.mark.parametrize("amount", [0, -1])
def test_an_order_fee_needs_a_positive_amount(amount: int) -> None:
    """There is no fee on a zero or negative order; the caller gets a 400."""
    with pytest.raises(AmountInvalid):
        fee_for(FeePlan.percent(38), amount)


@given(
    amount=order_amounts, rate=rates_bp, min_fen=st.integers(0, 500), extra=st.integers(0, 10**6)
)
def test_fee_stays_within_the_plan_bounds(amount: int, rate: int, min_fen: int, extra: int) -> None:
    """Whatever the amount, a percent fee is between the plan's minimum and maximum."""
    plan = FeePlan.percent(rate, min_fen=min_fen, max_fen=min_fen + extra)
    assert min_fen <= fee_for(plan, amount) <= min_fen + extra


def test_rates_are_normalised_so_equal_plans_compare_equal() -> None:
    """38, "38" and Decimal("38.0") bp are the same plan."""
    assert FeePlan.percent(38) == FeePlan.percent("38") == FeePlan.percent(Decimal("38.0"))


def test_a_plan_snapshot_is_json_and_round_trips() -> None:
    """The snapshot stored on an order is plain JSON and gives back the same plan."""
    plan = FeePlan.percent("0.6", min_fen=10, max_fen=2_000, same_day_surcharge_bp=Decimal("1E+1"))
    stored = json.loads(json.dumps(plan.snapshot()))
    assert stored == {
        "rate_bp": "0.6",
        "fixed_fen": None,
        "min_fen": 10,
        "max_fen": 2_000,
        "same_day_surcharge_bp": "10",
    }
    assert FeePlan.from_snapshot(stored) == plan
    assert FeePlan.from_snapshot(FeePlan.fixed(50).snapshot()) == FeePlan.fixed(50)


@pytest.mark.parametrize(
    "snapshot",
    [
        {"rate_bp": "38"},
        {**FeePlan.percent(38).snapshot(), "rate_bp": 38},
        {**FeePlan.percent(38).snapshot(), "min_fen": "10"},
        {**FeePlan.percent(38).snapshot(), "extra": 1},
    ],
)
def test_malformed_snapshots_are_refused(snapshot: dict[str, object]) -> None:
    """A snapshot with missing, extra or mistyped fields is `fee_plan_invalid`, not a crash."""
    with pytest.raises(FeePlanInvalid):
        FeePlan.from_snapshot(snapshot)


@given(
    rate=st.decimals(min_value=0, max_value=10_000, places=6),
    min_fen=st.integers(0, 10**6),
    extra=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_any_percent_plan_round_trips_through_its_snapshot(
    rate: Decimal, min_fen: int, extra: int | None
) -> None:
    """Whatever the rate and bounds, from_snapshot(snapshot(plan)) is the plan."""
    plan = FeePlan.percent(
        rate, min_fen=min_fen, max_fen=None if extra is None else min_fen + extra
    )
    assert FeePlan.from_snapshot(json.loads(json.dumps(plan.snapshot()))) == plan


# --- channel cost and margin ------------------------------------------------------------


def test_margin_is_fee_less_channel_cost() -> None:
    """A 38 bp merchant on a 20 bp route: 47 − 25 = 22 fen margin on 12 345 fen."""
    cost = channel_cost_for(FeePlan.percent(20), 12_345)
    assert cost == 25  # 24.69 → 25
    assert margin_fen(fee_for(FeePlan.percent(38), 12_345), cost) == 22


def test_margin_can_be_negative_and_is_not_clamped() -> None:
    """A 0-rate campaign merchant still costs the channel fee: the margin shows the loss."""
    fee = fee_for(FeePlan.percent(0), 12_345)
    assert margin_fen(fee, channel_cost_for(FeePlan.percent(20), 12_345)) == -25


# --- agent commission (分润) ------------------------------------------------------------


def test_commission_is_the_spread_between_cost_rates() -> None:
    """Merchant 60 bp, L1 cost 45, L2 cost 50: platform 45, L1 5 and L2 10 parts of 60."""
    chain = [AgentTier("agt_city", 45), AgentTier("agt_district", 50)]
    share = share_fee(600, 60, chain)
    assert share.platform_fen == 450
    assert share.commissions == (("agt_city", 50), ("agt_district", 100))
    assert share.platform_net_fen(channel_cost_fen=200) == 250


def test_a_capped_fee_is_shared_in_the_same_proportions() -> None:
    """When the maximum cut the fee to 300, every level gets half of its uncapped share."""
    share = share_fee(300, 60, [AgentTier("a1", 45), AgentTier("a2", 50)])
    assert (share.platform_fen, share.commissions) == (225, (("a1", 25), ("a2", 50)))


def test_uneven_fee_goes_by_largest_remainder() -> None:
    """7 fen over weights 45/5/10 is 5.25/0.58/1.17: the leftover fen goes to L1 (0.58)."""
    share = share_fee(7, 60, [AgentTier("a1", 45), AgentTier("a2", 50)])
    assert (share.platform_fen, share.commissions) == (5, (("a1", 1), ("a2", 1)))


def test_without_agents_or_rates_the_platform_keeps_the_fee() -> None:
    """No chain, or a 0-rate chain on a fixed fee: the whole fee is the platform's."""
    assert share_fee(47, 38, []).platform_fen == 47
    zero = share_fee(50, 0, [AgentTier("a1", 0)])
    assert (zero.platform_fen, zero.commissions) == (50, (("a1", 0),))


@pytest.mark.parametrize(
    "chain",
    [
        [AgentTier("a1", 45), AgentTier("a2", 40)],  # L2 buys below L1's cost
        [AgentTier("a1", 45), AgentTier("a2", 70)],  # L2 costs more than the merchant pays
        [AgentTier("a1", 45), AgentTier("a1", 50)],  # the same agent twice
    ],
)
def test_inverted_or_repeated_chains_are_refused(chain: list[AgentTier]) -> None:
    """A chain that would pay a negative commission, or pay one agent twice, is a 400."""
    with pytest.raises(CommissionChainInvalid) as caught:
        share_fee(600, 60, chain)
    assert caught.value.code == "commission_chain_invalid"


def test_chain_depth_is_bounded() -> None:
    """More agent levels than MAX_AGENT_LEVELS is refused with its own code."""
    chain = [AgentTier(f"a{level}", level) for level in range(MAX_AGENT_LEVELS + 1)]
    with pytest.raises(CommissionChainInvalid) as caught:
        share_fee(600, 60, chain)
    assert caught.value.code == "commission_chain_too_deep"


@st.composite
def agent_chains(draw: st.DrawFn) -> tuple[int, list[AgentTier]]:
    merchant_rate = draw(st.integers(0, 1_000))
    costs = sorted(draw(st.lists(st.integers(0, merchant_rate), max_size=MAX_AGENT_LEVELS)))
    return merchant_rate, [AgentTier(f"agt_{i}", cost) for i, cost in enumerate(costs)]


@given(fee=st.integers(0, 10**12), priced=agent_chains())
def test_commission_parts_always_equal_the_fee(
    fee: int, priced: tuple[int, list[AgentTier]]
) -> None:
    """For any valid chain, the platform's part plus every commission is the fee to the fen."""
    merchant_rate, chain = priced
    share = share_fee(fee, merchant_rate, chain)
    commissions = [amount for _, amount in share.commissions]
    assert share.platform_fen + sum(commissions) == fee
    assert all(amount >= 0 for amount in [share.platform_fen, *commissions])


# --- refund fee returns -----------------------------------------------------------------


def _returns(policy: RefundFeePolicy, order: int, fee: int, refunds: list[int]) -> list[int]:
    returned, refunded, out = 0, 0, []
    for refund in refunds:
        back = fee_return_for(
            policy,
            order_amount_fen=order,
            fee_fen=fee,
            refunded_before_fen=refunded,
            fee_returned_before_fen=returned,
            refund_amount_fen=refund,
        )
        out.append(back)
        returned += back
        refunded += refund
    return out


def test_proportional_return_gives_the_rest_on_the_last_refund() -> None:
    """38 fen over refunds of 3 333/3 333/3 334 of 10 000: 13 (12.67), 12 (25.33 − 13), 13."""
    assert _returns(RefundFeePolicy.PROPORTIONAL, 10_000, 38, [3_333, 3_333, 3_334]) == [13, 12, 13]


def test_no_return_policy_keeps_the_fee() -> None:
    """Under `none` the merchant gets no fee back, even on a full refund."""
    assert _returns(RefundFeePolicy.NONE, 10_000, 38, [5_000, 5_000]) == [0, 0]


def test_full_return_only_on_full_refund() -> None:
    """Under `full_on_full_refund` partial refunds return nothing, the last one everything."""
    policy = RefundFeePolicy.FULL_ON_FULL_REFUND
    assert _returns(policy, 10_000, 38, [4_000, 6_000]) == [0, 38]
    assert _returns(policy, 10_000, 38, [4_000]) == [0]


def test_refunds_beyond_the_order_are_refused() -> None:
    """A refund that would take total refunds past the order amount is a 400."""
    with pytest.raises(RefundExceedsOrder):
        _returns(RefundFeePolicy.PROPORTIONAL, 10_000, 38, [6_000, 4_001])


def test_more_fee_returned_than_charged_is_refused() -> None:
    """A history claiming more fee returned than the fee itself is refused, not trusted."""
    with pytest.raises(FeeReturnInvalid):
        fee_return_for(
            RefundFeePolicy.PROPORTIONAL,
            order_amount_fen=100,
            fee_fen=5,
            refunded_before_fen=0,
            fee_returned_before_fen=6,
            refund_amount_fen=10,
        )


@st.composite
def refund_sequences(draw: st.DrawFn) -> tuple[int, list[int]]:
    order = draw(st.integers(1, 10**9))
    refunds: list[int] = []
    left = order
    for _ in range(draw(st.integers(1, 8))):
        if not left:
            break
        refund = draw(st.integers(1, left))
        refunds.append(refund)
        left -= refund
    return order, refunds


@given(
    sequence=refund_sequences(), fee=st.integers(0, 10**7), policy=st.sampled_from(RefundFeePolicy)
)
def test_fee_returns_never_exceed_the_fee(
    sequence: tuple[int, list[int]], fee: int, policy: RefundFeePolicy
) -> None:
    """Over any refunds, returns are ≥ 0, never above the fee, and all of it on a full refund."""
    order, refunds = sequence
    returns = _returns(policy, order, fee, refunds)
    assert all(back >= 0 for back in returns)
    assert sum(returns) <= fee
    if sum(refunds) == order and policy is not RefundFeePolicy.NONE:
        assert sum(returns) == fee
