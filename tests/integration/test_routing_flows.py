"""Routing inside the payment flows, on both databases, with two in-process WeChat connectors:
the cheapest healthy route wins, an unavailable channel fails over without charging twice, a
failing route is avoided and traffic returns once it recovers; micropay answers and revokes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine

from cloudpay.channels.fake import FakeChannel
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.db.unit_of_work import run_in_transaction, transactor
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.errors import ChannelFailed, NotFound
from cloudpay.payments import flows, service
from cloudpay.payments.model import OrderStatus
from cloudpay.payments.repository import OrderRow
from cloudpay.routing import BreakerPolicy, HealthBoard, RouteCost, create_route, update_route
from cloudpay.routing import repository as routing_repository

METHODS = frozenset({"wechat_native", "wechat_micropay", "micropay"})
WECHAT_CODE = "134567890123456789"


@pytest.fixture
def cheap() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def dear() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def ctx(cheap: FakeChannel, dear: FakeChannel, clock: FixedClock) -> flows.ChannelContext:
    registry = ChannelRegistry()
    registry.register(cheap, key="wechat_city_bank")
    registry.register(dear, key="wechat_provider")
    board = HealthBoard(clock, BreakerPolicy(consecutive_to_open=2, open_for_s=60))
    return flows.ChannelContext(registry, "http://127.0.0.1:9", clock, board)


@pytest.fixture
def routes(engine: Engine, clock: FixedClock, ctx: flows.ChannelContext) -> dict[str, str]:
    def work(uow: Any) -> dict[str, str]:
        made = {
            key: create_route(
                uow,
                registry=ctx.channels,
                name=key,
                connector=key,
                methods=["wechat_native", "wechat_micropay"],
                cost=RouteCost(rate_bp=rate),
            )
            for key, rate in (("wechat_city_bank", 25), ("wechat_provider", 38))
        }
        return {key: route.id for key, route in made.items()}

    return run_in_transaction(engine, work, clock=clock)  # type: ignore[no-any-return]


def _place(
    engine: Engine, clock: FixedClock, ctx: flows.ChannelContext, out_trade_no: str, **kw: Any
) -> OrderRow:
    fields: dict[str, Any] = {
        "app_id": "app_1", "merchant_id": "mch_1", "out_trade_no": out_trade_no,
        "amount": 10_000, "currency": "CNY", "subject": "面", "method": "wechat_native",
        "expire_at": None, "notify_url": None, "metadata": {},
    }  # fmt: skip
    fields.update(kw)
    return flows.place_order(
        transactor(engine, clock), ctx, request=service.OrderRequest(**fields),
        enabled_methods=METHODS,
    )  # fmt: skip


def _health_states(engine: Engine, route_id: str) -> list[str]:
    def work(uow: Any) -> list[str]:
        events = routing_repository.recent_health_events(uow.connection, route_id)
        return [e["state"] for e in reversed(events)]

    return run_in_transaction(engine, work, read_only=True)  # type: ignore[no-any-return]


def test_the_cheapest_route_takes_the_payment_and_the_order_says_why(
    engine: Engine, clock: FixedClock, ctx: flows.ChannelContext, routes: dict[str, str],
    cheap: FakeChannel, dear: FakeChannel,
) -> None:  # fmt: skip
    """0.25% beats 0.38%: the order records the route, its cost and the candidates."""
    order = _place(engine, clock, ctx, "R1")
    assert order.status is OrderStatus.PAYING
    assert order.route_id == routes["wechat_city_bank"]
    assert order.connector == "wechat_city_bank"
    assert order.route_cost_fen == 25
    assert order.routing is not None
    assert order.routing["decision"]["most_expensive_fen"] == 38
    assert order.id in cheap.orders
    assert order.id not in dear.orders


def test_an_unavailable_channel_fails_over_and_the_payer_is_charged_once(
    engine: Engine, clock: FixedClock, ctx: flows.ChannelContext, routes: dict[str, str],
    cheap: FakeChannel, dear: FakeChannel,
) -> None:  # fmt: skip
    """The cheap channel refuses to connect: the order moves to the next route; the payer pays
    there, and the first channel never heard of the order."""
    cheap.set_available(False)
    order = _place(engine, clock, ctx, "R2")
    assert order.status is OrderStatus.PAYING
    assert order.connector == "wechat_provider"
    assert order.route_cost_fen == 38
    assert order.routing is not None
    attempts = order.routing["attempts"]
    assert [(a["route_id"], a["outcome"]) for a in attempts] == [
        (routes["wechat_city_bank"], "unavailable")
    ]
    assert order.id not in cheap.orders
    dear.customer_pays(order.id)
    polled = _poll_until_settled(engine, clock, ctx, order.id)
    assert polled.status is OrderStatus.SUCCEEDED


def test_a_timeout_never_fails_over(
    engine: Engine, clock: FixedClock, ctx: flows.ChannelContext, routes: dict[str, str],
    cheap: FakeChannel, dear: FakeChannel,
) -> None:  # fmt: skip
    """A timeout leaves the outcome unknown: the order stays on its route for the poller."""
    from cloudpay.channels.protocol import ChannelErrorKind

    cheap.fail_next.append(ChannelErrorKind.TIMEOUT)
    order = _place(engine, clock, ctx, "R3")
    assert order.status is OrderStatus.CREATED
    assert order.connector == "wechat_city_bank"
    assert order.id not in dear.orders


def test_a_failing_route_is_avoided_then_traffic_returns_when_it_recovers(
    engine: Engine, clock: FixedClock, ctx: flows.ChannelContext, routes: dict[str, str],
    cheap: FakeChannel,
) -> None:  # fmt: skip
    """Two failures open the cheap route's circuit: orders go straight to the dear route with
    the reason recorded; after the pause a probe succeeds and the cheap route wins again."""
    cheap.set_available(False)
    first, second = _place(engine, clock, ctx, "F1"), _place(engine, clock, ctx, "F2")
    assert {first.connector, second.connector} == {"wechat_provider"}
    skipped = _place(engine, clock, ctx, "F3")
    assert skipped.connector == "wechat_provider"
    assert skipped.routing is not None
    assert skipped.routing["attempts"] == []  # never tried: the circuit was open
    assert (
        f"{routes['wechat_city_bank']} skipped: circuit_open"
        in (skipped.routing["decision"]["reasons"])
    )
    cheap.set_available(True)
    clock.advance(61)
    recovered = _place(engine, clock, ctx, "F4")
    assert recovered.connector == "wechat_city_bank"
    assert _place(engine, clock, ctx, "F5").connector == "wechat_city_bank"
    assert _health_states(engine, routes["wechat_city_bank"]) == ["open", "half_open", "closed"]


def test_every_route_down_leaves_the_order_for_the_poller(
    engine: Engine, clock: FixedClock, ctx: flows.ChannelContext, routes: dict[str, str],
    cheap: FakeChannel, dear: FakeChannel,
) -> None:  # fmt: skip
    """Both channels unavailable: the order stays created with both attempts recorded; once
    both circuits open a new order is refused with 424 and nothing is written."""
    cheap.set_available(False)
    dear.set_available(False)
    order = _place(engine, clock, ctx, "D1")
    assert order.status is OrderStatus.CREATED
    assert order.routing is not None
    assert len(order.routing["attempts"]) == 2
    _place(engine, clock, ctx, "D2")
    with pytest.raises(ChannelFailed) as refused:
        _place(engine, clock, ctx, "D3")
    assert refused.value.code == "no_route_available"
    assert _count_orders(engine, "D3") == 0


def test_a_disabled_route_takes_no_new_payments(
    engine: Engine, clock: FixedClock, ctx: flows.ChannelContext, routes: dict[str, str],
) -> None:  # fmt: skip
    """An operator disables the cheap route: payments go to the other one."""
    run_in_transaction(
        engine, lambda uow: update_route(uow, routes["wechat_city_bank"], enabled=False),
        clock=clock,
    )  # fmt: skip
    assert _place(engine, clock, ctx, "X1").connector == "wechat_provider"


def test_micropay_paid_at_once_is_captured_in_the_create_call(
    engine: Engine, clock: FixedClock, ctx: flows.ChannelContext, routes: dict[str, str],
) -> None:  # fmt: skip
    """A WeChat payment code (18 digits, 10–15) resolves to wechat_micropay and is paid."""
    order = _place(engine, clock, ctx, "M1", method="micropay", auth_code=WECHAT_CODE)
    assert order.status is OrderStatus.SUCCEEDED
    assert order.paid_with == "wechat_micropay"
    assert order.wallet == "wechat"
    assert order.auth_code is None  # spent: not kept


def test_micropay_waiting_for_a_password_is_revoked_when_the_minute_is_up(
    engine: Engine, clock: FixedClock, ctx: flows.ChannelContext, routes: dict[str, str],
    cheap: FakeChannel,
) -> None:  # fmt: skip
    """USERPAYING: polled every 5 s; never confirmed → the payment is cancelled (reversed)."""
    cheap.micropay_outcomes[WECHAT_CODE] = "paying"
    order = _place(engine, clock, ctx, "M2", method="micropay", auth_code=WECHAT_CODE)
    assert order.status is OrderStatus.PAYING
    assert order.auth_code == WECHAT_CODE
    closed = _poll_until_settled(engine, clock, ctx, order.id, step_s=5, rounds=20)
    assert closed.status is OrderStatus.EXPIRED
    assert closed.auth_code is None
    assert cheap.orders[order.id].status.value == "closed"


def test_micropay_refused_by_the_wallet_fails_the_order(
    engine: Engine, clock: FixedClock, ctx: flows.ChannelContext, routes: dict[str, str],
    cheap: FakeChannel,
) -> None:  # fmt: skip
    """Insufficient balance is a definite refusal: the order fails at once."""
    cheap.micropay_outcomes[WECHAT_CODE] = "failed"
    order = _place(engine, clock, ctx, "M3", method="micropay", auth_code=WECHAT_CODE)
    assert order.status is OrderStatus.FAILED


def _poll_until_settled(
    engine: Engine, clock: FixedClock, ctx: flows.ChannelContext, order_id: str,
    *, step_s: float = 60, rounds: int = 40,
) -> OrderRow:  # fmt: skip
    transact = transactor(engine, clock)
    get: Callable[[Any], OrderRow] = lambda uow: service.get_order(uow, order_id=order_id)  # noqa: E731
    for _ in range(rounds):
        clock.advance(step_s)
        flows.poll_open_orders(transact, ctx)
        order = transact(get)
        if order.status not in (OrderStatus.CREATED, OrderStatus.PAYING):
            return order
    return transact(get)


def _count_orders(engine: Engine, out_trade_no: str) -> int:
    def work(uow: Any) -> int:
        try:
            service.find_order(uow, app_id="app_1", out_trade_no=out_trade_no)
        except NotFound:
            return 0
        return 1

    return run_in_transaction(engine, work, read_only=True)  # type: ignore[no-any-return]


def test_a_stray_payment_from_a_concurrent_attempt_is_revoked(
    engine: Engine, clock: FixedClock, ctx: flows.ChannelContext, routes: dict[str, str],
    cheap: FakeChannel, dear: FakeChannel,
) -> None:  # fmt: skip
    """A retry that read the order while it was still on the cheap route creates it there
    after the order moved on: that payment is revoked, so the payer can only pay one."""
    transact = transactor(engine, clock)
    cheap.set_available(False)
    order = _place(engine, clock, ctx, "S1")
    assert order.connector == "wechat_provider"
    cheap.set_available(True)
    stale = replace(order, route_id=routes["wechat_city_bank"], connector="wechat_city_bank",
                    status=OrderStatus.CREATED)  # fmt: skip
    answered = flows._create_at_channel(transact, ctx, stale)
    assert answered.connector == "wechat_provider"
    assert cheap.orders[order.id].status.value == "closed"  # revoked at the stray route
    assert dear.orders[order.id].status.value == "not_paid"  # the one the payer sees
