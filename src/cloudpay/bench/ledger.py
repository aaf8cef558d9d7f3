"""`cloudpay bench ledger`: ledger throughput on SQLite and PostgreSQL, against raw inserts.

Every workload (`ledger_workloads`) runs on a freshly migrated database with its own accounts.
The baseline (`ledger_runs`) is a bare `executemany` of the very same rows into a table without
indexes, in the same database and the same run: the ratio says what the ledger's checks,
balances and indexes cost on this machine, while absolute rates only compare runs on one
machine. A second baseline adds the indexes of `ledger_transfers`, the ceiling they set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from cloudpay.bench.ledger_runs import (
    empty_transactions_per_s,
    raw_baseline,
    run_batches,
    run_concurrent,
    run_single_commits,
    verify_books,
)
from cloudpay.bench.ledger_workloads import (
    BenchAccounts,
    hot_share,
    in_batches,
    open_bench_accounts,
    skewed_transfers,
    uniform_transfers,
)
from cloudpay.db.engine import make_engine
from cloudpay.db.local_postgres import LocalPostgres, PostgresUnavailable, start_local_postgres
from cloudpay.ledger import MAX_BATCH_SIZE
from cloudpay.migrations import upgrade

CONCURRENT_WRITERS = 4
TARGET_SQLITE_RATIO_TO_RAW = 0.20
TARGET_SQLITE_BATCHED_PER_S = 120_000
TARGET_SQLITE_SINGLE_COMMIT_PER_S = 5_000
TARGET_POSTGRES_BATCHED_PER_S = 20_000


@dataclass(frozen=True)
class BenchParams:
    transfers: int
    accounts: int
    single_commit_transfers: int
    batch_size: int
    seed: int


@dataclass
class Target:
    """A database to measure: `new_engine(label)` gives a migrated database for one workload."""

    name: str
    new_engine: Callable[[str], Engine]
    fresh_per_workload: bool
    server_version: Callable[[], str]
    concurrent_writers: int = 0


# --- per database -----------------------------------------------------------------------
class Reporter:
    """A rich progress bar on stderr; stdout is kept for the JSON."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def advancer(self, label: str, total: int) -> Callable[[int], None]:
        task = self.progress.add_task(label, total=total)
        lock = threading.Lock()

        def advance(count: int) -> None:
            with lock:
                self.progress.advance(task, count)

        return advance


def bench_database(target: Target, params: BenchParams, reporter: Reporter) -> dict[str, Any]:
    rng = random.Random(params.seed)
    workloads: dict[str, Any] = {}
    for distribution in ("uniform", "skewed"):
        workloads[f"batched_{distribution}"] = _batched_workload(
            target, params, rng, distribution, reporter
        )
    workloads["single_commit"] = _single_commit_workload(target, params, rng, reporter)
    if target.concurrent_writers:
        workloads["batched_skewed_concurrent"] = _concurrent_workload(target, params, rng, reporter)
    return {"fresh_database_per_workload": target.fresh_per_workload, "workloads": workloads}


@contextmanager
def _workload_engine(
    target: Target, label: str, params: BenchParams
) -> Iterator[tuple[Engine, BenchAccounts]]:
    engine = target.new_engine(label)
    try:
        accounts = open_bench_accounts(engine, params.accounts, params.batch_size)
        if engine.dialect.name == "postgresql":
            # Planner statistics as autovacuum keeps them on any live database: a database
            # minutes old has none, and its plans (whole-table scans for one account) would
            # measure that instead of the ledger.
            with engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
        yield engine, accounts
    finally:
        engine.dispose()


def _batched_workload(
    target: Target, params: BenchParams, rng: random.Random, distribution: str, reporter: Reporter
) -> dict[str, Any]:
    with _workload_engine(target, f"batched_{distribution}", params) as (engine, accounts):
        if distribution == "uniform":
            transfers = uniform_transfers(rng, accounts, params.transfers)
        else:
            transfers = skewed_transfers(rng, accounts, params.transfers, accounts.merchant_ids)
        batches = in_batches(transfers, params.batch_size)
        advance = reporter.advancer(f"{target.name} batched {distribution}", len(transfers))
        stats = run_batches(engine, batches, advance)
        raw = raw_baseline(engine, batches)
        raw_indexed = raw_baseline(engine, batches, indexed=True)
        out = stats.as_json()
        out.update(
            batch_size=params.batch_size,
            hot_account_share=hot_share(transfers, accounts),
            raw_baseline=raw,
            ratio_to_raw=round(out["transfers_per_s"] / raw["rows_per_s"], 3),
            raw_indexed_baseline=raw_indexed,
            ratio_to_raw_indexed=round(out["transfers_per_s"] / raw_indexed["rows_per_s"], 3),
        )
        out.update(verify_books(engine))
        return out


def _single_commit_workload(
    target: Target, params: BenchParams, rng: random.Random, reporter: Reporter
) -> dict[str, Any]:
    with _workload_engine(target, "single_commit", params) as (engine, accounts):
        n = params.single_commit_transfers
        transfers = skewed_transfers(rng, accounts, n, accounts.merchant_ids)
        advance = reporter.advancer(f"{target.name} single-commit", n)
        out = run_single_commits(engine, transfers, advance).as_json()
        raw = raw_baseline(engine, [[t] for t in transfers])
        out.update(
            distribution="skewed",
            hot_account_share=hot_share(transfers, accounts),
            raw_baseline=raw,
            ratio_to_raw=round(out["transfers_per_s"] / raw["rows_per_s"], 3),
            empty_transactions_per_s=empty_transactions_per_s(engine, n),
        )
        out.update(verify_books(engine))
        return out


def _concurrent_workload(
    target: Target, params: BenchParams, rng: random.Random, reporter: Reporter
) -> dict[str, Any]:
    """Writers own disjoint merchants (requests routed by merchant) and share the hot accounts,
    so only the sharded hot balances could serialize them."""
    writers = target.concurrent_writers
    with _workload_engine(target, "batched_skewed_concurrent", params) as (engine, accounts):
        merchants = accounts.merchant_ids
        per_writer = [
            in_batches(
                skewed_transfers(rng, accounts, params.transfers // writers, merchants[w::writers]),
                params.batch_size,
            )
            for w in range(writers)
        ]
        total = sum(len(b) for batches in per_writer for b in batches)
        advance = reporter.advancer(f"{target.name} skewed x{writers} writers", total)
        out = run_concurrent(engine, per_writer, advance).as_json()
        out.update(writers=writers, batch_size=params.batch_size, merchants_per_writer="disjoint")
        out.update(verify_books(engine))
        return out


# --- targets and entry point ------------------------------------------------------------
def sqlite_target(directory: Path) -> Target:
    def new_engine(label: str) -> Engine:
        path = directory / f"{label}.db"
        path.unlink(missing_ok=True)
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        return engine

    return Target("sqlite", new_engine, True, lambda: sqlite3.sqlite_version)


def postgres_cluster_target(cluster: LocalPostgres) -> Target:
    def new_engine(label: str) -> Engine:
        engine = make_engine(cluster.create_database(f"bench_{label}"))
        upgrade(engine)
        return engine

    def server_version() -> str:
        with psycopg.connect(cluster.dsn()) as connection:
            row = connection.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "unknown"

    return Target("postgresql", new_engine, True, server_version, CONCURRENT_WRITERS)


def postgres_url_target(url: str) -> Target:
    def new_engine(_label: str) -> Engine:
        engine = make_engine(url)
        upgrade(engine)
        return engine

    def server_version() -> str:
        engine = make_engine(url)
        try:
            with engine.connect() as connection:
                return str(connection.exec_driver_sql("SHOW server_version").scalar_one())
        finally:
            engine.dispose()

    return Target("postgresql", new_engine, False, server_version, CONCURRENT_WRITERS)


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": version("sqlalchemy"),
        "psycopg": version("psycopg"),
    }


def targets_report(databases: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with what was measured and whether it passed."""
    sqlite = databases["sqlite"]["workloads"]
    batched = [sqlite["batched_uniform"], sqlite["batched_skewed"]]
    ratio = min(w["ratio_to_raw"] for w in batched)
    report = [
        _verdict("sqlite batched >= 20% of raw inserts", TARGET_SQLITE_RATIO_TO_RAW, ratio),
        _verdict(
            "sqlite batched transfers/s (~20% of raw)",
            TARGET_SQLITE_BATCHED_PER_S,
            min(w["transfers_per_s"] for w in batched),
        ),
        _verdict(
            "sqlite single-commit transfers/s",
            TARGET_SQLITE_SINGLE_COMMIT_PER_S,
            sqlite["single_commit"]["transfers_per_s"],
        ),
    ]
    postgres = databases.get("postgresql", {})
    if "workloads" in postgres:
        pg = postgres["workloads"]
        measured = min(
            pg["batched_uniform"]["transfers_per_s"], pg["batched_skewed"]["transfers_per_s"]
        )
        report.append(
            _verdict(
                "postgresql batched transfers/s, one writer",
                TARGET_POSTGRES_BATCHED_PER_S,
                measured,
            )
        )
        if "batched_skewed_concurrent" in pg:
            concurrent = pg["batched_skewed_concurrent"]
            report.append(
                _verdict(
                    f"postgresql batched transfers/s, {concurrent['writers']} writers",
                    TARGET_POSTGRES_BATCHED_PER_S,
                    concurrent["transfers_per_s"],
                )
            )
    else:
        skipped = _verdict("postgresql batched transfers/s", TARGET_POSTGRES_BATCHED_PER_S, 0)
        skipped.update(measured=None, skipped=postgres.get("skipped"))
        skipped["pass"] = None
        report.append(skipped)
    return report


def _verdict(name: str, target: float, measured: float) -> dict[str, Any]:
    return {"name": name, "target": target, "measured": measured, "pass": measured >= target}


def run_ledger_bench(
    *,
    transfers: int = 200_000,
    accounts: int = 10_000,
    single_commit_transfers: int = 20_000,
    postgres: str = "auto",
    batch_size: int = MAX_BATCH_SIZE,
    seed: int = 1,
) -> dict[str, Any]:
    """Measure the ledger on SQLite and (unless `postgres="off"`) PostgreSQL; JSON-able."""
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be in 1..{MAX_BATCH_SIZE}")
    params = BenchParams(transfers, accounts, single_commit_transfers, batch_size, seed)
    machine = machine_info()
    databases: dict[str, Any] = {}
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True),
    )  # fmt: skip
    with progress, tempfile.TemporaryDirectory(prefix="cloudpay-bench-") as directory:
        reporter = Reporter(progress)
        databases["sqlite"] = bench_database(sqlite_target(Path(directory)), params, reporter)
        databases["postgresql"] = _bench_postgres(postgres, params, reporter, machine)
    return {
        "benchmark": "ledger",
        "parameters": params.__dict__,
        "machine": machine,
        "databases": databases,
        "targets": targets_report(databases),
        "books_balanced": True,  # verify_books raised otherwise
    }


def _bench_postgres(
    postgres: str, params: BenchParams, reporter: Reporter, machine: dict[str, Any]
) -> dict[str, Any]:
    if postgres == "off":
        return {"skipped": "--postgres off"}
    if postgres != "auto":
        target = postgres_url_target(postgres)
        machine["postgresql"] = target.server_version()
        return bench_database(target, params, reporter)
    try:
        cluster = start_local_postgres()
    except PostgresUnavailable as missing:
        return {"skipped": str(missing)}
    try:
        target = postgres_cluster_target(cluster)
        machine["postgresql"] = target.server_version()
        out = bench_database(target, params, reporter)
        out["cluster"] = "throwaway local cluster (fsync=off, synchronous_commit=off)"
        return out
    finally:
        cluster.stop()


def main(argv: Sequence[str] | None = None) -> None:
    from cloudpay.logging import configure_logging

    parser = argparse.ArgumentParser(prog="python -m cloudpay.bench.ledger")
    parser.add_argument("--transfers", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--single-commit-transfers", type=int, default=20_000)
    parser.add_argument("--postgres", default="auto", help="auto | off | a PostgreSQL URL")
    parser.add_argument("--batch-size", type=int, default=MAX_BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    result = run_ledger_bench(
        transfers=args.transfers, accounts=args.accounts,
        single_commit_transfers=args.single_commit_transfers, postgres=args.postgres,
        batch_size=args.batch_size, seed=args.seed,
    )  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
