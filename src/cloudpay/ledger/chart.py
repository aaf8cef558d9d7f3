"""The platform's chart of accounts: which accounts exist, and the limit each one keeps.

Signs follow the platform's own books. Assets (money at the bank, receivables from channels,
loans) are debit-normal and must not go below zero: `credits_must_not_exceed_debits`.
Liabilities (what we owe merchants, campaign budgets, citizens' fund shares) are
credit-normal: `debits_must_not_exceed_credits` makes an overdraft impossible. Income and
clearing accounts are touched by almost every payment, so they carry no limit and are sharded
to keep concurrent writers apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cloudpay.ledger.model import (
    ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS as ASSET,
)
from cloudpay.ledger.model import (
    ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS as LIABILITY,
)

HOT_ACCOUNT_SHARDS = 16


class Purpose(StrEnum):
    BANK_RESERVE = "bank_reserve"  # 备付金: platform custody at a partner bank
    CHANNEL_CLEARING = "channel_clearing"  # owed to us by a wallet channel until it settles
    MERCHANT_PENDING = "merchant_pending"  # 待结算: captured, not yet settled
    MERCHANT_AVAILABLE = "merchant_available"  # 可结算: settled, awaiting payout
    FEE_INCOME = "fee_income"  # 手续费收入
    CHANNEL_COST = "channel_cost"  # fees the wallets charge us
    SPLIT_PAYABLE = "split_payable"  # 分账: owed to a split receiver
    MARKETING_BUDGET = "marketing_budget"  # funded campaign money
    LOAN_PRINCIPAL = "loan_principal"  # 贷款本金: lent out
    LOAN_INTEREST = "loan_interest"  # interest accrued, receivable
    INTEREST_INCOME = "interest_income"
    MMF_SHARES = "mmf_shares"  # a citizen's money-market fund holding
    FUNDING = "funding"  # the outside world: capital paid in, write-offs
    POINTS_LIABILITY = "points_liability"  # 积分: fen owed for points issued, not yet spent
    POINTS_BREAKAGE = "points_breakage"  # income: the fen value of points that expired


@dataclass(frozen=True)
class AccountRule:
    flags: int
    shards: int = 1


CHART: dict[Purpose, AccountRule] = {
    Purpose.BANK_RESERVE: AccountRule(ASSET),
    Purpose.CHANNEL_CLEARING: AccountRule(0, HOT_ACCOUNT_SHARDS),
    Purpose.MERCHANT_PENDING: AccountRule(LIABILITY),
    Purpose.MERCHANT_AVAILABLE: AccountRule(LIABILITY),
    Purpose.FEE_INCOME: AccountRule(0, HOT_ACCOUNT_SHARDS),
    Purpose.CHANNEL_COST: AccountRule(0, HOT_ACCOUNT_SHARDS),
    Purpose.SPLIT_PAYABLE: AccountRule(LIABILITY),
    Purpose.MARKETING_BUDGET: AccountRule(LIABILITY),
    Purpose.LOAN_PRINCIPAL: AccountRule(ASSET),
    Purpose.LOAN_INTEREST: AccountRule(ASSET),
    Purpose.INTEREST_INCOME: AccountRule(0, HOT_ACCOUNT_SHARDS),
    Purpose.MMF_SHARES: AccountRule(LIABILITY),
    Purpose.FUNDING: AccountRule(0),
    # No limit: operator grants (POST /v1/points/earnings) are promises the platform funds.
    Purpose.POINTS_LIABILITY: AccountRule(0),
    Purpose.POINTS_BREAKAGE: AccountRule(0),
}

# Accounts whose balance reads as debits minus credits (assets and costs); the rest read as
# credits minus debits.
DEBIT_NORMAL = frozenset(
    {
        Purpose.BANK_RESERVE,
        Purpose.CHANNEL_CLEARING,
        Purpose.CHANNEL_COST,
        Purpose.LOAN_PRINCIPAL,
        Purpose.LOAN_INTEREST,
    }
)

PLATFORM = "platform"


def normal_balance(code: str, debits: int, credits: int) -> int:
    """The balance as an accountant reads it for this kind of account."""
    return debits - credits if code in DEBIT_NORMAL else credits - debits


def bank_owner(bank_code: str) -> str:
    return f"bank:{bank_code}"


def channel_owner(channel_code: str) -> str:
    return f"channel:{channel_code}"


def merchant_owner(merchant_id: str) -> str:
    return f"merchant:{merchant_id}"


def citizen_owner(citizen_id: str) -> str:
    return f"citizen:{citizen_id}"


def campaign_owner(campaign_id: str) -> str:
    return f"campaign:{campaign_id}"
