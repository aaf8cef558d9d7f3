"""Routing tables: routes (a channel reached through a connector, at a cost), the operators'
rules, and the history of circuit transitions."""

from sqlalchemy import JSON, BigInteger, Boolean, Column, Index, Integer, String, Table

from cloudpay.db.metadata import metadata
from cloudpay.db.types import UtcDateTime

routes = Table(
    "routes",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("connector", String(32), nullable=False),
    Column("methods", JSON, nullable=False),
    Column("cost_rate_bp", Integer, nullable=False),
    Column("cost_min_fen", BigInteger, nullable=False),
    Column("cost_max_fen", BigInteger, nullable=True),
    Column("cost_fixed_fen", BigInteger, nullable=True),
    Column("priority", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

routing_rules = Table(
    "routing_rules",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), nullable=True),
    Column("methods", JSON, nullable=False),
    Column("min_amount_fen", BigInteger, nullable=True),
    Column("max_amount_fen", BigInteger, nullable=True),
    Column("window_start", String(5), nullable=True),  # HH:MM, Asia/Shanghai
    Column("window_end", String(5), nullable=True),
    Column("route_ids", JSON, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

route_health_events = Table(
    "route_health_events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("route_id", String(40), nullable=False),
    Column("state", String(16), nullable=False),
    Column("samples", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("last_error", String(256), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_route_health_events_route", "route_id", "id"),
)
