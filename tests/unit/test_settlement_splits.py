"""Splits (分账): plans by rule or instruction, multi-level chains, caps, returns, unfreeze."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudpay.kernel.errors import InvalidRequest
from cloudpay.settlement import (
    DEFAULT_SPLIT_CAP_BP,
    MAX_SPLIT_RECEIVERS,
    AmountInvalid,
    RefundExceedsOrder,
    SplitConfig,
    SplitPart,
    SplitPlan,
    SplitRefused,
    SplitRule,
    auto_unfreeze_date,
    plan_split,
    split_return,
    unfreeze,
)

RECEIVERS = frozenset(
    {"store", "agent", "supplier", "platform", "hq"} | {f"r{i}" for i in range(60)}
)
CONFIG = SplitConfig(RECEIVERS)


def _refused(rules: list[SplitRule], config: SplitConfig = CONFIG, order: int = 10_000) -> str:
    with pytest.raises(SplitRefused) as caught:
        plan_split(order, 38, rules, config)
    assert caught.value.http_status == 400
    return caught.value.code


def test_rules_split_the_order_less_fee_by_largest_remainder() -> None:
    """9 962 fen: 20 % → 1 992 (1992.4), 5 % → 498 (498.1), fixed 100; the merchant keeps 7 372."""
    rules = [
        SplitRule.percent("store", 2_000),
        SplitRule.percent("agent", 500),
        SplitRule.fixed("supplier", 100),
    ]
    plan = plan_split(10_000, 38, rules, CONFIG)
    assert plan.splittable_fen == 9_962
    assert [(p.receiver_id, p.amount_fen, p.level) for p in plan.parts] == [
        ("store", 1_992, 1),
        ("agent", 498, 1),
        ("supplier", 100, 1),
    ]
    assert plan.merchant_keeps_fen == 7_372  # 7 471.5 rounds up to 7 472, less the fixed 100
    assert plan.total_split_fen + plan.merchant_keeps_fen == plan.splittable_fen


def test_per_order_instructions_are_fixed_rules() -> None:
    """An order's own instructions name exact fen per receiver."""
    plan = plan_split(
        10_000, 38, [SplitRule.fixed("r1", 1_000), SplitRule.fixed("r2", 500)], CONFIG
    )
    assert [p.amount_fen for p in plan.parts] == [1_000, 500]
    assert plan.merchant_keeps_fen == 9_962 - 1_500


def test_a_share_can_itself_be_split_down_a_chain() -> None:
    """HQ's order: store 25 % of 99 400 = 24 850, of which the supplier takes 10 % (2 485)."""
    rules = [
        SplitRule.percent("store", 2_500),
        SplitRule.percent("supplier", 1_000, split_from="store"),
        SplitRule.fixed("platform", 200),
    ]
    plan = plan_split(100_000, 600, rules, CONFIG)
    assert [(p.receiver_id, p.amount_fen, p.level, p.split_from) for p in plan.parts] == [
        ("store", 22_365, 1, None),
        ("supplier", 2_485, 2, "store"),
        ("platform", 200, 1, None),
    ]
    assert plan.merchant_keeps_fen == 74_350
    assert plan.total_split_fen + plan.merchant_keeps_fen == 99_400


def test_three_levels_deep_is_allowed_and_four_is_not() -> None:
    """HQ → store → supplier is the deepest chain; a fourth level is `split_chain_invalid`."""
    three = [
        SplitRule.percent("hq", 2_000),
        SplitRule.percent("store", 5_000, split_from="hq"),
        SplitRule.fixed("supplier", 10, split_from="store"),
    ]
    assert [p.level for p in plan_split(10_000, 0, three, CONFIG).parts] == [1, 2, 3]
    assert (
        _refused([*three, SplitRule.fixed("r1", 1, split_from="supplier")]) == "split_chain_invalid"
    )


@pytest.mark.parametrize(
    ("rules", "code"),
    [
        ([SplitRule.fixed("stranger", 10)], "split_receiver_unbound"),
        ([SplitRule.fixed("r1", 10), SplitRule.percent("r1", 10)], "split_receiver_duplicate"),
        ([SplitRule("r1")], "split_rule_invalid"),
        ([SplitRule("r1", rate_bp=10, fixed_fen=10)], "split_rule_invalid"),
        ([SplitRule.fixed("r1", 10, split_from="r2")], "split_chain_invalid"),
        (
            [
                SplitRule.fixed("r1", 10, split_from="r2"),
                SplitRule.fixed("r2", 10, split_from="r1"),
            ],
            "split_chain_invalid",
        ),
        ([SplitRule.percent("r1", 2_000), SplitRule.fixed("r2", 1_100)], "split_over_cap"),
        (
            [SplitRule.percent("r1", 1_000), SplitRule.fixed("r2", 1_001, split_from="r1")],
            "split_exceeds_available",
        ),
    ],
)
def test_bad_splits_are_refused_with_precise_codes(rules: list[SplitRule], code: str) -> None:
    """Unbound, duplicate, malformed, orphaned, cyclic, over-cap or overdrawn splits: 400s."""
    assert _refused(rules) == code


def test_negative_amounts_and_rates_are_refused() -> None:
    """A negative fixed amount or rate never reaches the arithmetic."""
    with pytest.raises(AmountInvalid):
        plan_split(10_000, 38, [SplitRule.fixed("r1", -1)], CONFIG)
    with pytest.raises(InvalidRequest) as caught:
        plan_split(10_000, 38, [SplitRule.percent("r1", -5)], CONFIG)
    assert caught.value.code == "invalid_rate"


def test_cap_is_thirty_percent_of_the_order_by_default_and_configurable() -> None:
    """3 000 fen of a 10 000 fen order passes the default cap; 3 001 does not; 50 % allows it."""
    assert DEFAULT_SPLIT_CAP_BP == 3_000
    assert plan_split(10_000, 38, [SplitRule.fixed("r1", 3_000)], CONFIG).total_split_fen == 3_000
    assert _refused([SplitRule.fixed("r1", 3_001)]) == "split_over_cap"
    wider = SplitConfig(RECEIVERS, cap_bp=5_000)
    assert plan_split(10_000, 38, [SplitRule.fixed("r1", 5_000)], wider).total_split_fen == 5_000


def test_at_most_fifty_receivers() -> None:
    """50 receivers are fine, 51 are `split_receivers_too_many`."""
    rules = [SplitRule.fixed(f"r{i}", 1) for i in range(MAX_SPLIT_RECEIVERS)]
    assert len(plan_split(10_000, 38, rules, CONFIG).parts) == 50
    assert _refused([*rules, SplitRule.fixed("r59", 1)]) == "split_receivers_too_many"


def test_a_fee_above_the_order_leaves_nothing_to_split() -> None:
    """A minimum fee larger than a tiny order is refused for splitting, not made negative."""
    with pytest.raises(AmountInvalid):
        plan_split(50, 100, [], CONFIG)


@st.composite
def split_cases(draw: st.DrawFn) -> tuple[int, int, list[SplitRule]]:
    order = draw(st.integers(1, 10**10))
    # Mostly realistic fees, sometimes a minimum fee that eats most of a tiny order.
    fee = draw(st.one_of(st.integers(0, order // 50), st.integers(0, order)))
    names = draw(st.lists(st.sampled_from(sorted(RECEIVERS)), unique=True, max_size=12))
    rules: list[SplitRule] = []
    for index, name in enumerate(names):
        parent = draw(st.sampled_from([None, *[r.receiver_id for r in rules[:index]]]))
        parent = parent if parent is None or _depth(rules, parent) < 3 else None
        if draw(st.booleans()):
            rules.append(SplitRule.percent(name, draw(st.integers(0, 2_000)), split_from=parent))
        else:
            rules.append(
                SplitRule.fixed(name, draw(st.integers(0, order // 40)), split_from=parent)
            )
    return order, fee, rules


def _depth(rules: list[SplitRule], receiver: str) -> int:
    by_name = {rule.receiver_id: rule for rule in rules}
    depth, parent = 1, by_name[receiver].split_from
    while parent is not None:
        depth, parent = depth + 1, by_name[parent].split_from
    return depth


def _plan_or_refusal(
    order: int, fee: int, rules: list[SplitRule], config: SplitConfig
) -> SplitPlan | str:
    try:
        return plan_split(order, fee, rules, config)
    except SplitRefused as refused:
        return refused.code


@given(case=split_cases())
def test_parts_always_sum_to_the_whole(case: tuple[int, int, list[SplitRule]]) -> None:
    """Any accepted plan: parts + merchant's share == order − fee, each ≥ 0, within the cap."""
    order, fee, rules = case
    cap_fen = order * 3_000 // 10_000
    plan = _plan_or_refusal(order, fee, rules, CONFIG)
    if plan == "split_over_cap":  # then without a cap the same rules do take more
        uncapped = _plan_or_refusal(order, fee, rules, SplitConfig(RECEIVERS, cap_bp=10_000))
        assert isinstance(uncapped, str) or uncapped.total_split_fen > cap_fen
        return
    if plan == "split_exceeds_available":
        return
    assert isinstance(plan, SplitPlan)
    assert plan.total_split_fen + plan.merchant_keeps_fen == order - fee
    assert all(part.amount_fen >= 0 for part in plan.parts)
    assert plan.merchant_keeps_fen >= 0
    # Deeper parts are carved out of level-1 shares, so all parts together are what left.
    assert plan.total_split_fen <= cap_fen


# --- split return (分账回退) -----------------------------------------------------------


PARTS = (SplitPart("store", 1_992, 1), SplitPart("agent", 498, 1), SplitPart("supplier", 100, 1))


def test_a_half_refund_returns_half_of_each_part() -> None:
    """Refunding 5 000 of 10 000 fen takes back 996 + 249 + 50 = 1 295 of the 2 590 split."""
    returned = split_return(PARTS, 5_000, 10_000)
    assert [p.amount_fen for p in returned] == [996, 249, 50]


def test_uneven_return_is_exact_and_the_last_refund_takes_the_rest() -> None:
    """3 333 of 10 000: 863 fen (863.2) shared 664/166/33; the rest returns 1 328/332/67."""
    first = split_return(PARTS, 3_333, 10_000)
    assert [p.amount_fen for p in first] == [664, 166, 33]
    before = {p.receiver_id: p.amount_fen for p in first}
    rest = split_return(PARTS, 6_667, 10_000, refunded_before_fen=3_333, returned_before=before)
    assert [p.amount_fen for p in rest] == [1_328, 332, 67]
    assert [a.amount_fen + b.amount_fen for a, b in zip(first, rest, strict=True)] == [
        1_992,
        498,
        100,
    ]


def test_bad_return_histories_are_refused() -> None:
    """Returns beyond a part, from a stranger, or refunds beyond the order are 400s."""
    with pytest.raises(SplitRefused):
        split_return(PARTS, 10, 10_000, returned_before={"store": 1_993})
    with pytest.raises(SplitRefused):
        split_return(PARTS, 10, 10_000, returned_before={"stranger": 1})
    with pytest.raises(RefundExceedsOrder):
        split_return(PARTS, 10_001, 10_000)


@st.composite
def return_cases(draw: st.DrawFn) -> tuple[tuple[SplitPart, ...], int, list[int]]:
    order = draw(st.integers(1, 10**9))
    amounts = draw(st.lists(st.integers(0, order), min_size=1, max_size=8))
    parts = tuple(SplitPart(f"r{i}", amount, 1) for i, amount in enumerate(amounts))
    refunds: list[int] = []
    left = order
    while left and len(refunds) < 6:
        refund = draw(st.integers(1, left))
        refunds.append(refund)
        left -= refund
    return parts, order, refunds


@given(case=return_cases())
def test_split_returns_never_exceed_a_part_and_sum_exactly(
    case: tuple[tuple[SplitPart, ...], int, list[int]],
) -> None:
    """Over any refunds, each receiver returns 0..its part, and all of it on a full refund."""
    parts, order, refunds = case
    before = {part.receiver_id: 0 for part in parts}
    refunded = 0
    for refund in refunds:
        for back in split_return(
            parts, refund, order, refunded_before_fen=refunded, returned_before=before
        ):
            assert back.amount_fen >= 0
            before[back.receiver_id] += back.amount_fen
        refunded += refund
        assert all(before[p.receiver_id] <= p.amount_fen for p in parts)
    if refunded == order:
        assert before == {part.receiver_id: part.amount_fen for part in parts}


# --- delayed split: held, then unfrozen -------------------------------------------------


def test_unfreeze_releases_what_was_not_split() -> None:
    """Held 10 000, split 2 500 so far: unfreezing releases 7 500 to the merchant."""
    assert unfreeze(10_000, 2_500) == 7_500
    assert unfreeze(10_000, 0) == 10_000
    with pytest.raises(SplitRefused) as caught:
        unfreeze(10_000, 10_001)
    assert caught.value.code == "split_exceeds_available"


def test_held_funds_release_automatically_after_the_configured_days() -> None:
    """Funds held on 2026-11-25 are released on 2026-12-25 by default (30 days), or as set."""
    assert auto_unfreeze_date(date(2026, 11, 25)) == date(2026, 12, 25)
    assert auto_unfreeze_date(date(2026, 11, 25), 3) == date(2026, 11, 28)
    with pytest.raises(AmountInvalid):
        auto_unfreeze_date(date(2026, 11, 25), -1)
