"""Concurrent writers on the ledger: no lost update, no overdraft, every id applied at most once.

The PostgreSQL tests must pass at READ COMMITTED (row locks) and with `--pg-isolation
SERIALIZABLE`, where the writes are only correct because `run_in_transaction` retries
serialization failures — the way they will run on CockroachDB. Each test counts the retries it
caused (`retries` fixture) and prints them, so `pytest -s` shows what the conflicts cost.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError

from cloudpay.db import unit_of_work
from cloudpay.db.engine import make_engine
from cloudpay.db.retry import RetryableConflict, is_retryable
from cloudpay.db.unit_of_work import (
    TransactionRetriesExhausted,
    UnitOfWork,
    run_in_transaction,
)
from cloudpay.kernel.clock import SystemClock
from cloudpay.ledger import (
    ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
    LINKED,
    PENDING,
    POST_PENDING,
    VOID_PENDING,
    CheckReport,
    NewAccount,
    Purpose,
    Transfer,
    TransferResult,
    check_books,
    create_accounts,
    create_transfers,
    expire_pending_transfers,
    lookup_accounts,
    lookup_transfers,
    open_chart_account,
)
from cloudpay.ledger import repository as ledger_repository
from cloudpay.ledger.model import TRANSFER_RESULT_CODES, PendingState
from cloudpay.ledger.service import get_pending_state
from cloudpay.ledger.tables import ledger_accounts, ledger_balances

T = TypeVar("T")
THREADS = 8
HOT_SHARDS = 16
MERCHANTS = 4
MERCHANT_FUNDS = 20_000
MAX_RESUBMISSIONS = 10
REFUSALS = frozenset(TRANSFER_RESULT_CODES) - {"exists"}
Tuple4 = tuple[int, int, int, int]


# --- instruments ------------------------------------------------------------------------
class RetryCounter:
    """Wraps `is_retryable` to count, by cause, every conflict the boundary retried."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_cause: Counter[str] = Counter()

    def __call__(self, error: BaseException) -> bool:
        retryable = is_retryable(error)
        if retryable:
            with self._lock:
                self.by_cause[_cause(error)] += 1
        return retryable

    @property
    def total(self) -> int:
        return sum(self.by_cause.values())


def _cause(error: BaseException) -> str:
    if isinstance(error, RetryableConflict):
        return type(error).__name__
    if isinstance(error, DBAPIError):
        return getattr(error.orig, "sqlstate", None) or "sqlite_busy"
    return type(error).__name__


@pytest.fixture
def retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[RetryCounter]:
    counter = RetryCounter()
    monkeypatch.setattr(unit_of_work, "is_retryable", counter)
    yield counter
    print(f"\nretries by cause: {dict(counter.by_cause)} (total {counter.total})")


@pytest.fixture
def sqlite_file_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite file shared by several threads (the `engine` fixture's SQLite side)."""
    if "sqlite" not in str(request.config.getoption("--backends")):
        pytest.skip("SQLite not among --backends")
    path = tmp_path / "cloudpay.db"
    shutil.copy(request.getfixturevalue("sqlite_template"), path)
    the_engine = make_engine(f"sqlite:///{path}")
    yield the_engine
    the_engine.dispose()


def _in_threads(count: int, work: Callable[[int], T]) -> list[T]:
    """Run `work(i)` for i in range(count) on `count` threads released together."""
    start = threading.Barrier(count)

    def run(index: int) -> T:
        start.wait(timeout=30)
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def _transfer(engine: Engine, clock: SystemClock, *transfers: Transfer) -> list[TransferResult]:
    return run_in_transaction(
        engine, lambda uow: create_transfers(uow, list(transfers)), clock=clock
    )


def _open(engine: Engine, *accounts: NewAccount) -> list[str]:
    results = run_in_transaction(engine, lambda uow: create_accounts(uow, list(accounts)))
    assert all(r.result == "ok" for r in results), results
    return [r.id for r in results]


def _balances(engine: Engine, account_ids: list[str]) -> dict[str, Tuple4]:
    found = run_in_transaction(
        engine, lambda uow: lookup_accounts(uow, account_ids), read_only=True
    )
    return {a.account.id: a.balance.as_tuple() for a in found}


def _stored(engine: Engine, ids: list[str]) -> dict[str, int]:
    records = run_in_transaction(engine, lambda uow: lookup_transfers(uow, ids), read_only=True)
    return {r.id: r.amount for r in records}


def _pending_state(engine: Engine, pending_id: str) -> PendingState | None:
    return run_in_transaction(
        engine, lambda uow: get_pending_state(uow, pending_id), read_only=True
    )


def _assert_books_ok(engine: Engine) -> None:
    report = run_in_transaction(engine, check_books, read_only=True)
    assert report.ok, report.problems


# --- the hammer -------------------------------------------------------------------------
@dataclass
class World:
    reserve: str
    clearing: str
    fees: str
    merchants: list[str]

    @property
    def all(self) -> list[str]:
        return [self.reserve, self.clearing, self.fees, *self.merchants]


def _world(engine: Engine, clock: SystemClock) -> World:
    hot = [
        NewAccount(owner="platform", code=code, ledger="CNY", balance_shards=HOT_SHARDS)
        for code in ("bank_reserve", "channel_clearing", "fee_income")
    ]
    merchants = [
        NewAccount(owner=f"merchant:{i}", code="merchant_pending", ledger="CNY",
                   flags=ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS)
        for i in range(MERCHANTS)
    ]  # fmt: skip
    reserve, clearing, fees, *merchant_ids = _open(engine, *hot, *merchants)
    funding = [
        Transfer(f"fund-{m}", reserve, m, MERCHANT_FUNDS, "CNY", "capture") for m in merchant_ids
    ]
    assert {r.result for r in _transfer(engine, clock, *funding)} == {"ok"}
    return World(reserve, clearing, fees, merchant_ids)


@dataclass
class Seen:
    """What one thread submitted and the result it was told, in order."""

    submitted: list[Transfer] = field(default_factory=list)
    results: list[TransferResult] = field(default_factory=list)
    resubmitted: int = 0  # requests the boundary gave up on (a 503), sent again with same ids


def _hammer_thread(engine: Engine, clock: SystemClock, world: World, index: int, ops: int) -> Seen:
    rng = random.Random(index)
    seen = Seen()
    holds: list[Transfer] = []
    counter = count()

    def next_id() -> str:
        return f"h{index}-{next(counter)}"

    def submit(*transfers: Transfer) -> list[TransferResult]:
        for _ in range(MAX_RESUBMISSIONS):
            try:
                results = _transfer(engine, clock, *transfers)
                break
            except TransactionRetriesExhausted:
                # What a client does with the 503: send the same request again, same ids.
                # Every attempt was rolled back, so none of these ids may be stored.
                assert not _stored(engine, [t.id for t in transfers])
                seen.resubmitted += 1
        else:
            pytest.fail(f"gave up {MAX_RESUBMISSIONS} times on {transfers}")
        seen.submitted.extend(transfers)
        seen.results.extend(results)
        return results

    def merchant() -> str:
        return rng.choice(world.merchants)

    def move(debit: str, credit: str, flags: int = 0) -> Transfer:
        return Transfer(next_id(), debit, credit, rng.randint(1, 3_000), "CNY", "move", flags=flags)

    for _ in range(ops):
        kind = rng.choice(("single", "single", "batch", "journal", "hold", "resolve", "refill"))
        if kind == "single":
            a, b = rng.sample(world.merchants, 2)
            submit(move(a, rng.choice((b, world.clearing, world.fees))))
        elif kind == "batch":
            submit(*(move(merchant(), world.clearing) for _ in range(rng.randint(2, 5))))
        elif kind == "journal":  # a capture split three ways, all or nothing
            m, other = rng.sample(world.merchants, 2)
            submit(
                move(m, world.fees, LINKED),
                move(m, other, LINKED),
                move(m, world.clearing),
            )
        elif kind == "hold":
            hold = move(merchant(), world.clearing, PENDING)
            if submit(hold)[0].result == "ok":
                holds.append(hold)
        elif kind == "resolve" and holds:
            hold = holds.pop(rng.randrange(len(holds)))
            flags = rng.choice((POST_PENDING, VOID_PENDING))
            amount = rng.randint(1, hold.amount or 1) if flags == POST_PENDING else None
            [result] = submit(Transfer(next_id(), pending_id=hold.id, amount=amount, flags=flags))
            assert result.result == "ok", result  # only this thread resolves its holds
        else:  # channel clearing pays merchants back, so the accounts keep moving
            submit(
                *(move(world.clearing, m, 0) for m in rng.sample(world.merchants, 2)),
            )
    return seen


def _expected_balances(world: World, seen: list[Seen]) -> dict[str, list[int]]:
    """Balances rebuilt only from what the threads were told was `ok`."""
    expected = {account: [0, 0, 0, 0] for account in world.all}
    for merchant in world.merchants:
        expected[world.reserve][1] += MERCHANT_FUNDS
        expected[merchant][3] += MERCHANT_FUNDS
    pendings: dict[str, Transfer] = {}
    for thread in seen:
        for transfer, result in zip(thread.submitted, thread.results, strict=True):
            if result.result != "ok":
                continue
            if transfer.flags & PENDING:
                pendings[transfer.id] = transfer
                _add(expected, transfer.debit_account_id, transfer.credit_account_id, 0, transfer)
            elif transfer.flags & (POST_PENDING | VOID_PENDING):
                assert transfer.pending_id is not None
                hold = pendings.pop(transfer.pending_id)
                assert hold.amount is not None
                hold_release = Transfer(hold.id, amount=-hold.amount)
                _add(expected, hold.debit_account_id, hold.credit_account_id, 0, hold_release)
                if transfer.flags & POST_PENDING:
                    assert result.amount == (transfer.amount or hold.amount)
                    posted = Transfer(transfer.id, amount=result.amount)
                    _add(expected, hold.debit_account_id, hold.credit_account_id, 1, posted)
            else:
                _add(expected, transfer.debit_account_id, transfer.credit_account_id, 1, transfer)
    return expected


def _add(
    expected: dict[str, list[int]], debit: str, credit: str, posted: int, transfer: Transfer
) -> None:
    assert transfer.amount is not None
    expected[debit][posted] += transfer.amount  # debits_pending (0) or debits_posted (1)
    expected[credit][2 + posted] += transfer.amount  # credits_pending (2) or credits_posted (3)


def _check_until(engine: Engine, stop: threading.Event, reports: list[CheckReport]) -> None:
    while not stop.wait(0.02):
        reports.append(run_in_transaction(engine, check_books, read_only=True))


def _hammer_and_verify(engine: Engine, threads: int, ops: int) -> Counter[str]:
    clock = SystemClock()
    world = _world(engine, clock)
    stop, checks = threading.Event(), list[CheckReport]()
    checker = threading.Thread(target=_check_until, args=(engine, stop, checks))
    checker.start()
    try:
        seen = _in_threads(threads, lambda i: _hammer_thread(engine, clock, world, i, ops))
    finally:
        stop.set()
        checker.join()
    # The books check, run while the writers ran, never saw a half-applied state.
    assert checks, "the checker never ran"
    assert [c.problems for c in checks if not c.ok] == []

    submitted = [(t, r) for s in seen for t, r in zip(s.submitted, s.results, strict=True)]
    stored = _stored(engine, [t.id for t, _ in submitted])
    outcomes: Counter[str] = Counter(r.result for _, r in submitted)
    outcomes["resubmitted_after_retries_exhausted"] = sum(s.resubmitted for s in seen)
    for transfer, result in submitted:
        if result.result == "ok":  # applied exactly once: stored, with the amount it was told
            assert stored.get(transfer.id) == result.amount, (transfer, result)
        else:  # refused with a reason, and left no trace
            assert result.result in REFUSALS, (transfer, result)
            assert transfer.id not in stored, (transfer, result)

    expected = _expected_balances(world, seen)
    actual = _balances(engine, world.all)
    assert actual == {account: tuple(b) for account, b in expected.items()}  # no lost update
    for merchant in world.merchants:
        dp, dpo, _, cpo = actual[merchant]
        assert dp + dpo <= cpo, f"overdraft on {merchant}: {actual[merchant]}"
    _assert_books_ok(engine)
    # The run must have exercised both sides: money moved, and overdrafts were refused.
    assert outcomes["ok"] > threads * ops // 2, outcomes
    assert outcomes["exceeds_credits"] > 0, outcomes
    assert outcomes["linked_event_failed"] > 0, outcomes
    return outcomes


@pytest.mark.postgres_only
def test_hot_accounts_hammered_by_threads_lose_nothing_and_never_overdraw(
    engine: Engine, retries: RetryCounter
) -> None:
    """Eight threads of transfers, batches, journals and holds on four limited merchants and
    three 16-shard hot accounts end with balances equal to the sum of what each saw `ok`,
    no overdraft, every refusal unstored, and books that check (also while they run)."""
    outcomes = _hammer_and_verify(engine, THREADS, ops=50)
    print(f"\nhammer outcomes: {dict(outcomes)}")


def test_sqlite_writers_in_threads_lose_nothing_and_never_overdraw(
    sqlite_file_engine: Engine, retries: RetryCounter
) -> None:
    """On one SQLite file, threads serialised by `BEGIN IMMEDIATE` + busy timeout + retry end
    with the same exact balances, no overdraft and books that check (also while they run)."""
    outcomes = _hammer_and_verify(sqlite_file_engine, threads=6, ops=40)
    print(f"\nhammer outcomes: {dict(outcomes)}")


# --- one id, many submitters --------------------------------------------------------------
@pytest.mark.postgres_only
def test_same_transfer_id_raced_after_every_thread_looked_is_stored_once(
    engine: Engine, retries: RetryCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When every thread has already seen the id as new, one insert wins, the others lose on
    the unique key, are retried, and the retry answers `exists` (their own transfers still
    apply once)."""
    clock = SystemClock()
    reserve, clearing = _open(
        engine,
        NewAccount(owner="platform", code="bank_reserve", ledger="CNY", balance_shards=4),
        NewAccount(owner="platform", code="channel_clearing", ledger="CNY", balance_shards=16),
    )
    # Hold every thread's first attempt between its reads and its insert until all have read.
    looked = threading.Barrier(THREADS)
    first_attempt_done = threading.local()
    insert_transfers = ledger_repository.insert_transfers

    def insert_after_everyone_looked(connection: Connection, rows: Sequence[Any]) -> None:
        if not getattr(first_attempt_done, "value", False):
            first_attempt_done.value = True
            looked.wait(timeout=30)
        insert_transfers(connection, rows)

    monkeypatch.setattr(ledger_repository, "insert_transfers", insert_after_everyone_looked)
    shared = Transfer("shared-1", reserve, clearing, 700, "CNY", "capture")

    def submit(index: int) -> list[str]:
        own = Transfer(f"own-{index}", reserve, clearing, 10 + index, "CNY", "capture")
        return [r.result for r in _transfer(engine, clock, shared, own)]

    results = _in_threads(THREADS, submit)

    assert sorted(r[0] for r in results) == ["exists"] * (THREADS - 1) + ["ok"]
    assert all(r[1] == "ok" for r in results)
    assert retries.total >= THREADS - 1  # every loser was refused on the key and ran again
    own_total = sum(10 + i for i in range(THREADS))
    assert _balances(engine, [clearing])[clearing] == (0, 0, 0, 700 + own_total)
    _assert_books_ok(engine)


@pytest.mark.postgres_only
def test_same_transfer_id_submitted_by_many_threads_is_stored_once(
    engine: Engine, retries: RetryCounter
) -> None:
    """Free-running threads resubmitting the same ids into a limited account: each id is
    applied once, every other submitter sees `exists`, the balance counts each once."""
    clock = SystemClock()
    reserve, merchant = _open(
        engine,
        NewAccount(owner="platform", code="bank_reserve", ledger="CNY", balance_shards=4),
        NewAccount(owner="merchant:x", code="merchant_pending", ledger="CNY",
                   flags=ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS),
    )  # fmt: skip
    ids = [f"capture-{n}" for n in range(20)]

    def submit(index: int) -> list[str]:
        order = random.Random(index).sample(ids, len(ids))
        out: list[str] = []
        for transfer_id in order:
            t = Transfer(transfer_id, reserve, merchant, 100, "CNY", "capture")
            out.extend(r.result for r in _transfer(engine, clock, t))
        return out

    results = Counter(code for codes in _in_threads(THREADS, submit) for code in codes)

    assert results == {"ok": len(ids), "exists": len(ids) * (THREADS - 1)}
    assert _balances(engine, [merchant])[merchant] == (0, 0, 0, 100 * len(ids))
    _assert_books_ok(engine)


# --- pending transfers raced --------------------------------------------------------------
def _funded_merchant(engine: Engine, clock: SystemClock, funds: int) -> tuple[str, str]:
    reserve, merchant = _open(
        engine,
        NewAccount(owner="platform", code="bank_reserve", ledger="CNY", balance_shards=4),
        NewAccount(owner="merchant:x", code="merchant_pending", ledger="CNY",
                   flags=ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS),
    )  # fmt: skip
    assert _transfer(engine, clock, Transfer("fund", reserve, merchant, funds, "CNY", "capture"))[
        0
    ].ok
    return reserve, merchant


@pytest.mark.postgres_only
def test_pending_transfer_posted_and_voided_concurrently_has_one_winner(
    engine: Engine, retries: RetryCounter
) -> None:
    """Threads racing to post and void the same hold: exactly one wins, every other one is
    told `pending_transfer_already_posted`/`_voided` to match the winner, and the balance
    moved once."""
    clock = SystemClock()
    reserve, merchant = _funded_merchant(engine, clock, 100_000)
    rounds = 12
    holds = [
        Transfer(f"hold-{n}", merchant, reserve, 1_000, "CNY", "hold", flags=PENDING)
        for n in range(rounds)
    ]
    assert {r.result for r in _transfer(engine, clock, *holds)} == {"ok"}
    posted_total = 0
    for hold in holds:

        def resolve(index: int, hold_id: str = hold.id) -> TransferResult:
            flags = POST_PENDING if index % 2 == 0 else VOID_PENDING
            amount = 400 + index if flags == POST_PENDING else None
            attempt = Transfer(f"{hold_id}-by-{index}", pending_id=hold_id, amount=amount,
                               flags=flags)  # fmt: skip
            return _transfer(engine, clock, attempt)[0]

        results = _in_threads(THREADS, resolve)
        winners = [r for r in results if r.result == "ok"]
        assert len(winners) == 1, results
        [winner] = winners
        won_by_post = int(winner.id.rsplit("-", 1)[1]) % 2 == 0
        lost_code = f"pending_transfer_already_{'posted' if won_by_post else 'voided'}"
        assert sorted(r.result for r in results) == sorted(["ok"] + [lost_code] * (THREADS - 1))
        stored = _stored(engine, [r.id for r in results])
        assert list(stored) == [winner.id]
        state = _pending_state(engine, hold.id)
        assert state is not None
        assert state.status == ("posted" if won_by_post else "voided")
        assert state.resolved_by == winner.id
        if won_by_post:
            assert winner.amount is not None
            posted_total += winner.amount

    assert _balances(engine, [merchant])[merchant] == (0, posted_total, 0, 100_000)
    _assert_books_ok(engine)


@pytest.mark.postgres_only
def test_post_void_and_expiry_racing_at_the_timeout_resolve_each_hold_once(
    engine: Engine, retries: RetryCounter
) -> None:
    """On the real clock, posts, voids and the expiry job racing around a hold's timeout
    resolve each hold exactly once: one post or void `ok`, or one expiry, never two."""
    clock = SystemClock()
    reserve, merchant = _funded_merchant(engine, clock, 100_000)
    holds = [
        Transfer(f"hold-{n}", merchant, reserve, 1_000, "CNY", "hold", flags=PENDING, timeout_s=1)
        for n in range(6)
    ]
    assert {r.result for r in _transfer(engine, clock, *holds)} == {"ok"}
    expires_at = time.monotonic() + 1.0

    def race(index: int) -> tuple[list[TransferResult], int]:
        rng = random.Random(index)
        results, expired = [], 0
        for hold in rng.sample(holds, len(holds)):
            time.sleep(max(0.0, expires_at + rng.uniform(-0.15, 0.15) - time.monotonic()))
            if index % 4 == 3:
                expired += run_in_transaction(engine, expire_pending_transfers, clock=clock)
                continue
            flags = POST_PENDING if index % 2 == 0 else VOID_PENDING
            attempt = Transfer(f"{hold.id}-by-{index}", pending_id=hold.id, flags=flags)
            results.append(_transfer(engine, clock, attempt)[0])
        return results, expired

    raced = _in_threads(THREADS, race)
    time.sleep(max(0.0, expires_at + 0.05 - time.monotonic()))
    expired_total = sum(e for _, e in raced) + run_in_transaction(
        engine, expire_pending_transfers, clock=clock
    )
    resolutions = [r for results, _ in raced for r in results]
    assert {r.result for r in resolutions} <= {
        "ok", "pending_transfer_already_posted", "pending_transfer_already_voided",
        "pending_transfer_expired",
    }  # fmt: skip
    winners = Counter(r.id.split("-by-")[0] for r in resolutions if r.result == "ok")
    statuses = {}
    for hold in holds:
        state = _pending_state(engine, hold.id)
        assert state is not None
        statuses[hold.id] = state.status
        if state.status == "expired":
            assert winners[hold.id] == 0
        else:
            assert winners[hold.id] == 1, (hold.id, state)
            assert state.resolved_by is not None
            assert state.resolved_by.startswith(f"{hold.id}-by-")
    assert expired_total == Counter(statuses.values())["expired"]
    posted = sum(1_000 for s in statuses.values() if s == "posted")
    assert _balances(engine, [merchant])[merchant] == (0, posted, 0, 100_000)
    _assert_books_ok(engine)
    print(f"\nhold outcomes: {dict(Counter(statuses.values()))}")


# --- accounts -----------------------------------------------------------------------------
@pytest.mark.postgres_only
def test_same_account_id_created_concurrently_makes_one_account(
    engine: Engine, retries: RetryCounter
) -> None:
    """Threads creating the same account id: one `ok`, the rest `exists`, one account row and
    exactly its 16 balance shards."""
    new = NewAccount(owner="platform", code="channel_clearing", ledger="CNY",
                     balance_shards=HOT_SHARDS, id="acc_same")  # fmt: skip

    results = _in_threads(
        THREADS, lambda _: run_in_transaction(engine, lambda uow: create_accounts(uow, [new]))
    )

    assert sorted(r.result for [r] in results) == ["exists"] * (THREADS - 1) + ["ok"]

    def rows(uow: UnitOfWork) -> tuple[int, int]:
        c = uow.connection
        accounts = c.execute(select(func.count()).select_from(ledger_accounts)).scalar_one()
        shards = c.execute(select(func.count()).select_from(ledger_balances)).scalar_one()
        return accounts, shards

    assert run_in_transaction(engine, rows, read_only=True) == (1, HOT_SHARDS)


@pytest.mark.postgres_only
def test_chart_account_opened_concurrently_is_one_account(
    engine: Engine, retries: RetryCounter
) -> None:
    """Threads opening the same owner's chart account (no id given) all get the same one."""
    opened = _in_threads(
        THREADS,
        lambda _: run_in_transaction(
            engine, lambda uow: open_chart_account(uow, Purpose.MERCHANT_PENDING, "merchant:m1")
        ),
    )
    assert len({account.id for account in opened}) == 1


@pytest.mark.postgres_only
def test_one_account_opened_under_different_ids_concurrently_is_one_account(
    engine: Engine, retries: RetryCounter
) -> None:
    """Threads opening the same (owner, code, ledger) under different ids: one `ok`, the rest
    `exists_with_different_id` after losing the unique key and retrying, one account row."""

    def open_as(index: int) -> str:
        new = NewAccount(
            owner="merchant:m2",
            code="merchant_pending",
            ledger="CNY",
            flags=ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
            id=f"acc_try_{index}",
        )
        [result] = run_in_transaction(engine, lambda uow: create_accounts(uow, [new]))
        return result.result

    results = _in_threads(THREADS, open_as)

    assert sorted(results) == ["exists_with_different_id"] * (THREADS - 1) + ["ok"]
    rows = select(func.count()).select_from(ledger_accounts)
    assert run_in_transaction(engine, lambda uow: uow.connection.execute(rows).scalar_one()) == 1
