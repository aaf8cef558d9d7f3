"""`cloudpay demo --once` end to end, as a user runs it: the gateway day, then the night's
reconciliation, settlement and the vouchers' leverage report, on a fresh SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DEMO_TIMEOUT_S = 600  # two shared cores: about a minute alone, several under a loaded suite


@pytest.fixture(scope="module")
def demo_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any]]:
    """One demo run (a small day) shared by the tests: its printed summary and its JSON."""
    if "sqlite" not in request.config.getoption("--backends"):
        pytest.skip("the demo runs on its embedded SQLite database")
    workdir = tmp_path_factory.mktemp("demo")
    summary = workdir / "summary.json"
    done = subprocess.run(
        [sys.executable, "-m", "cloudpay", "demo", "--once", "--orders", "60",
         "--database", f"sqlite:///{workdir / 'demo.db'}", "--summary-json", str(summary)],
        cwd=workdir, capture_output=True, text=True, timeout=DEMO_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    facts: dict[str, Any] = json.loads(Path(summary).read_text())
    return done.stdout, facts


def test_the_demo_settles_the_day_through_two_banks(demo_run: tuple[str, dict[str, Any]]) -> None:
    """Every merchant is settled for the next business day; the supermarket's payout, refused
    over its Class II daily cap, is rerouted to its Class I card; custody matches the banks."""
    output, facts = demo_run
    settlement = facts["settlement"]
    assert settlement["settled_merchants"] == 3
    assert settlement["net_fen"] > 0
    kinds = {(p["destination_kind"], p["status"], p["failure_reason"])
             for p in settlement["payouts"]}  # fmt: skip
    assert ("e_account", "failed", "limit_exceeded") in kinds
    assert ("class_i", "succeeded", None) in kinds
    assert {p["bank_code"] for p in settlement["payouts"]} == {"WFCB", "WFRCB"}
    assert settlement["custody_ok"] is True
    assert "✓ custody matches" in output
    assert "Settlement run of" in output


def test_the_chains_split_receivers_are_split_to_and_paid(
    demo_run: tuple[str, dict[str, Any]],
) -> None:
    """The franchise store and the supplier (paid out of the store's part) each receive a
    split of the chain's orders, and the settlement run pays it all to their e-accounts."""
    output, facts = demo_run
    receivers = {r["kind"]: r for r in facts["split_receivers"]}
    assert set(receivers) == {"store", "supplier"}
    store, supplier = receivers["store"], receivers["supplier"]
    assert store["split_fen"] > supplier["split_fen"] > 0
    for receiver in (store, supplier):
        assert receiver["paid_out_fen"] == receiver["split_fen"] - receiver["returned_fen"]
    assert "Split receivers of the supermarket chain" in output


def test_reconciliation_finds_exactly_the_injected_mistakes(
    demo_run: tuple[str, dict[str, Any]],
) -> None:
    """The lost notification and the fee off by a fen are the only breaks, each on its own
    order; after the repair and the re-run no break is left open."""
    output, facts = demo_run
    recon = facts["reconciliation"]
    assert recon["breaks_found"] == recon["injected"] == 2
    assert recon["breaks_by_type"] == {"missing_in_platform": 1, "fee_mismatch": 1}
    assert len(recon["injected_orders_found"]) == 2
    assert recon["open_after_rerun"] == 0
    assert {"wechat", "wechat_provider"} <= set(recon["reconciled"])
    assert "breaks found: 2" in output


def test_the_leverage_report_is_printed_for_both_campaigns(
    demo_run: tuple[str, dict[str, Any]],
) -> None:
    """Both campaigns issue their whole stock; the vouchers redeemed bring spending and the
    leverage printed is spend ÷ subsidy as the API computed it."""
    output, facts = demo_run
    assert set(facts["vouchers"]) == {"voucher", "coupon"}
    for report in facts["vouchers"].values():
        assert report["issued"] == report["stock"]
        assert report["redemptions"] > 0
        assert report["subsidy_fen"] > 0
        assert report["leverage"] is not None
        assert report["leverage"] in output
    assert "the leverage report" in output
