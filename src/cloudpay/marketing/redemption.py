"""Redemption (核销) inside a payment: the order's transactions call these.

`best_quote` answers what the payer would save; `redeem` records the chosen discount in the
order's own transaction — claims become `redeemed`, one redemption row per line (the order's
discount breakdown), and one *pending* ledger transfer per line holds the subsidy on the
campaign's budget for the merchant, with the id `{order_id}:subsidy:{line}` so a retried order
transaction replays it. The subsidy must not reach the merchant before the payer pays:
`confirm_redemption` posts the holds when the order is paid; `reverse_redemption` voids them
when the order closes, expires or fails unpaid, and gives posted money back when a paid order
is refunded in full — either way the claims are usable again until the campaign ends.
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
HELD = "held"  # the order is open: the subsidy is a pending transfer on the budget
REDEEMED = "redeemed"  # the order was paid: the subsidy is the merchant's
RELEASED = "released"  # the order ended unpaid: the hold was voided
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
    """Apply the best quote to the order: claims taken, subsidy held, breakdown kept.

    Run it in the order's transaction; for an order that already has a redemption it
    returns that one and writes nothing (a retried order request replays). The subsidy stays
    a hold on the budget until `confirm_redemption` (paid) or `reverse_redemption` (unpaid).
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
        _hold_subsidy(uow, line.campaign_id, merchant.merchant_id, currency, transfer_id,
                      line.discount_fen, line.claim_id)  # fmt: skip
        rows.append({
            "order_id": order_id, "line_no": line_no, "claim_id": line.claim_id,
            "campaign_id": line.campaign_id, "merchant_id": merchant.merchant_id,
            "discount_fen": line.discount_fen, "reversed_fen": 0,
            "order_amount_fen": amount_fen, "currency": currency,
            "transfer_id": transfer_id, "status": HELD, "created_at": now,
            "reversed_at": None, "mcc": merchant.mcc, "district": merchant.district,
        })  # fmt: skip
    repository.insert_redemptions(uow.connection, rows)
    if rows:
        abuse.evaluate_redemption(uow, merchant_id=merchant.merchant_id, citizen_id=citizen_id)
    return get_redemption(uow, order_id)


def _accounts(
    uow: UnitOfWork, campaign_id: str, merchant_id: str, currency: str
) -> tuple[str, str]:
    budget = ledger.open_chart_account(
        uow, Purpose.MARKETING_BUDGET, ledger.campaign_owner(campaign_id), currency
    ).id
    merchant = ledger.open_chart_account(
        uow, Purpose.MERCHANT_PENDING, ledger.merchant_owner(merchant_id), currency
    ).id
    return budget, merchant


def _hold_subsidy(
    uow: UnitOfWork, campaign_id: str, merchant_id: str, currency: str, transfer_id: str,
    amount_fen: int, claim_id: str,
) -> None:  # fmt: skip
    """Reserve the subsidy on the budget (pending, no timeout: the order's end resolves it)."""
    budget, merchant = _accounts(uow, campaign_id, merchant_id, currency)
    transfer = Transfer(transfer_id, budget, merchant, amount_fen, currency, "marketing.subsidy",
                        flags=ledger.PENDING, user_data=claim_id)  # fmt: skip
    result = ledger.create_transfer(uow, transfer)
    if result.result == "exceeds_credits":
        raise ClaimRefused("the campaign's budget cannot pay this subsidy",
                           code="budget_exhausted")  # fmt: skip
    if not result.ok:
        raise RuntimeError(f"subsidy hold {transfer_id} refused: {result.result}")


def _resolve_hold(uow: UnitOfWork, transfer_id: str, *, post: bool) -> None:
    suffix, flags = ("post", ledger.POST_PENDING) if post else ("void", ledger.VOID_PENDING)
    transfer = Transfer(f"{transfer_id}:{suffix}", pending_id=transfer_id, flags=flags,
                        user_data=transfer_id)  # fmt: skip
    result = ledger.create_transfer(uow, transfer)
    if not result.ok:
        raise RuntimeError(f"subsidy hold {transfer_id} {suffix} refused: {result.result}")


def confirm_redemption(uow: UnitOfWork, *, order_id: str) -> Redemption:
    """The order was paid: post each held subsidy to the merchant (待结算). Idempotent."""
    now = uow.clock.now()
    for row in repository.load_redemptions(uow.connection, order_id, lock=True):
        if row.status != HELD:
            continue
        _resolve_hold(uow, row.transfer_id, post=True)
        repository.record_reversal(
            uow.connection, order_id, row.line_no, reversed_fen=0, status=REDEEMED, now=now
        )
    return get_redemption(uow, order_id)


def _return_subsidy(uow: UnitOfWork, row: Any, transfer_id: str, amount_fen: int) -> None:
    """Merchant (待结算) → budget: the part of a posted subsidy a refund gives back."""
    budget, merchant = _accounts(uow, row.campaign_id, row.merchant_id, row.currency)
    transfer = Transfer(transfer_id, merchant, budget, amount_fen, row.currency,
                        "marketing.subsidy_reversal", user_data=row.claim_id)  # fmt: skip
    result = ledger.create_transfer(uow, transfer)
    if result.result == "exceeds_credits":
        raise PaymentRefused(
            "the merchant's unsettled balance does not cover the subsidy reversal",
            code="insufficient_merchant_balance",
        )
    if not result.ok:
        raise RuntimeError(f"subsidy reversal {transfer_id} refused: {result.result}")


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
    """The order was refunded in full or ended unpaid: give what is left of the subsidy back
    to the budget (void the hold of an unpaid order) and the instruments back to the payer
    (expired if their campaign is over). A second call changes nothing."""
    now = uow.clock.now()
    for row in repository.load_redemptions(uow.connection, order_id, lock=True):
        if row.status == HELD:
            _release(uow, row)
            continue
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


def subsidy_due_back(
    uow: UnitOfWork, *, order_id: str, order_amount_fen: int, refunded_total_fen: int
) -> int:
    """What `reverse_for_refund` would give back with these figures; writes nothing."""
    due = 0
    for row in repository.load_redemptions(uow.connection, order_id):
        if row.status != REDEEMED:
            continue
        if refunded_total_fen >= order_amount_fen:
            due += row.discount_fen - row.reversed_fen
            continue
        due += subsidy_to_give_back(
            row.discount_fen, row.reversed_fen, order_amount_fen=order_amount_fen,
            refunded_total_fen=refunded_total_fen,
        )  # fmt: skip
    return due


def _release(uow: UnitOfWork, row: Any) -> None:
    """Void an unpaid order's hold; money an ended campaign gets back goes on to its funder."""
    campaign = service.get_campaign(uow, row.campaign_id)
    _resolve_hold(uow, row.transfer_id, post=False)
    if campaign.status is CampaignStatus.ENDED:
        service.return_to_funder(uow, campaign, row.discount_fen, f"{row.transfer_id}:void:return")
    _give_instrument_back(uow, campaign, row.claim_id)
    repository.record_reversal(
        uow.connection, row.order_id, row.line_no, reversed_fen=row.discount_fen,
        status=RELEASED, now=uow.clock.now(),
    )  # fmt: skip


def _give_subsidy_back(
    uow: UnitOfWork, campaign: Campaign, row: Any, transfer_id: str, amount_fen: int
) -> None:
    _return_subsidy(uow, row, transfer_id, amount_fen)
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
