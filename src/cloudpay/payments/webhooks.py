"""Webhooks to merchants: deliver queued events, signed, at least once, on a fixed schedule.

Retry schedule after a failed attempt (WeChat Pay's notification schedule, which merchants in
China already expect): 15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h —
then the event is given up and stays re-sendable from the API and the console. A 2xx answer
is success; anything else, a timeout or a refused connection is a failed attempt.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import insert, select

from cloudpay.db import outbox
from cloudpay.db.unit_of_work import Transact, UnitOfWork
from cloudpay.kernel.errors import NotFound
from cloudpay.kernel.ids import new_id
from cloudpay.payments.events import WEBHOOK_TOPIC
from cloudpay.payments.tables import webhook_attempts

log = structlog.get_logger(__name__)

RETRY_SCHEDULE = tuple(
    timedelta(seconds=s)
    for s in (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
)
DELIVERY_TIMEOUT_S = 10.0
MAX_BATCH = 50

Signer = Callable[[bytes], dict[str, str]]


@dataclass(frozen=True)
class Delivery:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def next_retry(attempts_so_far: int) -> timedelta | None:
    """The wait after the `attempts_so_far`-th failure, or None once the schedule is spent."""
    index = attempts_so_far - 1
    return RETRY_SCHEDULE[index] if 0 <= index < len(RETRY_SCHEDULE) else None


def deliver_due(
    transact: Transact, *, sign: Signer, client: httpx.Client, limit: int = MAX_BATCH
) -> int:
    """One relay pass: lease due events, post each, record the attempt. Returns how many."""
    leased = transact(lambda uow: outbox.lease_due(uow, topic=WEBHOOK_TOPIC, limit=limit))
    for event in leased:
        _deliver_one(transact, event, sign=sign, client=client)
    return len(leased)


def _deliver_one(
    transact: Transact, event: outbox.OutboxEvent, *, sign: Signer, client: httpx.Client
) -> None:
    url = event.payload.get("url")
    if not url:  # no endpoint configured: the event stays listable, nothing to send
        transact(lambda uow: outbox.mark_dispatched(uow, event.id))
        return
    body = json.dumps(event.payload["event"], separators=(",", ":"), ensure_ascii=False).encode()
    delivery = _post(client, str(url), body, sign)
    transact(lambda uow: _record(uow, event, str(url), delivery))


def _post(client: httpx.Client, url: str, body: bytes, sign: Signer) -> Delivery:
    headers = {"Content-Type": "application/json", **sign(body)}
    started = time.monotonic()
    try:
        response = client.post(url, content=body, headers=headers, timeout=DELIVERY_TIMEOUT_S)
    except httpx.HTTPError as error:
        elapsed_ms = int((time.monotonic() - started) * 1000)
        return Delivery(None, f"{type(error).__name__}: {error}"[:512], elapsed_ms)
    elapsed_ms = int((time.monotonic() - started) * 1000)
    return Delivery(response.status_code, None, elapsed_ms)


def _record(uow: UnitOfWork, event: outbox.OutboxEvent, url: str, delivery: Delivery) -> None:
    attempt = event.attempts + 1
    uow.connection.execute(
        insert(webhook_attempts).values(
            id=new_id("wha"), event_id=event.id, attempt=attempt, url=url,
            status_code=delivery.status_code, error=delivery.error,
            duration_ms=delivery.duration_ms, attempted_at=uow.clock.now(),
        )
    )  # fmt: skip
    if delivery.ok:
        outbox.mark_dispatched(uow, event.id)
        return
    wait = next_retry(attempt)
    retry_at = None if wait is None else uow.clock.now() + wait
    reason = delivery.error or f"HTTP {delivery.status_code}"
    outbox.mark_failed(uow, event.id, retry_at=retry_at, error=reason)
    log.info("webhook.failed", event_id=event.id, attempt=attempt, reason=reason)


# --- the events resource ----------------------------------------------------------------
def event_view(uow: UnitOfWork, event: outbox.OutboxEvent) -> dict[str, Any]:
    attempts = uow.connection.execute(
        select(webhook_attempts)
        .where(webhook_attempts.c.event_id == event.id)
        .order_by(webhook_attempts.c.attempt)
    )
    view = dict(event.payload["event"])
    view["delivery"] = {
        "url": event.payload.get("url"),
        "status": _delivery_status(event),
        "attempts": [
            {
                "attempt": row.attempt,
                "status_code": row.status_code,
                "error": row.error,
                "duration_ms": row.duration_ms,
                "attempted_at": row.attempted_at.isoformat(),
            }
            for row in attempts
        ],
    }
    return view


def _delivery_status(event: outbox.OutboxEvent) -> str:
    if event.dispatched_at is not None:
        return "delivered" if event.payload.get("url") else "no_endpoint"
    if event.gave_up_at is not None:
        return "failed"
    return "pending"


def get_event(uow: UnitOfWork, *, event_id: str, app_id: str | None) -> outbox.OutboxEvent:
    event = outbox.get_event(uow, event_id)
    if event is None or event.topic != WEBHOOK_TOPIC or (app_id and event.aggregate_id != app_id):
        raise NotFound(f"no event {event_id}", code="event_not_found", param="id")
    return event


def resend(uow: UnitOfWork, *, event_id: str, app_id: str | None) -> outbox.OutboxEvent:
    get_event(uow, event_id=event_id, app_id=app_id)
    outbox.requeue(uow, event_id)
    return get_event(uow, event_id=event_id, app_id=app_id)


def list_events(
    uow: UnitOfWork, *, app_id: str | None, limit: int, starting_after: str | None
) -> list[outbox.OutboxEvent]:
    return outbox.list_events(
        uow, topic=WEBHOOK_TOPIC, aggregate_id=app_id, limit=limit, starting_after=starting_after
    )
