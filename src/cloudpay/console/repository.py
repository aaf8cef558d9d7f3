"""The console context's SQL: users, sessions, login failures, audit entries, day totals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from cloudpay.console.model import Role
from cloudpay.console.tables import (
    console_audit_log,
    console_day_totals,
    console_login_failures,
    console_sessions,
    console_users,
)
from cloudpay.kernel.ids import new_id


@dataclass(frozen=True)
class UserRow:
    id: str
    email: str
    password_hash: str
    role: Role
    merchant_id: str | None
    agent_id: str | None
    totp_secret_encrypted: str | None
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SessionRow:
    token_hash: str
    user_id: str
    csrf_token: str
    language: str
    ip: str | None
    user_agent: str | None
    created_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None


def _user(row: Any) -> UserRow:
    values = dict(row._mapping)
    values["role"] = Role(values["role"])
    return UserRow(**values)


# --- users -------------------------------------------------------------------------------
def insert_user(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(insert(console_users).values(**values))


def find_user_by_email(connection: Connection, email: str) -> UserRow | None:
    row = connection.execute(select(console_users).where(console_users.c.email == email)).first()
    return None if row is None else _user(row)


def get_user(connection: Connection, user_id: str) -> UserRow | None:
    row = connection.execute(select(console_users).where(console_users.c.id == user_id)).first()
    return None if row is None else _user(row)


def list_users(connection: Connection, *, limit: int) -> list[UserRow]:
    query = select(console_users).order_by(console_users.c.id).limit(limit)
    return [_user(row) for row in connection.execute(query)]


def update_user(connection: Connection, user_id: str, **values: Any) -> None:
    connection.execute(update(console_users).where(console_users.c.id == user_id).values(**values))


# --- sessions ----------------------------------------------------------------------------
def insert_session(connection: Connection, values: dict[str, Any]) -> None:
    connection.execute(insert(console_sessions).values(**values))


def get_session(connection: Connection, token_hash: str) -> SessionRow | None:
    query = select(console_sessions).where(console_sessions.c.token_hash == token_hash)
    row = connection.execute(query).first()
    return None if row is None else SessionRow(**dict(row._mapping))


def update_session(connection: Connection, token_hash: str, **values: Any) -> None:
    connection.execute(
        update(console_sessions).where(console_sessions.c.token_hash == token_hash).values(**values)
    )


def revoke_sessions_of(connection: Connection, user_id: str, *, now: datetime) -> None:
    connection.execute(
        update(console_sessions)
        .where(console_sessions.c.user_id == user_id, console_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


# --- login failures ----------------------------------------------------------------------
def record_login_failure(
    connection: Connection, *, email: str, ip: str | None, now: datetime
) -> None:
    connection.execute(
        insert(console_login_failures).values(id=new_id("lgf"), email=email, ip=ip, failed_at=now)
    )


def count_login_failures(connection: Connection, *, email: str, since: datetime) -> int:
    query = select(func.count()).where(
        console_login_failures.c.email == email, console_login_failures.c.failed_at >= since
    )
    return int(connection.execute(query).scalar_one())


def clear_login_failures(connection: Connection, *, email: str) -> None:
    connection.execute(
        delete(console_login_failures).where(console_login_failures.c.email == email)
    )


# --- audit -------------------------------------------------------------------------------
def insert_audit(connection: Connection, values: dict[str, Any]) -> None:
    row = dict(values)
    for side in ("before", "after"):
        if row.get(side) is not None:
            row[side] = json.dumps(row[side], ensure_ascii=False, sort_keys=True, default=str)
    connection.execute(insert(console_audit_log).values(**row))


def _audit(row: Any) -> dict[str, Any]:
    values = dict(row._mapping)
    for side in ("before", "after"):
        values[side] = json.loads(values[side]) if values[side] else None
    return values


def list_audit(
    connection: Connection, *, limit: int, starting_after: str | None,
    object_id: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    query = select(console_audit_log).order_by(console_audit_log.c.id.desc()).limit(limit)
    if starting_after:
        query = query.where(console_audit_log.c.id < starting_after)
    if object_id:
        query = query.where(console_audit_log.c.object_id == object_id)
    return [_audit(row) for row in connection.execute(query)]


def iterate_audit(connection: Connection) -> Iterator[dict[str, Any]]:
    """Every entry, oldest first, streamed (exports are whole logs)."""
    query = select(console_audit_log).order_by(console_audit_log.c.id)
    for row in connection.execution_options(yield_per=1000).execute(query):
        yield _audit(row)


# --- day totals --------------------------------------------------------------------------
def load_day_totals(connection: Connection, days: list[str]) -> list[dict[str, Any]]:
    query = select(console_day_totals).where(console_day_totals.c.business_day.in_(days))
    return [dict(row._mapping) for row in connection.execute(query)]


def replace_day_totals(connection: Connection, day: str, rows: list[dict[str, Any]]) -> None:
    connection.execute(delete(console_day_totals).where(console_day_totals.c.business_day == day))
    if rows:
        connection.execute(insert(console_day_totals), rows)
