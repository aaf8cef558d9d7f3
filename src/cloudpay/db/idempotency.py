"""`Idempotency-Key` store: the first response to a key is the answer to every retry.

Single-transaction requests (`execute_idempotently`): the key row is written in the same
transaction as the request's effects, so a crash leaves both or neither. Requests that call
out between transactions (create an order, then ask the channel) use `claim` … `complete`:
the claim is written before the flow starts, the response when it ends; a retry that
finds a fresh claim gets a 409 `idempotency_request_in_progress`, and one that finds a claim
older than `STALE_CLAIM_S` (its process died) runs the request again — which is why such
flows must themselves be idempotent. Same key + another request body is a 409. Keys live
`ttl_hours` (≥ 24 h).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Engine, Integer, String, Table, Text, delete, insert, select, update
from sqlalchemy import bindparam as bound
from sqlalchemy.exc import IntegrityError

from cloudpay.db.metadata import metadata
from cloudpay.db.retry import RetryableConflict
from cloudpay.db.types import UtcDateTime
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import Clock, SystemClock
from cloudpay.kernel.errors import Conflict, IdempotencyConflict, InvalidRequest

MAX_KEY_LENGTH = 255
STALE_CLAIM_S = 30
IN_PROGRESS = "in_progress"
COMPLETED = "completed"

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("key", String(MAX_KEY_LENGTH), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("locked_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)


# Every request with an Idempotency-Key runs these: built once, values bound per execution
# (building a statement costs more than running it on SQLite).
_KEY_MATCHES = (
    idempotency_keys.c.scope == bound("b_scope"),
    idempotency_keys.c.key == bound("b_key"),
)
_FIND = select(idempotency_keys).where(*_KEY_MATCHES)
_INSERT = insert(idempotency_keys)
_UPDATE = update(idempotency_keys).where(*_KEY_MATCHES)


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]
    replayed: bool


class KeyTaken(RetryableConflict):
    """A concurrent request inserted the same key first; the retry reads its answer."""


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
    """Run `work` once per (scope, key) in one transaction with the stored response."""
    validate_key(key)

    def attempt(uow: UnitOfWork) -> StoredResponse:
        stored = claim(uow, scope=scope, key=key, request_hash=request_hash, ttl_hours=ttl_hours)
        if stored is not None:
            return stored
        status_code, body = work(uow)
        complete(uow, scope=scope, key=key, status_code=status_code, body=body)
        return StoredResponse(status_code, body, replayed=False)

    return run_in_transaction(engine, attempt, clock=clock or SystemClock())


def claim(
    uow: UnitOfWork, *, scope: str, key: str, request_hash: str, ttl_hours: int = 48
) -> StoredResponse | None:
    """Take the key for this request, or return the stored response of an earlier one."""
    validate_key(key)
    now = uow.clock.now()
    row = _find(uow, scope, key)
    if row is not None and row.expires_at <= now:
        _delete(uow, scope, key)
        row = None
    if row is None:
        _insert_claim(uow, scope, key, request_hash, now, ttl_hours)
        return None
    if row.request_hash != request_hash:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with a different request",
            param="Idempotency-Key",
        )
    if row.state == COMPLETED:
        return StoredResponse(row.status_code, json.loads(row.response_body), replayed=True)
    if row.locked_at is not None and now - row.locked_at < timedelta(seconds=STALE_CLAIM_S):
        raise Conflict(
            "a request with this Idempotency-Key is still being processed; retry shortly",
            code="idempotency_request_in_progress",
            param="Idempotency-Key",
        )
    _relock(uow, scope, key, now)  # its first attempt died mid-way: run it again
    return None


def complete(
    uow: UnitOfWork, *, scope: str, key: str, status_code: int, body: dict[str, Any]
) -> None:
    uow.connection.execute(
        _UPDATE,
        {
            "b_scope": scope,
            "b_key": key,
            "state": COMPLETED,
            "status_code": status_code,
            "response_body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
            "locked_at": None,
        },
    )


def release(uow: UnitOfWork, *, scope: str, key: str) -> None:
    """Forget a claim whose request failed without effects, so a retry starts afresh."""
    uow.connection.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.scope == scope,
            idempotency_keys.c.key == key,
            idempotency_keys.c.state == IN_PROGRESS,
        )
    )


def _find(uow: UnitOfWork, scope: str, key: str) -> Any:
    return uow.connection.execute(_FIND, {"b_scope": scope, "b_key": key}).first()


def _delete(uow: UnitOfWork, scope: str, key: str) -> None:
    uow.connection.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.scope == scope, idempotency_keys.c.key == key
        )
    )


def _insert_claim(
    uow: UnitOfWork, scope: str, key: str, request_hash: str, now: datetime, ttl_hours: int
) -> None:
    try:
        uow.connection.execute(
            _INSERT,
            {
                "scope": scope, "key": key, "request_hash": request_hash, "state": IN_PROGRESS,
                "locked_at": now, "created_at": now, "expires_at": now + timedelta(hours=ttl_hours),
            },
        )  # fmt: skip
    except IntegrityError as error:
        raise KeyTaken from error


def _relock(uow: UnitOfWork, scope: str, key: str, now: datetime) -> None:
    uow.connection.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
        .values(locked_at=now)
    )


def purge_expired(uow: UnitOfWork, *, now: datetime | None = None) -> int:
    """Delete keys past their expiry; run by the worker's scheduled jobs."""
    cutoff = now or uow.clock.now()
    result = uow.connection.execute(
        delete(idempotency_keys).where(idempotency_keys.c.expires_at <= cutoff)
    )
    return int(result.rowcount or 0)
