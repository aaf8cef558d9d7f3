"""Marketing's pure rules: discount rules, rule checks, claim refusals and the best quote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudpay.marketing.errors import ClaimRefused, CurrencyUnsupported, InvalidCampaign
from cloudpay.marketing.model import (
    MIN_PAYABLE_FEN,
    Audience,
    Campaign,
    CampaignKind,
    CampaignStats,
    CampaignStatus,
    Caps,
    DiscountRule,
    FunderKind,
    Instrument,
    MerchantFacts,
    MerchantScope,
    RuleKind,
    Windows,
    check_cap,
    check_claimable,
    check_currency,
    check_rule,
    check_windows,
    quote,
    subsidy_reversal_transfer_id,
    subsidy_to_give_back,
    subsidy_transfer_id,
)

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
SHOP = MerchantFacts("mch_shop", "5812", "370702")
THRESHOLD_10_OFF_40 = DiscountRule(RuleKind.THRESHOLD, discount_fen=1_000, threshold_fen=4_000)
TWENTY_PERCENT_CAP_15 = DiscountRule(RuleKind.PERCENT_OFF, percent_bp=2_000, cap_fen=1_500)
FIVE_OFF = DiscountRule(RuleKind.NO_THRESHOLD, discount_fen=500)


def _instrument(
    claim_id: str,
    rule: DiscountRule,
    *,
    campaign_id: str | None = None,
    stackable: bool = False,
    scope: MerchantScope | None = None,
    valid_until: datetime = NOW + timedelta(days=7),
    currency: str = "CNY",
) -> Instrument:
    return Instrument(
        claim_id, campaign_id or f"cmp_{claim_id}", currency, rule, scope or MerchantScope(),
        NOW - timedelta(days=1), valid_until, stackable,
    )  # fmt: skip


def _campaign(**changes: object) -> Campaign:
    fields: dict[str, object] = {
        "id": "cmp_1", "name": "spring vouchers", "funder_kind": FunderKind.GOVERNMENT,
        "funder_id": "weifang", "kind": CampaignKind.VOUCHER, "currency": "CNY",
        "rule": THRESHOLD_10_OFF_40, "stock": 10, "issued": 0, "committed_fen": 0,
        "funded_fen": 10_000,
        "windows": Windows(NOW - timedelta(hours=1), NOW + timedelta(hours=1), NOW,
                           NOW + timedelta(days=7)),
        "scope": MerchantScope(), "audience": Audience.ALL, "caps": Caps(),
        "stackable": False, "status": CampaignStatus.ACTIVE, "budget_account_id": "acc_1",
        "created_at": NOW,
    }  # fmt: skip
    fields.update(changes)
    return Campaign(**fields)  # type: ignore[arg-type]


# --- rules ------------------------------------------------------------------------------
def test_threshold_discount_applies_from_the_threshold() -> None:
    """满减 10 off 40: nothing at 39.99, 10 yuan at 40 and above."""
    assert THRESHOLD_10_OFF_40.discount_for(3_999) == 0
    assert THRESHOLD_10_OFF_40.discount_for(4_000) == 1_000
    assert THRESHOLD_10_OFF_40.max_value_fen == 1_000


def test_percent_off_rounds_down_and_stops_at_the_cap() -> None:
    """20 % off rounds down to the fen and never exceeds its 15-yuan cap."""
    assert TWENTY_PERCENT_CAP_15.discount_for(1_001) == 200
    assert TWENTY_PERCENT_CAP_15.discount_for(100_000) == 1_500
    assert TWENTY_PERCENT_CAP_15.max_value_fen == 1_500


def test_no_threshold_discount_is_at_most_the_amount() -> None:
    """A 5-yuan no-threshold coupon on a 3-yuan payment takes 3 yuan, before the floor."""
    assert FIVE_OFF.discount_for(300) == 300


@pytest.mark.parametrize(
    ("rule", "param"),
    [
        (DiscountRule(RuleKind.THRESHOLD, discount_fen=1_000, threshold_fen=1_000),
         "rule.threshold_fen"),
        (DiscountRule(RuleKind.PERCENT_OFF, percent_bp=10_000, cap_fen=100), "rule.percent_bp"),
        (DiscountRule(RuleKind.PERCENT_OFF, percent_bp=1_000), "rule.cap_fen"),
        (DiscountRule(RuleKind.NO_THRESHOLD), "rule.discount_fen"),
        (DiscountRule(RuleKind.NO_THRESHOLD, discount_fen=5, threshold_fen=10),
         "rule.threshold_fen"),
    ],
)  # fmt: skip
def test_inconsistent_rules_are_refused_with_the_field_named(
    rule: DiscountRule, param: str
) -> None:
    """A rule whose values contradict its kind is a 400 naming the offending field."""
    with pytest.raises(InvalidCampaign) as refused:
        check_rule(rule)
    assert refused.value.param == param


def test_windows_must_be_ordered_and_claims_end_within_validity() -> None:
    """Claim windows after the validity, or reversed windows, are refused."""
    with pytest.raises(InvalidCampaign):
        check_windows(Windows(NOW, NOW + timedelta(days=2), NOW, NOW + timedelta(days=1)))
    with pytest.raises(InvalidCampaign):
        check_windows(Windows(NOW, NOW, NOW, NOW + timedelta(days=1)))


def test_only_cny_campaigns_run() -> None:
    """Another currency is `currency_unsupported`."""
    assert check_currency("CNY") == "CNY"
    with pytest.raises(CurrencyUnsupported):
        check_currency("USD")


# --- claim refusals ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"status": CampaignStatus.DRAFT}, "campaign_not_active"),
        ({"status": CampaignStatus.ENDED}, "campaign_expired"),
        ({"windows": Windows(NOW - timedelta(hours=2), NOW, NOW, NOW + timedelta(days=1))},
         "campaign_expired"),
        ({"windows": Windows(NOW + timedelta(hours=1), NOW + timedelta(hours=2), NOW,
                             NOW + timedelta(days=1))}, "claim_window_not_open"),
        ({"issued": 10}, "out_of_stock"),
        ({"committed_fen": 9_500}, "budget_exhausted"),
    ],
)  # fmt: skip
def test_each_claim_refusal_has_its_reason(changes: dict[str, object], code: str) -> None:
    """Every state that forbids a claim maps to one reason code."""
    with pytest.raises(ClaimRefused) as refused:
        check_claimable(_campaign(**changes), NOW)
    assert refused.value.code == code


def test_an_open_funded_campaign_accepts_a_claim() -> None:
    """The happy state raises nothing."""
    check_claimable(_campaign(), NOW)


def test_caps_count_per_campaign_and_per_day() -> None:
    """cap_reached at the campaign cap or at the day's cap, whichever comes first."""
    caps = Caps(per_person_per_day=1, per_person_total=3)
    check_cap(caps, claimed_total=2, claimed_today=0)
    for total, today in ((3, 0), (1, 1)):
        with pytest.raises(ClaimRefused) as refused:
            check_cap(caps, claimed_total=total, claimed_today=today)
        assert refused.value.code == "cap_reached"


# --- the quote --------------------------------------------------------------------------
def test_quote_picks_the_largest_single_discount() -> None:
    """Of non-stackable instruments, only the best one is used."""
    result = quote(
        [_instrument("a", FIVE_OFF), _instrument("b", THRESHOLD_10_OFF_40)], SHOP, 5_000, at=NOW
    )
    assert [line.claim_id for line in result.lines] == ["b"]
    assert (result.discount_fen, result.payable_fen) == (1_000, 4_000)


def test_stackable_instruments_combine_one_per_campaign() -> None:
    """Stackable instruments of different campaigns add up; two of one campaign do not."""
    instruments = [
        _instrument("a", FIVE_OFF, campaign_id="cmp_x", stackable=True),
        _instrument("b", FIVE_OFF, campaign_id="cmp_x", stackable=True),
        _instrument("c", THRESHOLD_10_OFF_40, campaign_id="cmp_y", stackable=True),
    ]
    result = quote(instruments, SHOP, 5_000, at=NOW)
    assert sorted(line.claim_id for line in result.lines) == ["a", "c"]
    assert result.discount_fen == 1_500


def test_a_lone_instrument_beats_a_weaker_stack() -> None:
    """A non-stackable 15-yuan cap beats two stackable 5-yuan coupons (10 in all)."""
    instruments = [
        _instrument("a", FIVE_OFF, campaign_id="cmp_x", stackable=True),
        _instrument("b", FIVE_OFF, campaign_id="cmp_y", stackable=True),
        _instrument("c", TWENTY_PERCENT_CAP_15),
    ]
    result = quote(instruments, SHOP, 10_000, at=NOW)
    assert [line.claim_id for line in result.lines] == ["c"]


def test_instruments_outside_scope_validity_or_currency_do_not_apply() -> None:
    """Another merchant, MCC, district, an expired instrument or another currency: no discount."""
    outside = [
        _instrument("a", FIVE_OFF, scope=MerchantScope(merchant_ids=frozenset({"mch_other"}))),
        _instrument("b", FIVE_OFF, scope=MerchantScope(mccs=frozenset({"5411"}))),
        _instrument("c", FIVE_OFF, scope=MerchantScope(districts=frozenset({"370705"}))),
        _instrument("d", FIVE_OFF, valid_until=NOW),
        _instrument("e", FIVE_OFF, currency="USD"),
    ]
    assert quote(outside, SHOP, 5_000, at=NOW).lines == ()
    inside = _instrument("f", FIVE_OFF, scope=MerchantScope(mccs=frozenset({"5812"})))
    assert quote([*outside, inside], SHOP, 5_000, at=NOW).discount_fen == 500


def test_the_payer_always_pays_at_least_one_fen() -> None:
    """A 5-yuan coupon on a 3-yuan payment leaves 1 fen for the wallet to collect."""
    result = quote([_instrument("a", FIVE_OFF)], SHOP, 300, at=NOW)
    assert result.payable_fen == MIN_PAYABLE_FEN
    assert quote([_instrument("a", FIVE_OFF)], SHOP, 1, at=NOW).lines == ()


def test_a_tie_goes_to_the_instrument_that_expires_first() -> None:
    """Equal discounts: use the one about to be lost."""
    later = _instrument("a", FIVE_OFF, valid_until=NOW + timedelta(days=9))
    sooner = _instrument("b", FIVE_OFF, valid_until=NOW + timedelta(days=2))
    assert quote([later, sooner], SHOP, 5_000, at=NOW).lines[0].claim_id == "b"


def test_subsidy_transfer_ids_fit_the_ledger_and_are_deterministic() -> None:
    """Ids derive from order and line only, and stay within the ledger's 64 characters."""
    order_id = "ord_" + "0" * 26
    assert subsidy_transfer_id(order_id, 1) == f"{order_id}:subsidy:1"
    assert len(subsidy_reversal_transfer_id(order_id, 5)) <= 64


_rules = st.one_of(
    st.builds(
        lambda d, extra: DiscountRule(RuleKind.THRESHOLD, discount_fen=d, threshold_fen=d + extra),
        st.integers(1, 100_000), st.integers(1, 100_000),
    ),
    st.builds(
        lambda bp, cap, t: DiscountRule(RuleKind.PERCENT_OFF, percent_bp=bp, cap_fen=cap,
                                        threshold_fen=t),
        st.integers(1, 9_999), st.integers(1, 100_000), st.integers(0, 50_000),
    ),
    st.builds(lambda d: DiscountRule(RuleKind.NO_THRESHOLD, discount_fen=d), st.integers(1, 10**6)),
)  # fmt: skip


@given(
    rules=st.lists(_rules, min_size=0, max_size=8),
    stackable=st.lists(st.booleans(), min_size=8, max_size=8),
    amount_fen=st.integers(0, 10**7),
)
def test_discount_never_exceeds_the_amount_or_any_instrument_value(
    rules: list[DiscountRule], stackable: list[bool], amount_fen: int
) -> None:
    """For any instruments and amount: the payer pays ≥ 1 fen (or the whole of a 0 amount),
    each line is within its instrument's value, and every claim is used at most once."""
    instruments = [
        _instrument(f"c{i}", check_rule(rule), campaign_id=f"cmp_{i % 3}", stackable=stackable[i])
        for i, rule in enumerate(rules)
    ]
    by_claim = {i.claim_id: i for i in instruments}
    result = quote(instruments, SHOP, amount_fen, at=NOW)
    assert 0 <= result.discount_fen <= max(amount_fen - MIN_PAYABLE_FEN, 0)
    assert result.payable_fen == amount_fen - result.discount_fen
    claims = [line.claim_id for line in result.lines]
    assert len(claims) == len(set(claims))
    for line in result.lines:
        rule = by_claim[line.claim_id].rule
        assert 0 < line.discount_fen <= min(rule.max_value_fen, rule.discount_for(amount_fen))
    if len(result.lines) > 1:
        assert all(by_claim[c].stackable for c in claims)
        assert len({by_claim[c].campaign_id for c in claims}) == len(claims)


@given(rules=st.lists(_rules, min_size=1, max_size=6), amount_fen=st.integers(1, 10**6))
def test_the_quote_is_at_least_as_good_as_any_single_instrument(
    rules: list[DiscountRule], amount_fen: int
) -> None:
    """Best means best: no single applicable instrument would have saved more."""
    instruments = [_instrument(f"c{i}", rule) for i, rule in enumerate(rules)]
    result = quote(instruments, SHOP, amount_fen, at=NOW)
    room = max(amount_fen - MIN_PAYABLE_FEN, 0)
    assert result.discount_fen == max(min(r.discount_for(amount_fen), room) for r in rules)


@given(
    discount_fen=st.integers(1, 10**6),
    order_amount_fen=st.integers(2, 10**7),
    cuts=st.lists(st.integers(1, 10**7), min_size=1, max_size=6),
)
def test_partial_refunds_give_back_exactly_the_whole_discount(
    discount_fen: int, order_amount_fen: int, cuts: list[int]
) -> None:
    """Any sequence of partial refunds gives back a never-decreasing share of the subsidy,
    never more than it, and exactly all of it once the refunds reach the order amount."""
    refunded_total = reversed_fen = 0
    for cut in cuts:
        refunded_total = min(refunded_total + cut, order_amount_fen)
        give_back = subsidy_to_give_back(
            discount_fen, reversed_fen, order_amount_fen=order_amount_fen,
            refunded_total_fen=refunded_total,
        )  # fmt: skip
        assert give_back >= 0
        reversed_fen += give_back
        assert reversed_fen <= discount_fen
        again = subsidy_to_give_back(
            discount_fen, reversed_fen, order_amount_fen=order_amount_fen,
            refunded_total_fen=refunded_total,
        )  # fmt: skip
        assert again == 0  # a replayed refund gives nothing more
    final = subsidy_to_give_back(
        discount_fen, reversed_fen, order_amount_fen=order_amount_fen,
        refunded_total_fen=order_amount_fen,
    )  # fmt: skip
    assert reversed_fen + final == discount_fen


def test_leverage_is_spending_per_yuan_of_subsidy() -> None:
    """50 yuan of orders for 10 yuan of subsidy is a leverage of 5.00; no subsidy, no ratio."""
    assert CampaignStats({}, 1, 1_000, 5_000).leverage == Decimal("5.00")
    assert CampaignStats({}, 3, 3_000, 10_000).leverage == Decimal("3.33")
    assert CampaignStats({}, 0, 0, 0).leverage is None
