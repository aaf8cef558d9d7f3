"""Routing: which route (channel × connector × cost) a payment takes, and failover.

Payments asks `plan_payment` in the transaction that opens an order, then reports each
channel call's outcome to the `HealthBoard`, whose breakers keep failing routes out.
"""

from cloudpay.routing.health import BreakerPolicy, CircuitState, HealthBoard, HealthSnapshot
from cloudpay.routing.model import (
    Candidate,
    Decision,
    Route,
    RouteCost,
    RoutingRule,
    SkipReason,
    TimeWindow,
)
from cloudpay.routing.service import (
    cost_known,
    create_route,
    create_rule,
    get_route,
    get_rule,
    implicit_routes,
    list_routes,
    list_rules,
    plan_payment,
    record_health_transition,
    route_health,
    routes_in_force,
    set_rule_enabled,
    update_route,
)

__all__ = [
    "BreakerPolicy",
    "Candidate",
    "CircuitState",
    "Decision",
    "HealthBoard",
    "HealthSnapshot",
    "Route",
    "RouteCost",
    "RoutingRule",
    "SkipReason",
    "TimeWindow",
    "cost_known",
    "create_route",
    "create_rule",
    "get_route",
    "get_rule",
    "implicit_routes",
    "list_routes",
    "list_rules",
    "plan_payment",
    "record_health_transition",
    "route_health",
    "routes_in_force",
    "set_rule_enabled",
    "update_route",
]
