"""The routing context's SQL. Rows become model records here and nowhere else."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from sqlalchemy import Connection, insert, select, update

from cloudpay.routing.model import Route, RouteCost, RoutingRule, TimeWindow
from cloudpay.routing.tables import route_health_events, routes, routing_rules


def _route(row: Any) -> Route:
    return Route(
        id=row.id, name=row.name, channel=row.channel, connector=row.connector,
        methods=frozenset(row.methods),
        cost=RouteCost(rate_bp=row.cost_rate_bp, min_fen=row.cost_min_fen,
                       max_fen=row.cost_max_fen, fixed_fen=row.cost_fixed_fen),
        priority=row.priority, enabled=row.enabled,
    )  # fmt: skip


def _hhmm(text: str | None) -> time | None:
    return time.fromisoformat(text) if text else None


def _rule(row: Any) -> RoutingRule:
    start, end = _hhmm(row.window_start), _hhmm(row.window_end)
    return RoutingRule(
        id=row.id, route_ids=tuple(row.route_ids), merchant_id=row.merchant_id,
        methods=frozenset(row.methods), min_amount_fen=row.min_amount_fen,
        max_amount_fen=row.max_amount_fen,
        window=TimeWindow(start, end) if start and end else None,
        priority=row.priority, enabled=row.enabled,
    )  # fmt: skip


def _route_columns(route: Route) -> dict[str, Any]:
    return {
        "name": route.name, "channel": route.channel, "connector": route.connector,
        "methods": sorted(route.methods), "cost_rate_bp": route.cost.rate_bp,
        "cost_min_fen": route.cost.min_fen, "cost_max_fen": route.cost.max_fen,
        "cost_fixed_fen": route.cost.fixed_fen, "priority": route.priority,
        "enabled": route.enabled,
    }  # fmt: skip


def insert_route(connection: Connection, route: Route, now: datetime) -> None:
    connection.execute(
        insert(routes).values(id=route.id, created_at=now, updated_at=now, **_route_columns(route))
    )


def save_route(connection: Connection, route: Route, now: datetime) -> None:
    connection.execute(
        update(routes)
        .where(routes.c.id == route.id)
        .values(updated_at=now, **_route_columns(route))
    )


def get_route(connection: Connection, route_id: str) -> Route | None:
    row = connection.execute(select(routes).where(routes.c.id == route_id)).first()
    return _route(row) if row else None


def all_routes(connection: Connection) -> list[Route]:
    return [_route(r) for r in connection.execute(select(routes).order_by(routes.c.id))]


def _rule_columns(rule: RoutingRule) -> dict[str, Any]:
    window = rule.window
    return {
        "merchant_id": rule.merchant_id, "methods": sorted(rule.methods),
        "min_amount_fen": rule.min_amount_fen, "max_amount_fen": rule.max_amount_fen,
        "window_start": window.start.strftime("%H:%M") if window else None,
        "window_end": window.end.strftime("%H:%M") if window else None,
        "route_ids": list(rule.route_ids), "priority": rule.priority, "enabled": rule.enabled,
    }  # fmt: skip


def insert_rule(connection: Connection, rule: RoutingRule, now: datetime) -> None:
    values = {"id": rule.id, "created_at": now, "updated_at": now, **_rule_columns(rule)}
    connection.execute(insert(routing_rules).values(**values))


def save_rule(connection: Connection, rule: RoutingRule, now: datetime) -> None:
    connection.execute(
        update(routing_rules).where(routing_rules.c.id == rule.id)
        .values(updated_at=now, **_rule_columns(rule))
    )  # fmt: skip


def get_rule(connection: Connection, rule_id: str) -> RoutingRule | None:
    row = connection.execute(select(routing_rules).where(routing_rules.c.id == rule_id)).first()
    return _rule(row) if row else None


def all_rules(connection: Connection) -> list[RoutingRule]:
    query = select(routing_rules).order_by(routing_rules.c.priority, routing_rules.c.id)
    return [_rule(r) for r in connection.execute(query)]


def insert_health_event(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(insert(route_health_events).values(**values))


def recent_health_events(
    connection: Connection, route_id: str, limit: int = 20
) -> list[dict[str, Any]]:
    query = (
        select(route_health_events)
        .where(route_health_events.c.route_id == route_id)
        .order_by(route_health_events.c.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in connection.execute(query)]
