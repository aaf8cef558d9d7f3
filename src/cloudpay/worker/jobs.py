"""Periodic jobs, each one short transaction, safe to run on several workers at once.

A job that dies mid-way loses nothing: each pass is a transaction that either committed or
did not, and the next pass picks up what is still due.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import Engine

from cloudpay.db.idempotency import purge_expired
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import Clock
from cloudpay.ledger import expire_pending_transfers

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    every_s: float
    run: Callable[[UnitOfWork], int]


JOBS: tuple[Job, ...] = (
    Job("ledger.expire_pending_transfers", 5.0, expire_pending_transfers),
    Job("idempotency.purge_expired_keys", 3600.0, purge_expired),
)


def run_due_jobs(engine: Engine, clock: Clock, last_run: dict[str, float]) -> dict[str, int]:
    """Run every job whose interval has passed; returns how much each one did."""
    done: dict[str, int] = {}
    now = time.monotonic()
    for job in JOBS:
        if now - last_run.get(job.name, -job.every_s) < job.every_s:
            continue
        done[job.name] = run_in_transaction(engine, job.run, clock=clock)
        last_run[job.name] = now
        if done[job.name]:
            log.info("job.done", job=job.name, count=done[job.name])
    return done


def run_worker(engine: Engine, clock: Clock, *, stop: threading.Event, poll_s: float = 1.0) -> None:
    last_run: dict[str, float] = {}
    while not stop.is_set():
        try:
            run_due_jobs(engine, clock, last_run)
        except Exception:
            # A failing job must not stop the others; it is retried on the next pass.
            log.exception("job.failed")
        stop.wait(poll_s)
