"""Ledger properties through the real service and databases (SQLite and PostgreSQL).

The same generators and `ReferenceLedger` as the pure property tests, fewer examples: each
example opens fresh accounts in the test's database and checks the stored books after every
operation.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import FixedClock
from cloudpay.ledger import (
    ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
    Account,
    AccountWithBalance,
    CheckReport,
    NewAccount,
    Transfer,
    TransferRecord,
    check_books,
    create_accounts,
    create_transfers,
    expire_pending_transfers,
    lookup_accounts,
    lookup_transfers,
)
from cloudpay.ledger.model import EXISTS, PendingState
from cloudpay.ledger.service import balance_as_of, get_pending_state, set_account_closed
from tests.ledger_reference import (
    Balances,
    Pool,
    ReferenceLedger,
    copy_transfer,
    draw_accounts,
    draw_batch,
    ok_subset,
)

T = TypeVar("T")
Snapshot = tuple[
    CheckReport, list[AccountWithBalance], list[TransferRecord], dict[str, PendingState | None]
]
DATABASE_EXAMPLES = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class World:
    """One example's accounts and reference, over the test's (shared) database."""

    def __init__(self, engine: Engine, clock: FixedClock, data: st.DataObject) -> None:
        self.engine, self.clock, self.data = engine, clock, data
        self.pool = Pool(prefix=f"x{uuid.uuid4().hex[:10]}-")
        self.reference = ReferenceLedger()
        self.succeeded_batches: list[list[Transfer]] = []
        accounts = draw_accounts(data.draw, self.pool, data.draw(st.integers(0, 2)))
        for flags in (0, ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS):  # always two to pay between
            account_id = self.pool.new_id("acc")
            self.pool.ledger_of[account_id] = "CNY"
            accounts.append(Account(account_id, "CNY", "test", account_id, flags))
        self.open(accounts)

    def run(self, work: Callable[[UnitOfWork], T], *, read_only: bool = False) -> T:
        return run_in_transaction(self.engine, work, clock=self.clock, read_only=read_only)

    def open(self, accounts: list[Account]) -> None:
        """Open `accounts`; unlimited ones sometimes with sharded balances."""
        new = [
            NewAccount(
                owner=a.owner,
                code=a.code,
                ledger=a.ledger,
                flags=a.flags,
                balance_shards=1 if a.flags else self.data.draw(st.sampled_from([1, 1, 3])),
                id=a.id,
            )
            for a in accounts
        ]
        results = self.run(lambda uow: create_accounts(uow, new))
        assert [r.result for r in results] == ["ok"] * len(accounts), results
        for account in accounts:
            self.reference.open_account(account)

    def submit(self, batch: list[Transfer]) -> list[str]:
        expected = self.reference.submit(batch, self.clock.now_ns())
        results = self.run(lambda uow: create_transfers(uow, batch))
        assert [(r.result, r.amount, r.timestamp_ns) for r in results] == expected, batch
        self.pool.note(batch, [(r.result, r.amount) for r in results])
        return [r.result for r in results]

    def expire(self) -> None:
        expired = self.run(expire_pending_transfers)
        assert expired >= len(self.reference.expire(self.clock.now_ns()))

    def assert_books_match_reference(self) -> None:
        def read(uow: UnitOfWork) -> Snapshot:
            report = check_books(uow)
            accounts = lookup_accounts(uow, list(self.reference.accounts))
            records = lookup_transfers(uow, list(self.reference.transfers))
            states = {i: get_pending_state(uow, i) for i in self.reference.status}
            return report, accounts, records, states

        report, accounts, records, states = self.run(read, read_only=True)
        assert report.ok, report.problems
        stored = {a.account.id: a.balance.as_tuple() for a in accounts}
        assert stored == {i: self.reference.balance(i) for i in self.reference.accounts}
        assert {r.id: r for r in records} == self.reference.transfers
        statuses = {i: s.status if s else None for i, s in states.items()}
        assert statuses == self.reference.status

    def take(self, step: str) -> None:
        draw = self.data.draw
        if step == "batch":
            batch = draw_batch(draw, self.pool)
            codes = self.submit(batch)
            if any(code in ("ok", EXISTS) for code in codes):
                self.succeeded_batches.append(ok_subset(batch, codes))
        elif step == "replay" and self.succeeded_batches:
            earlier = draw(st.sampled_from(self.succeeded_batches))
            assert self.submit([copy_transfer(t) for t in earlier]) == [EXISTS] * len(earlier)
        elif step == "advance":
            self.clock.advance(seconds=draw(st.sampled_from([1, 2, 5, 61])))
        elif step == "expire":
            self.expire()
        elif step == "close":
            account_id = draw(st.sampled_from(sorted(self.reference.accounts)))
            closed = draw(st.booleans())
            self.run(lambda uow: set_account_closed(uow, account_id, closed=closed))
            self.reference.set_closed(account_id, closed=closed)
        elif step == "open":
            self.open(draw_accounts(draw, self.pool, 1))

    def balances_as_of(self, instant_ns: int) -> Balances:
        def read(uow: UnitOfWork) -> Balances:
            return {
                i: balance_as_of(uow, i, instant_ns).as_tuple() for i in self.reference.accounts
            }

        return self.run(read, read_only=True)


@DATABASE_EXAMPLES
@given(data=st.data())
def test_any_sequence_of_operations_keeps_the_books_and_matches_the_reference(
    engine: Engine, clock: FixedClock, data: st.DataObject
) -> None:
    """After every batch, replay, clock move, expiry run or closure the books check passes and
    every stored result, transfer, hold and balance equals the reference ledger's."""
    world = World(engine, clock, data)
    for _ in range(data.draw(st.integers(1, 10), label="steps")):
        step = data.draw(st.sampled_from(["batch", "batch", "batch", "replay", "advance",
                                          "expire", "close", "open"]), label="step")  # fmt: skip
        world.take(step)
        world.assert_books_match_reference()


@DATABASE_EXAMPLES
@given(data=st.data())
def test_balance_as_of_any_recorded_instant_matches_the_reference(
    engine: Engine, clock: FixedClock, data: st.DataObject
) -> None:
    """A balance recomputed for a past instant equals the reference's balance at that instant,
    holds counting until they are posted, voided or due (whether or not expiry has run)."""
    world = World(engine, clock, data)
    snapshots: list[tuple[int, Balances]] = []
    for _ in range(data.draw(st.integers(2, 6), label="batches")):
        before_ns = clock.now_ns() - 1
        snapshots.append((before_ns, world.reference.snapshot_as_of(before_ns)))
        if data.draw(st.booleans(), label="run expiry"):
            world.expire()
        batch = draw_batch(data.draw, world.pool)
        world.submit(batch)
        after_ns = clock.now_ns() + len(batch)  # past the batch's last transfer timestamp
        snapshots.append((after_ns, world.reference.snapshot_as_of(after_ns)))
        clock.advance(seconds=data.draw(st.integers(1, 70)) + data.draw(st.integers(0, 999)) / 1e3)
    for instant_ns, expected in snapshots:
        assert world.balances_as_of(instant_ns) == expected, instant_ns


def test_ids_and_ledgers_with_a_trailing_newline_get_a_result_code(
    engine: Engine, clock: FixedClock
) -> None:
    """A trailing newline makes an id or ledger invalid, rather than a database error later."""
    accounts = [
        NewAccount(owner="o1", code="c", ledger="CNY", id="nl-a"),
        NewAccount(owner="o2", code="c", ledger="CNY", id="nl-b"),
        NewAccount(owner="o3", code="c", ledger="CNY\n", id="nl-c"),
        NewAccount(owner="o4", code="c", ledger="CNY", id="x" * 64 + "\n"),
    ]
    results = run_in_transaction(engine, lambda uow: create_accounts(uow, accounts), clock=clock)
    assert [r.result for r in results] == ["ok", "ok", "ledger_invalid", "id_invalid"]
    transfers = [
        Transfer("x" * 64 + "\n", "nl-a", "nl-b", 5, "CNY", "c"),
        Transfer("t1", "nl-a", "nl-b", 5, "CNY\n", "c"),
    ]
    results = run_in_transaction(engine, lambda uow: create_transfers(uow, transfers), clock=clock)
    assert [r.result for r in results] == ["id_invalid", "ledger_invalid"]
