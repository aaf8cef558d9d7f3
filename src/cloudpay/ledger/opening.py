"""The SQL that opens many accounts at once: find them by key, insert the missing, re-read.

A settlement batch names thousands of merchants' accounts, most of them new on a merchant's
first day. Opening them one by one costs several round trips each; here a batch costs a
fixed handful of statements whatever its size. The owners travel as one parameter (a JSON
text for SQLite's `json_each`, an array for PostgreSQL's `ANY`), and the inserts are
one statement over arrays (PostgreSQL) with `ON CONFLICT DO NOTHING`, so a concurrent opener
never fails the batch: the loser reads the winner's row afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.types import ARRAY, String

from cloudpay.ledger.model import Account
from cloudpay.ledger.repository import _driver_cursor
from cloudpay.ledger.tables import ledger_accounts

AccountKey = tuple[str, str, str]  # owner, code, ledger
OWNER_CHUNK: Final = 4_000


def _owners_match(connection: Connection, owners: Sequence[str]) -> Any:
    if connection.dialect.name == "sqlite":
        clause = text("ledger_accounts.owner IN (SELECT value FROM json_each(:owners))")
        return clause.bindparams(owners=json.dumps(list(owners)))
    clause = text("ledger_accounts.owner = ANY(:owners)")
    return clause.bindparams(bindparam("owners", list(owners), type_=ARRAY(String)))


def find_accounts_by_keys(
    connection: Connection, keys: Sequence[AccountKey]
) -> dict[AccountKey, Account]:
    """The accounts among `keys` that exist, in one query per 4,000 owners."""
    wanted = set(keys)
    owners = sorted({owner for owner, _code, _ledger in wanted})
    found: dict[AccountKey, Account] = {}
    for first in range(0, len(owners), OWNER_CHUNK):
        query = select(ledger_accounts).where(
            _owners_match(connection, owners[first : first + OWNER_CHUNK])
        )
        for row in connection.execute(query):
            key = (row.owner, row.code, row.ledger)
            if key in wanted:
                found[key] = Account(
                    row.id, row.ledger, row.code, row.owner, row.flags, bool(row.closed),
                    row.balance_shards, row.user_data, row.timestamp_ns,
                )  # fmt: skip
    return found


_ACCOUNT_COLUMNS: Final = (
    "id, ledger, code, owner, flags, closed, balance_shards, user_data, timestamp_ns"
)
# PostgreSQL: every column travels as one array and the rows come out of `unnest`, so a
# thousand accounts are one short statement (a VALUES list of 9,000 parameters costs more
# to build and parse than to run).
_PG_INSERT_ACCOUNTS: Final = (
    f"INSERT INTO ledger_accounts ({_ACCOUNT_COLUMNS}) SELECT * FROM unnest("
    "%s::text[], %s::text[], %s::text[], %s::text[], %s::smallint[], %s::boolean[], "
    "%s::smallint[], %s::text[], %s::bigint[]) ON CONFLICT DO NOTHING RETURNING id"
)
_PG_INSERT_BALANCES: Final = (
    "INSERT INTO ledger_balances (account_id, shard, debits_pending, debits_posted, "
    "credits_pending, credits_posted) SELECT a, s, 0, 0, 0, 0 "
    "FROM unnest(%s::text[], %s::smallint[]) AS t(a, s)"
)
_SQLITE_INSERT_ACCOUNT: Final = (
    f"INSERT INTO ledger_accounts ({_ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
_SQLITE_INSERT_BALANCE: Final = (
    "INSERT INTO ledger_balances (account_id, shard, debits_pending, debits_posted, "
    "credits_pending, credits_posted) VALUES (?, ?, 0, 0, 0, 0)"
)


def insert_missing_accounts(connection: Connection, accounts: Sequence[Account]) -> set[str]:
    """Insert `accounts` and their balance rows; an account whose id or key another
    transaction took first is skipped. Returns the ids this call inserted."""
    if not accounts:
        return set()
    rows = [
        (a.id, a.ledger, a.code, a.owner, a.flags, a.closed, a.balance_shards, a.user_data,
         a.timestamp_ns)
        for a in accounts
    ]  # fmt: skip
    if connection.dialect.name == "sqlite":
        return _insert_on_sqlite(connection, accounts, rows)
    with _driver_cursor(connection, _PG_INSERT_ACCOUNTS, rows) as cursor:
        cursor.execute(_PG_INSERT_ACCOUNTS, [list(column) for column in zip(*rows, strict=True)])
        inserted = {found for (found,) in cursor.fetchall()}
        shards = [(a.id, s) for a in accounts if a.id in inserted for s in range(a.balance_shards)]
        if shards:
            cursor.execute(_PG_INSERT_BALANCES, [[i for i, _ in shards], [s for _, s in shards]])
    return inserted


def _insert_on_sqlite(
    connection: Connection, accounts: Sequence[Account], rows: Sequence[tuple[Any, ...]]
) -> set[str]:
    """Every SQLite write transaction holds the write lock from its `BEGIN IMMEDIATE`
    (db/engine.py), so no other writer can take a key between our read and this insert: the
    only conflict left is an id taken under another key, which reading the keys back shows.
    One `executemany` then costs a fraction of a statement a row."""
    with _driver_cursor(connection, _SQLITE_INSERT_ACCOUNT, rows) as cursor:
        cursor.executemany(_SQLITE_INSERT_ACCOUNT, rows)
        found = find_accounts_by_keys(connection, [(a.owner, a.code, a.ledger) for a in accounts])
        inserted = {
            a.id for a in accounts if (k := found.get((a.owner, a.code, a.ledger))) and k.id == a.id
        }
        shards = [(a.id, s) for a in accounts if a.id in inserted for s in range(a.balance_shards)]
        cursor.executemany(_SQLITE_INSERT_BALANCE, shards)
    return inserted
