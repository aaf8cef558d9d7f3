"""`cloudpay bench ledger`: ledger throughput on SQLite and PostgreSQL, against raw inserts.

Every workload runs on a freshly migrated database with its own accounts: mostly merchant
accounts that must not be overdrawn, funded first so the balance check really refuses some
transfers, plus a few hot platform accounts from the chart (unlimited, sharded). The baseline
is a bare `executemany` of the very same rows into a table without indexes, in the same
database and the same run: the ratio says what the ledger's checks, balances and indexes cost
on this machine, while absolute rates only compare runs on one machine.
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
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from cloudpay.db.engine import make_engine
from cloudpay.db.local_postgres import LocalPostgres, PostgresUnavailable, start_local_postgres
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.ids import new_ids
from cloudpay.ledger import (
    CHART,
    MAX_BATCH_SIZE,
    PLATFORM,
    AccountResult,
    NewAccount,
    Purpose,
    Transfer,
    TransferResult,
    check_books,
    create_accounts,
    create_transfer,
    create_transfers,
)
from cloudpay.ledger.chart import channel_owner, merchant_owner
from cloudpay.migrations import upgrade

LEDGER = "CNY"
CHANNELS = ("wechat", "alipay", "unionpay")
MERCHANT_FUNDING_FEN = 200_000
MIN_AMOUNT_FEN = 100
# Up to a fifth of a merchant's funding: the random walk drains some accounts below the next
# debit, so refusals happen without dominating the run.
MAX_AMOUNT_FEN = 40_000
SKEWED_CAPTURE_SHARE = 0.60  # channel clearing -> merchant
SKEWED_FEE_SHARE = 0.25  # merchant -> fee income; the rest is merchant -> merchant
# Splits move larger sums out of merchants, so some find too little there and are refused.
SPLIT_AMOUNT_FACTOR = 8
CONCURRENT_WRITERS = 4
EXPECTED_REFUSALS = frozenset({"exceeds_credits"})
RAW_TABLE = "bench_raw_transfers"
RAW_COLUMNS = (
    "id VARCHAR(64) NOT NULL, debit_account_id VARCHAR(64) NOT NULL, "
    "credit_account_id VARCHAR(64) NOT NULL, amount BIGINT NOT NULL, ledger VARCHAR(3) NOT NULL, "
    "code VARCHAR(64) NOT NULL, flags INTEGER NOT NULL, pending_id VARCHAR(64), "
    "timeout_s INTEGER NOT NULL, user_data VARCHAR(128), timestamp_ns BIGINT NOT NULL"
)
RAW_INDEXES = (
    f"CREATE UNIQUE INDEX ix_{RAW_TABLE}_id ON {RAW_TABLE} (id)",
    f"CREATE INDEX ix_{RAW_TABLE}_debit ON {RAW_TABLE} (debit_account_id, timestamp_ns)",
    f"CREATE INDEX ix_{RAW_TABLE}_credit ON {RAW_TABLE} (credit_account_id, timestamp_ns)",
    f"CREATE INDEX ix_{RAW_TABLE}_user_data ON {RAW_TABLE} (user_data)",
)
TARGET_SQLITE_RATIO_TO_RAW = 0.20
TARGET_SQLITE_BATCHED_PER_S = 120_000
TARGET_SQLITE_SINGLE_COMMIT_PER_S = 5_000
TARGET_POSTGRES_BATCHED_PER_S = 20_000
Row = tuple[str, str, str, int | None, str, str, int, str | None, int, str | None, int]


class BenchFailure(RuntimeError):
    """The ledger misbehaved under load (books unbalanced, an unexpected refusal)."""


@dataclass(frozen=True)
class BenchAccounts:
    clearing_ids: tuple[str, ...]
    fee_income_id: str
    merchant_ids: tuple[str, ...]

    @property
    def hot_ids(self) -> frozenset[str]:
        return frozenset((*self.clearing_ids, self.fee_income_id))

    @property
    def all_ids(self) -> tuple[str, ...]:
        return (*self.clearing_ids, self.fee_income_id, *self.merchant_ids)


@dataclass(frozen=True)
class BenchParams:
    transfers: int
    accounts: int
    single_commit_transfers: int
    batch_size: int
    seed: int


@dataclass
class RunStats:
    n: int = 0
    elapsed_s: float = 0.0
    retries: int = 0
    transactions: int = 0
    refusals: Counter[str] = field(default_factory=Counter)

    def count(self, results: Sequence[TransferResult], retries: int) -> None:
        self.n += len(results)
        self.retries += retries
        self.transactions += 1
        for result in results:
            if not result.ok:
                self.refusals[result.result] += 1

    def as_json(self) -> dict[str, Any]:
        unexpected = set(self.refusals) - EXPECTED_REFUSALS
        if unexpected:
            raise BenchFailure(f"unexpected refusals {sorted(unexpected)}: {self.refusals}")
        return {
            "n": self.n,
            "seconds": round(self.elapsed_s, 3),
            "transfers_per_s": round(self.n / self.elapsed_s),
            "refused": sum(self.refusals.values()),
            "refused_by_code": dict(self.refusals),
            "transactions": self.transactions,
            "retries": self.retries,
        }


@dataclass
class Target:
    """A database to measure: `new_engine(label)` gives a migrated database for one workload."""

    name: str
    new_engine: Callable[[str], Engine]
    fresh_per_workload: bool
    server_version: Callable[[], str]
    concurrent_writers: int = 0


# --- accounts and workloads -------------------------------------------------------------
def open_bench_accounts(engine: Engine, count: int, batch_size: int) -> BenchAccounts:
    """Hot platform accounts per the chart, merchants that must not be overdrawn, funded."""
    suffix = uuid.uuid4().hex[:8]  # one database may hold several runs (a given URL)
    clearing, fee_income, merchant = (
        CHART[Purpose.CHANNEL_CLEARING], CHART[Purpose.FEE_INCOME], CHART[Purpose.MERCHANT_PENDING],
    )  # fmt: skip
    hot = [
        NewAccount(channel_owner(f"{c}-{suffix}"), Purpose.CHANNEL_CLEARING.value, LEDGER,
                   clearing.flags, clearing.shards)
        for c in CHANNELS
    ]  # fmt: skip
    hot.append(
        NewAccount(f"{PLATFORM}-{suffix}", Purpose.FEE_INCOME.value, LEDGER,
                   fee_income.flags, fee_income.shards)
    )  # fmt: skip
    merchants = [
        NewAccount(merchant_owner(f"m{i}-{suffix}"), Purpose.MERCHANT_PENDING.value, LEDGER,
                   merchant.flags)
        for i in range(max(1, count - len(hot)))
    ]  # fmt: skip
    ids = [r.id for r in _create_accounts(engine, [*hot, *merchants], batch_size)]
    accounts = BenchAccounts(tuple(ids[:3]), ids[3], tuple(ids[4:]))
    funding = [
        Transfer(transfer_id, accounts.clearing_ids[0], merchant_id, MERCHANT_FUNDING_FEN,
                 LEDGER, "funding")
        for transfer_id, merchant_id in zip(
            new_ids("trf", len(accounts.merchant_ids)), accounts.merchant_ids, strict=True
        )
    ]  # fmt: skip
    for batch in _batches(funding, batch_size):
        results, _ = submit_batch(engine, batch)
        if not all(r.ok for r in results):
            raise BenchFailure(f"funding refused: {[r for r in results if not r.ok][:3]}")
    return accounts


def _create_accounts(
    engine: Engine, accounts: list[NewAccount], batch_size: int
) -> list[AccountResult]:
    results: list[AccountResult] = []
    for start in range(0, len(accounts), batch_size):
        work = partial(create_accounts, accounts=accounts[start : start + batch_size])
        results.extend(run_in_transaction(engine, work))
    if not all(r.ok for r in results):
        raise BenchFailure(f"accounts refused: {[r for r in results if not r.ok][:3]}")
    return results


def uniform_transfers(rng: random.Random, accounts: BenchAccounts, n: int) -> list[Transfer]:
    """Debit and credit drawn at random among all accounts."""
    everyone = accounts.all_ids
    transfers = []
    for transfer_id in new_ids("trf", n):
        debit, credit = rng.sample(everyone, 2)
        amount = rng.randint(MIN_AMOUNT_FEN, MAX_AMOUNT_FEN)
        transfers.append(Transfer(transfer_id, debit, credit, amount, LEDGER, "transfer"))
    return transfers


def skewed_transfers(
    rng: random.Random, accounts: BenchAccounts, n: int, merchant_ids: Sequence[str]
) -> list[Transfer]:
    """Captures from channel clearing and fees to fee income: most touch a hot account."""
    transfers = []
    for transfer_id in new_ids("trf", n):
        draw = rng.random()
        amount = rng.randint(MIN_AMOUNT_FEN, MAX_AMOUNT_FEN)
        if draw < SKEWED_CAPTURE_SHARE:
            debit, credit, code = (
                rng.choice(accounts.clearing_ids),
                rng.choice(merchant_ids),
                "capture",
            )
        elif draw < SKEWED_CAPTURE_SHARE + SKEWED_FEE_SHARE:
            debit, credit, code = rng.choice(merchant_ids), accounts.fee_income_id, "fee"
            amount //= 10
        else:
            debit, credit = rng.sample(merchant_ids, 2)
            code = "split"
            amount *= SPLIT_AMOUNT_FACTOR
        transfers.append(Transfer(transfer_id, debit, credit, amount, LEDGER, code))
    return transfers


def hot_share(transfers: Sequence[Transfer], accounts: BenchAccounts) -> float:
    hot = accounts.hot_ids
    touching = sum(1 for t in transfers if t.debit_account_id in hot or t.credit_account_id in hot)
    return round(touching / len(transfers), 3)


def _batches(items: Sequence[Transfer], size: int) -> list[Sequence[Transfer]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


# --- running ----------------------------------------------------------------------------
def submit_batch(engine: Engine, batch: Sequence[Transfer]) -> tuple[list[TransferResult], int]:
    """One transaction for the batch; also how many times the database made us retry it."""
    attempts = 0

    def work(uow: UnitOfWork) -> list[TransferResult]:
        nonlocal attempts
        attempts += 1
        return create_transfers(uow, batch)

    return run_in_transaction(engine, work), attempts - 1


def submit_one(engine: Engine, transfer: Transfer) -> tuple[TransferResult, int]:
    attempts = 0

    def work(uow: UnitOfWork) -> TransferResult:
        nonlocal attempts
        attempts += 1
        return create_transfer(uow, transfer)

    return run_in_transaction(engine, work), attempts - 1


def run_batches(
    engine: Engine, batches: Sequence[Sequence[Transfer]], advance: Callable[[int], None]
) -> RunStats:
    stats = RunStats()
    started_s = time.perf_counter()
    for batch in batches:
        results, retries = submit_batch(engine, batch)
        stats.count(results, retries)
        advance(len(batch))
    stats.elapsed_s = time.perf_counter() - started_s
    return stats


def run_single_commits(
    engine: Engine, transfers: Sequence[Transfer], advance: Callable[[int], None]
) -> RunStats:
    stats = RunStats()
    started_s = time.perf_counter()
    for index, transfer in enumerate(transfers):
        result, retries = submit_one(engine, transfer)
        stats.count([result], retries)
        if index % 500 == 499:
            advance(500)
    stats.elapsed_s = time.perf_counter() - started_s
    advance(len(transfers) % 500)
    return stats


def run_concurrent(
    engine: Engine,
    per_writer: Sequence[Sequence[Sequence[Transfer]]],
    advance: Callable[[int], None],
) -> RunStats:
    """Each writer submits its own batches; all of them share the hot accounts."""
    total = RunStats()
    lock = threading.Lock()

    def writer(batches: Sequence[Sequence[Transfer]]) -> None:
        stats = run_batches(engine, batches, advance)
        with lock:
            total.n += stats.n
            total.retries += stats.retries
            total.transactions += stats.transactions
            total.refusals.update(stats.refusals)

    started_s = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(per_writer)) as pool:
        for future in [pool.submit(writer, batches) for batches in per_writer]:
            future.result()
    total.elapsed_s = time.perf_counter() - started_s
    return total


def raw_baseline(
    engine: Engine, batches: Sequence[Sequence[Transfer]], *, indexed: bool = False
) -> dict[str, Any]:
    """The same rows, `executemany` into a bare table, one transaction per batch.

    `indexed` adds the primary key and indexes of `ledger_transfers`: not the issue's
    baseline, but the ceiling the ledger's own insert puts on it.
    """
    row_batches = [[_row(t, i) for t in batch] for i, batch in enumerate(batches)]
    marks = ", ".join(["?"] * 11)
    sql = f"INSERT INTO {RAW_TABLE} VALUES ({marks})"
    if engine.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {RAW_TABLE}")
        connection.exec_driver_sql(f"CREATE TABLE {RAW_TABLE} ({RAW_COLUMNS})")
        for statement in RAW_INDEXES if indexed else ():
            connection.exec_driver_sql(statement)
    started_s = time.perf_counter()
    for rows in row_batches:
        with engine.begin() as connection:
            connection.exec_driver_sql(sql, rows)
    elapsed_s = time.perf_counter() - started_s
    rows_count = sum(len(rows) for rows in row_batches)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP TABLE {RAW_TABLE}")
    return {
        "rows": rows_count,
        "seconds": round(elapsed_s, 3),
        "rows_per_s": round(rows_count / elapsed_s),
    }


def _row(t: Transfer, batch_index: int) -> Row:
    timestamp_ns = time.time_ns() + batch_index  # like the ledger's: increasing, never reused
    return (
        t.id, t.debit_account_id, t.credit_account_id, t.amount, t.ledger, t.code,
        t.flags, t.pending_id, t.timeout_s, t.user_data, timestamp_ns,
    )  # fmt: skip


def verify_books(engine: Engine) -> dict[str, Any]:
    started_s = time.perf_counter()
    report = run_in_transaction(engine, check_books, read_only=True)
    if not report.ok:
        raise BenchFailure(f"books do not balance: {report.problems}")
    return {"books_balanced": True, "check_seconds": round(time.perf_counter() - started_s, 3)}


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
        yield engine, open_bench_accounts(engine, params.accounts, params.batch_size)
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
        batches = _batches(transfers, params.batch_size)
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
        out.update(distribution="skewed", hot_account_share=hot_share(transfers, accounts))
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
            _batches(
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
            _verdict("postgresql batched transfers/s", TARGET_POSTGRES_BATCHED_PER_S, measured)
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
