"""Anti-abuse (反作弊), pure: the rules, what each measures, and the reason a flag keeps.

Rules are rows (`marketing_abuse_rules`), so their thresholds change without a release. A
rule never refuses anything by itself: it raises a flag for a person to review, and the flag
keeps the numbers that raised it.

- `many_wallets`: one person (one resident ID blind index, so one citizen) paying with at least
  `threshold` wallet payer ids — vouchers meant for one person collected through many wallets.
- `identical_amounts`: a merchant taking at least `threshold` voucher orders of exactly the same
  amount within `window_hours` — the pattern of a merchant paying itself with vouchers.
- `redeem_refund_loop`: a citizen whose voucher orders were refunded at least `threshold` times
  within `window_hours` — redeem, refund, redeem again to cash out the subsidy.
- `own_people`: a merchant whose own people (its legal person or registered staff, matched to
  citizens by the resident-ID blind index) paid at least `threshold` of its voucher orders
  within `window_hours` — the subsidy paid to the merchant for spending it made itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class RuleCode(StrEnum):
    MANY_WALLETS = "many_wallets"
    IDENTICAL_AMOUNTS = "identical_amounts"
    REDEEM_REFUND_LOOP = "redeem_refund_loop"
    OWN_PEOPLE = "own_people"


class MerchantRole(StrEnum):
    """Who a merchant's person is to it."""

    LEGAL_PERSON = "legal_person"  # 法定代表人
    STAFF = "staff"


class SubjectKind(StrEnum):
    CITIZEN = "citizen"
    MERCHANT = "merchant"


class FlagStatus(StrEnum):
    OPEN = "open"
    REVIEWED = "reviewed"


class Decision(StrEnum):
    CONFIRMED = "confirmed"  # abuse: act on it (freeze vouchers, claw back, report)
    DISMISSED = "dismissed"  # a false alarm


@dataclass(frozen=True)
class AbuseRule:
    code: RuleCode
    description: str
    threshold: int
    window_hours: int
    enabled: bool = True


# The rules a fresh database starts with (the migration inserts them).
DEFAULT_RULES: tuple[AbuseRule, ...] = (
    AbuseRule(RuleCode.MANY_WALLETS, "one person paying with many wallets", 3, 0),
    AbuseRule(RuleCode.IDENTICAL_AMOUNTS, "a merchant's voucher orders of one amount", 5, 24),
    AbuseRule(RuleCode.REDEEM_REFUND_LOOP, "voucher orders refunded again and again", 3, 72),
    AbuseRule(RuleCode.OWN_PEOPLE, "a merchant's own people redeeming vouchers there", 1, 720),
)


@dataclass(frozen=True)
class MerchantPerson:
    merchant_id: str
    citizen_id: str
    role: MerchantRole
    registered_at: datetime


@dataclass(frozen=True)
class Finding:
    """What a rule found about one subject, before it is stored as a flag."""

    rule: RuleCode
    subject_kind: SubjectKind
    subject_id: str
    reason: str


@dataclass(frozen=True)
class Flag:
    id: str
    subject_kind: SubjectKind
    subject_id: str
    rule: RuleCode
    reason: str
    status: FlagStatus
    created_at: datetime
    decision: Decision | None = None
    note: str | None = None
    reviewed_at: datetime | None = None


def many_wallets(rule: AbuseRule, citizen_id: str, payer_ids: int) -> Finding | None:
    if not rule.enabled or payer_ids < rule.threshold:
        return None
    reason = f"{payer_ids} wallet payer ids for one person (threshold {rule.threshold})"
    return Finding(rule.code, SubjectKind.CITIZEN, citizen_id, reason)


def identical_amounts(
    rule: AbuseRule, merchant_id: str, amount_fen: int, orders: int
) -> Finding | None:
    if not rule.enabled or orders < rule.threshold:
        return None
    reason = (
        f"{orders} voucher orders of exactly {amount_fen} fen within {rule.window_hours} h "
        f"(threshold {rule.threshold})"
    )
    return Finding(rule.code, SubjectKind.MERCHANT, merchant_id, reason)


def redeem_refund_loop(rule: AbuseRule, citizen_id: str, refunded_orders: int) -> Finding | None:
    if not rule.enabled or refunded_orders < rule.threshold:
        return None
    reason = (
        f"{refunded_orders} voucher orders refunded within {rule.window_hours} h "
        f"(threshold {rule.threshold})"
    )
    return Finding(rule.code, SubjectKind.CITIZEN, citizen_id, reason)


def own_people(
    rule: AbuseRule, merchant_id: str, orders: int, roles: frozenset[MerchantRole]
) -> Finding | None:
    if not rule.enabled or orders < rule.threshold:
        return None
    who = " and ".join(sorted(role.value for role in roles))
    reason = (
        f"{orders} voucher orders paid by the merchant's own people ({who}) within "
        f"{rule.window_hours} h (threshold {rule.threshold})"
    )
    return Finding(rule.code, SubjectKind.MERCHANT, merchant_id, reason)
