"""Choosing a route for a payment: pure rules, no I/O.

A route is one way to reach a channel for some methods (e.g. WeChat Pay through the city's
bank as acquirer, or through a service provider), at a cost. For each payment:

1. the first enabled rule that matches (merchant, method, amount range, Shanghai time window)
   restricts the eligible routes to its list; no matching rule leaves every route eligible;
2. eligible routes are ordered by their cost for this amount, then priority, then id;
3. routes whose circuit is open (recent calls failed) are skipped, with the reason kept;
4. the rest, cheapest first, are the order's plan: the first is tried, the next ones are the
   failover when a channel is unavailable.

The decision keeps every candidate and why it was or was not taken, so it can be shown on the
order and in the console.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum
from typing import Any

from cloudpay.kernel.errors import InvalidRequest
from cloudpay.kernel.money import apply_rate_bp, clamp_fee

MAX_RATE_BP = 1_000  # 10%: no acquiring route costs more; anything above is a typo
MAX_FIXED_COST_FEN = 10_000
MAX_ROUTES_PER_RULE = 20
_CONNECTOR = re.compile(r"[a-z][a-z0-9_]{1,31}")


@dataclass(frozen=True)
class RouteCost:
    """What a route costs per payment: a rate (basis points) clamped to [min, max], or fixed.

    Rounded half-up once, at the payment, like every rate in CloudPay (kernel/money.py).
    """

    rate_bp: int = 0
    min_fen: int = 0
    max_fen: int | None = None
    fixed_fen: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.rate_bp <= MAX_RATE_BP:
            raise InvalidRequest(f"rate_bp must be 0–{MAX_RATE_BP}", code="route_cost_invalid",
                                 param="cost.rate_bp")  # fmt: skip
        if self.min_fen < 0 or (self.max_fen is not None and self.max_fen < self.min_fen):
            raise InvalidRequest("cost needs 0 ≤ min_fen ≤ max_fen", code="route_cost_invalid",
                                 param="cost.min_fen")  # fmt: skip
        if self.fixed_fen is not None and not 0 <= self.fixed_fen <= MAX_FIXED_COST_FEN:
            raise InvalidRequest(f"fixed_fen must be 0–{MAX_FIXED_COST_FEN}",
                                 code="route_cost_invalid", param="cost.fixed_fen")  # fmt: skip

    def for_amount(self, amount_fen: int) -> int:
        if self.fixed_fen is not None:
            return self.fixed_fen
        return clamp_fee(
            apply_rate_bp(amount_fen, self.rate_bp), min_fen=self.min_fen, max_fen=self.max_fen
        )

    def as_dict(self) -> dict[str, Any]:
        return {"rate_bp": self.rate_bp, "min_fen": self.min_fen, "max_fen": self.max_fen,
                "fixed_fen": self.fixed_fen}  # fmt: skip


@dataclass(frozen=True)
class Route:
    id: str
    name: str
    channel: str  # wechat, alipay, unionpay
    connector: str  # the configured adapter this route calls (ChannelRegistry key)
    methods: frozenset[str]
    cost: RouteCost
    priority: int = 100  # lower first, between routes of equal cost
    enabled: bool = True


@dataclass(frozen=True)
class TimeWindow:
    """A daily window in Shanghai local time; `start > end` wraps past midnight (22:00–06:00)."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True)
class RoutingRule:
    id: str
    route_ids: tuple[str, ...]  # the eligible routes when the rule matches
    merchant_id: str | None = None  # None: every merchant
    methods: frozenset[str] = frozenset()  # empty: every method
    min_amount_fen: int | None = None
    max_amount_fen: int | None = None  # inclusive
    window: TimeWindow | None = None
    priority: int = 100  # lower first
    enabled: bool = True

    def __post_init__(self) -> None:
        if not 1 <= len(self.route_ids) <= MAX_ROUTES_PER_RULE:
            raise InvalidRequest(f"a rule names 1–{MAX_ROUTES_PER_RULE} routes",
                                 code="rule_invalid", param="route_ids")  # fmt: skip
        low, high = self.min_amount_fen, self.max_amount_fen
        if (low is not None and low < 0) or (high is not None and high < (low or 0)):
            raise InvalidRequest("the amount range needs 0 ≤ min ≤ max", code="rule_invalid",
                                 param="min_amount_fen")  # fmt: skip

    def matches(self, payment: PaymentFacts) -> bool:
        return (
            self.enabled
            and self.merchant_id in (None, payment.merchant_id)
            and (not self.methods or payment.method in self.methods)
            and (self.min_amount_fen is None or payment.amount_fen >= self.min_amount_fen)
            and (self.max_amount_fen is None or payment.amount_fen <= self.max_amount_fen)
            and (self.window is None or self.window.contains(payment.local_time))
        )


@dataclass(frozen=True)
class PaymentFacts:
    merchant_id: str
    method: str  # the channel method (wechat_native …), after wallet detection
    amount_fen: int
    local_time: time  # Asia/Shanghai wall clock at the payment


class SkipReason(StrEnum):
    NOT_IN_RULE = "not_in_rule"
    CIRCUIT_OPEN = "circuit_open"
    DISABLED = "disabled"
    NOT_CONFIGURED = "not_configured"  # its connector has no credentials in this deployment


@dataclass(frozen=True)
class Candidate:
    route_id: str
    connector: str
    cost_fen: int
    skipped: SkipReason | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"route_id": self.route_id, "connector": self.connector,
                "cost_fen": self.cost_fen, "skipped": self.skipped}  # fmt: skip


@dataclass(frozen=True)
class Decision:
    """The routes to try in order (`plan`), and every candidate with why it was left out."""

    plan: tuple[Candidate, ...]
    candidates: tuple[Candidate, ...]
    rule_id: str | None
    most_expensive_fen: int  # the dearest eligible route: what "fee saved" is measured against
    reasons: tuple[str, ...] = field(default=())

    @property
    def chosen(self) -> Candidate | None:
        return self.plan[0] if self.plan else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "plan": [c.route_id for c in self.plan],
            "candidates": [c.as_dict() for c in self.candidates],
            "most_expensive_fen": self.most_expensive_fen,
            "reasons": list(self.reasons),
        }


def decide(
    routes: Iterable[Route],
    rules: Sequence[RoutingRule],
    open_circuits: Mapping[str, bool],
    payment: PaymentFacts,
    configured: frozenset[str] | None = None,
) -> Decision:
    """The order's routing plan. `open_circuits[route_id]` is True while a route is skipped;
    `configured` names the connectors this process has adapters for (None: all)."""
    serving = [r for r in routes if payment.method in r.methods]
    rule = next(
        (r for r in sorted(rules, key=lambda r: (r.priority, r.id)) if r.matches(payment)), None
    )
    allowed = set(rule.route_ids) if rule else None
    candidates = sorted(
        (_candidate(r, payment.amount_fen, allowed, open_circuits, configured) for r in serving),
        key=lambda c: (c.cost_fen, _priority(serving, c.route_id), c.route_id),
    )
    plan = tuple(c for c in candidates if c.skipped is None)
    eligible = [c for c in candidates if c.skipped in (None, SkipReason.CIRCUIT_OPEN)]
    return Decision(
        plan=plan,
        candidates=tuple(candidates),
        rule_id=rule.id if rule else None,
        most_expensive_fen=max((c.cost_fen for c in eligible), default=0),
        reasons=_reasons(rule, candidates, plan),
    )


def _candidate(
    route: Route, amount_fen: int, allowed: set[str] | None, open_circuits: Mapping[str, bool],
    configured: frozenset[str] | None,
) -> Candidate:  # fmt: skip
    skipped: SkipReason | None = None
    if not route.enabled:
        skipped = SkipReason.DISABLED
    elif configured is not None and route.connector not in configured:
        skipped = SkipReason.NOT_CONFIGURED
    elif allowed is not None and route.id not in allowed:
        skipped = SkipReason.NOT_IN_RULE
    elif open_circuits.get(route.id, False):
        skipped = SkipReason.CIRCUIT_OPEN
    return Candidate(route.id, route.connector, route.cost.for_amount(amount_fen), skipped)


def _priority(routes: Sequence[Route], route_id: str) -> int:
    return next(r.priority for r in routes if r.id == route_id)


def _reasons(
    rule: RoutingRule | None, candidates: Sequence[Candidate], plan: Sequence[Candidate]
) -> tuple[str, ...]:
    reasons = [f"rule {rule.id} matched" if rule else "no rule matched: every route eligible"]
    reasons += [f"{c.route_id} skipped: {c.skipped}" for c in candidates if c.skipped]
    if plan:
        reasons.append(f"{plan[0].route_id} is the cheapest healthy route ({plan[0].cost_fen} fen)")
    else:
        reasons.append("no healthy route serves this payment")
    return tuple(reasons)


def check_connector_key(connector: str) -> str:
    if not _CONNECTOR.fullmatch(connector):
        raise InvalidRequest(
            "connector is 2–32 characters: a–z, 0–9 and _, starting with a letter",
            code="connector_invalid", param="connector",
        )  # fmt: skip
    return connector
