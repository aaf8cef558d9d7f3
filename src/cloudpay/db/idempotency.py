"""`Idempotency-Key` store: the first response to a key is the answer to every retry.

The key row is written in the same transaction as the request's effects, so a crash leaves
either both or neither. Two concurrent requests with one key: the second blocks on the unique
key (PostgreSQL) or the write lock (SQLite), then finds the stored response on its retry.
Same key + another request body is a 409. Keys live `ttl_hours` (≥ 24 h).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Engine, Integer, String, Table, Text, delete, insert, select
from sqlalchemy.exc import IntegrityError

from cloudpay.db.metadata import metadata
from cloudpay.db.types import UtcDateTime
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import Clock, SystemClock
from cloudpay.kernel.errors import IdempotencyConflict, InvalidRequest

MAX_KEY_LENGTH = 255
MAX_RACE_RETRIES = 3

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("key", String(MAX_KEY_LENGTH), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response_body", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]
    replayed: bool


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


def validate_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidRequest(
            f"Idempotency-Key must be 1–{MAX_KEY_LENGTH} printable characters",
            code="idempotency_key_invalid",
            param="Idempotency-Key",
        )
    return key


def execute_idempotently(
    engine: Engine,
    *,
    scope: str,
    key: str,
    request_hash: str,
    work: Callable[[UnitOfWork], tuple[int, dict[str, Any]]],
    clock: Clock | None = None,
    ttl_hours: int = 48,
) -> StoredResponse:
    """Run `work` once per (scope, key); a retry gets the stored first response."""
    the_clock = clock or SystemClock()
    validate_key(key)

    def attempt(uow: UnitOfWork) -> StoredResponse:
        stored = _find_live(uow, scope, key, request_hash)
        if stored is not None:
            return stored
        status_code, body = work(uow)
        _store(uow, scope, key, request_hash, status_code, body, ttl_hours)
        return StoredResponse(status_code, body, replayed=False)

    for _ in range(MAX_RACE_RETRIES):
        try:
            return run_in_transaction(engine, attempt, clock=the_clock)
        except IntegrityError as error:
            if "idempotency_keys" not in str(error):
                raise
            # Lost the race to a concurrent request with the same key: read its answer.
    return run_in_transaction(engine, attempt, clock=the_clock)


def _find_live(uow: UnitOfWork, scope: str, key: str, request_hash: str) -> StoredResponse | None:
    row = uow.connection.execute(
        select(idempotency_keys).where(
            idempotency_keys.c.scope == scope, idempotency_keys.c.key == key
        )
    ).first()
    if row is None:
        return None
    if row.expires_at <= uow.clock.now():
        uow.connection.execute(
            delete(idempotency_keys).where(
                idempotency_keys.c.scope == scope, idempotency_keys.c.key == key
            )
        )
        return None
    if row.request_hash != request_hash:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with a different request",
            param="Idempotency-Key",
        )
    return StoredResponse(row.status_code, json.loads(row.response_body), replayed=True)


def _store(
    uow: UnitOfWork,
    scope: str,
    key: str,
    request_hash: str,
    status_code: int,
    body: dict[str, Any],
    ttl_hours: int,
) -> None:
    now = uow.clock.now()
    uow.connection.execute(
        insert(idempotency_keys).values(
            scope=scope,
            key=key,
            request_hash=request_hash,
            status_code=status_code,
            response_body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
            created_at=now,
            expires_at=now + timedelta(hours=ttl_hours),
        )
    )


def purge_expired(uow: UnitOfWork, *, now: datetime | None = None) -> int:
    """Delete keys past their expiry; run by the worker's scheduled jobs."""
    cutoff = now or uow.clock.now()
    result = uow.connection.execute(
        delete(idempotency_keys).where(idempotency_keys.c.expires_at <= cutoff)
    )
    return int(result.rowcount or 0)
