"""Request nonces of merchant apps: each accepted at most once.

A row lives as long as a request carrying its timestamp could still pass the ±5 min window;
after that the window itself refuses a replay, so the worker may purge it. The insert is the
whole check: the primary key makes "insert or reject" one atomic step on SQLite and
PostgreSQL alike, with no read before it to race against.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Column, Index, String, Table, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import ReturningInsert

from cloudpay.db.metadata import metadata
from cloudpay.db.types import UtcDateTime
from cloudpay.db.unit_of_work import UnitOfWork

MAX_NONCE_CHARS = 64
PURGE_BATCH_ROWS = 50_000  # a minute of nonces at 800 requests/s
# Clock granularity and skew between API processes: keep a row this much past its window.
EXPIRY_MARGIN = timedelta(minutes=1)

api_nonces = Table(
    "api_nonces",
    metadata,
    Column("app_id", String(64), primary_key=True),
    Column("nonce", String(MAX_NONCE_CHARS), primary_key=True),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_api_nonces_expires_at", "expires_at"),
)


_KEYS = ["app_id", "nonce"]
# RETURNING, not rowcount: psycopg reports -1 for an INSERT … ON CONFLICT DO NOTHING.
# Built once (every signed request runs one); the row goes in as execution parameters.
_INSERT_SQLITE: ReturningInsert[tuple[str]] = (
    sqlite.insert(api_nonces).on_conflict_do_nothing(_KEYS).returning(api_nonces.c.nonce)
)
_INSERT_POSTGRESQL: ReturningInsert[tuple[str]] = (
    postgresql.insert(api_nonces)
    .on_conflict_do_nothing(index_elements=_KEYS)
    .returning(api_nonces.c.nonce)
)


def remember_nonce(uow: UnitOfWork, *, app_id: str, nonce: str, expires_at: datetime) -> bool:
    """True if this is the first time `app_id` used `nonce`; False (and nothing written) if not."""
    row = {"app_id": app_id, "nonce": nonce, "expires_at": expires_at}
    statement = _INSERT_SQLITE if uow.dialect == "sqlite" else _INSERT_POSTGRESQL
    return uow.connection.execute(statement, row).first() is not None


def purge_expired_nonces(uow: UnitOfWork, *, now: datetime | None = None) -> int:
    """Delete up to `PURGE_BATCH_ROWS` nonces past their window; a worker job, every minute."""
    cutoff = now or uow.clock.now()
    due = (
        select(api_nonces.c.app_id, api_nonces.c.nonce)
        .where(api_nonces.c.expires_at <= cutoff)
        .limit(PURGE_BATCH_ROWS)
    )
    result = uow.connection.execute(
        delete(api_nonces).where(tuple_(api_nonces.c.app_id, api_nonces.c.nonce).in_(due))
    )
    return int(result.rowcount or 0)
