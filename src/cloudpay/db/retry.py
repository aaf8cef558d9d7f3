"""Which database failures are worth retrying, and the backoff between attempts.

Retried: PostgreSQL serialization failure (40001) and deadlock (40P01) — the normal cost of
SERIALIZABLE and of CockroachDB/YugabyteDB — and SQLite's "database is locked/busy". Anything
else is not a transient conflict and propagates at once.
"""

from __future__ import annotations

import random
import sqlite3
import time

from sqlalchemy.exc import DBAPIError

RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
_SQLITE_BUSY_MARKERS = ("database is locked", "database is busy", "database table is locked")
BACKOFF_BASE_S = 0.002
BACKOFF_CAP_S = 0.5


class RetryableConflict(Exception):
    """Raised by a service that lost a race it can win by running again (a unique key taken
    by a concurrent transaction that has since committed)."""


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, RetryableConflict):
        return True
    if isinstance(error, DBAPIError):
        original: BaseException | None = error.orig
    elif isinstance(error, sqlite3.OperationalError):
        original = error  # BEGIN IMMEDIATE goes to the driver directly (db/engine.py)
    else:
        return False
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        return True
    message = str(original).lower()
    return any(marker in message for marker in _SQLITE_BUSY_MARKERS)


def backoff_delay_s(attempt: int) -> float:
    """Full-jitter exponential backoff: spreads out writers that collided on the same rows."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * (2**attempt))
    return random.uniform(0, ceiling)


def sleep_before_retry(attempt: int) -> None:
    time.sleep(backoff_delay_s(attempt))
