"""Splits (分账) in the settlement run, on SQLite and PostgreSQL, for random days: orders split
by standing multi-level rules, by their own parts, or held for a delayed split; partial
refunds the next day taking back from the receivers. Every fen is accounted for."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from cloudpay import ledger, merchants
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.kernel.clock import FixedClock
from cloudpay.payments import flows as payment_flows
from cloudpay.payments import service as payment_service
from cloudpay.settlement import FeePlan, splits, splits_ledger
from tests.integration.test_marketing_claims import VAULT
from tests.integration.test_settlement_journal import MONDAY, World

_numbers = itertools.count(1)
MODES = ("rules", "now", "delayed")


def _supplier(world: World, shop: str, n: int) -> merchants.Receiver:
    account = merchants.ReceiverAccount("WFCB", "II", f"62220200000{n:05d}")
    return world.transact(
        lambda uow: merchants.bind_receiver(
            uow,
            vault=VAULT,
            merchant_id=shop,
            kind=merchants.ReceiverKind.SUPPLIER,
            name=f"供应商{n}",
            account=account,
        )
    )


def _order(world: World, shop: str, amount_fen: int, split: dict[str, Any] | None) -> str:
    ctx = payment_flows.ChannelContext(
        ChannelRegistry([world.fake]), "http://127.0.0.1:9", world.clock
    )
    request = payment_service.OrderRequest(
        app_id=f"app_{shop}",
        merchant_id=shop,
        out_trade_no=f"P{next(_numbers)}",
        amount=amount_fen,
        currency="CNY",
        subject="面",
        method="wechat_native",
        expire_at=None,
        notify_url="http://127.0.0.1:9/hook",
        metadata={},
        split=split,
    )
    order = payment_flows.place_order(
        world.transact, ctx, request=request, enabled_methods=frozenset({"wechat_native"})
    )
    world.fake.customer_pays(order.id)
    headers, body = world.fake.notification_for(order.id, f"n{order.id}")
    payment_flows.handle_notification(world.transact, world.fake, headers, body)
    return order.id


def _receiver_balance(world: World, receiver: merchants.Receiver) -> int:
    def read(uow: Any) -> int:
        account = splits_ledger.open_receiver_account(uow, receiver, "CNY")
        return int(ledger.get_account(uow, account).balance.net_credit)

    return world.transact(read)


_days = st.lists(
    st.tuples(
        st.integers(100, 2_000_000), st.sampled_from(MODES), st.integers(0, 100), st.booleans()
    ),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(orders=_days, rate=st.integers(0, 300), reserve_bp=st.integers(0, 1_000))
# A next-day refund leaving a negative net while fees and split returns move: the chain must
# credit merchant_pending before it debits it.
@example(orders=[(100, "rules", 69, False)], rate=218, reserve_bp=0)
def test_splits_and_returns_account_for_every_fen(
    engine: Engine, orders: list[tuple[int, str, int, bool]], rate: int, reserve_bp: int
) -> None:
    """Every fen is accounted for, with refunds the same day (returns from the run's own
    parts) or the next (from settled parts): per line net + fees − fee returns + splits −
    returns + reserve = gross − refunds; receivers hold their splits less their returns; the
    merchant's available is the sum of its nets; the books balance."""
    world = World(engine, FixedClock(datetime(2026, 3, 1, 2, tzinfo=UTC)))
    shop = world.merchant()
    world.fee_plan(shop, FeePlan.percent(rate))
    world.profile(shop, reserve_rate_bp=reserve_bp)
    hq_store, supplier = _supplier(world, shop, 1), _supplier(world, shop, 2)
    rules = [
        {"receiver_id": hq_store.id, "rate_bp": "1500"},
        {"receiver_id": supplier.id, "rate_bp": "3333", "split_from": hq_store.id},
    ]
    world.transact(
        lambda uow: merchants.set_split_settings(
            uow, merchant_id=shop, cap_bp=Decimal(3_000), auto_unfreeze_days=30, rules=rules
        )
    )
    world.at(MONDAY, 9)
    taken: list[tuple[str, int, int]] = []
    for amount, mode, refund_percent, same_day in orders:
        part = amount // 5
        split: dict[str, Any] | None = None
        if mode == "now":
            split = {"mode": "now", "parts": [{"receiver_id": supplier.id, "amount_fen": part}]}
        elif mode == "delayed":
            split = {"mode": "delayed"}
        order_id = _order(world, shop, amount, split)
        if mode == "delayed":
            request = splits.SplitRequest(
                shop, order_id, f"S{next(_numbers)}", ((hq_store.id, part),), finish=True
            )
            world.transact(lambda uow, r=request: splits.create_split(uow, r))  # type: ignore[misc]
        if same_day and amount * refund_percent // 100:
            world.refund(shop, order_id, amount * refund_percent // 100)
        else:
            taken.append((order_id, amount, refund_percent))
    world.settle(MONDAY + timedelta(days=1))
    world.at(MONDAY + timedelta(days=1), 9)
    # Refunds draw on the merchant's unsettled takings: a day's orders cover the refunds of
    # orders split and settled yesterday (their split returns come from settled parts).
    if due_fen := sum(amount * percent // 100 for _o, amount, percent in taken):
        _order(world, shop, due_fen, None)
    for order_id, amount, refund_percent in taken:
        if amount * refund_percent // 100:
            world.refund(shop, order_id, amount * refund_percent // 100)
    world.settle(MONDAY + timedelta(days=2))
    lines = world.lines(shop)
    for line in lines:
        assert line.status == "settled", line.refusal
        assert (
            line.net_fen
            + line.fees_fen
            - line.fee_returns_fen
            + line.splits_fen
            - line.split_returns_fen
            + line.reserve_held_fen
        ) == line.gross_fen - line.refunds_fen
    splits_fen = sum(line.splits_fen - line.split_returns_fen for line in lines)
    held_fen = _receiver_balance(world, hq_store) + _receiver_balance(world, supplier)
    assert held_fen == splits_fen
    assert world.balance(shop)["available"] == sum(line.net_fen for line in lines)
    assert world.balance(shop)["pending"] == 0
    assert world.books_ok()
