"""Operator API of reconciliation: runs, breaks and their resolution. Mounted under `/v1`.

Every write names its actor (the operator credential) and lands in the break's audit trail.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from cloudpay.channels.protocol import ChannelError, ChannelErrorKind
from cloudpay.channels.registry import UnknownChannel
from cloudpay.kernel.errors import ChannelFailed, InvalidRequest
from cloudpay.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, page_envelope
from cloudpay.payments import ChannelContext
from cloudpay.reconciliation import runs, service
from cloudpay.reconciliation.model import BreakStatus, BreakType, Resolution
from cloudpay.reconciliation.schemas import (
    BreakNote,
    BreakResolve,
    RunCreate,
    break_view,
    event_view,
    run_view,
)
from cloudpay.web.deps import Operator, TxRunner

router = APIRouter(prefix="/v1/reconciliation", tags=["reconciliation"])
RunId = Annotated[str, Path(pattern=r"^rcr_[0-9A-Za-z]{1,36}$")]
BreakId = Annotated[str, Path(pattern=r"^rcb_[0-9A-Za-z]{1,36}$")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
NO_STATEMENT = "NO_STATEMENT_EXIST"  # WeChat: no transaction that day, so no bill
Connector = Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{1,31}$")]


def _context(request: Request) -> ChannelContext:
    context = request.app.state.channel_context
    assert isinstance(context, ChannelContext)
    return context


def _download(context: ChannelContext, body: RunCreate) -> runs.BillFile:
    try:
        channel = context.channels.get(body.channel)
    except UnknownChannel:
        raise InvalidRequest(f"no connector {body.channel!r} is configured",
                             code="channel_unknown", param="channel") from None  # fmt: skip
    try:
        data = channel.download_bill(body.bill_date)
    except ChannelError as error:
        if error.code == NO_STATEMENT:
            return runs.BillFile(body.channel, body.bill_date, b"", f"none:{body.channel}",
                                    channel.code, no_statement=True)  # fmt: skip
        code = "bill_not_available" if error.kind is ChannelErrorKind.REJECTED else None
        raise ChannelFailed(f"the channel did not give its bill: {error.message}",
                            code=code or "channel_unavailable") from error  # fmt: skip
    return runs.BillFile(body.channel, body.bill_date, data, f"download:{body.channel}",
                            channel.code)  # fmt: skip


@router.post("/runs", status_code=201)
async def create_run(
    body: RunCreate, request: Request, runner: TxRunner, actor: Operator
) -> JSONResponse:
    """Download the day's bill from the channel, keep it, reconcile it."""

    def flow() -> tuple[int, dict[str, Any]]:
        bill = _download(_context(request), body)
        return 201, run_view(service.run_day(runner.write, bill=bill, actor=actor))

    return await runner.write_idempotent_flow("reconciliation.run", flow)


@router.post("/runs/{run_id}/rerun", status_code=201)
async def rerun(run_id: RunId, runner: TxRunner, actor: Operator) -> JSONResponse:
    """Reconcile the run's day again from exactly the file it used."""

    def flow() -> tuple[int, dict[str, Any]]:
        return 201, run_view(service.rerun(runner.write, run_id=run_id, actor=actor))

    return await runner.write_idempotent_flow("reconciliation.rerun", flow)


@router.get("/runs")
def list_runs(
    request: Request, runner: TxRunner, _: Operator, channel: Connector = None,
    bill_date: date | None = None, limit: Limit = DEFAULT_LIMIT,
    starting_after: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    runs = runner.read(
        lambda uow: service.list_runs(
            uow, channel=channel, bill_date=bill_date, limit=limit + 1,
            starting_after=starting_after,
        )
    )  # fmt: skip
    return page_envelope([run_view(r) for r in runs], limit=limit, url=request.url.path)


@router.get("/runs/{run_id}")
def get_run(run_id: RunId, runner: TxRunner, _: Operator) -> dict[str, Any]:
    return run_view(runner.read(lambda uow: runs.get_run(uow, run_id)))


@router.get("/report")
def daily_report(
    runner: TxRunner, _: Operator, bill_date: date,
    channel: Annotated[str, Query(pattern=r"^[a-z][a-z0-9_]{1,31}$")],
) -> dict[str, Any]:  # fmt: skip
    """Matched count and amount, breaks by type, carry-over, and unresolved breaks by age."""
    report: dict[str, Any] = runner.read(
        lambda uow: service.daily_report(uow, channel=channel, bill_date=bill_date)
    )
    return report | {"bill_date": report["bill_date"].isoformat()}


@router.get("/breaks")
def list_breaks(
    request: Request, runner: TxRunner, _: Operator, status: BreakStatus | None = None,
    type: BreakType | None = None, channel: Connector = None,
    bill_date: date | None = None, limit: Limit = DEFAULT_LIMIT,
    starting_after: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    def read(uow: Any) -> list[dict[str, Any]]:
        today = service.today(uow)
        found = service.list_breaks(
            uow, status=status, type_=type, channel=channel, bill_date=bill_date,
            limit=limit + 1, starting_after=starting_after,
        )  # fmt: skip
        return [break_view(b, today) for b in found]

    return page_envelope(runner.read(read), limit=limit, url=request.url.path)


@router.get("/breaks/{break_id}")
def get_break(break_id: BreakId, runner: TxRunner, _: Operator) -> dict[str, Any]:
    def read(uow: Any) -> dict[str, Any]:
        view = break_view(service.get_break(uow, break_id), service.today(uow))
        return view | {"history": [event_view(e) for e in service.break_history(uow, break_id)]}

    return runner.read(read)  # type: ignore[no-any-return]


@router.post("/breaks/{break_id}/investigate")
async def investigate(
    break_id: BreakId, body: BreakNote, runner: TxRunner, actor: Operator
) -> JSONResponse:
    def work(uow: Any) -> tuple[int, dict[str, Any]]:
        moved = service.investigate(uow, break_id=break_id, actor=actor, note=body.note)
        return 200, break_view(moved, service.today(uow))

    return await runner.write_idempotent("reconciliation.investigate", work)


@router.post("/breaks/{break_id}/resolve")
async def resolve(
    break_id: BreakId, body: BreakResolve, request: Request, runner: TxRunner, actor: Operator
) -> JSONResponse:
    """Resolve with the action taken; `repair_order` first repairs the order at the channel."""
    if body.action is Resolution.REPAIR_ORDER:
        context = _context(request)

        def flow() -> tuple[int, dict[str, Any]]:
            moved = service.repair(runner.write, context, break_id=break_id, actor=actor,
                                   note=body.note)  # fmt: skip
            return 200, break_view(moved, runner.read(service.today))

        return await runner.write_idempotent_flow("reconciliation.resolve", flow)

    def work(uow: Any) -> tuple[int, dict[str, Any]]:
        moved = service.resolve(
            uow, break_id=break_id, action=body.action, actor=actor, note=body.note,
            ledger_transfer_id=body.ledger_transfer_id,
        )  # fmt: skip
        return 200, break_view(moved, service.today(uow))

    return await runner.write_idempotent("reconciliation.resolve", work)
