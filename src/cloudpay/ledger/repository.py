"""The ledger's SQL, and the only place that writes balances and transfers.

The batch path talks to the driver (the DBAPI connection under SQLAlchemy's, in the same
transaction) with a fixed number of statements per batch whatever its size: ids travel as one
parameter (a JSON text for SQLite's `json_each`, an array for PostgreSQL's `ANY`), rows go in
with `executemany` (SQLite) or `COPY` (PostgreSQL), and balances change in one `executemany`
(SQLite) or one `UPDATE … FROM unnest(…)` (PostgreSQL). SQLAlchemy's statement compilation,
its per-statement bookkeeping (~40 µs, ten times SQLite's own cost for a lookup) and per-row
work, or one round trip per row, would cost more than the database itself at these rates.
"""

from __future__ import annotations

import json
import random
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError

from cloudpay.ledger.batch import Deltas, TransferRow
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


def _is_sqlite(connection: Connection) -> bool:
    return connection.dialect.name == "sqlite"


# Up to this many ids, one placeholder each: a JSON text costs SQLite more to parse for a
# few, and PostgreSQL can keep the statement prepared (see `_execute`).
_FEW_IDS = 16


def _id_in(
    connection: Connection, column: str, ids: Collection[str]
) -> tuple[str, tuple[Any, ...], bool]:
    """The condition `column` is one of `ids`, its parameters, and whether the statement may
    be prepared. Many ids travel as one parameter: a JSON text on SQLite, an array on
    PostgreSQL."""
    if len(ids) <= _FEW_IDS:
        marks = _driver_sql(connection, _placeholders(len(ids)))
        return f"{column} IN ({marks})", tuple(ids), True
    if _is_sqlite(connection):
        return f"{column} IN (SELECT value FROM json_each(?))", (json.dumps(list(ids)),), True
    return f"{column} = ANY(%b)", (list(ids),), False


def _driver_fetch(
    connection: Connection, sql: str, params: Sequence[Any], *, prepare: bool = True
) -> list[Any]:
    """Rows of one statement run by the driver; errors wrapped as SQLAlchemy wraps them."""
    with _driver_cursor(connection, sql, params) as cursor:
        _execute(connection, cursor, sql, params, prepare)
        return list(cursor.fetchall())


def _driver_execute(
    connection: Connection, sql: str, params: Sequence[Any], *, prepare: bool = True
) -> None:
    with _driver_cursor(connection, sql, params) as cursor:
        _execute(connection, cursor, sql, params, prepare)


def _execute(
    connection: Connection, cursor: Any, sql: str, params: Sequence[Any], prepare: bool
) -> None:
    if _is_sqlite(connection):
        cursor.execute(sql, params)
    else:
        # `prepare=False` for a statement over an array of ids: psycopg prepares after five
        # runs, and PostgreSQL's generic plan for `= ANY($1)` cannot know whether the array
        # holds 2 ids or 8,000, so it may scan whole tables (11 ms instead of 0.1 ms).
        cursor.execute(sql, params, prepare=None if prepare else False)


def _driver_executemany(connection: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    with _driver_cursor(connection, sql, rows) as cursor:
        cursor.executemany(sql, rows)


@contextmanager
def _driver_cursor(connection: Connection, sql: str, params: Any) -> Iterator[Any]:
    """A DBAPI cursor in `connection`'s transaction. Its errors become SQLAlchemy's (a taken
    key an `IntegrityError`, a deadlock a `DBAPIError` with its SQLSTATE) so the service and
    the retry policy see the same exceptions as from `Connection.execute`."""
    dbapi_error: type[Exception] = connection.dialect.loaded_dbapi.Error
    driver = connection.connection.driver_connection
    # Binary results on PostgreSQL: ints and strings parse several times faster than as text.
    cursor = driver.cursor() if _is_sqlite(connection) else driver.cursor(binary=True)  # type: ignore[union-attr]
    try:
        yield cursor
    except dbapi_error as error:
        raise DBAPIError.instance(sql, params, error, dbapi_error) from error
    finally:
        cursor.close()


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


_ACCOUNT_AND_BALANCE = (
    "SELECT a.id, a.ledger, a.code, a.owner, a.flags, a.closed, a.balance_shards, a.user_data, "
    "a.timestamp_ns, b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted "
    "FROM ledger_balances b JOIN ledger_accounts a ON a.id = b.account_id "
)
# The balances a batch checks on PostgreSQL: an account with a limit flag, or one a balancing
# transfer reads (the second parameter).
_CHECKED = "(a.flags <> 0 OR b.account_id = ANY(%b))"


def load_batch_accounts(
    connection: Connection, account_ids: Collection[str], *, also_lock: Collection[str]
) -> tuple[dict[str, Account], dict[str, Balance], set[str]]:
    """The accounts a batch names, their balances (summed over shards), and which of them
    this transaction has locked, in one pass.

    On PostgreSQL the balances the batch checks are locked as they are read, in id order so
    two writers cannot deadlock: every account with a limit flag, plus `also_lock`. SQLite
    needs no locks: `BEGIN IMMEDIATE` already made this the only writer.
    """
    accounts: dict[str, Account] = {}
    balances: dict[str, Balance] = {}
    if not account_ids:
        return accounts, balances, set()
    condition, params, prepare = _id_in(connection, "b.account_id", account_ids)
    if _is_sqlite(connection):
        rows = _driver_fetch(connection, _ACCOUNT_AND_BALANCE + "WHERE " + condition, params)
        _add_account_rows(rows, accounts, balances)
        return accounts, balances, set()
    locking = (
        f"{_ACCOUNT_AND_BALANCE} WHERE {condition} AND {_CHECKED} "
        "ORDER BY b.account_id, b.shard FOR UPDATE OF b"
    )
    also = (list(also_lock),)
    rows = _driver_fetch(connection, locking, params + also, prepare=prepare)
    _add_account_rows(rows, accounts, balances)
    locked = set(accounts)
    rest = [i for i in account_ids if i not in accounts]
    if rest:
        # NOT checked: an account with a limit opened since the lock is left out (not found),
        # never read unlocked.
        condition, params, prepare = _id_in(connection, "b.account_id", rest)
        plain = f"{_ACCOUNT_AND_BALANCE} WHERE {condition} AND NOT {_CHECKED}"
        rows = _driver_fetch(connection, plain, params + also, prepare=prepare)
        _add_account_rows(rows, accounts, balances)
    return accounts, balances, locked


# Accounts by their stored row: a batch reads thousands of accounts, building a frozen
# `Account` costs several times the lookup, and the same row always makes an equal account.
_ACCOUNTS_BY_ROW: dict[tuple[Any, ...], Account] = {}
_ACCOUNTS_BY_ROW_MAX = 100_000


def _account_of(row: Any) -> Account:
    key = tuple(row[:9])
    account = _ACCOUNTS_BY_ROW.get(key)
    if account is None:
        if len(_ACCOUNTS_BY_ROW) >= _ACCOUNTS_BY_ROW_MAX:
            _ACCOUNTS_BY_ROW.clear()
        account = Account(
            row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7], row[8]
        )
        _ACCOUNTS_BY_ROW[key] = account
    return account


def _add_account_rows(
    rows: Iterable[Any], accounts: dict[str, Account], balances: dict[str, Balance]
) -> None:
    """One row per balance shard: the first one of an account makes it, the others add."""
    for row in rows:
        balance = balances.get(row[0])
        if balance is None:
            accounts[row[0]] = _account_of(row)
            balances[row[0]] = Balance(row[9], row[10], row[11], row[12])
        else:
            balance.debits_pending += row[9]
            balance.debits_posted += row[10]
            balance.credits_pending += row[11]
            balance.credits_posted += row[12]


# Below this many rows PostgreSQL gets plain pipelined statements: `COPY` and `unnest` cost
# extra round trips that only pay off for larger batches.
_BULK_MIN_ROWS = 32


def apply_deltas(
    connection: Connection,
    deltas: Deltas,
    accounts: dict[str, Account],
    *,
    locked: Collection[str] = (),
) -> None:
    """Add each account's change to one of its shards, in a fixed order (no deadlocks).

    `locked`: accounts whose balance rows this transaction already holds locks on.
    """
    if not deltas:
        return
    rows = []
    for account_id in sorted(deltas):
        dp, dpo, cp, cpo = deltas[account_id]
        shards = accounts[account_id].balance_shards
        shard = random.randrange(shards) if shards > 1 else 0
        rows.append((dp, dpo, cp, cpo, account_id, shard))
    if not _is_sqlite(connection) and len(rows) >= _BULK_MIN_ROWS:
        _apply_deltas_unnest(connection, rows, locked)
        return
    _driver_executemany(
        connection,
        _driver_sql(
            connection,
            "UPDATE ledger_balances SET debits_pending = debits_pending + ?, "
            "debits_posted = debits_posted + ?, credits_pending = credits_pending + ?, "
            "credits_posted = credits_posted + ? WHERE account_id = ? AND shard = ?",
        ),
        rows,
    )


def _apply_deltas_unnest(
    connection: Connection, rows: list[tuple[int, int, int, int, str, int]], locked: Collection[str]
) -> None:
    """One statement for the whole batch. The rows not locked yet are locked first, in sorted
    order, since an `UPDATE … FROM` takes its locks in whatever order its join plan produces."""
    dp, dpo, cp, cpo, account_ids, shards = (list(column) for column in zip(*rows, strict=True))
    to_lock = [(row[4], row[5]) for row in rows if row[4] not in locked]
    if to_lock:
        lock_ids, lock_shards = (list(column) for column in zip(*to_lock, strict=True))
        _driver_fetch(
            connection,
            "SELECT 1 FROM ledger_balances WHERE (account_id, shard) IN "
            "(SELECT * FROM unnest(%b::varchar[], %b::smallint[])) "
            "ORDER BY account_id, shard FOR UPDATE",
            (lock_ids, lock_shards),
            prepare=False,
        )
    _driver_execute(
        connection,
        "UPDATE ledger_balances AS b SET debits_pending = b.debits_pending + d.dp, "
        "debits_posted = b.debits_posted + d.dpo, credits_pending = b.credits_pending + d.cp, "
        "credits_posted = b.credits_posted + d.cpo "
        "FROM unnest(%b::varchar[], %b::smallint[], %b::bigint[], %b::bigint[], %b::bigint[], "
        "%b::bigint[]) AS d(account_id, shard, dp, dpo, cp, cpo) "
        "WHERE b.account_id = d.account_id AND b.shard = d.shard",
        (account_ids, shards, dp, dpo, cp, cpo),
        prepare=False,
    )


# --- transfers --------------------------------------------------------------------------
def _record_from_row(row: Sequence[Any]) -> TransferRecord:
    return TransferRecord(*row)


def load_transfers(connection: Connection, ids: Iterable[str]) -> dict[str, TransferRecord]:
    unique = set(ids)
    if not unique:
        return {}
    condition, params, prepare = _id_in(connection, "id", unique)
    sql = f"SELECT {_TRANSFER_COLUMNS} FROM ledger_transfers WHERE {condition}"
    rows = _driver_fetch(connection, sql, params, prepare=prepare)
    return {row[0]: _record_from_row(row) for row in rows}


def insert_transfers(connection: Connection, rows: Sequence[TransferRow]) -> None:
    """Store new transfers; a taken id raises `IntegrityError` on both databases."""
    if not rows:
        return
    # In debit account order, one index of the two per account fills page by page instead of
    # at random: a fifth less work per row on SQLite. The order of rows means nothing else.
    ordered = sorted(rows, key=itemgetter(1))
    if not _is_sqlite(connection) and len(rows) >= _BULK_MIN_ROWS:
        _copy_transfers(connection, ordered)
        return
    sql = f"INSERT INTO ledger_transfers ({_TRANSFER_COLUMNS}) VALUES ({_placeholders(11)})"
    _driver_executemany(connection, _driver_sql(connection, sql), ordered)


def _copy_transfers(connection: Connection, rows: Sequence[TransferRow]) -> None:
    """`COPY` into the table, in this transaction: several times faster than any INSERT."""
    sql = f"COPY ledger_transfers ({_TRANSFER_COLUMNS}) FROM STDIN"
    with _driver_cursor(connection, sql, None) as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


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
    sql = (
        "INSERT INTO ledger_pending (id, status, expires_at_ns, resolved_at_ns, resolved_by) "
        "VALUES (?, ?, ?, ?, ?)"
    )
    rows = [
        (s.transfer.id, s.status, s.expires_at_ns, s.resolved_at_ns, s.resolved_by)
        for s in pendings
    ]
    _driver_executemany(connection, _driver_sql(connection, sql), rows)


def update_pendings(connection: Connection, pendings: Sequence[PendingState]) -> None:
    """One `executemany`, in id order like the locks `load_pendings` took."""
    if not pendings:
        return
    sql = "UPDATE ledger_pending SET status = ?, resolved_at_ns = ?, resolved_by = ? WHERE id = ?"
    rows = [(s.status, s.resolved_at_ns, s.resolved_by, s.transfer.id) for s in pendings]
    _driver_executemany(connection, _driver_sql(connection, sql), sorted(rows, key=itemgetter(3)))


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
    # A hold ends at its deadline whether or not the expiry job has run yet (that job records
    # `resolved_at_ns = expires_at_ns`), so a past balance does not change when it runs.
    sql = (
        f"SELECT COALESCE(SUM(t.amount), 0) FROM ledger_transfers t "
        f"JOIN ledger_pending p ON p.id = t.id WHERE t.{side} = ? AND t.timestamp_ns <= ? "
        f"AND (p.resolved_at_ns IS NULL OR p.resolved_at_ns > ?) "
        f"AND (p.expires_at_ns IS NULL OR p.expires_at_ns > ?)"
    )
    params = (account_id, as_of_ns, as_of_ns, as_of_ns)
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
