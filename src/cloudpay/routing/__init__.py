"""Routing: which route (channel × connector × cost) a payment takes, and failover.

Payments asks `plan_payment` in the transaction that opens an order, then reports each
channel call's outcome to the `HealthBoard`, whose breakers keep failing routes out.
"""

from cloudpay.routing.health import BreakerPolicy, CircuitState, HealthBoard, HealthSnapshot
from cloudpay.routing.model import Candidate, Decision, Route, RouteCost, SkipReason
from cloudpay.routing.service import (
    create_route,
    create_rule,
    get_route,
    list_routes,
    plan_payment,
    record_health_transition,
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
    "SkipReason",
    "create_route",
    "create_rule",
    "get_route",
    "list_routes",
    "plan_payment",
    "record_health_transition",
    "update_route",
]
