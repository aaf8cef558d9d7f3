"""Anti-abuse rules, pure: each rule finds at its threshold and not below, a disabled rule
finds nothing, and the reason carries the numbers that raised it."""

from __future__ import annotations

from cloudpay.marketing.abuse_model import (
    DEFAULT_RULES,
    AbuseRule,
    RuleCode,
    SubjectKind,
    identical_amounts,
    many_wallets,
    redeem_refund_loop,
)

WALLETS = AbuseRule(RuleCode.MANY_WALLETS, "many wallets", threshold=3, window_hours=0)


def test_a_rule_finds_at_its_threshold_and_not_below() -> None:
    """Three wallets against a threshold of 3 is a finding about the citizen; two is not."""
    assert many_wallets(WALLETS, "ctz_1", 2) is None
    finding = many_wallets(WALLETS, "ctz_1", 3)
    assert finding is not None
    assert (finding.subject_kind, finding.subject_id) == (SubjectKind.CITIZEN, "ctz_1")
    assert finding.reason == "3 wallet payer ids for one person (threshold 3)"


def test_a_disabled_rule_finds_nothing() -> None:
    """Switching a rule off silences it whatever the numbers."""
    off = AbuseRule(RuleCode.IDENTICAL_AMOUNTS, "same amount", 2, 24, enabled=False)
    assert identical_amounts(off, "mch_1", 5_000, 100) is None
    loop = AbuseRule(RuleCode.REDEEM_REFUND_LOOP, "loops", 2, 72, enabled=False)
    assert redeem_refund_loop(loop, "ctz_1", 100) is None


def test_merchant_findings_name_the_amount_and_window() -> None:
    """The identical-amount reason says which amount, how often and over how long."""
    rule = AbuseRule(RuleCode.IDENTICAL_AMOUNTS, "same amount", 5, 24)
    finding = identical_amounts(rule, "mch_1", 5_000, 6)
    assert finding is not None
    assert finding.subject_kind is SubjectKind.MERCHANT
    assert finding.reason == "6 voucher orders of exactly 5000 fen within 24 h (threshold 5)"


def test_every_rule_has_a_default() -> None:
    """A fresh database starts with one row for each rule the code knows."""
    assert {rule.code for rule in DEFAULT_RULES} == set(RuleCode)
