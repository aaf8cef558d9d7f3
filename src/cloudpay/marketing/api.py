"""Operator API of marketing: campaigns, funding, claims (领券) and a citizen's wallet.

Every refusal is a 4xx with a reason code (see `errors.py`) and leaves nothing written: the
refused use case raises inside its one transaction. Claims are idempotent per
`Idempotency-Key`: a retried claim gets the first answer back, never a second instrument.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from cloudpay import merchants
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, page_envelope
from cloudpay.marketing import redemption, service
from cloudpay.marketing.model import CampaignStatus, MerchantFacts
from cloudpay.marketing.schemas import (
    CampaignCreate,
    ClaimCreate,
    FundingCreate,
    QuoteRequest,
    campaign_view,
    claim_view,
    quote_view,
    stats_view,
    wallet_view,
)
from cloudpay.web.deps import Operator, TxRunner

router = APIRouter(prefix="/v1", tags=["marketing"])
CampaignId = Annotated[str, Path(pattern=r"^cmp_[0-9A-Z]{26}$")]
CitizenId = Annotated[str, Path(pattern=r"^ctz_[0-9A-Z]{26}$")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
SCOPE = "operator"


@router.post("/campaigns", status_code=201)
async def create_campaign(body: CampaignCreate, runner: TxRunner, _: Operator) -> JSONResponse:
    """A campaign in `draft`; fund it to open claims."""
    draft = body.to_draft()

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        return 201, campaign_view(service.create_campaign(uow, draft))

    return await runner.write_idempotent(SCOPE, work)


@router.get("/campaigns")
def list_campaigns(
    request: Request,
    runner: TxRunner,
    _: Operator,
    status: CampaignStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: str | None = None,
) -> dict[str, Any]:
    campaigns = runner.read(
        lambda uow: service.list_campaigns(
            uow, status=status, limit=limit + 1, starting_after=starting_after
        )
    )
    return page_envelope([campaign_view(c) for c in campaigns], limit=limit, url=request.url.path)


@router.get("/campaigns/{campaign_id}")
def get_campaign(campaign_id: CampaignId, runner: TxRunner, _: Operator) -> dict[str, Any]:
    return campaign_view(runner.read(lambda uow: service.get_campaign(uow, campaign_id)))


@router.get("/campaigns/{campaign_id}/stats")
def get_campaign_stats(campaign_id: CampaignId, runner: TxRunner, _: Operator) -> dict[str, Any]:
    """Instruments by status, subsidy paid and the spending it brought (leverage, 杠杆率)."""
    stats = runner.read(lambda uow: service.campaign_stats(uow, campaign_id))
    return stats_view(campaign_id, stats)


@router.post("/campaigns/{campaign_id}/fund")
async def fund_campaign(
    campaign_id: CampaignId, body: FundingCreate, runner: TxRunner, _: Operator
) -> JSONResponse:
    """A ledger transfer from the funder into the campaign's budget; the campaign goes live."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        campaign = service.fund_campaign(
            uow, campaign_id, amount_fen=body.amount, currency=body.currency
        )
        return 200, campaign_view(campaign)

    return await runner.write_idempotent(SCOPE, work)


@router.post("/campaigns/{campaign_id}/claims", status_code=201)
async def claim_instrument(
    campaign_id: CampaignId, body: ClaimCreate, runner: TxRunner, _: Operator
) -> JSONResponse:
    """First come, first served: one instrument for the citizen, within stock and caps."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        claim = service.claim_instrument(uow, campaign_id, citizen_id=body.citizen_id)
        return 201, claim_view(claim)

    return await runner.write_idempotent(SCOPE, work)


@router.post("/campaigns/{campaign_id}/end")
async def end_campaign(campaign_id: CampaignId, runner: TxRunner, _: Operator) -> JSONResponse:
    """End now: unused instruments expire, the unused budget goes back to the funder."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        return 200, campaign_view(service.end_campaign(uow, campaign_id))

    return await runner.write_idempotent(SCOPE, work)


@router.get("/citizens/{citizen_id}/wallet")
def get_wallet(citizen_id: CitizenId, runner: TxRunner, _: Operator) -> dict[str, Any]:
    """The citizen's vouchers and coupons, whatever wallet they pay with."""
    entries = runner.read(lambda uow: service.wallet(uow, citizen_id))
    return wallet_view(citizen_id, entries)


@router.post("/citizens/{citizen_id}/wallet/quote")
def quote_payment(
    citizen_id: CitizenId, body: QuoteRequest, runner: TxRunner, _: Operator
) -> dict[str, Any]:
    """What the citizen would save paying `amount` at this merchant now; writes nothing."""

    def work(uow: UnitOfWork) -> dict[str, Any]:
        service.wallet(uow, citizen_id)  # 404 for an unknown citizen
        merchant = merchants.get_merchant(uow, body.merchant_id)
        facts = MerchantFacts(merchant.id, merchant.mcc, body.district)
        quote = redemption.best_quote(
            uow, citizen_id=citizen_id, merchant=facts, amount_fen=body.amount,
            currency=body.currency, claim_ids=body.claim_ids,
        )  # fmt: skip
        return quote_view(citizen_id, quote)

    result: dict[str, Any] = runner.read(work)
    return result
