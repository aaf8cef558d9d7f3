"""Redemption (核销) inside a payment: the lead's order transaction calls these.

`best_quote` answers what the payer would save; `redeem` records the chosen discount in the
order's own transaction — claims become `redeemed`, one redemption row per line (the order's
discount breakdown), and one ledger transfer per line moves the subsidy from the campaign's
budget to the merchant (待结算), with the id `{order_id}:subsidy:{line}` so a retried order
transaction replays it. `reverse_redemption` undoes it when the order is refunded in full or closed:
the money goes back to the budget and the claims are usable again until the campaign ends.
`reverse_for_refund` gives back the refunded share of each subsidy line for a partial refund
(the instrument stays used), and everything left once the refunds add up to the order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cloudpay import ledger
from cloudpay.db.retry import RetryableConflict
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import PaymentRefused
from cloudpay.ledger import Purpose, Transfer
from cloudpay.marketing import abuse, repository, service
from cloudpay.marketing.errors import ClaimRefused, InstrumentNotApplicable
from cloudpay.marketing.model import (
    MAX_STACKED_INSTRUMENTS,
    USABLE_CLAIM_STATUSES,
    Campaign,
    CampaignStatus,
    ClaimStatus,
    Instrument,
    MerchantFacts,
    Quote,
    check_currency,
    quote,
    refund_transfer_id,
    subsidy_reversal_transfer_id,
    subsidy_to_give_back,
    subsidy_transfer_id,
)

MAX_INSTRUMENTS_CONSIDERED = 100  # a wallet's usable instruments looked at per payment
REDEEMED = "redeemed"
REVERSED = "reversed"


class ClaimTakenConcurrently(RetryableConflict):
    """Another order redeemed this claim after we read it (only without row locks)."""


@dataclass(frozen=True)
class RedemptionLine:
    line_no: int
    claim_id: str
    campaign_id: str
    discount_fen: int
    reversed_fen: int
    transfer_id: str
    status: str


@dataclass(frozen=True)
class Redemption:
    """An order's discount breakdown: what each instrument took off the amount."""

    order_id: str
    lines: tuple[RedemptionLine, ...]

    @property
    def discount_fen(self) -> int:
        """The discount still standing after refunds."""
        return sum(line.discount_fen - line.reversed_fen for line in self.lines)


def _instruments(
    uow: UnitOfWork,
    citizen_id: str,
    merchant: MerchantFacts,
    amount_fen: int,
    currency: str,
    claim_ids: Sequence[str] | None,
    *,
    lock: bool,
) -> list[Instrument]:
    found = repository.usable_instruments(
        uow.connection, citizen_id, claim_ids=claim_ids, limit=MAX_INSTRUMENTS_CONSIDERED,
        lock=lock,
    )  # fmt: skip
    if claim_ids is None:
        return found
    if len(claim_ids) > MAX_STACKED_INSTRUMENTS:
        raise InstrumentNotApplicable(
            f"at most {MAX_STACKED_INSTRUMENTS} instruments per payment", param="claim_ids"
        )
    at = uow.clock.now()
    applicable = {
        i.claim_id
        for i in found
        if i.applies(merchant, currency, at) and i.rule.discount_for(amount_fen) > 0
    }
    for claim_id in claim_ids:
        if claim_id not in applicable:
            raise InstrumentNotApplicable(
                "this instrument cannot pay for this payment",
                param="claim_ids",
                details={"claim_id": claim_id},
            )
    return found


def best_quote(
    uow: UnitOfWork,
    *,
    citizen_id: str,
    merchant: MerchantFacts,
    amount_fen: int,
    currency: str = "CNY",
    claim_ids: Sequence[str] | None = None,
) -> Quote:
    """The discount the payer would get now (or with the instruments they chose)."""
    return _best(uow, citizen_id, merchant, amount_fen, currency, claim_ids, lock=False)


def _best(
    uow: UnitOfWork,
    citizen_id: str,
    merchant: MerchantFacts,
    amount_fen: int,
    currency: str,
    claim_ids: Sequence[str] | None,
    *,
    lock: bool,
) -> Quote:
    check_currency(currency)
    found = _instruments(uow, citizen_id, merchant, amount_fen, currency, claim_ids, lock=lock)
    return quote(found, merchant, amount_fen, at=uow.clock.now(), currency=currency)


def redeem(
    uow: UnitOfWork,
    *,
    order_id: str,
    citizen_id: str,
    merchant: MerchantFacts,
    amount_fen: int,
    currency: str = "CNY",
    claim_ids: Sequence[str] | None = None,
) -> Redemption:
    """Apply the best quote to the order: claims redeemed, subsidy moved, breakdown kept.

    Run it in the order's transaction; for an order that already has a redemption it
    returns that one and writes nothing (a retried order request replays).
    """
    existing = get_redemption(uow, order_id)
    if existing.lines:
        return existing
    # Locked: two orders of one payer cannot both spend the same claim.
    best = _best(uow, citizen_id, merchant, amount_fen, currency, claim_ids, lock=True)
    now = uow.clock.now()
    rows: list[dict[str, Any]] = []
    for line_no, line in enumerate(best.lines, start=1):
        claimed = repository.set_claim_status(
            uow.connection, line.claim_id, status=ClaimStatus.REDEEMED,
            expected=USABLE_CLAIM_STATUSES, order_id=order_id, now=now,
        )  # fmt: skip
        if not claimed:
            raise ClaimTakenConcurrently
        transfer_id = subsidy_transfer_id(order_id, line_no)
        _move_subsidy(uow, line.campaign_id, merchant.merchant_id, currency, transfer_id,
                      line.discount_fen, line.claim_id, reverse=False)  # fmt: skip
        rows.append({
            "order_id": order_id, "line_no": line_no, "claim_id": line.claim_id,
            "campaign_id": line.campaign_id, "merchant_id": merchant.merchant_id,
            "discount_fen": line.discount_fen, "reversed_fen": 0,
            "order_amount_fen": amount_fen, "currency": currency,
            "transfer_id": transfer_id, "status": REDEEMED, "created_at": now,
            "reversed_at": None, "mcc": merchant.mcc, "district": merchant.district,
        })  # fmt: skip
    repository.insert_redemptions(uow.connection, rows)
    if rows:
        abuse.evaluate_redemption(uow, merchant_id=merchant.merchant_id, citizen_id=citizen_id)
    return get_redemption(uow, order_id)


def _move_subsidy(
    uow: UnitOfWork,
    campaign_id: str,
    merchant_id: str,
    currency: str,
    transfer_id: str,
    amount_fen: int,
    claim_id: str,
    *,
    reverse: bool,
) -> None:
    budget = ledger.open_chart_account(
        uow, Purpose.MARKETING_BUDGET, ledger.campaign_owner(campaign_id), currency
    ).id
    merchant = ledger.open_chart_account(
        uow, Purpose.MERCHANT_PENDING, ledger.merchant_owner(merchant_id), currency
    ).id
    debit, credit = (merchant, budget) if reverse else (budget, merchant)
    code = "marketing.subsidy_reversal" if reverse else "marketing.subsidy"
    transfer = Transfer(transfer_id, debit, credit, amount_fen, currency, code, user_data=claim_id)
    result = ledger.create_transfer(uow, transfer)
    if result.result == "exceeds_credits" and not reverse:
        raise ClaimRefused("the campaign's budget cannot pay this subsidy",
                           code="budget_exhausted")  # fmt: skip
    if result.result == "exceeds_credits":
        raise PaymentRefused(
            "the merchant's unsettled balance does not cover the subsidy reversal",
            code="insufficient_merchant_balance",
        )
    if not result.ok:
        raise RuntimeError(f"subsidy transfer {transfer_id} refused: {result.result}")


def get_redemption(uow: UnitOfWork, order_id: str, *, lock: bool = False) -> Redemption:
    rows = repository.load_redemptions(uow.connection, order_id, lock=lock)
    lines = tuple(
        RedemptionLine(
            r.line_no,
            r.claim_id,
            r.campaign_id,
            r.discount_fen,
            r.reversed_fen,
            r.transfer_id,
            r.status,
        )
        for r in rows
    )
    return Redemption(order_id, lines)


def reverse_redemption(uow: UnitOfWork, *, order_id: str) -> Redemption:
    """The order was refunded in full or closed unpaid: give what is left of the subsidy back
    to the budget and the instruments back to the payer (expired if their campaign is over).
    A second call changes nothing."""
    now = uow.clock.now()
    for row in repository.load_redemptions(uow.connection, order_id, lock=True):
        if row.status != REDEEMED:
            continue
        campaign = service.get_campaign(uow, row.campaign_id)
        remaining = row.discount_fen - row.reversed_fen
        if remaining > 0:
            transfer_id = subsidy_reversal_transfer_id(order_id, row.line_no)
            _give_subsidy_back(uow, campaign, row, transfer_id, remaining)
        _give_instrument_back(uow, campaign, row.claim_id)
        repository.record_reversal(
            uow.connection, order_id, row.line_no, reversed_fen=row.discount_fen,
            status=REVERSED, now=now,
        )  # fmt: skip
    return get_redemption(uow, order_id)


def reverse_for_refund(
    uow: UnitOfWork,
    *,
    order_id: str,
    refund_id: str,
    order_amount_fen: int,
    refunded_total_fen: int,
) -> Redemption:
    """A refund succeeded: give back the refunded share of each subsidy line.

    `refunded_total_fen` counts every refund of the order so far, this one included, in the
    unit of `order_amount_fen`; once it reaches the order amount the whole redemption is
    reversed and the instruments restored. Run twice with the same figures, it moves nothing.
    """
    if refunded_total_fen >= order_amount_fen:
        return reverse_redemption(uow, order_id=order_id)
    now = uow.clock.now()
    for row in repository.load_redemptions(uow.connection, order_id, lock=True):
        if row.status != REDEEMED:
            continue
        give_back = subsidy_to_give_back(
            row.discount_fen, row.reversed_fen, order_amount_fen=order_amount_fen,
            refunded_total_fen=refunded_total_fen,
        )  # fmt: skip
        if give_back == 0:
            continue
        campaign = service.get_campaign(uow, row.campaign_id)
        transfer_id = refund_transfer_id(refund_id, row.line_no)
        _give_subsidy_back(uow, campaign, row, transfer_id, give_back)
        repository.record_reversal(
            uow.connection, order_id, row.line_no, reversed_fen=row.reversed_fen + give_back,
            status=REDEEMED, now=now,
        )  # fmt: skip
    return get_redemption(uow, order_id)


def _give_subsidy_back(
    uow: UnitOfWork, campaign: Campaign, row: Any, transfer_id: str, amount_fen: int
) -> None:
    _move_subsidy(uow, row.campaign_id, row.merchant_id, row.currency, transfer_id,
                  amount_fen, row.claim_id, reverse=True)  # fmt: skip
    if campaign.status is CampaignStatus.ENDED:
        service.return_to_funder(uow, campaign, amount_fen, f"{transfer_id}:return")


def _give_instrument_back(uow: UnitOfWork, campaign: Campaign, claim_id: str) -> None:
    now = uow.clock.now()
    still_valid = campaign.status is CampaignStatus.ACTIVE and now < campaign.windows.valid_until
    repository.set_claim_status(
        uow.connection, claim_id,
        status=ClaimStatus.RESTORED if still_valid else ClaimStatus.EXPIRED,
        expected=(ClaimStatus.REDEEMED,), order_id=None, now=now,
    )  # fmt: skip
