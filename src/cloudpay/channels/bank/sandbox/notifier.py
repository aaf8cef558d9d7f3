"""The sandbox bank's webhooks, POSTed to the platform until it answers 2xx, on the same
scheduler as the transfers that settle later.

Retries follow the platform-wide webhook schedule (DESIGN.md) — 15s, 15s, 30s, 3m, 10m, …;
each attempt is re-signed with a fresh timestamp and nonce, so a retry is never a replay.
Delays are sandbox seconds × `time_scale`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cloudpay.channels.sandbox_kit import AttemptRecord, RetryingNotifier, Scheduler
from cloudpay.kernel.clock import Clock

RETRY_SCHEDULE_S = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800)
ATTEMPT_TIMEOUT_S = 5.0


@dataclass(frozen=True, kw_only=True)
class DeliveryAttempt(AttemptRecord):
    """Delivered on any 2xx."""

    event_id: str
    event_type: str
    transfer_id: str


@dataclass(frozen=True)
class Webhook:
    url: str
    event_id: str
    event_type: str
    transfer_id: str
    body: bytes


class Notifier(RetryingNotifier[Webhook, DeliveryAttempt]):
    """Signed webhooks on the bank's scheduler (shared with late settlements); attempts filed
    by transfer id."""

    def __init__(
        self, *, scheduler: Scheduler, sign: Callable[[bytes], dict[str, str]], clock: Clock
    ) -> None:
        super().__init__(
            clock=clock,
            schedule_s=RETRY_SCHEDULE_S,
            attempt_timeout_s=ATTEMPT_TIMEOUT_S,
            name="bank-notifier",
            scheduler=scheduler,
        )
        self._sign = sign

    def _headers(self, delivery: Webhook) -> dict[str, str]:
        return {"Content-Type": "application/json", **self._sign(delivery.body)}

    def _record(self, delivery: Webhook, outcome: AttemptRecord) -> DeliveryAttempt:
        return DeliveryAttempt(
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            transfer_id=delivery.transfer_id,
            **outcome.base_fields(),
        )

    def _filed_under(self, attempt: DeliveryAttempt) -> str:
        return attempt.transfer_id
