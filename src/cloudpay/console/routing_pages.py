"""The "Channels and routes" page (渠道与路由): connectors, routes with their circuits, rules,
enable / disable (platform admin), and a routing preview.

Toggles are plain form posts: with HTMX the page's routing tables are swapped in place, without
JavaScript the browser follows the redirect back to the page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from cloudpay import payments
from cloudpay.console import routing_views
from cloudpay.console.model import Permission, parse_yuan
from cloudpay.console.service import Actor
from cloudpay.console.web import SignedIn, read, redirect, render, require_page, write

RouteId = Annotated[str, Path(pattern=r"^rte_[0-9A-Za-z]{1,36}$")]
RuleId = Annotated[str, Path(pattern=r"^rrl_[0-9A-Za-z]{1,36}$")]
MerchantId = Annotated[str, Query(pattern=r"^mch_[0-9A-Za-z]{1,36}$")]
MethodName = Annotated[str, Query(pattern=r"^[a-z][a-z0-9_]{1,31}$")]


def install(console: FastAPI) -> None:
    console.get("/routes", response_class=HTMLResponse)(routes_page)
    console.get("/routes/preview", response_class=HTMLResponse)(routing_preview)
    console.post("/routes/{route_id}/enabled")(toggle_route)
    console.post("/routing-rules/{rule_id}/enabled")(toggle_rule)


def channel_context_of(request: Request) -> payments.ChannelContext:
    context = request.app.state.channel_context
    assert isinstance(context, payments.ChannelContext)
    return context


def _overview(request: Request, actor: Actor) -> dict[str, Any]:
    context = channel_context_of(request)
    return read(request, lambda uow: routing_views.routing_overview(uow, actor, context=context))


def routes_page(request: Request, actor: SignedIn) -> Response:
    require_page(actor, Permission.VIEW_ROUTES)
    return render(request, "routes.html", actor, **_overview(request, actor), preview=None,
                  asked={})  # fmt: skip


def routing_preview(
    request: Request, actor: SignedIn, merchant_id: MerchantId, method: MethodName,
    amount: Annotated[str, Query(max_length=20)],
) -> Response:  # fmt: skip
    """A dry run of routing for one payment; read-only, so a GET (no CSRF needed)."""
    require_page(actor, Permission.VIEW_ROUTES)
    amount_fen = parse_yuan(amount)
    context = channel_context_of(request)
    decision = read(request, lambda uow: routing_views.preview(
        uow, actor, context=context, merchant_id=merchant_id, method=method,
        amount_fen=amount_fen))  # fmt: skip
    asked = {"merchant_id": merchant_id, "method": method, "amount": amount,
             "amount_fen": amount_fen}  # fmt: skip
    if request.headers.get("hx-request"):
        return render(request, "_routing_preview.html", actor, preview=decision, asked=asked)
    return render(request, "routes.html", actor, **_overview(request, actor), preview=decision,
                  asked=asked)  # fmt: skip


def toggle_route(
    request: Request, actor: SignedIn, route_id: RouteId, enabled: Annotated[bool, Form()]
) -> Response:
    write(request, lambda uow: routing_views.set_route_enabled(
        uow, actor, route_id=route_id, enabled=enabled))  # fmt: skip
    return _after_toggle(request, actor)


def toggle_rule(
    request: Request, actor: SignedIn, rule_id: RuleId, enabled: Annotated[bool, Form()]
) -> Response:
    write(request, lambda uow: routing_views.set_rule_enabled(
        uow, actor, rule_id=rule_id, enabled=enabled))  # fmt: skip
    return _after_toggle(request, actor)


def _after_toggle(request: Request, actor: Actor) -> Response:
    if request.headers.get("hx-request"):
        return render(request, "_routing_config.html", actor, **_overview(request, actor))
    return redirect("/routes")
