"""What the "Channels and routes" page (渠道与路由) reads and changes, and the routing part of a
merchant's page.

Reads show the connectors this process has adapters for, every route with its cost and this
process's circuit, and the operators' rules. Writes (enable / disable a route or a rule) check
the role, change routing through its public functions and record the audit entry with
before/after in the same transaction. The preview asks `routing.plan_payment` in a read
transaction, so it shows what a payment would do now and creates nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cloudpay import merchants, payments, routing
from cloudpay.console.model import Permission, Scope, require, success_rate_basis_points
from cloudpay.console.service import Actor, record_audit, require_in_scope
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import InvalidRequest

MAX_APPS_READ = 100


# --- the page ----------------------------------------------------------------------------
def routing_overview(
    uow: UnitOfWork, actor: Actor, *, context: payments.ChannelContext
) -> dict[str, Any]:
    """Connectors, routes (configured, or implicit while a method has none) and rules."""
    require(actor.role, Permission.VIEW_ROUTES)
    registry = context.channels
    connectors = [
        {"key": key, "channel": registry.get(key).code,
         "methods": sorted(registry.get(key).methods)}
        for key in registry.keys
    ]  # fmt: skip
    routes = routing.routes_in_force(uow, context.channels)
    histories = {
        row["route_id"]: row["history"]
        for row in routing.route_health(uow, registry=registry, board=context.board)
    }
    names = {route.id: route.name for route, _ in routes}
    rows = [
        _route_row(route, context.board, histories.get(route.id, []), configured)
        for route, configured in routes
    ]
    return {
        "connectors": connectors,
        "routes": rows,
        "rules": [rule_row(rule, names) for rule in routing.list_rules(uow)],
        "methods": sorted(registry.methods | {m for route, _ in routes for m in route.methods}),
    }


def _route_row(
    route: routing.Route, board: routing.HealthBoard, history: list[dict[str, Any]],
    configured: bool,
) -> dict[str, Any]:  # fmt: skip
    circuit = board.snapshot(route.id)
    succeeded = circuit.samples - circuit.failures
    return {
        "route": route, "methods": sorted(route.methods), "configured": configured,
        "circuit": circuit,
        "success_rate_bp": success_rate_basis_points(succeeded, circuit.samples),
        "history": [{**event, "at": datetime.fromisoformat(event["at"])} for event in history],
    }  # fmt: skip


def rule_row(rule: routing.RoutingRule, route_names: dict[str, str]) -> dict[str, Any]:
    window = rule.window
    return {
        "rule": rule, "methods": sorted(rule.methods),
        "window": f"{window.start:%H:%M}–{window.end:%H:%M}" if window else None,
        "routes": [(route_id, route_names.get(route_id, route_id)) for route_id in rule.route_ids],
    }  # fmt: skip


# --- writes ------------------------------------------------------------------------------
def route_audit_view(route: routing.Route) -> dict[str, Any]:
    return {
        "name": route.name, "connector": route.connector, "methods": sorted(route.methods),
        "cost": route.cost.as_dict(), "priority": route.priority, "enabled": route.enabled,
    }  # fmt: skip


def rule_audit_view(rule: routing.RoutingRule) -> dict[str, Any]:
    window = rule.window
    return {
        "merchant_id": rule.merchant_id, "methods": sorted(rule.methods),
        "min_amount_fen": rule.min_amount_fen, "max_amount_fen": rule.max_amount_fen,
        "window": f"{window.start:%H:%M}-{window.end:%H:%M}" if window else None,
        "route_ids": list(rule.route_ids), "priority": rule.priority, "enabled": rule.enabled,
    }  # fmt: skip


def set_route_enabled(
    uow: UnitOfWork, actor: Actor, *, route_id: str, enabled: bool
) -> routing.Route:
    """Switch a configured route on or off (audited); an unknown id is a 404, nothing written."""
    require(actor.role, Permission.MANAGE_ROUTES)
    before = routing.get_route(uow, route_id)
    after = routing.update_route(uow, route_id, enabled=enabled)
    record_audit(uow, actor, action=f"route.{'enable' if enabled else 'disable'}",
                 object_type="route", object_id=route_id, before=route_audit_view(before),
                 after=route_audit_view(after))  # fmt: skip
    return after


def set_rule_enabled(
    uow: UnitOfWork, actor: Actor, *, rule_id: str, enabled: bool
) -> routing.RoutingRule:
    require(actor.role, Permission.MANAGE_ROUTES)
    before = routing.get_rule(uow, rule_id)
    after = routing.set_rule_enabled(uow, rule_id, enabled=enabled)
    record_audit(uow, actor, action=f"routing_rule.{'enable' if enabled else 'disable'}",
                 object_type="routing_rule", object_id=rule_id, before=rule_audit_view(before),
                 after=rule_audit_view(after))  # fmt: skip
    return after


# --- preview -----------------------------------------------------------------------------
def preview(
    uow: UnitOfWork, actor: Actor, *, context: payments.ChannelContext, merchant_id: str,
    method: str, amount_fen: int,
) -> routing.Decision:  # fmt: skip
    """What routing would decide for this payment now (a dry run: nothing is written)."""
    require(actor.role, Permission.VIEW_ROUTES)
    known = context.channels.methods | {m for r in routing.list_routes(uow) for m in r.methods}
    if method not in known:
        raise InvalidRequest(f"method is one of {', '.join(sorted(known)) or '(none)'}",
                             code="parameter_invalid", param="method")  # fmt: skip
    if amount_fen < 1:
        raise InvalidRequest("amount is at least ¥0.01", code="amount_invalid", param="amount")
    merchants.get_merchant(uow, merchant_id)
    return routing.plan_payment(uow, registry=context.channels, board=context.board,
                                merchant_id=merchant_id, method=method,
                                amount_fen=amount_fen)  # fmt: skip


# --- the merchant's page -----------------------------------------------------------------
def merchant_routing(
    uow: UnitOfWork, actor: Actor, scope: Scope, *, context: payments.ChannelContext,
    merchant_id: str,
) -> dict[str, Any] | None:  # fmt: skip
    """Routes serving the methods the merchant's enabled apps accept, and rules naming it;
    None for roles that do not read routing."""
    if not actor.can(Permission.VIEW_ROUTES):
        return None
    require_in_scope(scope, merchant_id)
    apps = merchants.list_apps(uow, merchant_id, limit=MAX_APPS_READ)
    methods = sorted({method for app in apps if app.status is merchants.AppStatus.ENABLED
                      for method in app.payment_methods})  # fmt: skip
    routes = routing.routes_in_force(uow, context.channels)
    names = {route.id: route.name for route, _ in routes}
    serving = [
        _route_row(route, context.board, [], configured)
        for route, configured in routes
        if route.methods & set(methods)
    ]
    rules = [rule_row(rule, names) for rule in routing.list_rules(uow)
             if rule.merchant_id == merchant_id]  # fmt: skip
    return {"methods": methods, "routes": serving, "rules": rules}
