"""The nonce store behind merchant request signatures, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import Engine, func, select

from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import FixedClock
from cloudpay.web.nonces import api_nonces, purge_expired_nonces, remember_nonce


def _remember(engine: Engine, clock: FixedClock, app_id: str, nonce: str, ttl_s: int = 360) -> bool:
    expires_at = clock.now() + timedelta(seconds=ttl_s)
    return run_in_transaction(
        engine,
        lambda uow: remember_nonce(uow, app_id=app_id, nonce=nonce, expires_at=expires_at),
        clock=clock,
    )


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(api_nonces)).scalar_one())


def test_a_nonce_is_accepted_once_per_app(engine: Engine, clock: FixedClock) -> None:
    """First use is accepted; a repeat by the same app is not; another app may use it."""
    assert _remember(engine, clock, "app_a", "n1") is True
    assert _remember(engine, clock, "app_a", "n1") is False
    assert _remember(engine, clock, "app_b", "n1") is True
    assert _count(engine) == 2


def test_concurrent_uses_of_one_nonce_let_exactly_one_through(
    engine: Engine, clock: FixedClock
) -> None:
    """Eight racing requests with one nonce: one accepted, seven refused."""
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait()
        results.append(_remember(engine, clock, "app_a", "raced"))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_purge_removes_only_expired_nonces(engine: Engine, clock: FixedClock) -> None:
    """The worker job deletes rows past their window and keeps the live ones."""
    _remember(engine, clock, "app_a", "old", ttl_s=60)
    _remember(engine, clock, "app_a", "new", ttl_s=600)
    clock.advance(120)

    def purge(uow: UnitOfWork) -> int:
        return purge_expired_nonces(uow)

    assert run_in_transaction(engine, purge, clock=clock) == 1
    assert _remember(engine, clock, "app_a", "new") is False
    assert _count(engine) == 1
    assert run_in_transaction(engine, purge, clock=clock) == 0
