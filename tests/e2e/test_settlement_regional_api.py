"""`GET /v1/reports/regional-flows` (and `.csv`): the regional closed-loop report over HTTP,
operator-only, with bad windows refused in the one error shape."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
from sqlalchemy import Engine

from cloudpay.kernel.clock import FixedClock
from cloudpay.settlement import FeePlan
from cloudpay.settlement.payouts import mirror_custody_opening
from tests.e2e.api_helpers import assert_error, get
from tests.integration.test_settlement_journal import MONDAY, World

REPORT = "/v1/reports/regional-flows"
CUSTODY_FEN = 500_000_000


def test_the_report_shows_receipts_and_custody_per_bank(
    live_api: httpx.Client, engine: Engine, clock: FixedClock
) -> None:
    """A day settled for a merchant banking at WFCB: its receipts and the custody balance
    show under WFCB, nothing was paid out, so the day's share of local payouts is empty;
    the CSV carries the same figures."""
    world = World(engine, clock)
    world.transact(
        lambda uow: mirror_custody_opening(uow, bank_code="WFCB", balance_fen=CUSTODY_FEN)
    )
    shop = world.merchant()
    world.fee_plan(shop, FeePlan.percent(0))
    world.profile(shop)
    world.at(MONDAY, 10)
    world.order(shop, 88_800)
    tuesday = MONDAY + timedelta(days=1)
    world.settle(tuesday)
    window = {"from": MONDAY.isoformat(), "to": tuesday.isoformat()}
    body = get(live_api, REPORT, **window).json()
    assert body["object"] == "regional_flows"
    assert body["banks"] == [
        {"bank_code": "WFCB", "local": True, "receipts_fen": 88_800, "custody_fen": CUSTODY_FEN,
         "settled_fen": 0, "to_cards_fen": 0, "left_fen": 0},
    ]  # fmt: skip
    assert [p["period_start"] for p in body["periods"]] == [MONDAY.isoformat(), tuesday.isoformat()]
    assert {p["local_share_bp"] for p in body["periods"]} == {None}
    weekly = get(live_api, REPORT, period="week", **window).json()
    assert [p["period_start"] for p in weekly["periods"]] == [MONDAY.isoformat()]
    exported = get(live_api, REPORT + ".csv", **window)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[1] == ["bank", "WFCB", "yes", "88800", str(CUSTODY_FEN), "0", "0", "0"]


def test_bad_windows_and_strangers_are_refused(live_api: httpx.Client) -> None:
    """`to` before `from`, a window over a year, a missing or malformed date, an unknown
    period: 400 in the one error shape; without operator credentials: 401."""
    assert_error(
        get(live_api, REPORT, **{"from": "2026-03-05", "to": "2026-03-01"}),
        400,
        "report_window_invalid",
        "to",
    )
    assert_error(
        get(live_api, REPORT, **{"from": "2025-01-01", "to": "2026-03-01"}),
        400,
        "report_window_invalid",
        "to",
    )
    for params in (
        {"to": "2026-03-01"},
        {"from": "2026-02-30", "to": "2026-03-01"},
        {"from": "2026-03-01", "to": "2026-03-01", "period": "month"},
    ):
        response = get(live_api, REPORT, **params)
        assert response.status_code == 400, response.text
        assert set(response.json()) == {"error"}
    stranger = live_api.get(REPORT, params={"from": "2026-03-01", "to": "2026-03-01"})
    assert stranger.status_code == 401
    assert set(stranger.json()) == {"error"}
