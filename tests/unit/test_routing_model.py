"""Routing's pure rules: costs, rules, the cheapest healthy route, and the circuit breaker."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.errors import InvalidRequest
from cloudpay.routing.health import BreakerPolicy, CircuitState, HealthBoard
from cloudpay.routing.model import (
    PaymentFacts,
    Route,
    RouteCost,
    RoutingRule,
    SkipReason,
    TimeWindow,
    decide,
)

NOON = time(12, 0)


def _route(route_id: str, rate_bp: int, **kw: object) -> Route:
    fields: dict[str, object] = {
        "id": route_id, "name": route_id, "channel": "wechat", "connector": route_id,
        "methods": frozenset({"wechat_native"}), "cost": RouteCost(rate_bp=rate_bp),
    }  # fmt: skip
    fields.update(kw)
    return Route(**fields)  # type: ignore[arg-type]


def _payment(amount_fen: int = 10_000, at: time = NOON, **kw: object) -> PaymentFacts:
    fields: dict[str, object] = {"merchant_id": "mch_1", "method": "wechat_native",
                                 "amount_fen": amount_fen, "local_time": at}  # fmt: skip
    fields.update(kw)
    return PaymentFacts(**fields)  # type: ignore[arg-type]


def test_cost_is_a_rate_clamped_to_min_and_max_or_a_fixed_fee() -> None:
    """0.38% of 100.00 is 38 fen; the minimum and maximum clamp it; a fixed cost ignores it."""
    assert RouteCost(rate_bp=38).for_amount(10_000) == 38
    assert RouteCost(rate_bp=38).for_amount(131) == 0  # 0.4978 fen rounds half-up to 0
    assert RouteCost(rate_bp=38).for_amount(132) == 1  # 0.5016 fen rounds to 1
    assert RouteCost(rate_bp=38, min_fen=5).for_amount(100) == 5
    assert RouteCost(rate_bp=38, max_fen=2_000).for_amount(10_000_000) == 2_000
    assert RouteCost(rate_bp=38, fixed_fen=12).for_amount(10_000_000) == 12


@pytest.mark.parametrize(
    ("fields", "param"),
    [({"rate_bp": -1}, "cost.rate_bp"), ({"rate_bp": 1_001}, "cost.rate_bp"),
     ({"min_fen": 10, "max_fen": 5}, "cost.min_fen"), ({"fixed_fen": -1}, "cost.fixed_fen")],
)  # fmt: skip
def test_impossible_costs_are_refused(fields: dict[str, int], param: str) -> None:
    """A negative or above-10% rate, an inverted range or a negative fixed cost is a 4xx."""
    with pytest.raises(InvalidRequest) as refused:
        RouteCost(**fields)
    assert refused.value.param == param


def test_the_cheapest_route_wins_and_the_others_are_its_failover_plan() -> None:
    """Routes are tried cheapest first; the dearest one is what savings are measured against."""
    routes = [_route("rte_b", 38), _route("rte_a", 25), _route("rte_c", 30)]
    decision = decide(routes, [], {}, _payment())
    assert [c.route_id for c in decision.plan] == ["rte_a", "rte_c", "rte_b"]
    assert decision.chosen is not None
    assert decision.chosen.cost_fen == 25
    assert decision.most_expensive_fen == 38


def test_equal_costs_fall_back_to_priority_then_id() -> None:
    """Between routes of the same cost, the operator's priority decides, then the id."""
    routes = [_route("rte_a", 30, priority=50), _route("rte_b", 30, priority=10),
              _route("rte_c", 30, priority=10)]  # fmt: skip
    assert [c.route_id for c in decide(routes, [], {}, _payment()).plan] == [
        "rte_b", "rte_c", "rte_a",
    ]  # fmt: skip


def test_an_open_circuit_is_skipped_with_its_reason() -> None:
    """A failing route leaves the plan; the decision says why."""
    decision = decide([_route("rte_a", 25), _route("rte_b", 38)], [], {"rte_a": True}, _payment())
    assert [c.route_id for c in decision.plan] == ["rte_b"]
    assert decision.candidates[0].skipped is SkipReason.CIRCUIT_OPEN
    assert "rte_a skipped: circuit_open" in decision.reasons


def test_disabled_and_unconfigured_routes_never_serve() -> None:
    """A disabled route, or one whose connector this process lacks, is not in the plan."""
    routes = [_route("rte_a", 10, enabled=False), _route("rte_b", 20), _route("rte_c", 30)]
    decision = decide(routes, [], {}, _payment(), configured=frozenset({"rte_a", "rte_c"}))
    assert [c.route_id for c in decision.plan] == ["rte_c"]
    skipped = {c.route_id: c.skipped for c in decision.candidates}
    assert skipped == {"rte_a": SkipReason.DISABLED, "rte_b": SkipReason.NOT_CONFIGURED,
                       "rte_c": None}  # fmt: skip


def test_a_routes_methods_limit_what_it_serves() -> None:
    """Only routes serving the payment's method are candidates."""
    alipay = _route("rte_x", 1, methods=frozenset({"alipay_qr"}))
    assert [c.route_id for c in decide([alipay, _route("rte_a", 30)], [], {}, _payment()).plan] == [
        "rte_a"
    ]


def test_the_first_matching_rule_restricts_the_eligible_routes() -> None:
    """A big-ticket rule for one merchant sends its payments through the capped route."""
    routes = [_route("rte_a", 25), _route("rte_b", 38, cost=RouteCost(38, max_fen=500))]
    big = RoutingRule(id="rrl_1", route_ids=("rte_b",), merchant_id="mch_1",
                      min_amount_fen=100_000, priority=1)  # fmt: skip
    assert decide(routes, [big], {}, _payment(150_000)).plan[0].route_id == "rte_b"
    assert decide(routes, [big], {}, _payment(10_000)).plan[0].route_id == "rte_a"
    other = _payment(150_000, merchant_id="mch_2")
    assert decide(routes, [big], {}, other).plan[0].route_id == "rte_a"
    decision = decide(routes, [big], {}, _payment(150_000))
    assert decision.rule_id == "rrl_1"
    assert decision.candidates[0].skipped is SkipReason.NOT_IN_RULE


def test_a_night_window_wraps_past_midnight() -> None:
    """22:00–06:00 contains 23:30 and 05:59 but not 06:00 or noon."""
    night = TimeWindow(time(22), time(6))
    assert night.contains(time(23, 30))
    assert night.contains(time(5, 59))
    assert not night.contains(time(6))
    assert not night.contains(NOON)
    rule = RoutingRule(id="rrl_n", route_ids=("rte_b",), window=night)
    routes = [_route("rte_a", 25), _route("rte_b", 38)]
    assert decide(routes, [rule], {}, _payment(at=time(23))).chosen.route_id == "rte_b"  # type: ignore[union-attr]
    assert decide(routes, [rule], {}, _payment(at=NOON)).chosen.route_id == "rte_a"  # type: ignore[union-attr]


def test_no_route_left_is_an_empty_plan_with_a_reason() -> None:
    """Every route open: no plan, and the decision says so."""
    decision = decide([_route("rte_a", 25)], [], {"rte_a": True}, _payment())
    assert decision.chosen is None
    assert "no healthy route" in decision.reasons[-1]


@given(
    rates=st.lists(st.integers(0, 1_000), min_size=1, max_size=8),
    amount=st.integers(1, 10**10),
    open_mask=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_the_chosen_route_is_never_dearer_than_a_healthy_alternative(
    rates: list[int], amount: int, open_mask: list[bool]
) -> None:
    """For any routes and health, the first of the plan costs the least among healthy routes."""
    routes = [_route(f"rte_{i}", rate) for i, rate in enumerate(rates)]
    circuits = {r.id: open_mask[i] for i, r in enumerate(routes)}
    decision = decide(routes, [], circuits, _payment(amount))
    healthy = [r.cost.for_amount(amount) for r in routes if not circuits[r.id]]
    if not healthy:
        assert decision.chosen is None
        return
    assert decision.chosen is not None
    assert decision.chosen.cost_fen == min(healthy)
    assert decision.most_expensive_fen == max(r.cost.for_amount(amount) for r in routes)


# --- the circuit breaker ---------------------------------------------------------------
@pytest.fixture
def board() -> HealthBoard:
    clock = FixedClock(datetime(2026, 11, 25, 4, tzinfo=UTC))
    return HealthBoard(clock, BreakerPolicy(consecutive_to_open=3, open_for_s=30))


def _advance(board: HealthBoard, seconds: float) -> None:
    clock = board.clock
    assert isinstance(clock, FixedClock)
    clock.advance(seconds)


def test_consecutive_failures_open_the_circuit_and_it_half_opens_after_the_pause(
    board: HealthBoard,
) -> None:
    """Three failures in a row open it; 30 s later one probe may pass; success closes it."""
    for _ in range(3):
        assert not board.is_open("rte_a")
        board.record("rte_a", failed=True, error="unavailable")
    assert board.is_open("rte_a")
    _advance(board, 29)
    assert board.is_open("rte_a")
    _advance(board, 1)
    assert not board.is_open("rte_a")  # half-open: a probe may go
    board.begin_call("rte_a")
    assert board.is_open("rte_a")  # one probe at a time
    board.record("rte_a", failed=False)
    assert board.snapshot("rte_a").state is CircuitState.CLOSED
    states = [t.state for t in board.drain_transitions()]
    assert states == [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]
    assert board.drain_transitions() == []


def test_a_failed_probe_opens_the_circuit_again(board: HealthBoard) -> None:
    """Half-open and the probe fails: open for another pause."""
    for _ in range(3):
        board.record("rte_a", failed=True)
    _advance(board, 30)
    assert not board.is_open("rte_a")
    board.begin_call("rte_a")
    board.record("rte_a", failed=True, error="still down")
    assert board.is_open("rte_a")
    snapshot = board.snapshot("rte_a")
    assert snapshot.state is CircuitState.OPEN
    assert snapshot.last_error == "still down"


def test_a_poor_success_rate_opens_the_circuit_without_a_run_of_failures(
    board: HealthBoard,
) -> None:
    """Alternating failures never make three in a row, but half of ten calls failing opens it."""
    for index in range(10):
        board.record("rte_a", failed=index % 2 == 0)
    assert board.is_open("rte_a")


def test_successes_keep_a_route_closed(board: HealthBoard) -> None:
    """Business refusals count as successes: the channel is up and answering."""
    for _ in range(50):
        board.record("rte_a", failed=False)
    board.record("rte_a", failed=True)
    snapshot = board.snapshot("rte_a")
    assert snapshot.state is CircuitState.CLOSED
    assert snapshot.success_rate_pct == 95
