"""Transactional outbox: events are rows written in the same transaction as the change.

A relay (the worker) reads due rows, delivers them, and marks them; if it dies mid-way the row
is still due, so delivery is at-least-once and consumers dedupe by event id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Integer, String, Table, Text, insert, select, update

from cloudpay.db.metadata import metadata
from cloudpay.db.types import UtcDateTime
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.ids import new_id

MAX_CLAIM_BATCH = 500

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


def enqueue(uow: UnitOfWork, *, topic: str, aggregate_id: str, payload: dict[str, Any]) -> str:
    event_id = new_id("evt")
    now = uow.clock.now()
    uow.connection.execute(
        insert(outbox_events).values(
            id=event_id,
            topic=topic,
            aggregate_id=aggregate_id,
            payload=json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
            created_at=now,
            available_at=now,
            attempts=0,
        )
    )
    return event_id


def claim_due(uow: UnitOfWork, *, limit: int = 100) -> list[OutboxEvent]:
    """Due events, locked so that two relays on PostgreSQL never take the same row."""
    query = (
        select(outbox_events)
        .where(
            outbox_events.c.dispatched_at.is_(None),
            outbox_events.c.available_at <= uow.clock.now(),
        )
        .order_by(outbox_events.c.available_at, outbox_events.c.id)
        .limit(min(limit, MAX_CLAIM_BATCH))
    )
    if uow.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [
        OutboxEvent(
            id=row.id,
            topic=row.topic,
            aggregate_id=row.aggregate_id,
            payload=json.loads(row.payload),
            attempts=row.attempts,
            created_at=row.created_at,
        )
        for row in uow.connection.execute(query)
    ]


def mark_dispatched(uow: UnitOfWork, event_id: str) -> None:
    uow.connection.execute(
        update(outbox_events)
        .where(outbox_events.c.id == event_id)
        .values(dispatched_at=uow.clock.now(), attempts=outbox_events.c.attempts + 1)
    )


def mark_failed(uow: UnitOfWork, event_id: str, *, retry_at: datetime, error: str) -> None:
    uow.connection.execute(
        update(outbox_events)
        .where(outbox_events.c.id == event_id)
        .values(
            available_at=retry_at,
            attempts=outbox_events.c.attempts + 1,
            last_error=error[:2000],
        )
    )
