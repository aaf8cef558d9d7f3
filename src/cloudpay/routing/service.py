"""Routing use cases: configure routes and rules, plan a payment's route, keep health history.

Routes name a connector: an adapter configured in this deployment (`ChannelRegistry` key).
A deployment with no routes in the database for a method routes over its connectors as they
are, at no known cost, so a fresh install works before anyone configures routing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import time
from typing import Any

from cloudpay.channels.registry import ChannelRegistry, UnknownChannel
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.business_time import to_shanghai
from cloudpay.kernel.errors import InvalidRequest, NotFound
from cloudpay.kernel.ids import new_id
from cloudpay.routing import repository
from cloudpay.routing.health import HealthBoard, HealthSnapshot
from cloudpay.routing.model import (
    Decision,
    PaymentFacts,
    Route,
    RouteCost,
    RoutingRule,
    TimeWindow,
    check_connector_key,
    decide,
)

IMPLICIT_ROUTE_PREFIX = "connector:"


# --- routes -----------------------------------------------------------------------------
def create_route(
    uow: UnitOfWork, *, registry: ChannelRegistry, name: str, connector: str,
    methods: Iterable[str], cost: RouteCost, priority: int = 100, enabled: bool = True,
) -> Route:  # fmt: skip
    channel = _connector_channel(registry, check_connector_key(connector))
    served = registry.get(connector).methods
    chosen = frozenset(methods)
    if not chosen or not chosen <= served:
        raise InvalidRequest(
            f"methods must be a non-empty subset of what {connector} serves: "
            f"{', '.join(sorted(served))}", code="route_methods_invalid", param="methods",
        )  # fmt: skip
    route = Route(
        id=new_id("rte"), name=name, channel=channel, connector=connector, methods=chosen,
        cost=cost, priority=priority, enabled=enabled,
    )  # fmt: skip
    repository.insert_route(uow.connection, route, uow.clock.now())
    return route


def _connector_channel(registry: ChannelRegistry, connector: str) -> str:
    try:
        return registry.get(connector).code
    except UnknownChannel:
        raise InvalidRequest(
            f"no connector {connector} is configured; known: {', '.join(registry.keys)}",
            code="connector_unknown", param="connector",
        ) from None  # fmt: skip


def get_route(uow: UnitOfWork, route_id: str) -> Route:
    route = repository.get_route(uow.connection, route_id)
    if route is None:
        raise NotFound(f"no route {route_id}", code="route_not_found", param="route_id")
    return route


def list_routes(uow: UnitOfWork) -> list[Route]:
    return repository.all_routes(uow.connection)


def update_route(
    uow: UnitOfWork, route_id: str, *, enabled: bool | None = None,
    cost: RouteCost | None = None, priority: int | None = None, name: str | None = None,
) -> Route:  # fmt: skip
    route = get_route(uow, route_id)
    changed = replace(
        route,
        enabled=route.enabled if enabled is None else enabled,
        cost=cost or route.cost,
        priority=route.priority if priority is None else priority,
        name=name or route.name,
    )
    repository.save_route(uow.connection, changed, uow.clock.now())
    return changed


# --- rules ------------------------------------------------------------------------------
def create_rule(
    uow: UnitOfWork, *, route_ids: Iterable[str], merchant_id: str | None = None,
    methods: Iterable[str] = (), min_amount_fen: int | None = None,
    max_amount_fen: int | None = None, window: tuple[time, time] | None = None,
    priority: int = 100,
) -> RoutingRule:  # fmt: skip
    ids = tuple(dict.fromkeys(route_ids))
    for route_id in ids:
        get_route(uow, route_id)
    rule = RoutingRule(
        id=new_id("rrl"), route_ids=ids, merchant_id=merchant_id, methods=frozenset(methods),
        min_amount_fen=min_amount_fen, max_amount_fen=max_amount_fen,
        window=TimeWindow(*window) if window else None, priority=priority,
    )  # fmt: skip
    repository.insert_rule(uow.connection, rule, uow.clock.now())
    return rule


def get_rule(uow: UnitOfWork, rule_id: str) -> RoutingRule:
    rule = repository.get_rule(uow.connection, rule_id)
    if rule is None:
        raise NotFound(f"no routing rule {rule_id}", code="rule_not_found", param="rule_id")
    return rule


def list_rules(uow: UnitOfWork) -> list[RoutingRule]:
    return repository.all_rules(uow.connection)


def set_rule_enabled(uow: UnitOfWork, rule_id: str, *, enabled: bool) -> RoutingRule:
    rule = replace(get_rule(uow, rule_id), enabled=enabled)
    repository.save_rule(uow.connection, rule, uow.clock.now())
    return rule


# --- planning ---------------------------------------------------------------------------
def plan_payment(
    uow: UnitOfWork, *, registry: ChannelRegistry, board: HealthBoard, merchant_id: str,
    method: str, amount_fen: int,
) -> Decision:  # fmt: skip
    """Where this payment goes, with the failover plan and the reasons (see model.decide)."""
    routes = [r for r in repository.all_routes(uow.connection) if method in r.methods]
    rules: list[RoutingRule] = repository.all_rules(uow.connection) if routes else []
    if not routes:
        routes = implicit_routes(registry, method)
    facts = PaymentFacts(
        merchant_id=merchant_id, method=method, amount_fen=amount_fen,
        local_time=to_shanghai(uow.clock.now()).time(),
    )  # fmt: skip
    circuits = board.open_circuits([r.id for r in routes])
    return decide(routes, rules, circuits, facts, configured=frozenset(registry.keys))


def cost_known(route_id: str) -> bool:
    """False for an implicit route: its zero cost means "not configured", not "free"."""
    return not route_id.startswith(IMPLICIT_ROUTE_PREFIX)


def implicit_routes(registry: ChannelRegistry, method: str) -> list[Route]:
    """One free route per configured connector serving the method: routing before setup."""
    return [_implicit_route(registry, key) for key in registry.keys
            if method in registry.get(key).methods]  # fmt: skip


def _implicit_route(registry: ChannelRegistry, key: str) -> Route:
    adapter = registry.get(key)
    return Route(
        id=f"{IMPLICIT_ROUTE_PREFIX}{key}", name=key, channel=adapter.code, connector=key,
        methods=frozenset(adapter.methods), cost=RouteCost(),
    )  # fmt: skip


# --- health -----------------------------------------------------------------------------
def record_health_transition(uow: UnitOfWork, snapshot: HealthSnapshot) -> None:
    repository.insert_health_event(
        uow.connection,
        {
            "id": new_id("rhe"), "route_id": snapshot.route_id, "state": snapshot.state.value,
            "samples": snapshot.samples, "failures": snapshot.failures,
            "last_error": (snapshot.last_error or "")[:256] or None,
            "created_at": snapshot.changed_at or uow.clock.now(),
        },
    )  # fmt: skip


def routes_in_force(uow: UnitOfWork, registry: ChannelRegistry) -> list[tuple[Route, bool]]:
    """(route, configured): the configured routes, then the implicit ones routing falls back
    to, each narrowed to the methods no configured route serves."""
    configured = repository.all_routes(uow.connection)
    covered = {method for route in configured for method in route.methods}
    uncovered = registry.methods - covered
    implicit: dict[str, Route] = {}
    for method in sorted(uncovered):
        for route in implicit_routes(registry, method):
            implicit.setdefault(route.id, replace(route, methods=route.methods & uncovered))
    return [(route, True) for route in configured] + [(r, False) for r in implicit.values()]


def route_health(
    uow: UnitOfWork, *, registry: ChannelRegistry, board: HealthBoard
) -> list[dict[str, Any]]:
    """Every route in force with this process's breaker and its recent history."""
    return [
        _health_row(uow, route, board, configured=configured)
        for route, configured in routes_in_force(uow, registry)
    ]


def _health_row(
    uow: UnitOfWork, route: Route, board: HealthBoard, *, configured: bool
) -> dict[str, Any]:
    history = [
        {"state": e["state"], "at": e["created_at"].isoformat(), "samples": e["samples"],
         "failures": e["failures"], "last_error": e["last_error"]}
        for e in repository.recent_health_events(uow.connection, route.id)
    ]  # fmt: skip
    return {
        "route_id": route.id, "name": route.name, "connector": route.connector,
        "enabled": route.enabled, "configured": configured,
        "breaker": board.snapshot(route.id).as_dict(), "history": history,
    }  # fmt: skip
