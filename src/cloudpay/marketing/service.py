"""Marketing's use cases: campaigns, funding, claims, the wallet, and ending campaigns.

Each takes the unit of work; none commits (the boundary does). A refusal raises before the
transaction commits, so nothing of a refused request is written. Money moves only as ledger
transfers: funding (funder → `campaign:<id>` budget) and, at the end, the unused budget back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from sqlalchemy.exc import IntegrityError

from cloudpay import citizen, ledger, merchants
from cloudpay.db.retry import RetryableConflict
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.business_time import business_date
from cloudpay.kernel.errors import CurrencyMismatch, NotFound
from cloudpay.kernel.ids import new_id
from cloudpay.ledger import Purpose, Transfer
from cloudpay.marketing import abuse, claims_repository, repository
from cloudpay.marketing.errors import (
    CampaignNotFound,
    ClaimRefused,
    FunderBalanceInsufficient,
    FunderNotFound,
    InvalidCampaign,
    NotEligible,
)
from cloudpay.marketing.model import (
    MAX_ELIGIBLE_PEOPLE,
    Audience,
    Campaign,
    CampaignKind,
    CampaignStats,
    CampaignStatus,
    Caps,
    Claim,
    ClaimStatus,
    DiscountRule,
    FunderKind,
    Issuance,
    MerchantScope,
    Windows,
    check_cap,
    check_caps,
    check_claimable,
    check_currency,
    check_rule,
    check_windows,
    issue_refusal,
)

MAX_PAGE = 101  # 100 shown + 1 to know whether there is more
MAX_WALLET_ITEMS = 200
MAX_CAMPAIGNS_ENDED_PER_RUN = 100
MAX_FUNDING_FEN = 10**13  # a hundred billion yuan: far above any city's programme


class ConcurrentClaim(RetryableConflict):
    """A race lost to a transaction that committed first: the same person took the same cap
    slot (the retry counts that claim, then takes the next slot or answers `cap_reached`), or
    the campaign changed between our read and the conditional issue."""


@dataclass(frozen=True)
class CampaignDraft:
    name: str
    funder_kind: FunderKind
    funder_id: str
    kind: CampaignKind
    currency: str
    rule: DiscountRule
    stock: int
    windows: Windows
    scope: MerchantScope = field(default_factory=MerchantScope)
    audience: Audience = Audience.ALL
    people: Sequence[str] = ()
    caps: Caps = field(default_factory=Caps)
    stackable: bool = False
    issuance: Issuance = Issuance.FIRST_COME


# --- campaigns --------------------------------------------------------------------------
def create_campaign(uow: UnitOfWork, draft: CampaignDraft) -> Campaign:
    """A campaign in `draft`: nobody can claim until it is funded."""
    check_currency(draft.currency)
    check_rule(draft.rule)
    check_windows(draft.windows)
    check_caps(draft.caps, draft.stock)
    people = sorted(set(draft.people))
    if (draft.audience is Audience.LIST) != bool(people):
        raise InvalidCampaign("people are given exactly when audience is list", param="people")
    if len(people) > MAX_ELIGIBLE_PEOPLE:
        raise InvalidCampaign(f"at most {MAX_ELIGIBLE_PEOPLE} people", param="people")
    if draft.issuance is Issuance.LOTTERY and draft.kind is not CampaignKind.VOUCHER:
        raise InvalidCampaign("only voucher campaigns issue by lottery", param="issuance")
    if draft.funder_kind is FunderKind.MERCHANT:
        try:
            merchants.get_merchant(uow, draft.funder_id)
        except NotFound:
            raise FunderNotFound(f"no merchant {draft.funder_id}", param="funder_id") from None
    campaign = Campaign(
        id=new_id("cmp"), name=draft.name, funder_kind=draft.funder_kind,
        funder_id=draft.funder_id, kind=draft.kind, currency=draft.currency, rule=draft.rule,
        stock=draft.stock, issued=0, committed_fen=0, funded_fen=0, windows=draft.windows,
        scope=draft.scope, audience=draft.audience, caps=draft.caps, stackable=draft.stackable,
        status=CampaignStatus.DRAFT, budget_account_id=None, created_at=uow.clock.now(),
        issuance=draft.issuance,
    )  # fmt: skip
    repository.insert_campaign(uow.connection, campaign, people)
    return campaign


def get_campaign(uow: UnitOfWork, campaign_id: str, *, lock: bool = False) -> Campaign:
    campaign = repository.load_campaign(uow.connection, campaign_id, lock=lock)
    if campaign is None:
        raise CampaignNotFound(f"no campaign {campaign_id}", param="campaign_id")
    return campaign


def list_campaigns(
    uow: UnitOfWork,
    *,
    status: CampaignStatus | None = None,
    limit: int = 20,
    starting_after: str | None = None,
) -> list[Campaign]:
    return repository.list_campaigns(
        uow.connection, status=status, limit=min(limit, MAX_PAGE), starting_after=starting_after
    )


def funder_owner(campaign: Campaign) -> str:
    """The ledger owner whose account pays the budget and receives what is left of it."""
    if campaign.funder_kind is FunderKind.MERCHANT:
        return ledger.merchant_owner(campaign.funder_id)
    if campaign.funder_kind is FunderKind.PLATFORM:
        return ledger.PLATFORM
    return f"{campaign.funder_kind.value}:{campaign.funder_id}"


def _funder_account_id(uow: UnitOfWork, campaign: Campaign) -> str:
    # A merchant pays from its available balance (the ledger refuses an overdraft); a
    # government body or the platform pays in from outside, booked on its funding account.
    purpose = (
        Purpose.MERCHANT_AVAILABLE
        if campaign.funder_kind is FunderKind.MERCHANT
        else Purpose.FUNDING
    )
    return ledger.open_chart_account(uow, purpose, funder_owner(campaign), campaign.currency).id


def _budget_account_id(uow: UnitOfWork, campaign: Campaign) -> str:
    owner = ledger.campaign_owner(campaign.id)
    return ledger.open_chart_account(uow, Purpose.MARKETING_BUDGET, owner, campaign.currency).id


def fund_campaign(uow: UnitOfWork, campaign_id: str, *, amount_fen: int, currency: str) -> Campaign:
    """Move `amount_fen` from the funder into the campaign's budget; the campaign goes live."""
    campaign = get_campaign(uow, campaign_id, lock=True)
    check_currency(currency)
    if currency != campaign.currency:
        raise CurrencyMismatch("funding currency differs from the campaign's", param="currency")
    if not 1 <= amount_fen <= MAX_FUNDING_FEN:
        raise InvalidCampaign(f"amount is 1–{MAX_FUNDING_FEN} fen", param="amount")
    if campaign.status is CampaignStatus.ENDED:
        raise ClaimRefused("the campaign has ended", code="campaign_expired")
    budget_id = _budget_account_id(uow, campaign)
    transfer = Transfer(
        new_id("trf"), _funder_account_id(uow, campaign), budget_id, amount_fen,
        currency, "marketing.fund", user_data=campaign_id,
    )  # fmt: skip
    result = ledger.create_transfer(uow, transfer)
    if result.result == "exceeds_credits":
        raise FunderBalanceInsufficient(
            "the funder's available balance does not cover this funding", param="amount"
        )
    if not result.ok:
        raise RuntimeError(f"funding of {campaign_id} refused by the ledger: {result.result}")
    repository.record_funding(
        uow.connection, campaign_id, amount_fen=amount_fen, budget_account_id=budget_id,
        now=uow.clock.now(),
    )  # fmt: skip
    if campaign.issuance is Issuance.FIRST_COME:
        claims_repository.provision_stock(uow.connection, campaign_id)
    return get_campaign(uow, campaign_id)


# --- claims (the hot path) --------------------------------------------------------------
def claim_instrument(uow: UnitOfWork, campaign_id: str, *, citizen_id: str) -> Claim:
    """领券: issue one instrument to the citizen, exactly within stock, budget and caps.

    Three reads (campaign, citizen, their wallets) and one write statement on PostgreSQL: the
    stock shard, the caps and the claim row are checked and written together (see
    `claims_repository.claim_from_stock`), so no claim holds a lock while Python runs.
    """
    now = uow.clock.now()
    campaign = get_campaign(uow, campaign_id)
    person = citizen.get_citizen(uow, citizen_id, with_payer_ids=True)
    if campaign.issuance is Issuance.LOTTERY:
        raise ClaimRefused(
            "this campaign issues by lottery: register for the draw", code="lottery_only"
        )
    check_claimable(campaign, now)
    _check_audience(uow, campaign, person)
    day = business_date(now)
    claim = Claim(
        new_id("clm"), campaign_id, citizen_id, ClaimStatus.CLAIMED,
        campaign.rule.max_value_fen, now,
    )  # fmt: skip
    try:
        issued = claims_repository.claim_from_stock(
            uow.connection, claim, day=day, caps=campaign.caps
        )
    except IntegrityError as error:
        raise ConcurrentClaim from error
    if not issued:
        raise _claim_refusal(uow, campaign_id, citizen_id, day)
    abuse.evaluate_claimant(uow, person)
    return claim


def _claim_refusal(
    uow: UnitOfWork, campaign_id: str, citizen_id: str, day: date
) -> ClaimRefused | ConcurrentClaim:
    """Why the conditional write issued nothing: the person's caps, then the campaign's stock,
    budget and state as they are now; if none applies, every free shard was busy: retry."""
    campaign = get_campaign(uow, campaign_id)
    total, today = claims_repository.count_claims(uow.connection, campaign_id, citizen_id, day)
    try:
        check_cap(campaign.caps, claimed_total=total, claimed_today=today)
    except ClaimRefused as refusal:
        return refusal
    return issue_refusal(campaign) or ConcurrentClaim()


def _check_audience(uow: UnitOfWork, campaign: Campaign, person: citizen.Citizen) -> None:
    if campaign.audience is Audience.RESIDENTS and not person.resident:
        raise NotEligible("this campaign is for residents only", param="citizen_id")
    if campaign.audience is Audience.LIST and not repository.is_listed(
        uow.connection, campaign.id, person.id
    ):
        raise NotEligible("this citizen is not on the campaign's list", param="citizen_id")


def campaign_stats(uow: UnitOfWork, campaign_id: str) -> CampaignStats:
    """Leverage (杠杆率) of a campaign: the spending its redeemed instruments brought in."""
    get_campaign(uow, campaign_id)
    return repository.campaign_stats(uow.connection, campaign_id)


@dataclass(frozen=True)
class WalletEntry:
    claim: Claim
    campaign: Campaign


def wallet(uow: UnitOfWork, citizen_id: str) -> list[WalletEntry]:
    """The citizen's vouchers and coupons, newest first (the last `MAX_WALLET_ITEMS`)."""
    citizen.get_citizen(uow, citizen_id)
    pairs = repository.wallet_claims(uow.connection, citizen_id, limit=MAX_WALLET_ITEMS)
    return [WalletEntry(claim, campaign) for claim, campaign in pairs]


# --- the end of a campaign --------------------------------------------------------------
def end_campaign(uow: UnitOfWork, campaign_id: str) -> Campaign:
    """Expire unused instruments and return the unused budget to the funder."""
    campaign = get_campaign(uow, campaign_id, lock=True)
    if campaign.status is CampaignStatus.ENDED:
        return campaign
    now = uow.clock.now()
    claims_repository.close_stock(uow.connection, campaign_id)  # before expiring: no claim slips by
    repository.expire_claims(uow.connection, campaign_id, now=now)
    returned = 0
    if campaign.budget_account_id is not None:
        # Balancing: "whatever the budget holds", computed by the ledger under its own lock,
        # so a redemption committing meanwhile cannot make the return overdraw the budget.
        transfer = Transfer(
            new_id("trf"), campaign.budget_account_id, _funder_account_id(uow, campaign),
            None, campaign.currency, "marketing.return", flags=ledger.BALANCING_DEBIT,
            user_data=campaign_id,
        )  # fmt: skip
        result = ledger.create_transfer(uow, transfer)
        if not result.ok:
            raise RuntimeError(f"budget return of {campaign_id} refused: {result.result}")
        returned = result.amount or 0
    repository.record_end(uow.connection, campaign_id, returned_fen=returned, now=now)
    return replace(
        campaign, status=CampaignStatus.ENDED, returned_fen=campaign.returned_fen + returned
    )


def return_to_funder(
    uow: UnitOfWork, campaign: Campaign, amount_fen: int, transfer_id: str
) -> None:
    """Money reaching an ended campaign's budget (a late refund) goes on to the funder, so an
    ended campaign's budget stays empty."""
    transfer = Transfer(
        transfer_id, campaign.budget_account_id or "", _funder_account_id(uow, campaign),
        amount_fen, campaign.currency, "marketing.return", user_data=campaign.id,
    )  # fmt: skip
    result = ledger.create_transfer(uow, transfer)
    if not result.ok:
        raise RuntimeError(f"late return of {campaign.id} refused: {result.result}")
    if result.result != "exists":  # a replay was counted the first time
        repository.record_end(
            uow.connection, campaign.id, returned_fen=amount_fen, now=uow.clock.now()
        )


def end_due_campaigns(uow: UnitOfWork, *, limit: int = MAX_CAMPAIGNS_ENDED_PER_RUN) -> list[str]:
    """The scheduled job: end every campaign whose validity has passed (a bounded batch)."""
    due = repository.campaigns_due_to_end(uow.connection, now=uow.clock.now(), limit=limit)
    for campaign_id in due:
        end_campaign(uow, campaign_id)
    return due
