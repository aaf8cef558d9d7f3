"""Large batches take the ledger's bulk paths (SQLite `json_each`, PostgreSQL `COPY`, `ANY`
arrays and `UPDATE … FROM unnest`) and must behave exactly like small ones."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from cloudpay.db.retry import is_retryable
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import FixedClock
from cloudpay.ledger import (
    ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
    BALANCING_DEBIT,
    LINKED,
    NewAccount,
    Transfer,
    TransferRecord,
    check_books,
    create_accounts,
    create_transfers,
    lookup_accounts,
)
from cloudpay.ledger import repository as ledger_repository
from cloudpay.ledger.service import ConcurrentInsertError

MERCHANTS = 60
FUNDS = 1_000
BULK = 200  # far above the size where the repository switches to its bulk statements


def _open(engine: Engine, clock: FixedClock) -> tuple[str, list[str]]:
    new = [NewAccount(owner="platform", code="channel_clearing", ledger="CNY", balance_shards=16)]
    new += [
        NewAccount(owner=f"merchant:{i}", code="merchant_pending", ledger="CNY",
                   flags=ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS)
        for i in range(MERCHANTS)
    ]  # fmt: skip
    results = run_in_transaction(engine, lambda uow: create_accounts(uow, new), clock=clock)
    assert all(r.ok for r in results), results
    ids = [r.id for r in results]
    return ids[0], ids[1:]


def _submit(engine: Engine, clock: FixedClock, batch: list[Transfer]) -> list[str]:
    results = run_in_transaction(engine, lambda uow: create_transfers(uow, batch), clock=clock)
    return [r.result for r in results]


def _balances(engine: Engine, ids: Iterable[str]) -> dict[str, tuple[int, int, int, int]]:
    found = run_in_transaction(engine, lambda uow: lookup_accounts(uow, list(ids)))
    return {a.account.id: a.balance.as_tuple() for a in found}


def test_bulk_batch_checks_every_transfer(engine: Engine, clock: FixedClock) -> None:
    """Overdrafts are refused, replays answer `exists`, a failed chain leaves nothing, a
    balancing sweep reads the balance, and the stored balances add up to the results."""
    clearing, merchants = _open(engine, clock)
    funding = [Transfer(f"fund-{i}", clearing, m, FUNDS, "CNY", "capture")
               for i, m in enumerate(merchants)]  # fmt: skip
    assert _submit(engine, clock, funding) == ["ok"] * MERCHANTS
    rng = random.Random(7)
    batch = [Transfer(f"move-{i}", *rng.sample(merchants, 2), rng.randint(1, 700), "CNY", "split")
             for i in range(BULK)]  # fmt: skip
    batch[10] = Transfer("fund-3", clearing, merchants[3], FUNDS, "CNY", "capture")  # replay
    batch[11] = Transfer("fund-4", clearing, merchants[4], FUNDS + 1, "CNY", "capture")
    batch[20] = Transfer("chain-a", clearing, merchants[0], 5, "CNY", "capture", flags=LINKED)
    batch[21] = Transfer("chain-b", merchants[0], merchants[1], 10**9, "CNY", "split")
    batch[-1] = Transfer("sweep", merchants[5], merchants[6], None, "CNY", "settle",
                         flags=BALANCING_DEBIT)  # fmt: skip
    before = _balances(engine, [clearing, *merchants])

    codes = _submit(engine, clock, batch)

    assert codes[10] == "exists"
    assert codes[11] == "exists_with_different_amount"
    assert codes[20:22] == ["linked_event_failed", "exceeds_credits"]
    assert codes[-1] == "ok"
    assert "exceeds_credits" in codes[30:]  # the random moves overdraw some merchants
    after = _balances(engine, [clearing, *merchants])
    applied_batch = [t for t, code in zip(batch, codes, strict=True) if code == "ok"]
    assert _submit(engine, clock, applied_batch) == ["exists"] * len(applied_batch)
    assert _balances(engine, [clearing, *merchants]) == after  # resending changed nothing
    applied = {f"move-{i}" for i, code in enumerate(codes) if code == "ok"} | {"sweep"}
    records = run_in_transaction(
        engine, lambda uow: ledger_repository.load_transfers(uow.connection, applied)
    )
    assert _moved(records.values()) == {
        account_id: after[account_id][1]
        - before[account_id][1]
        + after[account_id][3]
        - before[account_id][3]
        for account_id in after
        if after[account_id] != before[account_id]
    }
    assert after[merchants[5]][1] == after[merchants[5]][3]  # swept to zero, last
    report = run_in_transaction(engine, check_books, read_only=True)
    assert report.ok, report.problems


def _moved(records: Iterable[TransferRecord]) -> dict[str, int]:
    """Debits plus credits posted per account by `records`."""
    moved: dict[str, int] = {}
    for r in records:
        moved[r.debit_account_id] = moved.get(r.debit_account_id, 0) + r.amount
        moved[r.credit_account_id] = moved.get(r.credit_account_id, 0) + r.amount
    return moved


def test_bulk_insert_of_a_taken_id_is_a_retryable_conflict(
    engine: Engine, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transfer id committed by someone else after we looked fails the bulk insert as a
    conflict the boundary retries, not as an unexpected database error."""
    clearing, merchants = _open(engine, clock)
    assert _submit(engine, clock, [Transfer("taken", clearing, merchants[0], 1, "CNY", "c")]) == [
        "ok"
    ]
    monkeypatch.setattr(ledger_repository, "load_transfers", lambda _connection, _ids: {})
    batch = [Transfer(f"t{i}", clearing, merchants[i % MERCHANTS], 1, "CNY", "c")
             for i in range(BULK)]  # fmt: skip
    batch[-1] = Transfer("taken", clearing, merchants[0], 1, "CNY", "c")

    def work(uow: UnitOfWork) -> None:
        with pytest.raises(ConcurrentInsertError) as raised:
            create_transfers(uow, batch)
        assert is_retryable(raised.value)

    run_in_transaction(engine, work, clock=clock)


@pytest.mark.postgres_only
def test_driver_level_errors_keep_their_sqlstate(engine: Engine) -> None:
    """Errors from the driver-level statements reach the retry policy as SQLAlchemy errors
    carrying the SQLSTATE (a deadlock, 40P01, must be retried like any other)."""

    def work(uow: UnitOfWork) -> None:
        with pytest.raises(DBAPIError) as raised:
            ledger_repository._driver_fetch(uow.connection, "SELECT 1 / 0", ())
        assert getattr(raised.value.orig, "sqlstate", None) == "22012"

    run_in_transaction(engine, work)
