"""How `cloudpay bench ledger` runs a workload and what it compares it with.

Each run counts results by code (only `exceeds_credits` is expected: anything else is a bench
or ledger bug and fails loudly), retries, wall and CPU time. The baselines insert the very same
rows with a bare `executemany`, one transaction per batch, in the same database and run.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.ledger import (
    Transfer,
    TransferResult,
    check_books,
    create_transfer,
    create_transfers,
)

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
Row = tuple[str, str, str, int | None, str, str, int, str | None, int, str | None, int]


class BenchFailure(RuntimeError):
    """The ledger misbehaved under load (books unbalanced, an unexpected refusal)."""


@dataclass
class RunStats:
    """One run's counts. `client_cpu_s` is this process's CPU time: all of it is the ledger's
    own work on SQLite (in process), the Python side only on PostgreSQL."""

    n: int = 0
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0
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
            "client_cpu_seconds": round(self.client_cpu_s, 3),
            "transfers_per_s": round(self.n / self.elapsed_s),
            "refused": sum(self.refusals.values()),
            "refused_by_code": dict(self.refusals),
            "transactions": self.transactions,
            "retries": self.retries,
        }


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
    started_s, started_cpu_s = time.perf_counter(), time.process_time()
    for batch in batches:
        results, retries = submit_batch(engine, batch)
        stats.count(results, retries)
        advance(len(batch))
    stats.elapsed_s = time.perf_counter() - started_s
    stats.client_cpu_s = time.process_time() - started_cpu_s
    return stats


def run_single_commits(
    engine: Engine, transfers: Sequence[Transfer], advance: Callable[[int], None]
) -> RunStats:
    stats = RunStats()
    started_s, started_cpu_s = time.perf_counter(), time.process_time()
    for index, transfer in enumerate(transfers):
        result, retries = submit_one(engine, transfer)
        stats.count([result], retries)
        if index % 500 == 499:
            advance(500)
    stats.elapsed_s = time.perf_counter() - started_s
    stats.client_cpu_s = time.process_time() - started_cpu_s
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

    started_s, started_cpu_s = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=len(per_writer)) as pool:
        for future in [pool.submit(writer, batches) for batches in per_writer]:
            future.result()
    total.elapsed_s = time.perf_counter() - started_s
    total.client_cpu_s = time.process_time() - started_cpu_s
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


def empty_transactions_per_s(engine: Engine, count: int) -> int:
    """`run_in_transaction` around nothing: the ceiling of any one-transfer-per-commit rate."""
    started_s = time.perf_counter()
    for _ in range(count):
        run_in_transaction(engine, _nothing)
    return round(count / (time.perf_counter() - started_s))


def _nothing(_uow: UnitOfWork) -> None:
    return None


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
