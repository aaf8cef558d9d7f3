"""Reconciliation rules on hand-built frames: every difference found with its type, no other."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudpay.reconciliation.model import (
    CARRIED_COLUMN,
    BreakStatus,
    BreakType,
    age_days,
    ageing_bucket,
    can_move,
    conform,
    empty_frame,
    expected_refund_fee,
    reconcile,
)

DAY = date(2026, 11, 24)
NOON = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
LAST_SECONDS = datetime(2026, 11, 24, 15, 59, 58, tzinfo=UTC)  # 23:59:58 in Shanghai
NEXT_DAY_FIRST = datetime(2026, 11, 24, 16, 0, 1, tzinfo=UTC)  # 00:00:01 the next day


def payment(order_id: str, amount: int = 1000, fee: int | None = 6, **extra: Any) -> dict[str, Any]:
    row = {"kind": "payment", "order_id": order_id, "refund_id": None,
           "channel_txn_id": f"42{order_id}", "amount_fen": amount, "fee_fen": fee,
           "status": "success", "time": NOON}  # fmt: skip
    return row | extra


def refund(refund_id: str, order_id: str, amount: int = 500, fee: int = -3) -> dict[str, Any]:
    return payment(order_id, amount, fee) | {"kind": "refund", "refund_id": refund_id}


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return conform(pl.DataFrame(rows)) if rows else empty_frame()


def found(channel: list[dict[str, Any]], ours: list[dict[str, Any]]) -> dict[str, str]:
    outcome = reconcile(frame(channel), frame(ours), business_date=DAY)
    return dict(outcome.breaks.select("key", "type").iter_rows())


def test_identical_sides_match_every_row() -> None:
    """A payment and a refund on both sides with the same facts are matched, not raised."""
    rows = [payment("ord_1"), refund("rfd_1", "ord_1")]
    outcome = reconcile(frame(rows), frame(rows), business_date=DAY)
    assert outcome.breaks.height == 0
    assert outcome.matched.height == 2
    assert outcome.matched_amount_fen == 1500


def test_each_difference_gets_its_type() -> None:
    """Missing either side, amount, fee, status and a duplicate row each give one break."""
    channel = [
        payment("ord_lost"), payment("ord_amount", 999), payment("ord_fee", fee=7),
        payment("ord_dup"), payment("ord_dup"), payment("ord_closed"),
        refund("rfd_unseen", "ord_ok"), payment("ord_ok"),
    ]  # fmt: skip
    ours = [
        payment("ord_lost", status="open"), payment("ord_amount"), payment("ord_fee"),
        payment("ord_dup"), payment("ord_closed", status="closed"), payment("ord_ok"),
        payment("ord_only_ours"),
    ]  # fmt: skip
    assert found(channel, ours) == {
        "ord_lost": BreakType.MISSING_IN_PLATFORM, "ord_amount": BreakType.AMOUNT_MISMATCH,
        "ord_fee": BreakType.FEE_MISMATCH, "ord_dup": BreakType.DUPLICATE,
        "ord_closed": BreakType.STATUS_MISMATCH, "rfd_unseen": BreakType.MISSING_IN_PLATFORM,
        "ord_only_ours": BreakType.MISSING_IN_CHANNEL,
    }  # fmt: skip


def test_rows_that_never_happened_on_either_side_are_not_breaks() -> None:
    """An order we opened and the channel never saw paid is no break; nor is an unknown fee."""
    ours = [payment("ord_open", status="open"), payment("ord_closed", status="closed")]
    assert found([payment("ord_nofee")], [*ours, payment("ord_nofee", fee=None)]) == {}


def test_a_payment_and_its_void_fold_into_the_order_closed() -> None:
    """A same-day void (the order `closed` in its own row) supersedes the payment row: no
    break against an order we closed, a status mismatch against one we think paid, and a
    payment listed twice beside its void is still raised."""
    void = payment("ord_void", fee=-6, status="closed", channel_txn_id="43void")
    assert found([payment("ord_void"), void], [payment("ord_void", status="closed")]) == {}
    assert found([payment("ord_void"), void], [payment("ord_void")]) == {
        "ord_void": BreakType.STATUS_MISMATCH
    }
    twice = reconcile(
        frame([payment("ord_void"), payment("ord_void"), void]),
        frame([payment("ord_void", status="closed")]),
        business_date=DAY,
    )
    assert sorted(twice.breaks.get_column("type")) == [BreakType.DUPLICATE,
                                                       BreakType.STATUS_MISMATCH]  # fmt: skip


def test_a_payment_across_midnight_is_carried_then_matched() -> None:
    """Channel at 23:59:58, ours at 00:00:01: carried, not raised; matched the next day."""
    first = reconcile(frame([payment("ord_late", time=LAST_SECONDS)]), frame([]), business_date=DAY)
    assert first.breaks.height == 0
    assert first.carry_over.select("side", "order_id").rows() == [("channel", "ord_late")]
    assert first.carry_over.get_column(CARRIED_COLUMN).to_list() == [DAY]
    carried = first.carry_over.filter(pl.col("side") == "channel")
    second = reconcile(
        frame([]), frame([payment("ord_late", time=NEXT_DAY_FIRST)]),
        business_date=DAY + timedelta(days=1), carried_channel=carried,
    )  # fmt: skip
    assert second.breaks.height == 0
    assert second.carry_over.height == 0
    assert second.matched.get_column("key").to_list() == ["ord_late"]


def test_a_carried_row_without_counterpart_is_raised_the_next_day() -> None:
    """Carry-over delays a break by one run, never hides it."""
    first = reconcile(frame([]), frame([payment("ord_x", time=LAST_SECONDS)]), business_date=DAY)
    carried = first.carry_over.filter(pl.col("side") == "platform")
    assert carried.height == 1
    second = reconcile(
        frame([]), frame([]), business_date=DAY + timedelta(days=1), carried_platform=carried
    )
    assert dict(second.breaks.select("key", "type").iter_rows()) == {
        "ord_x": BreakType.MISSING_IN_CHANNEL
    }
    assert second.carry_over.height == 0


def test_refund_fee_is_proportional_and_rounded_half_up() -> None:
    """A refund gives back its share of the order's fee, half up: 5 of 10 fen on half."""
    values = pl.DataFrame({"cost": [10, 6, 3], "refund": [500, 250, 500], "total": [1000] * 3})
    fees = values.select(expected_refund_fee(pl.col("cost"), pl.col("refund"), pl.col("total")))
    assert fees.to_series().to_list() == [-5, -2, -2]


MISTAKES = ("lost", "amount", "fee", "duplicate", "unseen_refund", "ours_only", "midnight")


@settings(max_examples=40, deadline=None)
@given(
    clean=st.integers(min_value=0, max_value=60),
    injected=st.lists(st.sampled_from(MISTAKES), max_size=20),
    amount=st.integers(min_value=1, max_value=10_000_000),
)
def test_injected_mistakes_are_found_and_nothing_else(
    clean: int, injected: list[str], amount: int
) -> None:
    """Any mix of injected mistakes among clean rows: each found with its type, nothing else."""
    channel = [payment(f"ord_c{i}", amount) for i in range(clean)]
    ours = [payment(f"ord_c{i}", amount) for i in range(clean)]
    expected: dict[str, str] = {}
    for number, mistake in enumerate(injected):
        key = f"ord_m{number}"
        extra_channel, extra_ours, raised = _inject(mistake, key, amount)
        channel += extra_channel
        ours += extra_ours
        if raised:
            expected[key if mistake != "unseen_refund" else f"rfd_m{number}"] = raised
    outcome = reconcile(frame(channel), frame(ours), business_date=DAY)
    assert dict(outcome.breaks.select("key", "type").iter_rows()) == expected
    matched_too = ("unseen_refund", "duplicate")  # their good payment row matches
    assert outcome.matched.height == clean + sum(injected.count(m) for m in matched_too)
    assert outcome.carry_over.height == injected.count("midnight")


def _inject(mistake: str, key: str, amount: int) -> tuple[list[Any], list[Any], str | None]:
    good = payment(key, amount)
    return {
        "lost": ([good], [payment(key, amount, status="open")], BreakType.MISSING_IN_PLATFORM),
        "amount": ([payment(key, amount + 1)], [good], BreakType.AMOUNT_MISMATCH),
        "fee": ([payment(key, amount, fee=7)], [good], BreakType.FEE_MISMATCH),
        "duplicate": ([good, good], [good], BreakType.DUPLICATE),
        "unseen_refund": (
            [good, refund(key.replace("ord", "rfd"), key)], [good],
            BreakType.MISSING_IN_PLATFORM,
        ),
        "ours_only": ([], [good], BreakType.MISSING_IN_CHANNEL),
        "midnight": ([payment(key, amount, time=LAST_SECONDS)], [], None),
    }[mistake]  # fmt: skip


def test_a_break_moves_forward_only_and_ages_by_bill_date() -> None:
    """open → investigating → resolved; nothing leaves resolved; age buckets by days."""
    assert can_move(BreakStatus.OPEN, BreakStatus.INVESTIGATING)
    assert can_move(BreakStatus.OPEN, BreakStatus.RESOLVED)
    assert can_move(BreakStatus.INVESTIGATING, BreakStatus.RESOLVED)
    assert not can_move(BreakStatus.INVESTIGATING, BreakStatus.OPEN)
    assert not can_move(BreakStatus.RESOLVED, BreakStatus.INVESTIGATING)
    days = [age_days(DAY, DAY + timedelta(days=n)) for n in (0, 1, 2, 5, 30)]
    assert [ageing_bucket(d) for d in days] == ["0-1d", "0-1d", "2-3d", "4-7d", ">7d"]
