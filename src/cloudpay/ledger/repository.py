"""The ledger's SQL, and the only place that writes balances and transfers.

The batch path uses driver-level `executemany` with positional parameters: SQLAlchemy's
per-row bookkeeping would cost more than SQLite itself at 100k+ rows a second.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from cloudpay.ledger.batch import Deltas
from cloudpay.ledger.model import (
    PENDING,
    STATUS_PENDING,
    VOID_PENDING,
    Account,
    Balance,
    PendingState,
    TransferRecord,
)
from cloudpay.ledger.tables import (
    ledger_accounts,
    ledger_balances,
    ledger_pending,
    ledger_transfers,
)

IN_LIST_CHUNK = 4_000  # below SQLite's 32,766 variables and PostgreSQL's 65,535 parameters
_TRANSFER_COLUMNS = (
    "id, debit_account_id, credit_account_id, amount, ledger, code, flags, pending_id, "
    "timeout_s, user_data, timestamp_ns"
)


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), IN_LIST_CHUNK):
        yield values[start : start + IN_LIST_CHUNK]


def _driver_sql(connection: Connection, sql: str) -> str:
    """Our raw SQL is written with `?`; psycopg wants `%s`."""
    return sql if connection.dialect.paramstyle == "qmark" else sql.replace("?", "%s")


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


# --- accounts ---------------------------------------------------------------------------
def insert_accounts(connection: Connection, accounts: Sequence[Account]) -> None:
    if not accounts:
        return
    connection.execute(
        insert(ledger_accounts),
        [
            {
                "id": a.id,
                "ledger": a.ledger,
                "code": a.code,
                "owner": a.owner,
                "flags": a.flags,
                "closed": a.closed,
                "balance_shards": a.balance_shards,
                "user_data": a.user_data,
                "timestamp_ns": a.timestamp_ns,
            }
            for a in accounts
        ],
    )
    connection.exec_driver_sql(
        _driver_sql(
            connection,
            "INSERT INTO ledger_balances (account_id, shard, debits_pending, debits_posted, "
            "credits_pending, credits_posted) VALUES (?, ?, 0, 0, 0, 0)",
        ),
        [(a.id, shard) for a in accounts for shard in range(a.balance_shards)],
    )


def _account_from_row(row: Any) -> Account:
    return Account(
        id=row.id,
        ledger=row.ledger,
        code=row.code,
        owner=row.owner,
        flags=row.flags,
        closed=bool(row.closed),
        balance_shards=row.balance_shards,
        user_data=row.user_data,
        timestamp_ns=row.timestamp_ns,
    )


def load_accounts(connection: Connection, ids: Iterable[str]) -> dict[str, Account]:
    found: dict[str, Account] = {}
    for chunk in _chunks(list(set(ids))):
        for row in connection.execute(
            select(ledger_accounts).where(ledger_accounts.c.id.in_(chunk))
        ):
            found[row.id] = _account_from_row(row)
    return found


def find_account(connection: Connection, *, owner: str, code: str, ledger: str) -> Account | None:
    row = connection.execute(
        select(ledger_accounts).where(
            ledger_accounts.c.owner == owner,
            ledger_accounts.c.code == code,
            ledger_accounts.c.ledger == ledger,
        )
    ).first()
    return None if row is None else _account_from_row(row)


def find_accounts_by_owner(
    connection: Connection, owners: Iterable[str]
) -> dict[tuple[str, str, str], Account]:
    """The accounts of `owners`, keyed by their unique (owner, code, ledger)."""
    found: dict[tuple[str, str, str], Account] = {}
    for chunk in _chunks(sorted(set(owners))):
        for row in connection.execute(
            select(ledger_accounts).where(ledger_accounts.c.owner.in_(chunk))
        ):
            found[(row.owner, row.code, row.ledger)] = _account_from_row(row)
    return found


def list_accounts(
    connection: Connection, *, owner: str | None, limit: int, starting_after: str | None
) -> list[Account]:
    query = select(ledger_accounts).order_by(ledger_accounts.c.id.desc()).limit(limit)
    if owner is not None:
        query = query.where(ledger_accounts.c.owner == owner)
    if starting_after is not None:
        query = query.where(ledger_accounts.c.id < starting_after)
    return [_account_from_row(row) for row in connection.execute(query)]


def set_account_closed(connection: Connection, account_id: str, closed: bool) -> None:
    connection.execute(
        update(ledger_accounts).where(ledger_accounts.c.id == account_id).values(closed=closed)
    )


# --- balances ---------------------------------------------------------------------------
def lock_balances(connection: Connection, account_ids: Iterable[str]) -> None:
    """Row locks on PostgreSQL, in id order so two writers cannot deadlock on them.

    SQLite needs none: `BEGIN IMMEDIATE` already made this the only writer.
    """
    if connection.dialect.name == "sqlite":
        return
    ordered = sorted(set(account_ids))
    for chunk in _chunks(ordered):
        connection.execute(
            select(ledger_balances.c.account_id)
            .where(ledger_balances.c.account_id.in_(chunk))
            .order_by(ledger_balances.c.account_id, ledger_balances.c.shard)
            .with_for_update()
        ).all()


def load_balances(connection: Connection, account_ids: Iterable[str]) -> dict[str, Balance]:
    balances: dict[str, Balance] = {}
    b = ledger_balances.c
    for chunk in _chunks(list(set(account_ids))):
        rows = connection.execute(
            select(
                b.account_id,
                func.sum(b.debits_pending),
                func.sum(b.debits_posted),
                func.sum(b.credits_pending),
                func.sum(b.credits_posted),
            )
            .where(b.account_id.in_(chunk))
            .group_by(b.account_id)
        )
        for account_id, dp, dpo, cp, cpo in rows:
            balances[account_id] = Balance(int(dp), int(dpo), int(cp), int(cpo))
    return balances


def apply_deltas(connection: Connection, deltas: Deltas, accounts: dict[str, Account]) -> None:
    """Add each account's change to one of its shards, in a fixed order (no deadlocks)."""
    if not deltas:
        return
    rows = []
    for account_id in sorted(deltas):
        dp, dpo, cp, cpo = deltas[account_id]
        shards = accounts[account_id].balance_shards
        shard = random.randrange(shards) if shards > 1 else 0
        rows.append((dp, dpo, cp, cpo, account_id, shard))
    connection.exec_driver_sql(
        _driver_sql(
            connection,
            "UPDATE ledger_balances SET debits_pending = debits_pending + ?, "
            "debits_posted = debits_posted + ?, credits_pending = credits_pending + ?, "
            "credits_posted = credits_posted + ? WHERE account_id = ? AND shard = ?",
        ),
        rows,
    )


# --- transfers --------------------------------------------------------------------------
def _record_from_row(row: Sequence[Any]) -> TransferRecord:
    return TransferRecord(*row)


def load_transfers(connection: Connection, ids: Iterable[str]) -> dict[str, TransferRecord]:
    found: dict[str, TransferRecord] = {}
    for chunk in _chunks(list(set(ids))):
        marks = _placeholders(len(chunk))
        sql = f"SELECT {_TRANSFER_COLUMNS} FROM ledger_transfers WHERE id IN ({marks})"
        for row in connection.exec_driver_sql(_driver_sql(connection, sql), tuple(chunk)):
            found[row[0]] = _record_from_row(row)
    return found


def insert_transfers(connection: Connection, records: Sequence[TransferRecord]) -> None:
    if not records:
        return
    sql = f"INSERT INTO ledger_transfers ({_TRANSFER_COLUMNS}) VALUES ({_placeholders(11)})"
    connection.exec_driver_sql(
        _driver_sql(connection, sql),
        [
            (r.id, r.debit_account_id, r.credit_account_id, r.amount, r.ledger, r.code,
             r.flags, r.pending_id, r.timeout_s, r.user_data, r.timestamp_ns)
            for r in records
        ],
    )  # fmt: skip


def load_pendings(
    connection: Connection, ids: Iterable[str], *, lock: bool
) -> dict[str, PendingState]:
    """Pending transfers by id; locked on PostgreSQL so a post and a void cannot both win."""
    p = ledger_pending.c
    found: dict[str, PendingState] = {}
    for chunk in _chunks(sorted(set(ids))):
        query = select(p.id, p.status, p.resolved_at_ns, p.resolved_by).where(p.id.in_(chunk))
        if lock and connection.dialect.name != "sqlite":
            query = query.order_by(p.id).with_for_update()
        states = {row.id: row for row in connection.execute(query)}
        records = load_transfers(connection, states)
        for pending_id, row in states.items():
            found[pending_id] = PendingState(
                records[pending_id], row.status, row.resolved_at_ns, row.resolved_by
            )
    return found


def insert_pendings(connection: Connection, pendings: Sequence[PendingState]) -> None:
    if not pendings:
        return
    connection.execute(
        insert(ledger_pending),
        [
            {
                "id": s.transfer.id,
                "status": s.status,
                "expires_at_ns": s.expires_at_ns,
                "resolved_at_ns": s.resolved_at_ns,
                "resolved_by": s.resolved_by,
            }
            for s in pendings
        ],
    )


def update_pendings(connection: Connection, pendings: Sequence[PendingState]) -> None:
    for state in pendings:
        connection.execute(
            update(ledger_pending)
            .where(ledger_pending.c.id == state.transfer.id)
            .values(
                status=state.status,
                resolved_at_ns=state.resolved_at_ns,
                resolved_by=state.resolved_by,
            )
        )


def due_pending_ids(connection: Connection, *, now_ns: int, limit: int) -> list[str]:
    p = ledger_pending.c
    rows = connection.execute(
        select(p.id)
        .where(p.status == STATUS_PENDING, p.expires_at_ns.is_not(None), p.expires_at_ns <= now_ns)
        .order_by(p.expires_at_ns)
        .limit(limit)
    )
    return [row.id for row in rows]


# --- history ----------------------------------------------------------------------------
def account_transfers(
    connection: Connection, account_id: str, *, limit: int, before: TransferRecord | None
) -> list[TransferRecord]:
    """Newest first; `before` is the cursor transfer (its timestamp, then id, break ties)."""
    t = ledger_transfers.c
    query = (
        select(*ledger_transfers.c)
        .where(or_(t.debit_account_id == account_id, t.credit_account_id == account_id))
        .order_by(t.timestamp_ns.desc(), t.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(
            or_(
                t.timestamp_ns < before.timestamp_ns,
                and_(t.timestamp_ns == before.timestamp_ns, t.id < before.id),
            )
        )
    return [_record_from_row(tuple(row)) for row in connection.execute(query)]


def balance_as_of(connection: Connection, account_id: str, as_of_ns: int) -> Balance:
    """Recompute a balance from transfers up to `as_of_ns` (inclusive)."""
    debits_posted = _posted_sum(connection, "debit_account_id", account_id, as_of_ns)
    credits_posted = _posted_sum(connection, "credit_account_id", account_id, as_of_ns)
    debits_pending = _pending_sum(connection, "debit_account_id", account_id, as_of_ns)
    credits_pending = _pending_sum(connection, "credit_account_id", account_id, as_of_ns)
    return Balance(debits_pending, debits_posted, credits_pending, credits_posted)


def _posted_sum(connection: Connection, side: str, account_id: str, as_of_ns: int) -> int:
    # Posted money = single-phase transfers and posts; pendings and voids move nothing posted.
    sql = (
        f"SELECT COALESCE(SUM(amount), 0) FROM ledger_transfers WHERE {side} = ? "
        f"AND timestamp_ns <= ? AND (flags & {PENDING | VOID_PENDING}) = 0"
    )
    return int(
        connection.exec_driver_sql(
            _driver_sql(connection, sql), (account_id, as_of_ns)
        ).scalar_one()
    )


def _pending_sum(connection: Connection, side: str, account_id: str, as_of_ns: int) -> int:
    sql = (
        f"SELECT COALESCE(SUM(t.amount), 0) FROM ledger_transfers t "
        f"JOIN ledger_pending p ON p.id = t.id WHERE t.{side} = ? AND t.timestamp_ns <= ? "
        f"AND (p.resolved_at_ns IS NULL OR p.resolved_at_ns > ?)"
    )
    params = (account_id, as_of_ns, as_of_ns)
    return int(connection.exec_driver_sql(_driver_sql(connection, sql), params).scalar_one())


# --- the books check --------------------------------------------------------------------
def totals_by_ledger(connection: Connection) -> dict[str, tuple[int, int, int, int]]:
    """Sum of every balance column per ledger (currency)."""
    sql = (
        "SELECT a.ledger, COALESCE(SUM(b.debits_pending), 0), COALESCE(SUM(b.debits_posted), 0), "
        "COALESCE(SUM(b.credits_pending), 0), COALESCE(SUM(b.credits_posted), 0) "
        "FROM ledger_balances b JOIN ledger_accounts a ON a.id = b.account_id GROUP BY a.ledger"
    )
    return {
        row[0]: (int(row[1]), int(row[2]), int(row[3]), int(row[4]))
        for row in connection.exec_driver_sql(sql)
    }


def stored_balances(connection: Connection) -> dict[str, tuple[int, int, int, int]]:
    sql = (
        "SELECT account_id, SUM(debits_pending), SUM(debits_posted), SUM(credits_pending), "
        "SUM(credits_posted) FROM ledger_balances GROUP BY account_id"
    )
    return {
        row[0]: (int(row[1]), int(row[2]), int(row[3]), int(row[4]))
        for row in connection.exec_driver_sql(sql)
    }


def balances_from_transfers(connection: Connection) -> dict[str, tuple[int, int, int, int]]:
    """Every account's balance recomputed from the immutable transfers, set-based."""
    posted_filter = f"(flags & {PENDING | VOID_PENDING}) = 0"
    sql = f"""
        SELECT account_id, SUM(dp), SUM(dpo), SUM(cp), SUM(cpo) FROM (
            SELECT debit_account_id AS account_id, 0 AS dp, amount AS dpo, 0 AS cp, 0 AS cpo
              FROM ledger_transfers WHERE {posted_filter}
            UNION ALL
            SELECT credit_account_id, 0, 0, 0, amount FROM ledger_transfers WHERE {posted_filter}
            UNION ALL
            SELECT t.debit_account_id, t.amount, 0, 0, 0 FROM ledger_transfers t
              JOIN ledger_pending p ON p.id = t.id WHERE p.status = '{STATUS_PENDING}'
            UNION ALL
            SELECT t.credit_account_id, 0, 0, t.amount, 0 FROM ledger_transfers t
              JOIN ledger_pending p ON p.id = t.id WHERE p.status = '{STATUS_PENDING}'
        ) movements GROUP BY account_id
    """
    return {
        row[0]: (int(row[1]), int(row[2]), int(row[3]), int(row[4]))
        for row in connection.exec_driver_sql(sql)
    }


def transfers_with_unknown_accounts(connection: Connection) -> int:
    sql = (
        "SELECT COUNT(*) FROM ledger_transfers t WHERE NOT EXISTS "
        "(SELECT 1 FROM ledger_accounts a WHERE a.id = t.debit_account_id AND a.ledger = t.ledger)"
        " OR NOT EXISTS "
        "(SELECT 1 FROM ledger_accounts a WHERE a.id = t.credit_account_id AND a.ledger = t.ledger)"
    )
    return int(connection.exec_driver_sql(sql).scalar_one())


def pendings_without_transfer(connection: Connection) -> int:
    sql = (
        "SELECT COUNT(*) FROM ledger_pending p WHERE NOT EXISTS "
        "(SELECT 1 FROM ledger_transfers t WHERE t.id = p.id)"
    )
    return int(connection.exec_driver_sql(sql).scalar_one())


def all_accounts(connection: Connection) -> list[Account]:
    return [_account_from_row(row) for row in connection.execute(select(ledger_accounts))]
