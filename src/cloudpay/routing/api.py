"""Operator API of routing: routes, rules, health, and a dry run. Mounted under `/v1`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from cloudpay.channels.registry import ChannelRegistry
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import InvalidRequest
from cloudpay.routing import service
from cloudpay.routing.health import HealthBoard
from cloudpay.routing.schemas import (
    RouteCreate,
    RoutePreview,
    RouteUpdate,
    RuleCreate,
    RuleUpdate,
    decision_view,
    route_view,
    rule_view,
)
from cloudpay.web.deps import Operator, TxRunner

router = APIRouter(prefix="/v1", tags=["routing"])
RouteId = Annotated[str, Path(pattern=r"^rte_[0-9A-Za-z]{1,36}$")]
RuleId = Annotated[str, Path(pattern=r"^rrl_[0-9A-Za-z]{1,36}$")]


def _wiring(request: Request) -> tuple[ChannelRegistry, HealthBoard]:
    """The adapters and the breaker board of this process (built by `main.create_app`)."""
    context = request.app.state.channel_context
    assert isinstance(context.channels, ChannelRegistry)
    assert isinstance(context.health, HealthBoard)
    return context.channels, context.health


@router.post("/routes", status_code=201)
def create_route(body: RouteCreate, request: Request, runner: TxRunner, _: Operator) -> Any:
    registry, _board = _wiring(request)
    route = runner.write(
        lambda uow: service.create_route(
            uow, registry=registry, name=body.name, connector=body.connector,
            methods=body.methods, cost=body.cost.to_cost(), priority=body.priority,
            enabled=body.enabled,
        )
    )  # fmt: skip
    return JSONResponse(route_view(route), status_code=201)


@router.get("/routes")
def list_routes(runner: TxRunner, _: Operator) -> dict[str, Any]:
    routes = runner.read(service.list_routes)
    return {"object": "list", "data": [route_view(r) for r in routes], "has_more": False}


@router.get("/routes/health")
def routes_health(request: Request, runner: TxRunner, _: Operator) -> dict[str, Any]:
    """Each route's circuit as this API process sees it, and its recorded transitions."""
    registry, board = _wiring(request)
    rows = runner.read(lambda uow: service.route_health(uow, registry=registry, board=board))
    return {"object": "list", "data": rows, "has_more": False}


@router.get("/routes/{route_id}")
def get_route(route_id: RouteId, runner: TxRunner, _: Operator) -> dict[str, Any]:
    return route_view(runner.read(lambda uow: service.get_route(uow, route_id)))


@router.patch("/routes/{route_id}")
def update_route(
    route_id: RouteId, body: RouteUpdate, runner: TxRunner, _: Operator
) -> dict[str, Any]:
    route = runner.write(
        lambda uow: service.update_route(
            uow, route_id, enabled=body.enabled, priority=body.priority, name=body.name,
            cost=body.cost.to_cost() if body.cost else None,
        )
    )  # fmt: skip
    return route_view(route)


@router.post("/routing-rules", status_code=201)
def create_rule(body: RuleCreate, runner: TxRunner, _: Operator) -> Any:
    window = _window(body)

    def work(uow: UnitOfWork) -> dict[str, Any]:
        return rule_view(
            service.create_rule(
                uow, route_ids=body.route_ids, merchant_id=body.merchant_id,
                methods=body.methods, min_amount_fen=body.min_amount_fen,
                max_amount_fen=body.max_amount_fen, window=window, priority=body.priority,
            )
        )  # fmt: skip

    return JSONResponse(runner.write(work), status_code=201)


def _window(body: RuleCreate) -> Any:
    if (body.window_start is None) != (body.window_end is None):
        raise InvalidRequest("give both window_start and window_end, or neither",
                             code="rule_invalid", param="window_end")  # fmt: skip
    if body.window_start is None or body.window_end is None:
        return None
    if body.window_start == body.window_end:
        raise InvalidRequest("the window is empty", code="rule_invalid", param="window_end")
    return (body.window_start, body.window_end)


@router.get("/routing-rules")
def list_rules(runner: TxRunner, _: Operator) -> dict[str, Any]:
    rules = runner.read(service.list_rules)
    return {"object": "list", "data": [rule_view(r) for r in rules], "has_more": False}


@router.patch("/routing-rules/{rule_id}")
def update_rule(rule_id: RuleId, body: RuleUpdate, runner: TxRunner, _: Operator) -> Any:
    rule = runner.write(lambda uow: service.set_rule_enabled(uow, rule_id, enabled=body.enabled))
    return rule_view(rule)


@router.post("/routing/preview")
def preview(body: RoutePreview, request: Request, runner: TxRunner, _: Operator) -> Any:
    """What routing would decide for this payment now, without creating anything."""
    registry, board = _wiring(request)
    decision = runner.read(
        lambda uow: service.plan_payment(
            uow, registry=registry, board=board, merchant_id=body.merchant_id,
            method=body.method, amount_fen=body.amount,
        )
    )  # fmt: skip
    return decision_view(decision)
