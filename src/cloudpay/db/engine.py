"""Engines for the two databases we run on.

SQLite (the embedded default) runs in WAL mode with foreign keys and a busy timeout, and every
write transaction starts with `BEGIN IMMEDIATE`: taking the write lock up front means two
writers queue on the busy timeout instead of deadlocking when both try to upgrade a read lock.
PostgreSQL gets the isolation level from settings (ADR 0001).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

SQLITE_BEGIN_OPTION = "cloudpay_sqlite_begin"


def make_engine(
    url: str,
    *,
    isolation_level: str = "READ COMMITTED",
    pool_size: int = 10,
    sqlite_busy_timeout_ms: int = 5_000,
) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, sqlite_busy_timeout_ms)
    return create_engine(
        url,
        isolation_level=isolation_level,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
    )


def _sqlite_engine(url: str, busy_timeout_ms: int) -> Engine:
    in_memory = url in ("sqlite://", "sqlite:///:memory:")
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        # One shared connection for an in-memory database, or each connection sees its own.
        **({"poolclass": StaticPool} if in_memory else {}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Python's sqlite3 would otherwise issue its own BEGINs; we take control of them.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable in WAL except on power loss
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # 64 MiB page cache: the ledger's per-account indexes touch many pages per batch.
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
        # Straight to the driver: SQLAlchemy's statement path costs ~40 µs per transaction.
        connection.connection.driver_connection.execute(f"BEGIN {mode}")  # type: ignore[union-attr]

    return engine
