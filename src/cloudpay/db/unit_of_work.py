"""One use case = one transaction, committed once at the boundary, retried when it collides.

Services receive a `UnitOfWork` and never commit; the API route or the job calls
`run_in_transaction`, which begins, runs the work, commits, and on a retryable conflict rolls
back and runs the whole function again on a fresh transaction — so work functions must not
keep state between attempts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import structlog
from sqlalchemy import Connection, Engine

from cloudpay.db.engine import SQLITE_BEGIN_OPTION
from cloudpay.db.retry import is_retryable, sleep_before_retry
from cloudpay.kernel.clock import Clock, SystemClock

T = TypeVar("T")
DEFAULT_MAX_ATTEMPTS = 12
log = structlog.get_logger(__name__)


class TransactionRetriesExhausted(RuntimeError):
    """The database kept refusing the transaction; surfaced as a 503-style operating error."""


@dataclass
class UnitOfWork:
    """What a service needs for one transaction: the connection and the clock."""

    connection: Connection
    clock: Clock = field(default_factory=SystemClock)

    @property
    def dialect(self) -> str:
        return self.connection.dialect.name


def run_in_transaction(
    engine: Engine,
    work: Callable[[UnitOfWork], T],
    *,
    clock: Clock | None = None,
    read_only: bool = False,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> T:
    the_clock = clock or SystemClock()
    options = {SQLITE_BEGIN_OPTION: "DEFERRED" if read_only else "IMMEDIATE"}
    for attempt in range(max_attempts):
        try:
            with engine.connect().execution_options(**options) as connection, connection.begin():
                return work(UnitOfWork(connection=connection, clock=the_clock))
        except Exception as error:
            if not is_retryable(error):
                raise
            log.info("transaction.retry", attempt=attempt + 1, error=type(error).__name__)
            sleep_before_retry(attempt)
    raise TransactionRetriesExhausted(f"gave up after {max_attempts} attempts")


class Transact(Protocol):
    """Runs one unit of work in its own retried transaction (flows take this, not an engine)."""

    def __call__(self, work: Callable[[UnitOfWork], T], /) -> T: ...


def transactor(engine: Engine, clock: Clock | None = None) -> Transact:
    the_clock = clock or SystemClock()

    def transact(work: Callable[[UnitOfWork], T], /) -> T:
        return run_in_transaction(engine, work, clock=the_clock)

    return transact
