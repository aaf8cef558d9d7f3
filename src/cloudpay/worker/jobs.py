"""Periodic jobs, each a short transaction (or a few around a network call), safe to run on
several workers at once. A job that dies mid-way loses nothing: what it committed stays, and
the next pass picks up what is still due.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time as time_of_day

import httpx
import structlog
from sqlalchemy import Engine

from cloudpay import reconciliation
from cloudpay.channels.bank import BankChannel
from cloudpay.db.idempotency import purge_expired
from cloudpay.db.unit_of_work import Transact, transactor
from cloudpay.kernel.clock import Clock
from cloudpay.ledger import expire_pending_transfers
from cloudpay.marketing import expire_points, return_unclaimed_red_packets, review_abuse
from cloudpay.payments import flows, webhooks
from cloudpay.web.nonces import purge_expired_nonces

log = structlog.get_logger(__name__)


@dataclass
class WorkerContext:
    """What jobs need; the payment jobs run only when channels and a signer are given."""

    engine: Engine
    clock: Clock
    channel_context: flows.ChannelContext | None = None
    sign_webhook: webhooks.Signer | None = None
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))
    # The daily reconciliation: when (Asia/Shanghai; `reconciliation.DEFAULT_RUN_AT` is
    # 10:00), None for a worker that leaves it to another; and the partner banks whose
    # custody statements it checks besides every channel's bill, by bank code.
    reconcile_at: time_of_day | None = None
    banks: Mapping[str, BankChannel] = field(default_factory=dict)

    @property
    def transact(self) -> Transact:
        return transactor(self.engine, self.clock)


@dataclass(frozen=True)
class Job:
    name: str
    every_s: float
    run: Callable[[WorkerContext], int]


def _expire_holds(ctx: WorkerContext) -> int:
    return ctx.transact(expire_pending_transfers)


def _purge_keys(ctx: WorkerContext) -> int:
    return ctx.transact(purge_expired)


def _purge_nonces(ctx: WorkerContext) -> int:
    return ctx.transact(purge_expired_nonces)


def _poll_orders(ctx: WorkerContext) -> int:
    if ctx.channel_context is None:
        return 0
    return flows.poll_open_orders(ctx.transact, ctx.channel_context)


def _poll_refunds(ctx: WorkerContext) -> int:
    if ctx.channel_context is None:
        return 0
    return flows.poll_processing_refunds(ctx.transact, ctx.channel_context)


def _deliver_webhooks(ctx: WorkerContext) -> int:
    if ctx.sign_webhook is None:
        return 0
    return webhooks.deliver_due(ctx.transact, sign=ctx.sign_webhook, client=ctx.http)


def _reconcile_daily(ctx: WorkerContext) -> int:
    """Yesterday's bills and statements, once; a pass with nothing left to do is cheap."""
    if ctx.reconcile_at is None or (ctx.channel_context is None and not ctx.banks):
        return 0
    day = reconciliation.due_bill_date(ctx.clock.now(), ctx.reconcile_at)
    channels = ctx.channel_context.channels if ctx.channel_context is not None else None
    outcome = reconciliation.reconcile_all(ctx.transact, channels=channels, banks=ctx.banks,
                                           day=day)  # fmt: skip
    return sum(verdict == "reconciled" for verdict in outcome.values())


JOBS: tuple[Job, ...] = (
    Job("webhooks.deliver", 1.0, _deliver_webhooks),
    Job("payments.poll_orders", 2.0, _poll_orders),
    Job("payments.poll_refunds", 5.0, _poll_refunds),
    Job("ledger.expire_pending_transfers", 5.0, _expire_holds),
    Job("idempotency.purge_expired_keys", 3600.0, _purge_keys),
    Job("auth.purge_expired_nonces", 60.0, _purge_nonces),
    Job("marketing.return_red_packets", 60.0, lambda c: c.transact(return_unclaimed_red_packets)),
    Job("marketing.expire_points", 3600.0, lambda c: c.transact(expire_points)),
    Job("marketing.review_abuse", 600.0, lambda c: c.transact(review_abuse)),
    Job("reconciliation.daily", 120.0, _reconcile_daily),
)


def run_due_jobs(ctx: WorkerContext, last_run: dict[str, float]) -> dict[str, int]:
    """Run every job whose interval has passed; returns how much each one did."""
    done: dict[str, int] = {}
    now = time.monotonic()
    for job in JOBS:
        if now - last_run.get(job.name, -job.every_s) < job.every_s:
            continue
        try:
            done[job.name] = job.run(ctx)
        except Exception:
            # One failing job must not starve the others; it runs again next interval.
            log.exception("job.failed", job=job.name)
            done[job.name] = -1
        last_run[job.name] = now
    return done


def run_worker(ctx: WorkerContext, *, stop: threading.Event, poll_s: float = 0.5) -> None:
    last_run: dict[str, float] = {}
    while not stop.is_set():
        run_due_jobs(ctx, last_run)
        stop.wait(poll_s)
