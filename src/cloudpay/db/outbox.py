"""Transactional outbox: events are rows written in the same transaction as the change.

A relay leases due rows (pushes `available_at` forward by a lease) in one short transaction,
delivers them with no transaction open, then records the result. If it dies mid-way, the
lease runs out and the row is due again: delivery is at-least-once, consumers dedupe by id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Index, Integer, String, Table, Text, insert, select, update

from cloudpay.db.metadata import metadata
from cloudpay.db.types import UtcDateTime
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.ids import new_id

MAX_CLAIM_BATCH = 500
DEFAULT_LEASE = timedelta(seconds=60)

outbox_events = Table(
    "outbox_events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("topic", String(64), nullable=False),
    Column("aggregate_id", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("available_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("dispatched_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("gave_up_at", UtcDateTime, nullable=True),
    Index("ix_outbox_events_due", "dispatched_at", "available_at"),
)


@dataclass(frozen=True)
class OutboxEvent:
    id: str
    topic: str
    aggregate_id: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    dispatched_at: datetime | None = None
    gave_up_at: datetime | None = None
    last_error: str | None = None


def _event(row: Any) -> OutboxEvent:
    return OutboxEvent(
        id=row.id, topic=row.topic, aggregate_id=row.aggregate_id,
        payload=json.loads(row.payload), attempts=row.attempts, created_at=row.created_at,
        dispatched_at=row.dispatched_at, gave_up_at=row.gave_up_at, last_error=row.last_error,
    )  # fmt: skip


def enqueue(
    uow: UnitOfWork,
    *,
    topic: str,
    aggregate_id: str,
    payload: dict[str, Any],
    event_id: str | None = None,
) -> str:
    event_id = event_id or new_id("evt")
    now = uow.clock.now()
    uow.connection.execute(
        insert(outbox_events).values(
            id=event_id, topic=topic, aggregate_id=aggregate_id,
            payload=json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
            created_at=now, available_at=now, attempts=0,
        )
    )  # fmt: skip
    return event_id


def lease_due(
    uow: UnitOfWork, *, topic: str, limit: int = 100, lease: timedelta = DEFAULT_LEASE
) -> list[OutboxEvent]:
    """Due events of `topic`, leased to this relay; another relay skips them (SKIP LOCKED)."""
    now = uow.clock.now()
    query = (
        select(outbox_events)
        .where(
            outbox_events.c.topic == topic,
            outbox_events.c.dispatched_at.is_(None),
            outbox_events.c.gave_up_at.is_(None),
            outbox_events.c.available_at <= now,
        )
        .order_by(outbox_events.c.available_at, outbox_events.c.id)
        .limit(min(limit, MAX_CLAIM_BATCH))
    )
    if uow.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    events = [_event(row) for row in uow.connection.execute(query)]
    if events:
        uow.connection.execute(
            update(outbox_events)
            .where(outbox_events.c.id.in_([e.id for e in events]))
            .values(available_at=now + lease)
        )
    return events


def mark_dispatched(uow: UnitOfWork, event_id: str) -> None:
    uow.connection.execute(
        update(outbox_events)
        .where(outbox_events.c.id == event_id)
        .values(dispatched_at=uow.clock.now(), attempts=outbox_events.c.attempts + 1)
    )


def mark_failed(uow: UnitOfWork, event_id: str, *, retry_at: datetime | None, error: str) -> None:
    """Record a failed attempt; `retry_at=None` means the schedule is exhausted: give up."""
    values: dict[str, Any] = {"attempts": outbox_events.c.attempts + 1, "last_error": error[:2000]}
    if retry_at is None:
        values["gave_up_at"] = uow.clock.now()
    else:
        values["available_at"] = retry_at
    uow.connection.execute(
        update(outbox_events).where(outbox_events.c.id == event_id).values(**values)
    )


def requeue(uow: UnitOfWork, event_id: str) -> None:
    """Deliver again now, whatever happened before (an operator's or merchant's resend)."""
    uow.connection.execute(
        update(outbox_events)
        .where(outbox_events.c.id == event_id)
        .values(available_at=uow.clock.now(), dispatched_at=None, gave_up_at=None)
    )


def get_event(uow: UnitOfWork, event_id: str) -> OutboxEvent | None:
    row = uow.connection.execute(
        select(outbox_events).where(outbox_events.c.id == event_id)
    ).first()
    return None if row is None else _event(row)


def list_events(
    uow: UnitOfWork, *, topic: str, aggregate_id: str | None, limit: int, starting_after: str | None
) -> list[OutboxEvent]:
    query = (
        select(outbox_events)
        .where(outbox_events.c.topic == topic)
        .order_by(outbox_events.c.id.desc())
        .limit(limit)
    )
    if aggregate_id is not None:
        query = query.where(outbox_events.c.aggregate_id == aggregate_id)
    if starting_after is not None:
        query = query.where(outbox_events.c.id < starting_after)
    return [_event(row) for row in uow.connection.execute(query)]
