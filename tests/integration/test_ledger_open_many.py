"""Opening many ledger accounts at once (`open_chart_accounts`, `open_accounts_by_key`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event

from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.errors import InvalidRequest
from cloudpay.ledger import (
    CHART,
    NewAccount,
    Purpose,
    check_books,
    get_account,
    merchant_owner,
    open_accounts_by_key,
    open_chart_account,
    open_chart_accounts,
    opening,
)


def _wanted(count: int) -> list[tuple[Purpose, str, str]]:
    return [(Purpose.MERCHANT_PENDING, merchant_owner(f"m{n:05d}"), "CNY") for n in range(count)]


def test_bulk_opening_finds_the_existing_and_opens_the_rest_with_chart_flags(
    engine: Engine, clock: FixedClock
) -> None:
    """Accounts opened singly before keep their ids; the others are new, with the chart's
    flags and shards and a zero balance; asking twice returns the same accounts."""
    before = run_in_transaction(
        engine,
        lambda uow: open_chart_account(uow, Purpose.MERCHANT_PENDING, merchant_owner("m00003")),
        clock=clock,
    )
    wanted = [*_wanted(5), (Purpose.FEE_INCOME, "platform", "CNY")]
    first = run_in_transaction(engine, lambda uow: open_chart_accounts(uow, wanted), clock=clock)
    again = run_in_transaction(engine, lambda uow: open_chart_accounts(uow, wanted), clock=clock)
    assert set(first) == set(wanted)
    assert {k: a.id for k, a in first.items()} == {k: a.id for k, a in again.items()}
    assert first[wanted[3]].id == before.id
    for (purpose, owner, currency), account in first.items():
        assert (account.owner, account.code, account.ledger) == (owner, purpose.value, currency)
        assert (account.flags, account.balance_shards) == (
            CHART[purpose].flags,
            CHART[purpose].shards,
        )
        found = run_in_transaction(engine, lambda uow, i=account.id: get_account(uow, i))
        assert found.balance.as_tuple() == (0, 0, 0, 0)
    assert run_in_transaction(engine, check_books, read_only=True).ok


def test_a_thousand_accounts_take_a_fixed_number_of_statements(
    engine: Engine, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening 2,500 accounts costs a handful of statements (through SQLAlchemy or straight
    to the driver), not one or more per account."""
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    real_cursor = opening._driver_cursor

    @contextmanager
    def counting_cursor(connection: Any, sql: str, params: Any) -> Iterator[Any]:
        with real_cursor(connection, sql, params) as cursor:
            yield _CountingCursor(cursor, statements)

    monkeypatch.setattr(opening, "_driver_cursor", counting_cursor)
    event.listen(engine, "before_cursor_execute", count)
    try:
        opened = run_in_transaction(
            engine, lambda uow: open_chart_accounts(uow, _wanted(2_500)), clock=clock
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len({a.id for a in opened.values()}) == 2_500
    assert any(sql.lstrip().upper().startswith("INSERT") for sql in statements)
    assert len(statements) <= 12


class _CountingCursor:
    """A driver cursor that notes each statement it is given (an `executemany` is one)."""

    def __init__(self, cursor: Any, statements: list[str]) -> None:
        self._cursor, self._statements = cursor, statements

    def execute(self, sql: str, *args: Any) -> Any:
        self._statements.append(sql)
        return self._cursor.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        self._statements.append(sql)
        return self._cursor.executemany(sql, *args)

    def fetchall(self) -> Any:
        return self._cursor.fetchall()


def test_stable_ids_are_kept_and_a_colliding_id_is_refused(
    engine: Engine, clock: FixedClock
) -> None:
    """A caller's own id is used for a new account; the same id for another key is a 4xx."""
    stable = NewAccount(owner="merchant:x", code="merchant_reserve", ledger="CNY", id="res:x")
    opened = run_in_transaction(
        engine, lambda uow: open_accounts_by_key(uow, [stable]), clock=clock
    )
    assert opened[("merchant:x", "merchant_reserve", "CNY")].id == "res:x"
    clash = NewAccount(owner="merchant:y", code="merchant_reserve", ledger="CNY", id="res:x")
    with pytest.raises(InvalidRequest) as refused:
        run_in_transaction(engine, lambda uow: open_accounts_by_key(uow, [clash]), clock=clock)
    assert refused.value.code == "exists_with_different_id"
    bad = NewAccount(owner="merchant:z", code="", ledger="CNY")
    with pytest.raises(InvalidRequest):
        run_in_transaction(engine, lambda uow: open_accounts_by_key(uow, [bad]), clock=clock)


def test_concurrent_openers_of_the_same_accounts_agree(engine: Engine, clock: FixedClock) -> None:
    """Two transactions opening the same new accounts at once end with one account per key."""
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers: no interleaving to prove")
    results: list[dict[tuple[Purpose, str, str], str]] = []
    barrier = threading.Barrier(2)

    def opener() -> None:
        attempts: list[int] = []

        def work(uow: UnitOfWork) -> dict[tuple[Purpose, str, str], str]:
            if not attempts:  # meet the other opener once; a retry (SERIALIZABLE) goes alone
                barrier.wait(timeout=10)
            attempts.append(1)
            return {k: a.id for k, a in open_chart_accounts(uow, _wanted(300)).items()}

        results.append(run_in_transaction(engine, work, clock=clock))

    threads = [threading.Thread(target=opener) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 2
    assert results[0] == results[1]
    assert run_in_transaction(engine, check_books, read_only=True).ok
