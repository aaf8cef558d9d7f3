"""The worker: webhook delivery, payment polling and the ledger's and API's housekeeping."""

from cloudpay.worker.jobs import JOBS, WorkerContext, run_due_jobs, run_worker

__all__ = ["JOBS", "WorkerContext", "run_due_jobs", "run_worker"]
