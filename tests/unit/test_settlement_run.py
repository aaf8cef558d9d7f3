"""The settlement run (net payable) and payouts under Class II/III limits, by example and by
property: whatever happens, payouts + fees + splits + reserve = gross − refunds to the fen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudpay.settlement import (
    PBOC_ACCOUNT_LIMITS,
    AccountClass,
    AccountLimits,
    AmountInvalid,
    FeePlan,
    OverLimitPolicy,
    PaymentLine,
    PayoutLimitsInvalid,
    PayoutPlan,
    RefundFeePolicy,
    RefundLine,
    ReservePolicy,
    SettlementLine,
    SplitConfig,
    SplitLine,
    SplitPart,
    SplitRefused,
    SplitReturnLine,
    SplitRule,
    fee_for,
    fee_return_for,
    plan_payouts,
    plan_split,
    settle_merchant,
    split_return,
)

RUN_DATE = date(2026, 11, 25)


def test_net_payable_of_a_day_by_hand() -> None:
    """15 000 gross − 3 000 refunded − 57 fees + 11 back − 2 590 split − 750 reserve = 8 614."""
    lines: list[SettlementLine] = [
        PaymentLine(10_000, 38),
        PaymentLine(5_000, 19),
        RefundLine(3_000, 11),
        SplitLine(2_590),
    ]
    result = settle_merchant(lines, business_date=RUN_DATE, reserve=ReservePolicy(500, 90))
    assert (result.gross_fen, result.refunds_fen, result.fees_fen) == (15_000, 3_000, 57)
    assert (result.fee_returns_fen, result.splits_fen, result.split_returns_fen) == (11, 2_590, 0)
    assert result.reserve_held_fen == 750  # 5 % of 15 000
    assert result.reserve_release_on == date(2027, 2, 23)  # 90 days later
    assert result.net_fen == 8_614


def test_released_reserve_and_split_returns_are_paid_out() -> None:
    """An old hold coming due (700) and receivers' returns (300) add to the day's net."""
    lines: list[SettlementLine] = [PaymentLine(1_000, 4), SplitReturnLine(300)]
    result = settle_merchant(lines, business_date=RUN_DATE, reserve_released_fen=700)
    assert result.net_fen == 1_000 - 4 + 300 + 700
    assert result.reserve_held_fen == 0
    assert result.reserve_release_on is None


def test_reserve_never_turns_a_payout_into_a_debt() -> None:
    """10 % of 1 000 gross is 100, but the day leaves only 96: 96 is held, net 0."""
    lines: list[SettlementLine] = [PaymentLine(1_000, 4), RefundLine(900, 0)]
    result = settle_merchant(lines, business_date=RUN_DATE, reserve=ReservePolicy(1_000))
    assert (result.reserve_held_fen, result.net_fen) == (96, 0)


def test_a_day_of_refunds_only_is_a_debt_carried_forward() -> None:
    """Refunds beyond the day's takings give a negative net; nothing is held, nothing paid."""
    result = settle_merchant(
        [RefundLine(5_000, 19)], business_date=RUN_DATE, reserve=ReservePolicy(500)
    )
    assert (result.net_fen, result.reserve_held_fen) == (-4_981, 0)
    assert plan_payouts(result.net_fen, AccountClass.CLASS_II) == PayoutPlan(0, 0, -4_981)


def test_bad_lines_are_refused() -> None:
    """Negative amounts are 400s; something that is not a line is a programmer error."""
    with pytest.raises(AmountInvalid):
        settle_merchant([PaymentLine(-1, 0)], business_date=RUN_DATE)
    with pytest.raises(TypeError):
        settle_merchant(["payment"], business_date=RUN_DATE)  # type: ignore[list-item]
    with pytest.raises(AmountInvalid):
        ReservePolicy(500, hold_days=-1)


# --- payouts under account limits -------------------------------------------------------


def test_class_ii_pays_ten_thousand_yuan_a_day_and_carries_the_rest() -> None:
    """15 000 yuan to a Class II account: 10 000 today, 5 000 carried to the next days."""
    plan = plan_payouts(1_500_000, AccountClass.CLASS_II)
    assert plan == PayoutPlan(1_000_000, 0, 500_000, "daily_limit")


def test_over_limit_can_be_rerouted_to_the_class_i_account() -> None:
    """With reroute configured, the 5 000 yuan over the limit go to the Class I account."""
    plan = plan_payouts(1_500_000, AccountClass.CLASS_II, policy=OverLimitPolicy.REROUTE_TO_CLASS_I)
    assert plan == PayoutPlan(1_000_000, 500_000, 0, "daily_limit")


def test_class_iii_balance_and_yearly_limits_bind() -> None:
    """Class III holding 1 500 yuan takes 500 more; Class II at 199 000 this year, 1 000."""
    balance_bound = plan_payouts(300_000, AccountClass.CLASS_III, balance_fen=150_000)
    assert balance_bound == PayoutPlan(50_000, 0, 250_000, "balance_limit")
    yearly = plan_payouts(300_000, AccountClass.CLASS_II, already_used_this_year_fen=19_900_000)
    assert yearly == PayoutPlan(100_000, 0, 200_000, "yearly_limit")
    used_up = plan_payouts(300_000, AccountClass.CLASS_II, already_used_today_fen=1_200_000)
    assert used_up == PayoutPlan(0, 0, 300_000, "daily_limit")


def test_class_i_and_configured_limits() -> None:
    """Class I is unlimited; a bank's own lower limit is configured per class."""
    assert plan_payouts(10**12, AccountClass.CLASS_I) == PayoutPlan(10**12, 0, 0)
    strict = {**PBOC_ACCOUNT_LIMITS, AccountClass.CLASS_II: AccountLimits(daily_in_fen=100)}
    assert plan_payouts(250, AccountClass.CLASS_II, strict) == PayoutPlan(
        100, 0, 150, "daily_limit"
    )


def test_negative_usage_or_limits_are_refused() -> None:
    """Negative usage or limits are `payout_limits_invalid`."""
    with pytest.raises(PayoutLimitsInvalid):
        plan_payouts(100, AccountClass.CLASS_II, already_used_today_fen=-1)
    with pytest.raises(PayoutLimitsInvalid):
        AccountLimits(daily_in_fen=-5)


@given(
    net=st.integers(-(10**9), 10**10),
    account=st.sampled_from(AccountClass),
    used_today=st.integers(0, 2 * 10**6),
    used_year=st.integers(0, 3 * 10**7),
    balance=st.integers(0, 10**6),
    policy=st.sampled_from(OverLimitPolicy),
)
def test_payouts_never_drop_money(
    net: int,
    account: AccountClass,
    used_today: int,
    used_year: int,
    balance: int,
    policy: OverLimitPolicy,
) -> None:
    """Today's payout + reroute + carry-over is always the net, and today's fits every limit."""
    plan = plan_payouts(net, account, PBOC_ACCOUNT_LIMITS, used_today, used_year, balance, policy)
    assert plan.pay_today_fen + plan.to_class_i_fen + plan.carry_over_fen == net
    assert plan.pay_today_fen >= 0
    assert plan.to_class_i_fen >= 0
    limits = PBOC_ACCOUNT_LIMITS[account]
    if limits.daily_in_fen is not None:
        assert plan.pay_today_fen <= max(0, limits.daily_in_fen - used_today)
    if limits.yearly_in_fen is not None:
        assert plan.pay_today_fen <= max(0, limits.yearly_in_fen - used_year)
    if limits.max_balance_fen is not None:
        assert plan.pay_today_fen <= max(0, limits.max_balance_fen - balance)


@given(net=st.integers(1, 10**8))
def test_carried_payouts_are_paid_off_over_the_following_days(net: int) -> None:
    """Carrying over to a Class II account pays the whole net in ceil(net / limit) days."""
    paid, carry, days = 0, net, 0
    while carry:
        plan = plan_payouts(carry, AccountClass.CLASS_II, already_used_this_year_fen=0)
        paid, carry, days = paid + plan.pay_today_fen, plan.carry_over_fen, days + 1
    assert paid == net
    assert days == -(-net // 1_000_000)


# --- the conservation property over any day of business ----------------------------------

RECEIVERS = ("store", "agent", "supplier")
CONFIG = SplitConfig(frozenset(RECEIVERS))


@dataclass
class Order:
    amount_fen: int
    plan: FeePlan
    policy: RefundFeePolicy
    rules: list[SplitRule]
    refunds: list[int]


@st.composite
def fee_plans(draw: st.DrawFn) -> FeePlan:
    if draw(st.booleans()):
        return FeePlan.fixed(draw(st.integers(0, 200)))
    low = draw(st.integers(0, 100))
    high = draw(st.one_of(st.none(), st.integers(low, low + 10_000)))
    return FeePlan.percent(draw(st.integers(0, 100)), min_fen=low, max_fen=high)


@st.composite
def orders(draw: st.DrawFn) -> Order:
    amount = draw(st.integers(1, 10**8))
    rules = [
        SplitRule.percent(name, draw(st.integers(0, 1_200)))
        if draw(st.booleans())
        else SplitRule.fixed(name, draw(st.integers(0, amount // 10)))
        for name in draw(st.lists(st.sampled_from(RECEIVERS), unique=True, max_size=3))
    ]
    refunds: list[int] = []
    left = amount
    for _ in range(draw(st.integers(0, 4))):
        if left:
            refunds.append(draw(st.integers(1, left)))
            left -= refunds[-1]
    return Order(amount, draw(fee_plans()), draw(st.sampled_from(RefundFeePolicy)), rules, refunds)


def _split_parts(order: Order, fee_fen: int) -> tuple[SplitPart, ...]:
    if fee_fen > order.amount_fen:
        return ()
    try:
        return plan_split(order.amount_fen, fee_fen, order.rules, CONFIG).parts
    except SplitRefused:
        return ()  # the merchant's order is then settled unsplit


def _lines_of(order: Order) -> list[SettlementLine]:
    """Run one order through the rules exactly as the settlement service would."""
    fee = fee_for(order.plan, order.amount_fen)
    parts = _split_parts(order, fee)
    lines: list[SettlementLine] = [
        PaymentLine(order.amount_fen, fee),
        SplitLine(sum(part.amount_fen for part in parts)),
    ]
    refunded, fee_back = 0, 0
    returned = {part.receiver_id: 0 for part in parts}
    for refund in order.refunds:
        back = fee_return_for(
            order.policy,
            order_amount_fen=order.amount_fen,
            fee_fen=fee,
            refunded_before_fen=refunded,
            fee_returned_before_fen=fee_back,
            refund_amount_fen=refund,
        )
        unwound = split_return(
            parts, refund, order.amount_fen, refunded_before_fen=refunded, returned_before=returned
        )
        for part in unwound:
            returned[part.receiver_id] += part.amount_fen
        lines += [RefundLine(refund, back), SplitReturnLine(sum(p.amount_fen for p in unwound))]
        refunded, fee_back = refunded + refund, fee_back + back
    assert fee_back <= fee
    return lines


@given(
    day=st.lists(orders(), max_size=12),
    reserve_bp=st.integers(0, 1_000),
    released=st.integers(0, 10**6),
    account=st.sampled_from(AccountClass),
    policy=st.sampled_from(OverLimitPolicy),
)
def test_payouts_fees_splits_and_reserve_equal_gross_less_refunds(
    day: list[Order], reserve_bp: int, released: int, account: AccountClass, policy: OverLimitPolicy
) -> None:
    """For any payments, refunds and splits, every fen of gross − refunds is accounted for."""
    lines = [line for order in day for line in _lines_of(order)]
    result = settle_merchant(
        lines,
        business_date=RUN_DATE,
        reserve=ReservePolicy(reserve_bp),
        reserve_released_fen=released,
    )
    payout = plan_payouts(result.net_fen, account, policy=policy)
    paid_or_owed = payout.pay_today_fen + payout.to_class_i_fen + payout.carry_over_fen

    def total(kind: type, field: str) -> int:
        return sum(getattr(line, field) for line in lines if isinstance(line, kind))

    gross = total(PaymentLine, "amount_fen")
    refunds = total(RefundLine, "amount_fen")
    fees = total(PaymentLine, "fee_fen") - total(RefundLine, "fee_return_fen")
    splits = total(SplitLine, "amount_fen") - total(SplitReturnLine, "amount_fen")
    reserve = result.reserve_held_fen - released
    assert paid_or_owed + fees + splits + reserve == gross - refunds
    assert 0 <= result.reserve_held_fen <= gross * reserve_bp // 10_000 + 1
