"""Crash safety: a writer killed with SIGKILL mid-batch leaves books that check and whole journals.

The writer is `ledger_crash_worker.py` in a child process on the test's database (SQLite file
or PostgreSQL). The test lets it commit a few batches, kills it part-way through the next one,
then runs the real `cloudpay ledger check` and inspects the rows it left.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import FixedClock
from cloudpay.ledger import (
    ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
    PENDING,
    NewAccount,
    Transfer,
    check_books,
    create_accounts,
    create_transfers,
    expire_pending_transfers,
    lookup_accounts,
)
from cloudpay.ledger.tables import ledger_pending, ledger_transfers
from tests.integration import ledger_crash_worker as worker

WORKER = Path(worker.__file__)
BATCHES_BEFORE_KILL = 3
LINE_TIMEOUT_S = 60


# --- the child process ----------------------------------------------------------------------
@dataclass
class Run:
    """What the killed worker said before it died."""

    begun: list[int] = field(default_factory=list)
    committed: dict[int, int] = field(default_factory=dict)  # batch -> journals ok
    expired: list[int] = field(default_factory=list)


def _lines(process: subprocess.Popen[str]) -> queue.Queue[tuple[float, str] | None]:
    """The child's stdout, line by line with arrival times, read on a thread (None at EOF)."""
    lines: queue.Queue[tuple[float, str] | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put((time.monotonic(), line.strip()))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _record(run: Run, line: str) -> str:
    kind, *values = line.split() or [""]
    if kind == "begin":
        run.begun.append(int(values[0]))
    elif kind == "committed":
        run.committed[int(values[0])] = int(values[1])
    elif kind == "expired":
        run.expired.append(int(values[0]))
    else:
        return ""  # a log line
    return kind


def _start(mode: str, url: str, isolation: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), mode, url, isolation],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _kill_mid_batch(process: subprocess.Popen[str], done_kind: str) -> Run:
    """Let the child finish a few batches, then SIGKILL it part-way into the next one.

    The delay after the next `begin` is a random fraction of the batches measured so far, so
    the kill lands inside the transaction (reads, inserts, balance updates or the commit).
    """
    run, lines, durations = Run(), _lines(process), list[float]()
    begun_at = 0.0
    try:
        while True:
            item = lines.get(timeout=LINE_TIMEOUT_S)
            assert item is not None, f"worker exited early: {process.wait()}"
            at, line = item
            kind = _record(run, line)
            if kind == "begin":
                begun_at = at
                if len(durations) >= BATCHES_BEFORE_KILL:
                    time.sleep(random.uniform(0.1, 0.8) * statistics.median(durations))
                    os.kill(process.pid, signal.SIGKILL)
                    break
            elif kind == done_kind:
                durations.append(at - begun_at)
    finally:
        process.kill()
        process.wait(timeout=30)
    while (item := lines.get(timeout=LINE_TIMEOUT_S)) is not None:  # what it said before dying
        _record(run, item[1])
    assert process.returncode == -signal.SIGKILL
    return run


def _start_ledger_check_cli(url: str) -> subprocess.Popen[str]:
    """`cloudpay ledger check --json` as an operator would run it after the crash (started
    now, awaited by `_assert_cli_check_ok`: its start-up overlaps the test's own checks)."""
    env = {**os.environ, "CLOUDPAY_DATABASE_URL": url, "CLOUDPAY_ENV": "test"}
    return subprocess.Popen(
        [sys.executable, "-m", "cloudpay", "ledger", "check", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _assert_cli_check_ok(check: subprocess.Popen[str]) -> None:
    out, err = check.communicate(timeout=120)
    assert check.returncode == 0, out + err
    report = json.loads(out)
    assert report["ok"] is True, report
    assert report["accounts"] > 0


def _assert_books_ok(engine: Engine) -> None:
    report = run_in_transaction(engine, check_books, read_only=True)
    assert report.ok, report.problems


# --- what the rows say ----------------------------------------------------------------------
def _journal_rows(engine: Engine) -> list[tuple[str, str, str, str, int]]:
    t = ledger_transfers.c

    def rows(uow: UnitOfWork) -> list[tuple[str, str, str, str, int]]:
        query = select(t.id, t.user_data, t.debit_account_id, t.credit_account_id, t.amount)
        return [(r[0], r[1], r[2], r[3], r[4]) for r in uow.connection.execute(query)]

    return run_in_transaction(engine, rows, read_only=True)


def _balances(engine: Engine, account_ids: list[str]) -> dict[str, tuple[int, int, int, int]]:
    found = run_in_transaction(
        engine, lambda uow: lookup_accounts(uow, account_ids), read_only=True
    )
    return {a.account.id: a.balance.as_tuple() for a in found}


def _assert_journals_whole(rows: list[tuple[str, str, str, str, int]]) -> Counter[int]:
    """Every journal is stored whole or not at all; returns whole journals per batch."""
    members: dict[str, list[str]] = defaultdict(list)
    for transfer_id, user_data, *_ in rows:
        if user_data is not None and user_data.startswith("j:"):
            members[user_data].append(transfer_id)
    per_batch: Counter[int] = Counter()
    for tag, ids in members.items():
        size = int(ids[0].rsplit("of", 1)[1])
        assert sorted(ids) == [f"t{tag[2:]}-{k}of{size}" for k in range(size)], (tag, ids)
        per_batch[int(tag[2:]) // worker.JOURNALS_PER_BATCH] += 1
    return per_batch


def _posted_from_rows(rows: list[tuple[str, str, str, str, int]]) -> dict[str, list[int]]:
    """Balances recomputed here, independently of the check: no holds in this workload."""
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for _, _, debit, credit, amount in rows:
        expected[debit][1] += amount
        expected[credit][3] += amount
    return expected


@pytest.mark.slow
def test_writer_killed_mid_batch_leaves_whole_journals_and_balanced_books(
    engine: Engine, database_url: str, pg_isolation: str
) -> None:
    """SIGKILL in the middle of a batch of linked journals: every batch reported committed is
    there, the one in flight is all or nothing, no journal is partly stored, stored balances
    equal the ones recomputed from transfers, `cloudpay ledger check` exits 0, and resending
    the batch in flight applies each of its journals once."""
    run = _kill_mid_batch(_start("journals", database_url, pg_isolation), "committed")

    cli_check = _start_ledger_check_cli(database_url)
    rows = _journal_rows(engine)
    whole = _assert_journals_whole(rows)
    in_flight = max(run.begun)
    assert len(run.committed) >= BATCHES_BEFORE_KILL
    for batch, journals_ok in run.committed.items():  # durable: told committed, so stored
        assert whole[batch] == journals_ok, (batch, whole[batch], journals_ok)
    assert set(whole) <= set(run.committed) | {in_flight}  # nothing from a batch not begun
    accounts = [worker.RESERVE, worker.FEES, worker.CLEARING, *worker.MERCHANTS]
    recomputed = _posted_from_rows(rows)
    assert _balances(engine, accounts) == {a: tuple(recomputed[a]) for a in accounts}
    _assert_cli_check_ok(cli_check)

    # Send the batch that was in flight again. Its outcome does not depend on when it is sent,
    # so: stored whole before → every good journal answers `exists`; not stored → they all
    # apply now; a batch half-committed by the crash would answer a mix of the two.
    resent = run_in_transaction(engine, lambda uow: create_transfers(uow, worker.batch(in_flight)))
    answers = {r.result for r in resent}
    assert not {"ok", "exists"} <= answers, "the batch in flight was partly committed"
    assert ("ok" in answers) == (whole[in_flight] == 0)
    if in_flight in run.committed:
        assert "ok" not in answers
    good_journals = len({worker.journal_tag(r.id) for r in resent}) - len(
        {worker.journal_tag(r.id) for r in resent if not r.ok}
    )
    assert _assert_journals_whole(_journal_rows(engine))[in_flight] == good_journals
    print(f"\nkilled in batch {in_flight}: {'committed' if whole[in_flight] else 'rolled back'}")
    _assert_books_ok(engine)


# --- expiry -----------------------------------------------------------------------------------
HOLDS = 2_500  # five passes of the worker's EXPIRY_PASS; it is killed in the fourth
HOLD_AMOUNT = 10


def _holds_due_now(engine: Engine) -> str:
    """A merchant with HOLDS one-second holds placed an hour ago, so all are due now."""
    merchant, clearing = (
        r.id
        for r in run_in_transaction(
            engine,
            lambda uow: create_accounts(uow, [
                NewAccount(owner="merchant:crash", code="merchant_pending", ledger="CNY",
                           flags=ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS, id="acc_merchant"),
                NewAccount(owner="platform", code="channel_clearing", ledger="CNY",
                           balance_shards=16, id="acc_clearing"),
            ]),
        )
    )  # fmt: skip
    an_hour_ago = FixedClock(datetime.now(UTC) - timedelta(hours=1))
    holds = [Transfer("fund", clearing, merchant, HOLDS * HOLD_AMOUNT, "CNY", "capture")] + [
        Transfer(f"hold-{n}", merchant, clearing, HOLD_AMOUNT, "CNY", "hold", flags=PENDING,
                 timeout_s=1)
        for n in range(HOLDS)
    ]  # fmt: skip
    results = run_in_transaction(
        engine, lambda uow: create_transfers(uow, holds), clock=an_hour_ago
    )
    assert {r.result for r in results} == {"ok"}
    return merchant


def _pending_statuses(engine: Engine) -> Counter[str]:
    p = ledger_pending.c

    def count(uow: UnitOfWork) -> Counter[str]:
        query = select(p.status, func.count()).group_by(p.status)
        return Counter(dict(uow.connection.execute(query).all()))

    return run_in_transaction(engine, count, read_only=True)


@pytest.mark.slow
def test_expiry_job_killed_mid_pass_releases_each_hold_exactly_once(
    engine: Engine, database_url: str, pg_isolation: str
) -> None:
    """SIGKILL during `expire_pending_transfers`: each pass is all or nothing (a hold marked
    expired has its reservation released, one still pending keeps it), the books check, and
    running the job again releases every remaining hold exactly once."""
    merchant = _holds_due_now(engine)
    run = _kill_mid_batch(_start("expire", database_url, pg_isolation), "expired")

    _assert_books_ok(engine)  # the CLI's check, in-process: the journals test runs the CLI
    statuses = _pending_statuses(engine)
    assert sum(statuses.values()) == HOLDS
    # Whole passes only: those it reported, plus the one it was in if it committed unreported.
    assert statuses["expired"] in (sum(run.expired), sum(run.expired) + worker.EXPIRY_PASS)
    still_held = statuses["pending"] * HOLD_AMOUNT
    total = HOLDS * HOLD_AMOUNT
    assert _balances(engine, [merchant])[merchant] == (still_held, 0, 0, total)

    print(f"\nkilled in an expiry pass: {statuses['expired']} of {HOLDS} holds had expired")
    released = 0
    while expired := run_in_transaction(engine, expire_pending_transfers):
        released += expired
    assert released == statuses["pending"]
    assert _pending_statuses(engine) == {"expired": HOLDS}
    assert _balances(engine, [merchant])[merchant] == (0, 0, 0, total)
    _assert_books_ok(engine)
