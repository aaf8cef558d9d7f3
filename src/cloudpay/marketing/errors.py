"""Errors of the marketing context: every refusal names its reason, and nothing is written.

| code                         | status | when |
|------------------------------|--------|------|
| `campaign_invalid`           | 400 | windows out of order, rule values inconsistent, caps < 1 |
| `currency_unsupported`       | 400 | a campaign or funding in another currency than CNY |
| `currency_mismatch`          | 400 | funding or payment currency differs from the campaign's |
| `not_eligible`               | 403 | the citizen is not in the campaign's audience |
| `campaign_not_found`         | 404 | |
| `claim_not_found`            | 404 | |
| `funder_not_found`           | 404 | no such merchant funder, or red packet funder account |
| `red_packet_not_found`       | 404 | |
| `points_rule_not_found`      | 404 | points earned at a merchant without an earn rule |
| `points_insufficient`        | 409 | spending more points than the citizen holds, live |
| `campaign_not_active`        | 409 | not yet funded, or ended |
| `claim_window_not_open`      | 409 | before the claim window opens |
| `campaign_expired`           | 409 | after the claim window (claims) or the validity (use) |
| `out_of_stock`               | 409 | every instrument of the campaign is issued |
| `cap_reached`                | 409 | the person's cap per day or per campaign is used up |
| `budget_exhausted`           | 409 | the funded budget cannot cover one more instrument |
| `instrument_not_applicable`  | 409 | a chosen instrument does not apply to this payment |
| `lottery_only`               | 409 | a first-come claim on a lottery campaign |
| `lottery_not_open`           | 409 | a lottery registration or draw on a first-come campaign |
| `lottery_not_closed`         | 409 | a draw before the claim window has closed |
| `lottery_drawn`              | 409 | a second draw of the same campaign |
| `red_packet_expired`         | 409 | a red packet claimed after its claim window |
| `red_packet_empty`           | 409 | every share of the red packet is claimed |
| `funder_balance_insufficient`| 402 | the funder's account cannot pay the funding |
"""

from __future__ import annotations

from cloudpay.kernel.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    PaymentRefused,
    PermissionDenied,
)


class InvalidCampaign(InvalidRequest):
    default_code = "campaign_invalid"


class CurrencyUnsupported(InvalidRequest):
    default_code = "currency_unsupported"


class NotEligible(PermissionDenied):
    default_code = "not_eligible"


class CampaignNotFound(NotFound):
    default_code = "campaign_not_found"


class ClaimNotFound(NotFound):
    default_code = "claim_not_found"


class FunderNotFound(NotFound):
    default_code = "funder_not_found"


class RedPacketNotFound(NotFound):
    default_code = "red_packet_not_found"


class PointsRuleNotFound(NotFound):
    default_code = "points_rule_not_found"


class ClaimRefused(Conflict):
    """A claim the campaign's state refuses; `code` says which rule (see the table above)."""

    default_code = "claim_refused"


class InstrumentNotApplicable(Conflict):
    default_code = "instrument_not_applicable"


class FunderBalanceInsufficient(PaymentRefused):
    default_code = "funder_balance_insufficient"
