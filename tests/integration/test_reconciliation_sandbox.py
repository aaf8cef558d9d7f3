"""Reconciliation of the WeChat Pay sandbox's real trade bill against orders placed through
payments, on SQLite and PostgreSQL: injected mistakes found with their type and nothing else,
carry-over cleared the next day, a repaired missed notification makes the next run clean."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from cloudpay import routing
from cloudpay.channels.protocol import RefundRequest
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.channels.wechat import WeChatPayChannel
from cloudpay.channels.wechat.sandbox import BillTamper, WeChatSandbox, start_wechat_sandbox
from cloudpay.db.unit_of_work import Transact, transactor
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.errors import CloudPayError
from cloudpay.payments import (
    ChannelContext,
    OrderRequest,
    OrderStatus,
    get_order,
    place_order,
    poll_processing_refunds,
    refund_order,
    repair_order,
)
from cloudpay.reconciliation import BillFile, BillRejected, run_day
from cloudpay.reconciliation import service as recon
from cloudpay.reconciliation.runs import SYSTEM_ACTOR

DAY = date(2026, 11, 24)
NOON = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
METHODS = frozenset({"wechat_native"})


@pytest.fixture
def wechat(clock: FixedClock) -> Iterator[tuple[WeChatSandbox, WeChatPayChannel]]:
    clock.set(NOON)
    with (
        start_wechat_sandbox(time_scale=0.001, refund_delay_s=0.0, clock=clock) as sandbox,
        WeChatPayChannel(sandbox.adapter_config(), clock=clock) as channel,
    ):
        yield sandbox, channel


@pytest.fixture
def world(engine: Engine, clock: FixedClock, wechat: Any) -> dict[str, Any]:
    """Our platform on the sandbox: a 0.60% route, notifications sent to a dead address (so
    only what we ask the channel reaches us, and a notification can be lost at will)."""
    sandbox, channel = wechat
    ctx = ChannelContext(ChannelRegistry([channel]), "http://127.0.0.1:9", clock)
    transact = transactor(engine, clock)
    transact(
        lambda uow: routing.create_route(
            uow, registry=ctx.channels, name="wechat 0.60%", connector="wechat",
            methods=METHODS, cost=routing.RouteCost(rate_bp=60),
        )
    )  # fmt: skip
    return {"sandbox": sandbox, "channel": channel, "ctx": ctx, "transact": transact}


def _order(world: dict[str, Any], amount: int) -> str:
    request = OrderRequest(
        app_id="app_recon", merchant_id="mch_recon", out_trade_no=uuid.uuid4().hex[:20],
        amount=amount, currency="CNY", subject="对账 test", method="wechat_native",
        expire_at=None, notify_url=None, metadata={},
    )  # fmt: skip
    return place_order(world["transact"], world["ctx"], request=request,
                       enabled_methods=METHODS).id  # fmt: skip


def _paid(world: dict[str, Any], amount: int, *, heard: bool = True) -> str:
    """An order the payer pays; `heard=False`: its notification is lost (we never ask)."""
    order_id = _order(world, amount)
    world["sandbox"].pay(order_id, "success")
    if heard:  # what the notification would have done: the channel's answer applied
        repair_order(world["transact"], world["ctx"], order_id=order_id)
    return order_id


def _run(world: dict[str, Any], day: date = DAY) -> dict[str, Any]:
    data = world["channel"].download_bill(day)
    bill = BillFile("wechat", day, data, "download:wechat", "wechat")
    return run_day(world["transact"], bill=bill, actor="operator")


def _breaks(transact: Transact, day: date = DAY) -> dict[str, str]:
    found = transact(
        lambda uow: recon.list_breaks(
            uow, status=None, type_=None, channel="wechat", bill_date=day, limit=100,
            starting_after=None,
        )
    )  # fmt: skip
    return {b["match_key"]: b["type"] for b in found}


def test_every_injected_mistake_is_found_and_nothing_else(
    world: dict[str, Any], clock: FixedClock
) -> None:
    """Lost notification, wrong amount, fee off by a fen, duplicate row, a refund we never
    saw: each raised with its type; the clean payments match."""
    sandbox = world["sandbox"]
    clean = [_paid(world, amount) for amount in (100, 2_500, 9_999)]
    lost = _paid(world, 1_234, heard=False)
    wrong_amount, fee_off, duplicated = (_paid(world, 5_000) for _ in range(3))
    sandbox.tamper_bill(wrong_amount, BillTamper(amount_delta_fen=1))
    sandbox.tamper_bill(fee_off, BillTamper(fee_delta_fen=1))
    sandbox.tamper_bill(duplicated, BillTamper(duplicate=True))
    refunded_by_us = clean[2]  # a partial refund through payments: matches, raises nothing
    refund_order(world["transact"], world["ctx"], app_id="app_recon", order_id=refunded_by_us,
                 out_refund_no="R1", amount=5_000, reason=None)  # fmt: skip
    poll_processing_refunds(world["transact"], world["ctx"])  # its notification, as above
    refunded_behind_our_back = _paid(world, 8_000)
    unseen = "rfd_" + uuid.uuid4().hex[:20]
    world["channel"].refund(RefundRequest(unseen, refunded_behind_our_back, 8_000, 8_000, "CNY"))
    run = _run(world)
    assert _breaks(world["transact"]) == {
        lost: "missing_in_platform", wrong_amount: "amount_mismatch",
        fee_off: "fee_mismatch", duplicated: "duplicate", unseen: "missing_in_platform",
    }  # fmt: skip
    # + the duplicate's first row, the order refunded behind our back, our refund
    assert run["matched_count"] == len(clean) + 3
    assert run["matched_amount_fen"] == 100 + 2_500 + 9_999 + 5_000 + 8_000 + 5_000
    assert run["breaks_by_type"] == {"amount_mismatch": 1, "duplicate": 1, "fee_mismatch": 1,
                                     "missing_in_platform": 2}  # fmt: skip


def _refunded(world: dict[str, Any], order_id: str, amount: int) -> None:
    refund_order(world["transact"], world["ctx"], app_id="app_recon", order_id=order_id,
                 out_refund_no=uuid.uuid4().hex[:16], amount=amount, reason=None)  # fmt: skip


def test_refunds_of_odd_amounts_give_back_the_fee_reconciliation_expects(
    world: dict[str, Any], clock: FixedClock
) -> None:
    """Refund fees are the refunded share of the fee charged, half up once (a 150-fen order
    refunded 75 fen gives back 1 of its 1 fen, not 0.6% of 75): every row matches."""
    orders = [_paid(world, amount) for amount in (150, 1, 2_501, 9_999)]
    for order_id, amount in zip(orders, (75, 1, 1_001, 9_999), strict=True):
        _refunded(world, order_id, amount)
    poll_processing_refunds(world["transact"], world["ctx"])
    run = _run(world)
    assert (run["status"], run["break_count"], run["channel_rows"]) == ("completed", 0, 8)
    assert run["matched_count"] == 8
    assert _breaks(world["transact"]) == {}


def test_repairing_a_missed_notification_makes_the_next_run_clean(
    world: dict[str, Any], clock: FixedClock
) -> None:
    """`repair_order` pays the order through the state machine; the rerun raises nothing new,
    and the break's trail shows who did what."""
    transact = world["transact"]
    lost = _paid(world, 4_321, heard=False)
    first = _run(world)
    (break_id,) = [b["id"] for b in transact(lambda uow: recon.list_breaks(
        uow, status="open", type_=None, channel="wechat", bill_date=DAY, limit=10,
        starting_after=None))]  # fmt: skip
    resolved = recon.repair(transact, world["ctx"], break_id=break_id, actor="op_ann",
                            note="补单 after the lost notification")  # fmt: skip
    assert resolved["status"] == "resolved"
    assert resolved["resolution"] == "repair_order"
    order = transact(lambda uow: get_order(uow, order_id=lost))
    assert order.status is OrderStatus.SUCCEEDED
    again = recon.rerun(transact, run_id=first["id"], actor="op_ann")
    assert again["break_count"] == 0
    assert again["file_id"] == first["file_id"]
    history = transact(lambda uow: recon.break_history(uow, break_id))
    assert [(e["to_status"], e["actor"]) for e in history] == [
        ("open", SYSTEM_ACTOR),
        ("resolved", "op_ann"),
    ]


def test_a_payment_across_midnight_is_carried_and_clears_the_next_day(
    world: dict[str, Any], clock: FixedClock
) -> None:
    """The channel stamps it 23:59:58, we 00:00:01: no break on either day."""
    clock.set(datetime(2026, 11, 24, 15, 59, 0, tzinfo=UTC))  # 23:59:00 in Shanghai
    order_id = _order(world, 777)
    clock.set(datetime(2026, 11, 24, 16, 0, 1, tzinfo=UTC))  # 00:00:01 the next day
    world["sandbox"].pay(order_id, "success")
    repair_order(world["transact"], world["ctx"], order_id=order_id)
    late = datetime(2026, 11, 24, 15, 59, 58, tzinfo=UTC)
    world["sandbox"].tamper_bill(order_id, BillTamper(traded_at=late))
    _paid(world, 100)  # the next day's bill has another payment too
    first = _run(world, DAY)
    assert (first["break_count"], first["carried_over_count"]) == (0, 1)
    second = _run(world, DAY + timedelta(days=1))
    assert (second["break_count"], second["carry_in_count"]) == (0, 1)
    assert second["matched_count"] == 2


def test_a_corrupt_file_is_rejected_loudly_and_recorded(world: dict[str, Any]) -> None:
    """A truncated bill raises a clear error and leaves a rejected run with the reason."""
    _paid(world, 100)
    data = world["channel"].download_bill(DAY)
    with pytest.raises(BillRejected) as raised:
        run_day(world["transact"], bill=BillFile("wechat", DAY, data[:-40], "file:x", "wechat"),
                actor="operator")  # fmt: skip
    assert isinstance(raised.value, CloudPayError)
    runs = world["transact"](lambda uow: recon.list_runs(
        uow, channel="wechat", bill_date=DAY, limit=5, starting_after=None))  # fmt: skip
    assert [r["status"] for r in runs] == ["rejected"]
    assert "summary" in runs[0]["error"]
