"""Errors of the settlement context, each with one HTTP status and a stable code.

| code                        | status | when |
|-----------------------------|--------|------|
| `invalid_rate`              | 400 | a rate outside 0–10000 bp (`cloudpay.kernel.money`) |
| `fee_plan_invalid`          | 400 | a fixed plan with a rate or bounds, or min > max |
| `amount_invalid`            | 400 | a negative amount, or an order of 0 fen |
| `commission_chain_invalid`  | 400 | cost rates fall down the chain, or an agent twice |
| `commission_chain_too_deep` | 400 | more agents than `MAX_AGENT_LEVELS` |
| `refund_exceeds_order`      | 400 | refunds would add up to more than the order |
| `fee_return_invalid`        | 400 | more fee returned before than was charged |
| `split_rule_invalid`        | 400 | a rule with both or neither of rate and fixed amount |
| `split_receiver_unbound`    | 400 | a receiver not bound in advance (添加分账接收方) |
| `split_receiver_duplicate`  | 400 | a receiver named twice in one split |
| `split_receivers_too_many`  | 400 | more than `MAX_SPLIT_RECEIVERS` receivers |
| `split_chain_invalid`       | 400 | splits from an unknown receiver, a cycle, too deep |
| `split_over_cap`            | 400 | others' parts exceed the merchant's cap |
| `split_exceeds_available`   | 400 | parts exceed the money they are taken from |
| `split_return_invalid`      | 400 | returns already made exceed the original parts |
| `calendar_invalid`          | 400 | a day both holiday and workday, a step out of range |
| `settlement_cycle_invalid`  | 400 | not T+N (1 ≤ N ≤ 30) or D+N (0 ≤ N ≤ 30) |
| `payout_limits_invalid`     | 400 | negative limits or usage |
| `fee_plan_backdated`        | 400 | a fee plan starting in the past (it would reprice orders) |
| `conflict`                  | 409 | a fee plan version already starts at that instant |
| `bank_unknown`              | 400 | a settlement profile at a bank that is not configured |
| `account_class_invalid`     | 400 | a settlement e-account that is not Class II or III |
| `class_i_card_missing`      | 400 | rerouting over the limit without a bound Class I card |
| `merchant_not_found`        | 404 | fee plan or profile for an unknown merchant |
| `resource_missing`          | 404 | an unknown settlement, payout, or a merchant with no profile |
| `notification_rejected`     | 401 | a bank webhook whose signature, time or nonce fails |
"""

from __future__ import annotations

from cloudpay.kernel.errors import InvalidRequest


class FeePlanInvalid(InvalidRequest):
    default_code = "fee_plan_invalid"


class AmountInvalid(InvalidRequest):
    default_code = "amount_invalid"


class CommissionChainInvalid(InvalidRequest):
    default_code = "commission_chain_invalid"


class RefundExceedsOrder(InvalidRequest):
    default_code = "refund_exceeds_order"


class FeeReturnInvalid(InvalidRequest):
    default_code = "fee_return_invalid"


class SplitRefused(InvalidRequest):
    """A split plan refused; `code` says which rule (see the table above)."""

    default_code = "split_rule_invalid"


class CalendarInvalid(InvalidRequest):
    default_code = "calendar_invalid"


class SettlementCycleInvalid(InvalidRequest):
    default_code = "settlement_cycle_invalid"


class PayoutLimitsInvalid(InvalidRequest):
    default_code = "payout_limits_invalid"
