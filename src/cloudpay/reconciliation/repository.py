"""The reconciliation context's SQL (and its one read of our orders and refunds)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from cloudpay.db.retry import RetryableConflict
from cloudpay.reconciliation.tables import (
    recon_break_events,
    recon_breaks,
    recon_carry_over,
    recon_files,
    recon_runs,
)


class DuplicateKey(RetryableConflict):
    """A concurrent run inserted the same file or break first; the retry will find it."""


def _insert(connection: Connection, statement: Any, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    try:
        connection.execute(statement, list(rows))
    except IntegrityError as error:
        raise DuplicateKey from error


# --- files ------------------------------------------------------------------------------
def find_file(connection: Connection, channel: str, bill_date: date, sha256: str) -> str | None:
    query = select(recon_files.c.id).where(
        recon_files.c.channel == channel, recon_files.c.bill_date == bill_date,
        recon_files.c.sha256 == sha256,
    )  # fmt: skip
    return connection.execute(query).scalar()


def insert_file(connection: Connection, values: dict[str, Any]) -> None:
    _insert(connection, insert(recon_files), [values])


def file_content(connection: Connection, file_id: str) -> bytes | None:
    query = select(recon_files.c.content).where(recon_files.c.id == file_id)
    content = connection.execute(query).scalar()
    return None if content is None else bytes(content)


def file_facts(connection: Connection, file_id: str) -> dict[str, Any] | None:
    query = select(recon_files).where(recon_files.c.id == file_id)
    row = connection.execute(query.with_only_columns(
        *(c for c in recon_files.c if c.name != "content")
    )).first()  # fmt: skip
    return None if row is None else dict(row._mapping)


# --- carry-over -------------------------------------------------------------------------
CARRY_COLUMNS = (
    "side", "kind", "order_id", "refund_id", "channel_txn_id", "amount_fen", "fee_fen",
    "status", "occurred_at", "carried_from",
)  # fmt: skip


def carried_rows(connection: Connection, channel: str, carried_from: date) -> list[Any]:
    query = select(recon_carry_over).where(
        recon_carry_over.c.channel == channel, recon_carry_over.c.carried_from == carried_from
    )
    return list(connection.execute(query))


def forget_unconsumed_carry(connection: Connection, channel: str, carried_from: date) -> None:
    """A repeated run of a day replaces what that day carried forward."""
    connection.execute(
        recon_carry_over.delete().where(
            recon_carry_over.c.channel == channel,
            recon_carry_over.c.carried_from == carried_from,
            recon_carry_over.c.consumed_run_id.is_(None),
        )
    )


def mark_consumed(connection: Connection, carry_ids: Sequence[str], run_id: str) -> None:
    if carry_ids:
        connection.execute(
            update(recon_carry_over)
            .where(recon_carry_over.c.id.in_(list(carry_ids)))
            .values(consumed_run_id=run_id)
        )


def insert_carry(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    _insert(connection, insert(recon_carry_over), rows)


# --- runs -------------------------------------------------------------------------------
def insert_run(connection: Connection, values: dict[str, Any]) -> None:
    _insert(connection, insert(recon_runs), [values])


def get_run(connection: Connection, run_id: str) -> dict[str, Any] | None:
    row = connection.execute(select(recon_runs).where(recon_runs.c.id == run_id)).first()
    return None if row is None else dict(row._mapping)


def list_runs(
    connection: Connection, *, channel: str | None, bill_date: date | None, limit: int,
    starting_after: str | None,
) -> list[dict[str, Any]]:  # fmt: skip
    query = select(recon_runs).order_by(recon_runs.c.id.desc()).limit(limit)
    if channel:
        query = query.where(recon_runs.c.channel == channel)
    if bill_date:
        query = query.where(recon_runs.c.bill_date == bill_date)
    if starting_after:
        query = query.where(recon_runs.c.id < starting_after)
    return [dict(row._mapping) for row in connection.execute(query)]


def known_run(
    connection: Connection, channel: str, bill_date: date, sha256: str | None = None
) -> str | None:
    """A completed run of the channel's day; given a file hash, any run (a rejected one
    too) of the file with that hash."""
    query = select(recon_runs.c.id).where(
        recon_runs.c.channel == channel, recon_runs.c.bill_date == bill_date
    )
    if sha256 is None:
        query = query.where(recon_runs.c.status == "completed")
    else:
        query = query.join(recon_files, recon_files.c.id == recon_runs.c.file_id).where(
            recon_files.c.sha256 == sha256
        )
    return connection.execute(query.limit(1)).scalar()


# --- breaks -----------------------------------------------------------------------------
def known_break_keys(connection: Connection, channel: str, bill_date: date) -> set[tuple[str, str]]:
    query = select(recon_breaks.c.type, recon_breaks.c.match_key).where(
        recon_breaks.c.channel == channel, recon_breaks.c.bill_date == bill_date
    )
    return {(row.type, row.match_key) for row in connection.execute(query)}


def insert_breaks(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    _insert(connection, insert(recon_breaks), rows)


def get_break(
    connection: Connection, break_id: str, *, lock: bool = False
) -> dict[str, Any] | None:
    query = select(recon_breaks).where(recon_breaks.c.id == break_id)
    if lock and connection.dialect.name != "sqlite":
        query = query.with_for_update()
    row = connection.execute(query).first()
    return None if row is None else dict(row._mapping)


def list_breaks(
    connection: Connection, *, status: str | None, type_: str | None, channel: str | None,
    bill_date: date | None, limit: int, starting_after: str | None,
) -> list[dict[str, Any]]:  # fmt: skip
    query = select(recon_breaks).order_by(recon_breaks.c.id.desc()).limit(limit)
    filters = {"status": status, "type": type_, "channel": channel, "bill_date": bill_date}
    for column, value in filters.items():
        if value:
            query = query.where(recon_breaks.c[column] == value)
    if starting_after:
        query = query.where(recon_breaks.c.id < starting_after)
    return [dict(row._mapping) for row in connection.execute(query)]


def breaks_of_key(connection: Connection, bill_date: date, match_key: str) -> list[dict[str, Any]]:
    query = select(recon_breaks).where(
        recon_breaks.c.bill_date == bill_date, recon_breaks.c.match_key == match_key
    )
    return [dict(row._mapping) for row in connection.execute(query.order_by(recon_breaks.c.id))]


def update_break(connection: Connection, break_id: str, **values: Any) -> None:
    connection.execute(update(recon_breaks).where(recon_breaks.c.id == break_id).values(**values))


def insert_break_events(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    _insert(connection, insert(recon_break_events), rows)


def break_events(connection: Connection, break_id: str) -> list[dict[str, Any]]:
    query = (
        select(recon_break_events)
        .where(recon_break_events.c.break_id == break_id)
        .order_by(recon_break_events.c.id)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def unresolved_breaks(connection: Connection, channel: str | None) -> list[tuple[Any, ...]]:
    """Status, type and bill date of every break not yet resolved (for ageing)."""
    query = select(recon_breaks.c.status, recon_breaks.c.type, recon_breaks.c.bill_date).where(
        recon_breaks.c.status != "resolved"
    )
    if channel:
        query = query.where(recon_breaks.c.channel == channel)
    return [tuple(row) for row in connection.execute(query)]
