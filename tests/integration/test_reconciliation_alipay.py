"""Reconciliation of the Alipay sandbox's real trade bill (zip of GBK CSVs) against orders and
refunds placed through payments, on SQLite and PostgreSQL: injected mistakes found with their
type and nothing else, carry-over cleared the next day, a repaired missed notification makes
the next run clean, corrupt files rejected with nothing but the rejected run stored."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine

from cloudpay.channels.alipay import AlipayChannel
from cloudpay.channels.alipay.sandbox import BillTamper, start_alipay_sandbox
from cloudpay.channels.protocol import RefundRequest
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.errors import CloudPayError
from cloudpay.payments import OrderStatus, get_order, repair_order
from cloudpay.reconciliation import BillFile, BillRejected, run_day
from cloudpay.reconciliation import service as recon
from tests.integration.reconciliation_channels import (
    ChannelWorld,
    break_ids,
    breaks,
    channel_world,
    paid,
    place,
    refund,
    run,
    stored_after_rejection,
)

DAY = date(2026, 11, 24)
NOON = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
FEE_RATE_BP = 60


@pytest.fixture
def world(engine: Engine, clock: FixedClock) -> Iterator[ChannelWorld]:
    clock.set(NOON)
    with (
        start_alipay_sandbox(time_scale=0.001, clock=clock, fee_rate_bp=FEE_RATE_BP) as sandbox,
        AlipayChannel(sandbox.adapter_config(), clock=clock) as channel,
    ):
        yield channel_world(engine, clock, sandbox, channel, method="alipay_qr",
                            rate_bp=FEE_RATE_BP)  # fmt: skip


def test_a_clean_day_with_refunds_reconciles_without_a_break(world: ChannelWorld) -> None:
    """Payments, a partial and a full refund (fees returned pro rata, odd amounts included)
    all match: every row of the bill is matched, nothing raised."""
    orders = [paid(world, amount) for amount in (1, 150, 2_501, 9_999)]
    refund(world, orders[1], 75)  # 0.9 fen of fee on 150: half of it rounds to the fen
    refund(world, orders[2], 1_001)
    refund(world, orders[3], 9_999)
    result = run(world, DAY)
    assert (result["status"], result["break_count"], result["channel_rows"]) == ("completed", 0, 7)
    assert result["matched_count"] == 7
    assert result["matched_amount_fen"] == 1 + 150 + 2_501 + 9_999 + 75 + 1_001 + 9_999


def test_every_injected_mistake_is_found_and_nothing_else(world: ChannelWorld) -> None:
    """Lost notification, wrong amount, fee off by a fen, duplicate row, a refund we never
    saw: each raised with its type; the clean payments and our refund match."""
    clean = [paid(world, amount) for amount in (100, 2_500, 9_999)]
    lost = paid(world, 1_234, heard=False)
    wrong_amount, fee_off, duplicated = (paid(world, 5_000) for _ in range(3))
    world.sandbox.tamper_bill(wrong_amount, BillTamper(amount_delta_fen=1))
    world.sandbox.tamper_bill(fee_off, BillTamper(fee_delta_fen=1))
    world.sandbox.tamper_bill(duplicated, BillTamper(duplicate=True))
    refund(world, clean[2], 5_000)
    behind_our_back = paid(world, 8_000)
    unseen = "rfd_" + uuid.uuid4().hex[:20]
    world.channel.refund(RefundRequest(unseen, behind_our_back, 8_000, 8_000, "CNY"))
    result = run(world, DAY)
    assert breaks(world, DAY) == {
        lost: "missing_in_platform", wrong_amount: "amount_mismatch",
        fee_off: "fee_mismatch", duplicated: "duplicate", unseen: "missing_in_platform",
    }  # fmt: skip
    # + the duplicate's first row, the order refunded behind our back, our refund
    assert result["matched_count"] == len(clean) + 3
    assert result["breaks_by_type"] == {"amount_mismatch": 1, "duplicate": 1,
                                        "fee_mismatch": 1, "missing_in_platform": 2}  # fmt: skip


def test_repairing_a_missed_notification_makes_the_next_run_clean(world: ChannelWorld) -> None:
    """补单 pays the order through the state machine; the rerun of the same file is clean."""
    lost = paid(world, 4_321, heard=False)
    first = run(world, DAY)
    assert breaks(world, DAY) == {lost: "missing_in_platform"}
    (break_id,) = break_ids(world, DAY)
    resolved = recon.repair(world.transact, world.ctx, break_id=break_id, actor="op_ann",
                            note="补单 after the lost notification")  # fmt: skip
    assert (resolved["status"], resolved["resolution"]) == ("resolved", "repair_order")
    order = world.transact(lambda uow: get_order(uow, order_id=lost))
    assert order.status is OrderStatus.SUCCEEDED
    again = recon.rerun(world.transact, run_id=first["id"], actor="op_ann")
    assert (again["break_count"], again["file_id"]) == (0, first["file_id"])


def test_a_payment_across_midnight_is_carried_and_clears_the_next_day(
    world: ChannelWorld, clock: FixedClock
) -> None:
    """Alipay stamps it 23:59:58, we 00:00:01: no break on either day."""
    clock.set(datetime(2026, 11, 24, 15, 59, 0, tzinfo=UTC))  # 23:59:00 in Shanghai
    order_id = place(world, 777)
    clock.set(datetime(2026, 11, 24, 16, 0, 1, tzinfo=UTC))  # 00:00:01 the next day
    world.sandbox.pay(order_id, "success")
    repair_order(world.transact, world.ctx, order_id=order_id)
    late = datetime(2026, 11, 24, 15, 59, 58, tzinfo=UTC)
    world.sandbox.tamper_bill(order_id, BillTamper(paid_at=late))
    paid(world, 100)  # the next day's bill has another payment too
    first = run(world, DAY)
    assert (first["break_count"], first["carried_over_count"]) == (0, 1)
    second = run(world, DAY + timedelta(days=1))
    assert (second["break_count"], second["carry_in_count"]) == (0, 1)
    assert second["matched_count"] == 2


@pytest.mark.parametrize("corruption", ["truncated zip", "footer counts", "UTF-8", "header",
                                        "summary"])  # fmt: skip
def test_a_corrupt_file_is_rejected_loudly_and_nothing_is_stored(
    world: ChannelWorld, corruption: str
) -> None:
    """Each corruption raises a clear error; only a rejected run with the reason remains."""
    paid(world, 100)
    data = world.channel.download_bill(DAY)
    broken, expected = _corrupt(data, corruption)
    with pytest.raises(BillRejected) as raised:
        run_day(world.transact, bill=BillFile("alipay", DAY, broken, "file:x", "alipay"),
                actor="operator")  # fmt: skip
    assert isinstance(raised.value, CloudPayError)
    assert expected in raised.value.message
    assert stored_after_rejection(world, DAY) == (["rejected"], 0, 0)


def _rewrite(data: bytes, detail: Callable[[str], str], summary: Callable[[str], str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            text = source.read(info).decode("gbk")
            is_summary = info.filename.endswith("(汇总).csv")  # written with the UTF-8 flag
            target.writestr(info, (summary if is_summary else detail)(text).encode("gbk"))
    return out.getvalue()


def _corrupt(data: bytes, corruption: str) -> tuple[bytes, str]:
    """The corrupted bill and a word its rejection names."""
    same: Callable[[str], str] = lambda text: text  # noqa: E731
    if corruption == "truncated zip":
        return data[: len(data) // 2], "zip"
    if corruption == "footer counts":
        footer = "#交易合计：1笔"
        return _rewrite(data, lambda t: t.replace(footer, "#交易合计：2笔"), same), "footer"
    if corruption == "header":
        return _rewrite(data, lambda t: t.replace("服务费（元）", "手续费（元）"), same), "header"
    if corruption == "summary":
        return _rewrite(data, same, lambda t: t.replace("-0.01", "-0.02")), "summary totals"
    out = io.BytesIO()  # UTF-8: the detail CSV re-encoded
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            target.writestr(info, content.decode("gbk").encode("utf-8"))
    return out.getvalue(), "GBK"
