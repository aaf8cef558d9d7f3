"""Operator API of settlement: fee plans, agent cost rates, settlement profiles, runs,
settlements with their line items, and merchant balances. Mounted under `/v1`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from cloudpay.channels.bank.protocol import NotificationRejected
from cloudpay.db.unit_of_work import transactor
from cloudpay.kernel.errors import AuthenticationFailed, NotFound
from cloudpay.settlement import payouts, regional, service, splits
from cloudpay.settlement.flows import (
    SettlementContext,
    check_custody,
    run_settlement,
    sync_payout,
)
from cloudpay.settlement.schemas import (
    METHOD,
    AgentRateSet,
    FeePlanCreate,
    ProfileSet,
    RunCreate,
    fee_plan_view,
    payout_view,
    profile_view,
    settlement_view,
)
from cloudpay.web.deps import Operator, TxRunner

router = APIRouter(prefix="/v1", tags=["settlement"])
MerchantId = Annotated[str, Path(pattern=r"^mch_[0-9A-Za-z]{1,36}$")]
AgentId = Annotated[str, Path(pattern=r"^agt_[0-9A-Za-z]{1,36}$")]
SettlementId = Annotated[str, Path(pattern=r"^stl_[0-9A-Za-z]{1,36}$")]


def settlement_context(request: Request) -> SettlementContext:
    """The partner banks this process pays through (set by the app's owner; none: no payouts)."""
    context = getattr(request.app.state, "settlement_context", None)
    return context if isinstance(context, SettlementContext) else SettlementContext()


@router.post("/merchants/{merchant_id}/fee_plans", status_code=201)
def create_fee_plan(
    merchant_id: MerchantId, body: FeePlanCreate, runner: TxRunner, _: Operator
) -> Any:
    plan = body.to_plan()
    row = runner.write(
        lambda uow: service.create_fee_plan(
            uow,
            merchant_id=merchant_id,
            method=body.method,
            plan=plan,
            refund_policy=body.refund_policy,
            effective_from=body.effective_from,
        )
    )
    return JSONResponse(fee_plan_view(row), status_code=201)


@router.get("/merchants/{merchant_id}/fee_plans")
def list_fee_plans(merchant_id: MerchantId, runner: TxRunner, _: Operator) -> dict[str, Any]:
    rows = runner.read(lambda uow: service.list_fee_plans(uow, merchant_id))
    return {"object": "list", "data": [fee_plan_view(r) for r in rows], "has_more": False}


@router.put("/agents/{agent_id}/cost_rates/{method}")
def set_agent_rate(
    agent_id: AgentId,
    method: Annotated[str, Path(pattern=METHOD)],
    body: AgentRateSet,
    runner: TxRunner,
    _: Operator,
) -> dict[str, Any]:
    runner.write(
        lambda uow: service.set_agent_rate(
            uow, agent_id=agent_id, method=method, cost_rate_bp=str(body.cost_rate_bp)
        )
    )
    return {
        "object": "agent_cost_rate",
        "agent_id": agent_id,
        "method": method,
        "cost_rate_bp": str(body.cost_rate_bp),
    }


@router.put("/merchants/{merchant_id}/settlement_profile")
def set_profile(
    merchant_id: MerchantId, body: ProfileSet, request: Request, runner: TxRunner, _: Operator
) -> dict[str, Any]:
    banks = sorted(settlement_context(request).banks)
    row = runner.write(
        lambda uow: service.set_profile(
            uow, merchant_id=merchant_id, profile=body.to_input(), known_banks=banks
        )
    )
    return profile_view(row)


@router.get("/merchants/{merchant_id}/settlement_profile")
def get_profile(merchant_id: MerchantId, runner: TxRunner, _: Operator) -> dict[str, Any]:
    return profile_view(runner.read(lambda uow: service.get_profile(uow, merchant_id)))


@router.get("/merchants/{merchant_id}/balance")
def merchant_balance(merchant_id: MerchantId, runner: TxRunner, _: Operator) -> dict[str, Any]:
    """Pending (待结算), available (可结算), in transit (payouts sent) and reserved."""
    view: dict[str, Any] = runner.write(lambda uow: payouts.balances(uow, merchant_id))
    return view


@router.get("/settlements")
def list_settlements(
    runner: TxRunner,
    _: Operator,
    merchant_id: Annotated[str | None, Query(pattern=r"^mch_[0-9A-Za-z]{1,36}$")] = None,
    business_date: date | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: Annotated[str | None, Query(pattern=r"^stl_[0-9A-Za-z]{1,36}$")] = None,
) -> dict[str, Any]:
    rows = runner.read(
        lambda uow: service.list_settlements(
            uow,
            merchant_id=merchant_id,
            business_date=business_date,
            limit=limit + 1,
            starting_after=starting_after,
        )
    )
    return {
        "object": "list",
        "data": [settlement_view(r) for r in rows[:limit]],
        "has_more": len(rows) > limit,
    }


@router.get("/settlements/{settlement_id}")
def get_settlement(settlement_id: SettlementId, runner: TxRunner, _: Operator) -> dict[str, Any]:
    row, paid = runner.read(lambda uow: service.get_settlement(uow, settlement_id))
    view = settlement_view(row, paid)
    view["split_receivers"] = runner.read(lambda uow: splits.line_receivers(uow, settlement_id))
    return view


@router.post("/settlement_runs")
async def create_run(body: RunCreate, request: Request, runner: TxRunner, _: Operator) -> Any:
    """Run (or resume) the settlement of a business date; idempotent by date."""
    transact = transactor(runner.engine, runner.clock)
    summary = await run_in_threadpool(
        run_settlement,
        transact,
        settlement_context(request),
        body.business_date,
        pay_out=body.pay_out,
    )
    return JSONResponse({"object": "settlement_run", **summary.as_dict()}, status_code=200)


@router.post("/payouts/{payout_id}/sync")
async def sync_payout_route(
    payout_id: Annotated[str, Path(pattern=r"^pout_[0-9A-Za-z]{1,36}$")],
    request: Request,
    runner: TxRunner,
    _: Operator,
) -> dict[str, Any]:
    """Ask the bank where a payout stands and apply it (e.g. a returned payout, 退票)."""
    transact = transactor(runner.engine, runner.clock)
    ctx = settlement_context(request)
    row = await run_in_threadpool(sync_payout, transact, ctx, payout_id)
    return payout_view(row)


@router.get("/settlement/custody_check")
async def custody_check(request: Request, runner: TxRunner, _: Operator) -> dict[str, Any]:
    """The daily proof: the ledger's custody account at each bank equals the bank's own."""
    transact = transactor(runner.engine, runner.clock)
    rows = await run_in_threadpool(check_custody, transact, settlement_context(request))
    return {
        "object": "list",
        "data": rows,
        "has_more": False,
        "ok": all(row["matches"] for row in rows),
    }


@router.post("/bank_notifications/{bank_code}")
async def bank_notification(
    bank_code: Annotated[str, Path(pattern=r"^[A-Za-z0-9]{2,12}$")],
    request: Request,
    runner: TxRunner,
) -> dict[str, Any]:
    """A partner bank's signed webhook: a payout finished, failed or came back (退票)."""
    bank = settlement_context(request).banks.get(bank_code)
    if bank is None:
        raise NotFound(f"no partner bank {bank_code}", param="bank_code")
    try:
        notice = bank.parse_notification(dict(request.headers), await request.body())
    except NotificationRejected as rejected:
        raise AuthenticationFailed(str(rejected), code="notification_rejected") from rejected
    transfer_id = notice.transfer.transfer_id
    if transfer_id.startswith("pout_"):
        transact = transactor(runner.engine, runner.clock)
        await run_in_threadpool(sync_payout, transact, settlement_context(request), transfer_id)
    return {"object": "acknowledgement", "event_id": notice.event_id}


def _regional_report(
    request: Request, runner: TxRunner, start: date, end: date, period: regional.Period
) -> regional.RegionalReport:
    ctx = settlement_context(request)
    report: regional.RegionalReport = runner.read(
        lambda uow: service.regional_flows(
            uow, start=start, end=end, period=period, policy=ctx.local, banks=sorted(ctx.banks)
        )
    )
    return report


ReportFrom = Annotated[date, Query(alias="from", description="first business date")]
ReportTo = Annotated[date, Query(alias="to", description="last business date (inclusive)")]


@router.get("/reports/regional-flows")
def regional_flows(
    request: Request, runner: TxRunner, _: Operator, start: ReportFrom, end: ReportTo,
    period: regional.Period = regional.Period.DAY,
) -> dict[str, Any]:  # fmt: skip
    """资金闭环: per partner bank, receipts held, settled there, custody; and per day or week
    the share of payouts kept in local banks."""
    return regional.report_view(_regional_report(request, runner, start, end, period))


@router.get("/reports/regional-flows.csv")
def export_regional_flows(
    request: Request, runner: TxRunner, _: Operator, start: ReportFrom, end: ReportTo,
    period: regional.Period = regional.Period.DAY,
) -> Response:  # fmt: skip
    """The same report as CSV (UTF-8, RFC 4180) for spreadsheets and the city's reporting."""
    report = _regional_report(request, runner, start, end, period)
    name = f"regional-flows-{start.isoformat()}-{end.isoformat()}.csv"
    return Response(
        regional.report_csv(report), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )  # fmt: skip
