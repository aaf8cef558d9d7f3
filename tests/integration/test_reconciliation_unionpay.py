"""Reconciliation of the UnionPay sandbox's real reconciliation file (a zip holding the ZM
fixed-width GBK file) against orders and refunds placed through payments, on SQLite and
PostgreSQL: injected mistakes found with their type and nothing else, carry-over cleared the
next day, a repaired missed notification makes the next run clean, corrupt files rejected.

UnionPay's txnTime is our id's creation instant and the sandbox refuses one far from its
clock, so here the clock starts at the real time (ids are minted in real time) and the day
under test is today in Shanghai."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine

from cloudpay import routing
from cloudpay.channels.protocol import RefundRequest
from cloudpay.channels.unionpay import UnionPayChannel
from cloudpay.channels.unionpay.sandbox import BillTamper, start_unionpay_sandbox
from cloudpay.kernel.business_time import SHANGHAI, business_date
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.errors import CloudPayError
from cloudpay.kernel.ids import new_id
from cloudpay.payments import OrderRequest, OrderStatus, close_order, get_order, place_order
from cloudpay.reconciliation import BillFile, BillRejected, run_day
from cloudpay.reconciliation import service as recon
from tests.integration.reconciliation_channels import (
    ChannelWorld,
    break_ids,
    breaks,
    channel_world,
    paid,
    refund,
    run,
    stored_after_rejection,
)

FEE_RATE_BP = 38


@pytest.fixture
def world(engine: Engine, clock: FixedClock) -> Iterator[ChannelWorld]:
    clock.set(datetime.now(UTC))
    with start_unionpay_sandbox(
        time_scale=0.001, clock=clock, refund_delay_s=0.0, fee_rate_bps=FEE_RATE_BP
    ) as sandbox:
        channel = UnionPayChannel(sandbox.adapter_config(), clock=clock)
        yield channel_world(engine, clock, sandbox, channel, method="unionpay_qr",
                            rate_bp=FEE_RATE_BP)  # fmt: skip


@pytest.fixture
def day(world: ChannelWorld) -> date:
    return business_date(world.ctx.clock.now())


def test_a_clean_day_with_refunds_reconciles_without_a_break(
    world: ChannelWorld, day: date
) -> None:
    """Payments, a partial and a full refund (fees returned pro rata, odd amounts included)
    all match: every line of the file is matched, nothing raised."""
    orders = [paid(world, amount) for amount in (1, 150, 2_501, 9_999)]
    refund(world, orders[1], 75)
    refund(world, orders[2], 1_001)
    refund(world, orders[3], 9_999)
    result = run(world, day)
    assert (result["status"], result["break_count"], result["channel_rows"]) == ("completed", 0, 7)
    assert result["matched_count"] == 7
    assert result["matched_amount_fen"] == 1 + 150 + 2_501 + 9_999 + 75 + 1_001 + 9_999


def test_every_injected_mistake_is_found_and_nothing_else(world: ChannelWorld, day: date) -> None:
    """Lost notification, wrong amount, fee off by a fen, duplicate line, a refund we never
    saw: each raised with its type; the clean payments and our refund match."""
    clean = [paid(world, amount) for amount in (100, 2_500, 9_999)]
    lost = paid(world, 1_234, heard=False)
    wrong_amount, fee_off, duplicated = (paid(world, 5_000) for _ in range(3))
    world.sandbox.tamper_bill(wrong_amount, BillTamper(amount_delta_fen=1))
    world.sandbox.tamper_bill(fee_off, BillTamper(fee_delta_fen=1))
    world.sandbox.tamper_bill(duplicated, BillTamper(duplicate=True))
    refund(world, clean[2], 5_000)
    behind_our_back = paid(world, 8_000)
    unseen = new_id("rfd")
    world.channel.refund(RefundRequest(unseen, behind_our_back, 8_000, 8_000, "CNY"))
    result = run(world, day)
    assert breaks(world, day) == {
        lost: "missing_in_platform", wrong_amount: "amount_mismatch",
        fee_off: "fee_mismatch", duplicated: "duplicate", unseen: "missing_in_platform",
    }  # fmt: skip
    assert result["matched_count"] == len(clean) + 3
    assert result["breaks_by_type"] == {"amount_mismatch": 1, "duplicate": 1,
                                        "fee_mismatch": 1, "missing_in_platform": 2}  # fmt: skip


def test_repairing_a_missed_notification_makes_the_next_run_clean(
    world: ChannelWorld, day: date
) -> None:
    """补单 pays the order through the state machine; the rerun of the same file is clean."""
    lost = paid(world, 4_321, heard=False)
    first = run(world, day)
    assert breaks(world, day) == {lost: "missing_in_platform"}
    (break_id,) = break_ids(world, day)
    resolved = recon.repair(world.transact, world.ctx, break_id=break_id, actor="op_ann",
                            note="补单 after the lost notification")  # fmt: skip
    assert (resolved["status"], resolved["resolution"]) == ("resolved", "repair_order")
    order = world.transact(lambda uow: get_order(uow, order_id=lost))
    assert order.status is OrderStatus.SUCCEEDED
    again = recon.rerun(world.transact, run_id=first["id"], actor="op_ann")
    assert (again["break_count"], again["file_id"]) == (0, first["file_id"])


def test_a_payment_across_midnight_is_carried_and_clears_the_next_day(
    world: ChannelWorld, day: date
) -> None:
    """UnionPay files it at 23:59:58 of the day before, we on the day: no break on either."""
    order_id = paid(world, 777)
    eve = day - timedelta(days=1)
    late = datetime.combine(eve, datetime.max.time(), SHANGHAI).replace(microsecond=0)
    world.sandbox.tamper_bill(order_id, BillTamper(completed_at=late - timedelta(seconds=1)))
    paid(world, 100)  # the day's file has another payment too
    first = run(world, eve)
    assert (first["break_count"], first["carried_over_count"]) == (0, 1)
    second = run(world, day)
    assert (second["break_count"], second["carry_in_count"]) == (0, 1)
    assert second["matched_count"] == 2


def _micropay_waiting_for_pin(world: ChannelWorld, amount: int) -> str:
    """A payment-code order whose payer is still entering the PIN (our order is paying)."""
    code = f"62250000{uuid.uuid4().int % 10**11:011d}"
    world.sandbox.register_auth_code(code, "pin_pending")
    world.transact(
        lambda uow: routing.create_route(
            uow, registry=world.ctx.channels, name=f"unionpay micropay {FEE_RATE_BP}bp",
            connector=world.connector, methods=frozenset({"unionpay_micropay"}),
            cost=routing.RouteCost(rate_bp=FEE_RATE_BP),
        )
    )  # fmt: skip
    request = OrderRequest(
        app_id="app_recon", merchant_id="mch_recon", out_trade_no=uuid.uuid4().hex[:20],
        amount=amount, currency="CNY", subject="对账 void", method="unionpay_micropay",
        expire_at=None, notify_url=None, metadata={}, auth_code=code,
    )  # fmt: skip
    order = place_order(world.transact, world.ctx, request=request,
                        enabled_methods=frozenset({"unionpay_micropay"}))  # fmt: skip
    assert order.status is OrderStatus.PAYING
    world.sandbox.confirm_auth_code(code)  # paid; its notification never reaches us
    return order.id


def test_a_voided_payment_downloads_and_reconciles_clean(world: ChannelWorld, day: date) -> None:
    """Closing a payment-code order the payer paid meanwhile voids it (消费撤销, its own
    orderId within the file's 32 bytes): the day's file downloads, the payment and its void
    fold into the order we closed, and nothing is raised."""
    voided = _micropay_waiting_for_pin(world, 1_999)
    closed = close_order(world.transact, world.ctx, order_id=voided, app_id="app_recon")
    assert closed.status is OrderStatus.CLOSED
    kept = paid(world, 150)
    refund(world, kept, 75)
    result = run(world, day)
    assert (result["status"], result["break_count"], result["channel_rows"]) == ("completed", 0, 4)
    assert result["matched_count"] == 2  # the kept payment and its refund; the void agrees
    assert breaks(world, day) == {}


def test_a_void_of_an_order_we_think_paid_is_raised(world: ChannelWorld, day: date) -> None:
    """A payment voided behind our back: the file says closed, we say paid — one status
    mismatch on the order, not a duplicate."""
    order_id = paid(world, 2_345)
    world.channel.cancel_payment(order_id)
    result = run(world, day)
    assert breaks(world, day) == {order_id: "status_mismatch"}
    assert result["break_count"] == 1


def _rewrite(data: bytes, change: Callable[[bytes], bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info, change(source.read(info)))
    return out.getvalue()


CORRUPTIONS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated zip": (lambda data: data[: len(data) // 2], "zip"),
    "truncated line": (lambda data: _rewrite(data, lambda c: c[:-30]), "truncated"),
    "short line": (lambda data: _rewrite(data, lambda c: c[:100] + c[101:]), "bytes long"),
    "not GBK": (lambda data: _rewrite(data, lambda c: c[:-10] + b"\xff\xff" + c[-8:]), "GBK"),
    "unknown record": (lambda data: _rewrite(data, lambda c: b"S99" + c[3:]), "trade_code"),
    "malformed fee": (
        lambda data: _rewrite(data, lambda c: c.replace(b" C0000", b" X0000", 1)),
        "merchant_fee",
    ),
    "amount altered": (
        lambda data: _rewrite(data, lambda c: c.replace(b"000000000100", b"000000000101", 1)),
        "net of fee",
    ),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_corrupt_file_is_rejected_loudly_and_nothing_is_stored(
    world: ChannelWorld, day: date, corruption: str
) -> None:
    """Each corruption raises a clear error; only a rejected run with the reason remains."""
    paid(world, 100)
    corrupt, expected = CORRUPTIONS[corruption]
    broken = corrupt(world.channel.download_bill(day))
    with pytest.raises(BillRejected) as raised:
        run_day(world.transact, bill=BillFile("unionpay", day, broken, "file:x", "unionpay"),
                actor="operator")  # fmt: skip
    assert isinstance(raised.value, CloudPayError)
    assert expected in raised.value.message
    assert stored_after_rejection(world, day) == (["rejected"], 0, 0)
