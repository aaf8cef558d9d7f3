"""Operator API of marketing: campaigns, funding, claims (领券) and a citizen's wallet.

Every refusal is a 4xx with a reason code (see `errors.py`) and leaves nothing written: the
refused use case raises inside its one transaction. Claims are idempotent per
`Idempotency-Key`: a retried claim gets the first answer back, never a second instrument.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from cloudpay import merchants
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, page_envelope
from cloudpay.marketing import abuse, lottery, points, red_packets, redemption, service, stats
from cloudpay.marketing.abuse_model import FlagStatus, RuleCode
from cloudpay.marketing.model import CampaignStatus, MerchantFacts
from cloudpay.marketing.schemas import (
    AbuseRuleTune,
    CampaignCreate,
    ClaimCreate,
    DrawCreate,
    EarningCreate,
    EarnRuleIn,
    FlagReview,
    FundingCreate,
    MerchantPersonCreate,
    QuoteRequest,
    RedPacketCreate,
    abuse_rule_view,
    campaign_view,
    claim_view,
    draw_view,
    earn_rule_view,
    flag_view,
    incremental_view_json,
    lottery_entry_view,
    merchant_person_view,
    points_lot_view,
    quote_view,
    red_packet_share_view,
    red_packet_view,
    stats_view,
    wallet_view,
)
from cloudpay.web.deps import Operator, TxRunner, Vault

router = APIRouter(prefix="/v1", tags=["marketing"])
CampaignId = Annotated[str, Path(pattern=r"^cmp_[0-9A-Z]{26}$")]
MerchantId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,32}$")]
FlagId = Annotated[str, Path(pattern=r"^flg_[0-9A-Z]{26}$")]
RedPacketId = Annotated[str, Path(pattern=r"^rpk_[0-9A-Z]{26}$")]
CitizenId = Annotated[str, Path(pattern=r"^ctz_[0-9A-Z]{26}$")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
BaselineDays = Annotated[int, Query(ge=1, le=stats.MAX_BASELINE_DAYS)]
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


def _merchant_spend(request: Request) -> stats.MerchantSpend | None:
    """Payments' paid spend per merchant, which `main.create_app` puts on the app state
    (payments sits above marketing); without it the incremental view is `null`."""
    spend: stats.MerchantSpend | None = getattr(request.app.state, "merchant_spend", None)
    return spend


def _incremental(
    uow: UnitOfWork, request: Request, campaign_id: str, baseline_days: int
) -> stats.IncrementalView | None:
    spend = _merchant_spend(request)
    if spend is None:
        return None
    return stats.incremental_view(uow, campaign_id, spend=spend, baseline_days=baseline_days)


@router.get("/campaigns/{campaign_id}/stats")
def get_campaign_stats(
    campaign_id: CampaignId,
    request: Request,
    runner: TxRunner,
    _: Operator,
    baseline_days: BaselineDays = stats.DEFAULT_BASELINE_DAYS,
) -> dict[str, Any]:
    """Instruments by status, subsidy paid and the spending it brought (leverage, 杠杆率),
    and the incremental view: spend above the merchants' pre-campaign baseline ÷ subsidy."""

    def work(uow: UnitOfWork) -> dict[str, Any]:
        view = stats_view(campaign_id, service.campaign_stats(uow, campaign_id))
        incremental = _incremental(uow, request, campaign_id, baseline_days)
        return {**view, "incremental": incremental and incremental_view_json(incremental)}

    result: dict[str, Any] = runner.read(work)
    return result


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
    """The citizen's vouchers, coupons and spendable points, whatever wallet they pay with."""
    entries, balance = runner.read(
        lambda uow: (service.wallet(uow, citizen_id), points.points_balance(uow, citizen_id))
    )
    return {**wallet_view(citizen_id, entries), "points": balance}


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


@router.post("/red-packets", status_code=201)
async def create_red_packet(body: RedPacketCreate, runner: TxRunner, _: Operator) -> JSONResponse:
    """红包: split now, and move the total from the funder account into the packet."""
    draft = body.to_draft()

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        return 201, red_packet_view(red_packets.create_red_packet(uow, draft))

    return await runner.write_idempotent(SCOPE, work)


@router.get("/red-packets/{red_packet_id}")
def get_red_packet(red_packet_id: RedPacketId, runner: TxRunner, _: Operator) -> dict[str, Any]:
    """The packet with its claimed shares, in claim order."""

    def work(uow: UnitOfWork) -> dict[str, Any]:
        packet = red_packets.get_red_packet(uow, red_packet_id)
        shares = red_packets.list_shares(uow, red_packet_id)
        return {**red_packet_view(packet), "shares": [red_packet_share_view(s) for s in shares]}

    result: dict[str, Any] = runner.read(work)
    return result


@router.post("/red-packets/{red_packet_id}/claims")
async def claim_red_packet(
    red_packet_id: RedPacketId, body: ClaimCreate, runner: TxRunner, _: Operator
) -> JSONResponse:
    """抢红包: the citizen's share; claiming again answers the same share."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        share = red_packets.claim_red_packet(uow, red_packet_id, citizen_id=body.citizen_id)
        return 200, red_packet_share_view(share)

    return await runner.write_idempotent(SCOPE, work)


@router.post("/campaigns/{campaign_id}/lottery/entries", status_code=201)
async def register_for_lottery(
    campaign_id: CampaignId, body: ClaimCreate, runner: TxRunner, _: Operator
) -> JSONResponse:
    """摇号报名: enter the citizen in the draw; registering again answers the first entry."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        entry = lottery.register_for_lottery(uow, campaign_id, citizen_id=body.citizen_id)
        return 201, lottery_entry_view(entry)

    return await runner.write_idempotent(SCOPE, work)


@router.post("/campaigns/{campaign_id}/lottery/draw")
async def draw_lottery(
    campaign_id: CampaignId, body: DrawCreate, runner: TxRunner, _: Operator
) -> JSONResponse:
    """开奖 after the claim window: min(stock left, entrants) vouchers, seed recorded."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        return 200, draw_view(lottery.draw_lottery(uow, campaign_id, seed=body.seed))

    return await runner.write_idempotent(SCOPE, work)


@router.post("/points/rules/{merchant_id}")
async def set_points_rule(
    merchant_id: MerchantId, body: EarnRuleIn, runner: TxRunner, _: Operator
) -> JSONResponse:
    """积分规则: the merchant's points per yuan, validity and promotion multipliers."""
    rule = body.to_rule(merchant_id)

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        return 200, earn_rule_view(points.set_earn_rule(uow, rule))

    return await runner.write_idempotent(SCOPE, work)


@router.post("/points/earnings", status_code=201)
async def earn_points(body: EarningCreate, runner: TxRunner, _: Operator) -> JSONResponse:
    """Points for a paid order; the same order earns once (again answers the first lot)."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        lot = points.earn_points(
            uow, citizen_id=body.citizen_id, merchant_id=body.merchant_id,
            order_id=body.order_id, amount_fen=body.amount,
        )  # fmt: skip
        if lot is None:
            return 200, {"object": "points_lot", "points": 0}
        return 201, points_lot_view(lot)

    return await runner.write_idempotent(SCOPE, work)


@router.get("/citizens/{citizen_id}/points")
def get_points(citizen_id: CitizenId, runner: TxRunner, _: Operator) -> dict[str, Any]:
    """The citizen's points balance (from the ledger) and its live lots, oldest first."""

    def work(uow: UnitOfWork) -> dict[str, Any]:
        balance = points.points_balance(uow, citizen_id)
        lots = points.live_lots(uow, citizen_id)
        return {
            "object": "points", "citizen_id": citizen_id, "balance": balance,
            "lots": [points_lot_view(lot) for lot in lots],
        }  # fmt: skip

    result: dict[str, Any] = runner.read(work)
    return result


@router.get("/marketing/flags")
def list_flags(
    request: Request,
    runner: TxRunner,
    _: Operator,
    status: FlagStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: str | None = None,
) -> dict[str, Any]:
    """反作弊: what the anti-abuse rules flagged, newest first, each with its reason."""
    flags = runner.read(
        lambda uow: abuse.list_flags(
            uow, status=status, limit=limit + 1, starting_after=starting_after
        )
    )
    return page_envelope([flag_view(f) for f in flags], limit=limit, url=request.url.path)


@router.post("/marketing/flags/{flag_id}/review")
async def review_flag(
    flag_id: FlagId, body: FlagReview, runner: TxRunner, _: Operator
) -> JSONResponse:
    """A person's decision on a flag (confirmed or dismissed), kept with a note."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        flag = abuse.review_flag(uow, flag_id, decision=body.decision, note=body.note)
        return 200, flag_view(flag)

    return await runner.write_idempotent(SCOPE, work)


@router.get("/marketing/abuse-rules")
def list_abuse_rules(runner: TxRunner, _: Operator) -> dict[str, Any]:
    rules = runner.read(abuse.list_rules)
    return {"object": "list", "data": [abuse_rule_view(rule) for rule in rules]}


@router.post("/marketing/abuse-rules/{code}")
async def tune_abuse_rule(
    code: RuleCode, body: AbuseRuleTune, runner: TxRunner, _: Operator
) -> JSONResponse:
    """Rules are data: change a threshold, a window, or switch a rule off."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        rule = abuse.tune_rule(
            uow, code, threshold=body.threshold, window_hours=body.window_hours,
            enabled=body.enabled,
        )  # fmt: skip
        return 200, abuse_rule_view(rule)

    return await runner.write_idempotent(SCOPE, work)


@router.get("/campaigns/{campaign_id}/report")
def get_campaign_report(
    campaign_id: CampaignId,
    request: Request,
    runner: TxRunner,
    _: Operator,
    baseline_days: BaselineDays = stats.DEFAULT_BASELINE_DAYS,
) -> dict[str, Any]:
    """The campaign's totals, by district and MCC of the redeeming merchants, by day, and the
    incremental view (by merchant, district and MCC)."""
    report, incremental = runner.read(
        lambda uow: (
            stats.campaign_report(uow, campaign_id),
            _incremental(uow, request, campaign_id, baseline_days),
        )
    )
    return {
        **stats_view(campaign_id, report.total), "object": "campaign_report",
        "by_place": [
            {**stats_view(campaign_id, p.stats), "object": "place_stats",
             "district": p.district or None, "mcc": p.mcc or None}
            for p in report.by_place
        ],
        "by_day": [{"day": day.isoformat(), "orders": orders} for day, orders in report.by_day],
        "incremental": incremental and incremental_view_json(incremental),
    }  # fmt: skip


@router.get("/campaigns/{campaign_id}/stats.csv")
def export_campaign_stats(
    campaign_id: CampaignId,
    request: Request,
    runner: TxRunner,
    _: Operator,
    baseline_days: BaselineDays = stats.DEFAULT_BASELINE_DAYS,
) -> Response:
    """The report as CSV (UTF-8, RFC 4180), for spreadsheets and the programme's reporting."""
    report, incremental = runner.read(
        lambda uow: (
            stats.campaign_report(uow, campaign_id),
            _incremental(uow, request, campaign_id, baseline_days),
        )
    )
    return Response(
        stats.report_csv(report, incremental), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{campaign_id}-stats.csv"'},
    )  # fmt: skip


@router.post("/merchants/{merchant_id}/people", status_code=201)
async def register_merchant_person(
    merchant_id: MerchantId, body: MerchantPersonCreate, runner: TxRunner, vault: Vault,
    _: Operator,
) -> JSONResponse:  # fmt: skip
    """反作弊: the merchant's legal person or staff, found among citizens by resident ID, so
    their voucher orders at this merchant raise the `own_people` flag."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        person = abuse.register_merchant_person(
            uow, vault=vault, merchant_id=merchant_id, resident_id=body.resident_id,
            role=body.role,
        )  # fmt: skip
        return 201, merchant_person_view(person)

    return await runner.write_idempotent(SCOPE, work)
