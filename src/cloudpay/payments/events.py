"""Events for merchants (`order.succeeded`, `refund.succeeded`, …), written to the outbox in
the same transaction as the change they announce; the worker delivers them as webhooks."""

from __future__ import annotations

from typing import Any

from cloudpay.db import outbox
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.ids import new_id

WEBHOOK_TOPIC = "webhook"

ORDER_SUCCEEDED = "order.succeeded"
ORDER_FAILED = "order.failed"
ORDER_CLOSED = "order.closed"
ORDER_EXPIRED = "order.expired"
REFUND_SUCCEEDED = "refund.succeeded"
REFUND_FAILED = "refund.failed"
EVENT_TYPES = (
    ORDER_SUCCEEDED, ORDER_FAILED, ORDER_CLOSED, ORDER_EXPIRED, REFUND_SUCCEEDED, REFUND_FAILED,
)  # fmt: skip


def emit(
    uow: UnitOfWork,
    *,
    event_type: str,
    app_id: str,
    merchant_id: str,
    url: str | None,
    data_object: dict[str, Any],
) -> str:
    """Queue an event; without a notify URL it is still listed by `GET /v1/events`."""
    event_id = new_id("evt")
    event = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": uow.clock.now().isoformat(),
        "app_id": app_id,
        "data": {"object": data_object},
    }
    payload = {"event": event, "url": url, "merchant_id": merchant_id}
    outbox.enqueue(
        uow, topic=WEBHOOK_TOPIC, aggregate_id=app_id, payload=payload, event_id=event_id
    )
    return event_id
