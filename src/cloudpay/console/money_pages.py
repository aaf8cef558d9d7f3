"""The reconciliation (对账) and settlement (结算) pages.

Investigate and resolve are plain form posts that redirect back to the break, so they work
without JavaScript; every check is on the server.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Final

from fastapi import FastAPI, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from cloudpay import settlement
from cloudpay.console import money_views
from cloudpay.console.model import Permission
from cloudpay.console.routing_pages import channel_context_of
from cloudpay.console.web import (
    SignedIn,
    read,
    redirect,
    render,
    require_page,
    scope,
    transact,
    write,
)
from cloudpay.kernel.business_time import business_date
from cloudpay.reconciliation import Resolution

BreakId = Annotated[str, Path(pattern=r"^rcb_[0-9A-Za-z]{1,36}$")]
SettlementId = Annotated[str, Path(pattern=r"^stl_[0-9A-Za-z]{1,36}$")]
Note = Annotated[str, Form(max_length=money_views.MAX_NOTE_LENGTH)]
REGIONAL_DEFAULT_DAYS: Final = 7


def install(console: FastAPI) -> None:
    console.get("/reconciliation", response_class=HTMLResponse)(reconciliation_page)
    console.get("/reconciliation/breaks/{break_id}", response_class=HTMLResponse)(break_page)
    console.post("/reconciliation/breaks/{break_id}/investigate")(investigate)
    console.post("/reconciliation/breaks/{break_id}/resolve")(resolve)
    console.get("/settlements", response_class=HTMLResponse)(settlements_page)
    # Before `/settlements/{settlement_id}`, which would take "regional" for an id.
    console.get("/settlements/regional", response_class=HTMLResponse)(regional_page)
    console.get("/settlements/{settlement_id}", response_class=HTMLResponse)(settlement_page)


def reconciliation_page(request: Request, actor: SignedIn) -> Response:
    require_page(actor, Permission.VIEW_RECONCILIATION)
    overview = read(request, lambda uow: money_views.reconciliation_overview(uow, actor))
    return render(request, "reconciliation.html", actor, **overview)


def break_page(request: Request, actor: SignedIn, break_id: BreakId) -> Response:
    require_page(actor, Permission.VIEW_RECONCILIATION)
    detail = read(request, lambda uow: money_views.break_detail(uow, actor, break_id=break_id))
    return render(request, "break.html", actor, **detail)


def investigate(request: Request, actor: SignedIn, break_id: BreakId, note: Note) -> Response:
    write(request, lambda uow: money_views.investigate_break(
        uow, actor, break_id=break_id, note=note))  # fmt: skip
    return redirect(f"/reconciliation/breaks/{break_id}")


def resolve(
    request: Request, actor: SignedIn, break_id: BreakId,
    action: Annotated[Resolution, Form()], note: Note,
    ledger_transfer_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:  # fmt: skip
    if action is Resolution.REPAIR_ORDER:
        context = channel_context_of(request)
        money_views.repair_break(transact(request), actor, context, break_id=break_id,
                                 note=note)  # fmt: skip
    else:
        write(request, lambda uow: money_views.resolve_break(
            uow, actor, break_id=break_id, action=action, note=note,
            ledger_transfer_id=ledger_transfer_id.strip() or None))  # fmt: skip
    return redirect(f"/reconciliation/breaks/{break_id}")


def settlements_page(request: Request, actor: SignedIn) -> Response:
    require_page(actor, Permission.VIEW_SETTLEMENTS)
    the_scope = scope(request, actor)
    lines = read(request, lambda uow: money_views.settlements_page(uow, actor, the_scope))
    return render(request, "settlements.html", actor, lines=lines,
                  is_unrestricted=the_scope.unrestricted)  # fmt: skip


def settlement_page(request: Request, actor: SignedIn, settlement_id: SettlementId) -> Response:
    require_page(actor, Permission.VIEW_SETTLEMENTS)
    the_scope = scope(request, actor)
    detail = read(request, lambda uow: money_views.settlement_detail(
        uow, actor, the_scope, settlement_id=settlement_id))  # fmt: skip
    return render(request, "settlement.html", actor, **detail)


def regional_page(
    request: Request, actor: SignedIn,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    period: settlement.Period = settlement.Period.DAY,
) -> Response:  # fmt: skip
    """资金闭环: the regional report, the last 7 business days unless a window is given."""
    require_page(actor, Permission.VIEW_SETTLEMENTS)
    last = end or business_date(request.app.state.clock.now())
    first = start or last - timedelta(days=REGIONAL_DEFAULT_DAYS - 1)
    ctx = _settlement_context(request)
    the_scope = scope(request, actor)
    report = read(request, lambda uow: money_views.regional_flows_page(
        uow, actor, the_scope, start=first, end=last, period=period, ctx=ctx))  # fmt: skip
    return render(request, "regional_flows.html", actor, report=report)


def _settlement_context(request: Request) -> settlement.SettlementContext:
    """The partner banks and local policy the app was given (none: every bank is local)."""
    context = getattr(request.app.state, "settlement_context", None)
    if isinstance(context, settlement.SettlementContext):
        return context
    return settlement.SettlementContext()
