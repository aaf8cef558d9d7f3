"""The worker: scheduled jobs (and, as the gateway lands, the outbox relay and webhooks)."""

from cloudpay.worker.jobs import JOBS, run_due_jobs, run_worker

__all__ = ["JOBS", "run_due_jobs", "run_worker"]
