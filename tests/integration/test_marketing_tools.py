"""The marketing tools outside the API: `cloudpay campaign create/fund` and a small run of
`cloudpay bench claims` (on SQLite), whose own check must find issued = stock."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cloudpay.bench.claims import run_claims_bench
from cloudpay.cli import app


def test_cli_creates_and_funds_a_campaign(tmp_path: Path) -> None:
    """create --fund-fen opens a live campaign; fund adds to it; a bad rule exits 2."""
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    created = runner.invoke(app, [
        "campaign", "create", "--name", "春季消费券", "--funder-kind", "government",
        "--funder-id", "weifang", "--stock", "10", "--discount-fen", "1000",
        "--threshold-fen", "4000", "--mcc", "5812", "--fund-fen", "10000", "--json",
        "--database", database,
    ])  # fmt: skip
    assert created.exit_code == 0, created.output
    campaign = json.loads(created.stdout)
    assert (campaign["status"], campaign["funded_fen"]) == ("active", 10_000)
    funded = runner.invoke(app, ["campaign", "fund", campaign["campaign_id"], "--amount-fen",
                                 "500", "--json", "--database", database])  # fmt: skip
    assert funded.exit_code == 0, funded.output
    assert json.loads(funded.stdout)["funded_fen"] == 10_500
    refused = runner.invoke(app, [
        "campaign", "create", "--name", "x", "--funder-kind", "government", "--funder-id",
        "weifang", "--stock", "1", "--discount-fen", "1000", "--threshold-fen", "500",
        "--database", database,
    ])  # fmt: skip
    assert refused.exit_code == 2


def test_a_small_claims_bench_issues_exactly_the_stock() -> None:
    """The benchmark's JSON carries rates, p99, and a check that found no over-issue."""
    result = run_claims_bench(stock=40, people=50, threads=2, sqlite_threads=4, postgres="off")
    sqlite = result["databases"]["sqlite"]
    assert sqlite["check"]["issued_equals_stock"] is True
    assert sqlite["check"]["over_issued"] == 0
    assert sqlite["check"]["double_claims"] == 0
    assert sqlite["outcomes"]["issued"] == 40
    assert sqlite["claims_per_s"] > 0
    assert sqlite["latency_ms_p99"] >= sqlite["latency_ms_p50"]
    assert result["databases"]["postgresql"] == {"skipped": "--postgres off"}
    assert result["target"]["met"] is None
