"""The regional closed-loop report's rules (资金闭环), pure: what stays local, per bank and
per period, and the CSV."""

from __future__ import annotations

import csv
import io
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from cloudpay.settlement.regional import (
    CLASS_I,
    E_ACCOUNT,
    LocalPolicy,
    PayoutFlow,
    Period,
    periods_between,
    regional_report,
    report_csv,
    report_view,
    share_bp,
    stays_local,
)

POLICY = LocalPolicy(frozenset({"WFCB", "WFRCB"}), frozenset({"622319"}))
MONDAY = date(2026, 3, 2)


def _flow(day: int, bank: str, kind: str, amount: int, account: str = "6200000000") -> PayoutFlow:
    return PayoutFlow(date(2026, 3, day), bank, kind, account, amount)


def test_what_stays_local() -> None:
    """An e-account at a local bank stays, at another bank leaves; a Class I card stays only
    if a local bank issues it (its BIN), an unknown card leaves; no configuration: every
    partner bank is local."""
    assert stays_local(_flow(2, "WFCB", E_ACCOUNT, 1), POLICY)
    assert not stays_local(_flow(2, "BJBANK", E_ACCOUNT, 1), POLICY)
    assert stays_local(_flow(2, "WFCB", CLASS_I, 1, "6223190000000001"), POLICY)
    assert not stays_local(_flow(2, "WFCB", CLASS_I, 1, "6222020000000001"), POLICY)
    assert stays_local(_flow(2, "ANY", E_ACCOUNT, 1), LocalPolicy())
    assert not stays_local(_flow(2, "ANY", CLASS_I, 1, "6223190000000001"), LocalPolicy())


def test_share_is_basis_points_rounded_half_up_once() -> None:
    """2/3 is 6,667 bp, 1/8 is 1,250, nothing over nothing has no share."""
    assert share_bp(2, 3) == 6_667
    assert share_bp(1, 3) == 3_333
    assert share_bp(1, 8) == 1_250
    assert share_bp(1, 20_000) == 1  # 0.5 bp rounds up
    assert share_bp(0, 0) is None


@given(st.integers(0, 10**12), st.integers(1, 10**12))
def test_share_bp_is_the_nearest_basis_point(part: int, extra: int) -> None:
    """For any part of a whole, the share is within half a basis point of the exact ratio."""
    whole = part + extra
    got = share_bp(part, whole)
    assert got is not None
    assert abs(got * whole - part * 10_000) * 2 <= whole


def test_per_bank_and_per_week() -> None:
    """Settled there, to cards, and what left, per bank; weekly buckets from Monday with an
    empty week shown; totals equal the sum of the flows."""
    flows = [
        _flow(2, "WFCB", E_ACCOUNT, 10_000),
        _flow(3, "WFCB", CLASS_I, 2_000, "6222020000000001"),  # a card elsewhere: leaves
        _flow(4, "BJBANK", E_ACCOUNT, 3_000),  # not a local bank
        _flow(17, "WFRCB", CLASS_I, 5_000, "6223190000000001"),  # a local card
    ]
    report = regional_report(
        start=MONDAY, end=date(2026, 3, 18), period=Period.WEEK, policy=POLICY,
        banks=["WFCB", "WFRCB"], receipts_fen={"WFCB": 12_000, "WFRCB": 5_500},
        custody_fen={"WFCB": 990_000}, payouts=flows,
    )  # fmt: skip
    view = report_view(report)
    banks = {b["bank_code"]: b for b in view["banks"]}
    assert banks["WFCB"] == {
        "bank_code": "WFCB", "local": True, "receipts_fen": 12_000, "custody_fen": 990_000,
        "settled_fen": 10_000, "to_cards_fen": 2_000, "left_fen": 2_000,
    }  # fmt: skip
    assert (banks["BJBANK"]["local"], banks["BJBANK"]["left_fen"]) == (False, 3_000)
    assert banks["WFRCB"]["custody_fen"] is None
    assert [p["period_start"] for p in view["periods"]] == [
        "2026-03-02",
        "2026-03-09",
        "2026-03-16",
    ]
    assert [(p["kept_fen"], p["left_fen"]) for p in view["periods"]] == [
        (10_000, 5_000), (0, 0), (5_000, 0),
    ]  # fmt: skip
    assert [p["local_share_bp"] for p in view["periods"]] == [6_667, None, 10_000]
    assert view["kept_fen"] + view["left_fen"] == sum(f.amount_fen for f in flows)
    assert view["local_share_bp"] == share_bp(15_000, 20_000)


def test_days_cover_the_window_and_the_csv_carries_both_tables() -> None:
    """By day, each day of the window has a row; the CSV has the banks then the periods."""
    assert periods_between(MONDAY, date(2026, 3, 4), Period.DAY) == [
        date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4),
    ]  # fmt: skip
    report = regional_report(
        start=MONDAY, end=date(2026, 3, 3), period=Period.DAY, policy=POLICY, banks=["WFCB"],
        receipts_fen={}, custody_fen={}, payouts=[_flow(3, "WFCB", E_ACCOUNT, 700)],
    )  # fmt: skip
    rows = list(csv.reader(io.StringIO(report_csv(report))))
    assert rows[0][:3] == ["section", "bank_code", "local"]
    assert rows[1] == ["bank", "WFCB", "yes", "0", "", "700", "0", "0"]
    assert rows[2] == ["section", "period_start", "kept_fen", "left_fen", "local_share_bp"]
    assert rows[3:] == [
        ["day", "2026-03-02", "0", "0", ""],
        ["day", "2026-03-03", "700", "0", "10000"],
    ]
