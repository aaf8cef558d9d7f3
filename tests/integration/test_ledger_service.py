"""The ledger's use cases against real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import FixedClock
from cloudpay.ledger import (
    ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
    BALANCING_DEBIT,
    LINKED,
    PENDING,
    POST_PENDING,
    VOID_PENDING,
    NewAccount,
    Transfer,
    check_books,
    create_accounts,
    create_transfers,
    expire_pending_transfers,
    get_account,
)
from cloudpay.ledger.service import account_statement, balance_as_of


def _open(engine: Engine, clock: FixedClock, *accounts: NewAccount) -> list[str]:
    results = run_in_transaction(
        engine, lambda uow: create_accounts(uow, list(accounts)), clock=clock
    )
    assert all(r.ok for r in results), results
    return [r.id for r in results]


def _transfer(engine: Engine, clock: FixedClock, *transfers: Transfer) -> list[str]:
    results = run_in_transaction(
        engine, lambda uow: create_transfers(uow, list(transfers)), clock=clock
    )
    return [r.result for r in results]


def _balance(engine: Engine, account_id: str) -> tuple[int, int, int, int]:
    found = run_in_transaction(engine, lambda uow: get_account(uow, account_id), read_only=True)
    return found.balance.as_tuple()


def _world(engine: Engine, clock: FixedClock) -> tuple[str, str, str]:
    return tuple(  # type: ignore[return-value]
        _open(
            engine,
            clock,
            NewAccount(owner="platform", code="funding", ledger="CNY", balance_shards=4),
            NewAccount(owner="merchant:a", code="merchant_pending", ledger="CNY",
                       flags=ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS),
            NewAccount(owner="merchant:b", code="merchant_pending", ledger="CNY",
                       flags=ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS),
        )
    )  # fmt: skip


def test_overdraft_is_refused_and_books_balance(engine: Engine, clock: FixedClock) -> None:
    """A limited account cannot be overdrawn; what was refused left no trace."""
    world, a, b = _world(engine, clock)
    assert _transfer(engine, clock, Transfer("t1", world, a, 1_000, "CNY", "capture")) == ["ok"]
    assert _transfer(engine, clock, Transfer("t2", a, b, 1_001, "CNY", "move")) == [
        "exceeds_credits"
    ]
    assert _balance(engine, a) == (0, 0, 0, 1_000)
    report = run_in_transaction(engine, check_books, read_only=True)
    assert report.ok, report.problems


def test_replay_returns_exists_and_changes_nothing(engine: Engine, clock: FixedClock) -> None:
    """The same transfer id with the same fields is `exists`; with other fields, a conflict."""
    world, a, _ = _world(engine, clock)
    first = Transfer("t1", world, a, 500, "CNY", "capture")
    assert _transfer(engine, clock, first) == ["ok"]
    assert _transfer(engine, clock, first) == ["exists"]
    changed = Transfer("t1", world, a, 501, "CNY", "capture")
    assert _transfer(engine, clock, changed) == ["exists_with_different_amount"]
    assert _balance(engine, a) == (0, 0, 0, 500)


def test_linked_chain_is_all_or_nothing(engine: Engine, clock: FixedClock) -> None:
    """One failing member fails the whole chain; unlinked neighbours are unaffected."""
    world, a, b = _world(engine, clock)
    results = _transfer(
        engine,
        clock,
        Transfer("t1", world, a, 100, "CNY", "capture", flags=LINKED),
        Transfer("t2", a, b, 150, "CNY", "split"),  # exceeds: a has 100
        Transfer("t3", world, b, 7, "CNY", "capture"),
    )
    assert results == ["linked_event_failed", "exceeds_credits", "ok"]
    assert _balance(engine, a) == (0, 0, 0, 0)
    assert _balance(engine, b) == (0, 0, 0, 7)


def test_pending_post_void_and_expiry(engine: Engine, clock: FixedClock) -> None:
    """Holds reserve funds; post moves part, void releases, a timeout expires the rest."""
    world, a, b = _world(engine, clock)
    _transfer(engine, clock, Transfer("fund", world, a, 1_000, "CNY", "capture"))
    assert _transfer(
        engine, clock,
        Transfer("h1", a, b, 600, "CNY", "hold", flags=PENDING, timeout_s=60),
        Transfer("h2", a, b, 300, "CNY", "hold", flags=PENDING, timeout_s=60),
        Transfer("h3", a, b, 200, "CNY", "hold", flags=PENDING),
    ) == ["ok", "ok", "exceeds_credits"]  # fmt: skip
    assert _transfer(
        engine, clock, Transfer("p1", pending_id="h1", amount=450, flags=POST_PENDING)
    ) == ["ok"]
    assert _transfer(engine, clock, Transfer("p2", pending_id="h1", flags=VOID_PENDING)) == [
        "pending_transfer_already_posted"
    ]
    assert _balance(engine, a) == (300, 450, 0, 1_000)
    clock.advance(seconds=61)
    assert _transfer(engine, clock, Transfer("p3", pending_id="h2", flags=POST_PENDING)) == [
        "pending_transfer_expired"
    ]
    assert run_in_transaction(engine, expire_pending_transfers, clock=clock) == 1
    assert _balance(engine, a) == (0, 450, 0, 1_000)
    assert run_in_transaction(engine, check_books, read_only=True).ok


def test_balancing_moves_at_most_the_balance(engine: Engine, clock: FixedClock) -> None:
    """A balancing debit sweeps what is there, never more."""
    world, a, b = _world(engine, clock)
    _transfer(engine, clock, Transfer("fund", world, a, 1_234, "CNY", "capture"))
    assert _transfer(
        engine, clock, Transfer("sweep", a, b, None, "CNY", "settle", flags=BALANCING_DEBIT)
    ) == ["ok"]
    assert _balance(engine, a) == (0, 1_234, 0, 1_234)
    assert _balance(engine, b) == (0, 0, 0, 1_234)


def test_statement_pages_and_balance_as_of(engine: Engine, clock: FixedClock) -> None:
    """The statement is newest first with a cursor; a past balance is recomputed exactly."""
    world, a, _ = _world(engine, clock)
    for i in range(5):
        _transfer(engine, clock, Transfer(f"t{i}", world, a, 100 + i, "CNY", "capture"))
        clock.advance(seconds=1)

    def statement(uow: UnitOfWork, after: str | None = None) -> list[str]:
        return [r.id for r in account_statement(uow, a, limit=2, starting_after=after)]

    assert run_in_transaction(engine, statement) == ["t4", "t3"]
    assert run_in_transaction(engine, lambda uow: statement(uow, "t3")) == ["t2", "t1"]
    as_of = FixedClock.DEFAULT_START + timedelta(seconds=2, milliseconds=500)
    from cloudpay.kernel.clock import ns_from_datetime

    past = run_in_transaction(engine, lambda uow: balance_as_of(uow, a, ns_from_datetime(as_of)))
    assert past.as_tuple() == (0, 0, 0, 100 + 101 + 102)


def test_closed_account_refuses_a_post_but_lets_a_hold_be_voided(
    engine: Engine, clock: FixedClock
) -> None:
    """Closing stops money moving in or out; releasing a hold is still allowed."""
    from cloudpay.ledger.service import set_account_closed

    world, a, b = _world(engine, clock)
    _transfer(engine, clock, Transfer("fund", world, a, 500, "CNY", "capture"))
    _transfer(engine, clock, Transfer("h1", a, b, 100, "CNY", "hold", flags=PENDING))
    _transfer(engine, clock, Transfer("h2", a, b, 100, "CNY", "hold", flags=PENDING))
    run_in_transaction(engine, lambda uow: set_account_closed(uow, b, closed=True), clock=clock)
    post = Transfer("p1", pending_id="h1", flags=POST_PENDING)
    assert _transfer(engine, clock, post) == ["credit_account_closed"]
    void = Transfer("v2", pending_id="h2", flags=VOID_PENDING)
    assert _transfer(engine, clock, void) == ["ok"]
    assert run_in_transaction(engine, check_books, read_only=True).ok
