"""Wire shapes of the routing operator API. Amounts are integer fen, rates basis points."""

from __future__ import annotations

from datetime import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from cloudpay.routing.model import MAX_RATE_BP, Decision, Route, RouteCost, RoutingRule

_TEXT = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL; refuse it on both databases


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CostIn(Strict):
    rate_bp: StrictInt = Field(0, ge=0, le=MAX_RATE_BP)
    min_fen: StrictInt = Field(0, ge=0, le=1_000_000)
    max_fen: StrictInt | None = Field(None, ge=0, le=1_000_000)
    fixed_fen: StrictInt | None = Field(None, ge=0, le=10_000)

    def to_cost(self) -> RouteCost:
        return RouteCost(self.rate_bp, self.min_fen, self.max_fen, self.fixed_fen)


class RouteCreate(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=_TEXT)
    connector: str = Field(min_length=2, max_length=32, pattern=r"^[a-z][a-z0-9_]+$")
    methods: list[str] = Field(min_length=1, max_length=16)
    cost: CostIn
    priority: StrictInt = Field(100, ge=0, le=10_000)
    enabled: StrictBool = True


class RouteUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=64, pattern=_TEXT)
    cost: CostIn | None = None
    priority: StrictInt | None = Field(None, ge=0, le=10_000)
    enabled: StrictBool | None = None


class RuleCreate(Strict):
    route_ids: list[str] = Field(min_length=1, max_length=20)
    merchant_id: str | None = Field(None, max_length=40, pattern=r"^[a-z]+_[0-9A-Za-z]+$")
    methods: list[str] = Field(default_factory=list, max_length=16)
    min_amount_fen: StrictInt | None = Field(None, ge=0)
    max_amount_fen: StrictInt | None = Field(None, ge=0)
    window_start: time | None = None  # Asia/Shanghai
    window_end: time | None = None
    priority: StrictInt = Field(100, ge=0, le=10_000)

    @field_validator("route_ids", "methods")
    @classmethod
    def _ids(cls, values: list[str]) -> list[str]:
        for value in values:
            if not 1 <= len(value) <= 40 or "\x00" in value:
                raise ValueError("each entry is 1–40 characters")
        return values


class RuleUpdate(Strict):
    enabled: StrictBool


class RoutePreview(Strict):
    merchant_id: str = Field(min_length=1, max_length=40, pattern=_TEXT)
    method: str = Field(min_length=1, max_length=32, pattern=_TEXT)
    amount: StrictInt = Field(ge=1, le=100_000_000_00)


def route_view(route: Route) -> dict[str, Any]:
    return {
        "object": "route", "id": route.id, "name": route.name, "channel": route.channel,
        "connector": route.connector, "methods": sorted(route.methods),
        "cost": route.cost.as_dict(), "priority": route.priority, "enabled": route.enabled,
    }  # fmt: skip


def rule_view(rule: RoutingRule) -> dict[str, Any]:
    window = rule.window
    return {
        "object": "routing_rule", "id": rule.id, "route_ids": list(rule.route_ids),
        "merchant_id": rule.merchant_id, "methods": sorted(rule.methods),
        "min_amount_fen": rule.min_amount_fen, "max_amount_fen": rule.max_amount_fen,
        "window_start": window.start.strftime("%H:%M") if window else None,
        "window_end": window.end.strftime("%H:%M") if window else None,
        "priority": rule.priority, "enabled": rule.enabled,
    }  # fmt: skip


def decision_view(decision: Decision) -> dict[str, Any]:
    chosen = decision.chosen
    return {
        "object": "routing_decision",
        "route_id": chosen.route_id if chosen else None,
        "cost_fen": chosen.cost_fen if chosen else None,
        **decision.as_dict(),
    }
