"""`cloudpay bench console`: console page render times over a database of generated orders.

A temporary database per engine (SQLite, and PostgreSQL unless `--postgres off`) is migrated
and filled with `orders` orders spread over the last 30 days (bulk: executemany on SQLite,
COPY on PostgreSQL), about 1% of them refunded. The real console app is then driven
in-process (Starlette's TestClient, so the whole stack renders but no socket is timed):
the dashboard and the order-search page, as the platform admin (every merchant) and as one
merchant (its own orders). The login page, which touches no table, is the baseline measured
in the same run; the target is p99 < 300 ms for the dashboard and the order search.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert
from stdnum.cn import uscc

from cloudpay.config import Settings
from cloudpay.db.engine import make_engine
from cloudpay.db.local_postgres import PostgresUnavailable, start_local_postgres
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import SystemClock
from cloudpay.kernel.vault import PersonalDataVault

TARGET_P99_MS = 300.0
DAYS = 30
MERCHANTS = 200  # orders are spread over this many merchant ids; one of them is real
BATCH = 20_000
PASSWORD = "bench-password-1234"  # noqa: S105 — a throwaway database
CHANNELS = (("wechat", 60), ("alipay", 30), ("unionpay", 10))
STATUSES = (("succeeded", 84), ("failed", 6), ("closed", 5), ("expired", 3), ("refunded", 2))
ORDER_COLUMNS = (
    "id", "app_id", "merchant_id", "out_trade_no", "request_hash", "amount", "currency",
    "subject", "method", "channel", "status", "expire_at", "metadata", "refunded_amount",
    "refund_reserved_amount", "poll_attempts", "channel_transaction_id", "created_at",
    "updated_at",
)  # fmt: skip
REFUND_COLUMNS = (
    "id", "order_id", "app_id", "merchant_id", "out_refund_no", "request_hash", "amount",
    "currency", "status", "created_at", "updated_at",
)  # fmt: skip
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _id_at(prefix: str, millis: int, rng: random.Random) -> str:
    """An id minted at `millis` (the ULID layout of `kernel.ids`)."""
    value = (millis << 80) | rng.getrandbits(79)
    return prefix + "_" + "".join(_CROCKFORD[(value >> s) & 31] for s in range(125, -1, -5))


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def generate_rows(
    count: int, merchant_ids: list[str], now: datetime, seed: int = 7
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Orders (oldest first, ids in time order) and the refunds of the refunded ones."""
    rng = random.Random(seed)
    start_ms = int((now - timedelta(days=DAYS)).timestamp() * 1000)
    span_ms = DAYS * 86_400_000 - 60_000
    offsets = sorted(rng.randrange(span_ms) for _ in range(count))
    orders, refunds = [], []
    for number, offset in enumerate(offsets):
        millis = start_ms + offset
        created = datetime.fromtimestamp(millis / 1000, tz=UTC)
        merchant_id = merchant_ids[number % len(merchant_ids)]
        status = _weighted(rng, STATUSES)
        amount = rng.randrange(100, 50_000)
        order_id = _id_at("ord", millis, rng)
        refunded = amount if status == "refunded" else 0
        paid = status in ("succeeded", "refunded")
        orders.append((
            order_id, f"app_{merchant_id[4:]}", merchant_id, f"B{number:09d}", "0" * 64, amount,
            "CNY", "bench order", "wechat_native", _weighted(rng, CHANNELS), status,
            created + timedelta(minutes=30), "{}", refunded, 0, 0,
            f"42000{number:023d}" if paid else None, created, created,
        ))  # fmt: skip
        if refunded:
            refunds.append((
                _id_at("rfd", millis + 60_000, rng), order_id, f"app_{merchant_id[4:]}",
                merchant_id, f"R{number:09d}", "0" * 64, amount, "CNY", "succeeded",
                created + timedelta(minutes=1), created + timedelta(minutes=1),
            ))  # fmt: skip
    return orders, refunds


def bulk_insert(
    engine: Engine, orders: list[tuple[Any, ...]], refunds: list[tuple[Any, ...]]
) -> None:
    if engine.dialect.name == "postgresql":
        _copy(engine, "orders", ORDER_COLUMNS, orders)
        _copy(engine, "refunds", REFUND_COLUMNS, refunds)
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
        return
    from cloudpay.payments.tables import orders as orders_table
    from cloudpay.payments.tables import refunds as refunds_table

    with engine.begin() as connection:
        for table, columns, rows in ((orders_table, ORDER_COLUMNS, orders),
                                     (refunds_table, REFUND_COLUMNS, refunds)):  # fmt: skip
            for start in range(0, len(rows), BATCH):
                batch = [
                    dict(zip(columns, row, strict=True)) for row in rows[start : start + BATCH]
                ]
                connection.execute(insert(table), batch)
        connection.exec_driver_sql("ANALYZE")


def _copy(
    engine: Engine, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    raw = engine.raw_connection()
    try:
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with raw.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def _seed_merchant(uow: UnitOfWork, vault: PersonalDataVault) -> str:
    from cloudpay.merchants.model import MerchantApplication
    from cloudpay.merchants.service import onboard_merchant

    body = "913707860000" + f"{random.randrange(10**5):05d}"
    application = MerchantApplication(
        legal_name="潍坊市基准测试商户",
        unified_social_credit_code=body + uscc.calc_check_digit(body),
        legal_person_name="张三", legal_person_id_number="11010519491231002X",
        contact_phone="13800138000", mcc="5812",
    )  # fmt: skip
    return onboard_merchant(uow, vault=vault, application=application).id


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, (len(ordered) * 99) // 100)], 2),
        "max_ms": round(ordered[-1], 2),
        "renders": len(ordered),
    }


def _time(get: Callable[[], Any], renders: int) -> dict[str, float]:
    samples = []
    for _ in range(renders):
        started = time.perf_counter()
        response = get()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:300]
    return _percentiles(samples)


def bench_engine(engine: Engine, url: str, *, orders: int, renders: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from cloudpay.console import Role, create_user
    from cloudpay.main import create_app
    from cloudpay.migrations import upgrade

    upgrade(engine)
    settings = Settings(env="test", database_url=url)
    app = create_app(settings, engine=engine, clock=SystemClock())
    vault: PersonalDataVault = app.state.vault
    merchant_id = run_in_transaction(engine, lambda uow: _seed_merchant(uow, vault))
    merchant_ids = [merchant_id] + [f"mch_{i:026d}" for i in range(1, MERCHANTS)]
    started = time.perf_counter()
    order_rows, refund_rows = generate_rows(orders, merchant_ids, datetime.now(UTC))
    bulk_insert(engine, order_rows, refund_rows)
    generate_s = time.perf_counter() - started

    def add_users(uow: UnitOfWork) -> None:
        create_user(uow, vault=vault, email="admin@bench.local", password=PASSWORD,
                    role=Role.PLATFORM_ADMIN)  # fmt: skip
        create_user(uow, vault=vault, email="merchant@bench.local", password=PASSWORD,
                    role=Role.MERCHANT, merchant_id=merchant_id)  # fmt: skip

    run_in_transaction(engine, add_users)
    probe_out_trade_no = order_rows[len(order_rows) // 2][3]
    probe_order_id = order_rows[len(order_rows) // 3][0]
    pages: dict[str, Any] = {}
    with TestClient(app) as client:
        baseline = _time(lambda: client.get("/console/login"), renders)
        for who in ("admin", "merchant"):
            client.cookies.clear()
            login = client.post("/console/login", data={"email": f"{who}@bench.local",
                                "password": PASSWORD}, follow_redirects=False)  # fmt: skip
            assert login.status_code == 303, login.text[:300]
            first = time.perf_counter()
            client.get("/console/dashboard")  # the admin's first view caches closed days
            pages[f"{who}_dashboard_first_ms"] = round((time.perf_counter() - first) * 1000, 1)
            pages[f"{who}_dashboard"] = _time(lambda: client.get("/console/dashboard"), renders)
            pages[f"{who}_order_search"] = _time(lambda: client.get("/console/orders"), renders)
            pages[f"{who}_order_search_by_order_id"] = _time(
                lambda: client.get("/console/orders", params={"q": probe_order_id}), renders
            )  # fmt: skip
            pages[f"{who}_order_search_by_out_trade_no"] = _time(
                lambda: client.get("/console/orders", params={"q": probe_out_trade_no}),
                max(5, renders // 10))  # fmt: skip
    return {
        "database": engine.dialect.name, "orders": len(order_rows), "refunds": len(refund_rows),
        "generate_and_load_s": round(generate_s, 1), "baseline_login_page": baseline,
        "pages": pages, "targets": _verdicts(pages),
    }  # fmt: skip


def _verdicts(pages: dict[str, Any]) -> list[dict[str, Any]]:
    verdicts = []
    for name in ("admin_dashboard", "admin_order_search", "merchant_dashboard",
                 "merchant_order_search", "admin_order_search_by_out_trade_no"):  # fmt: skip
        p99 = pages[name]["p99_ms"]
        verdicts.append({"page": name, "target_p99_ms": TARGET_P99_MS, "p99_ms": p99,
                         "met": p99 < TARGET_P99_MS})  # fmt: skip
    return verdicts


INDEX_ADVICE = (
    "Search by out_trade_no or channel transaction id uses ix_orders_out_trade_no and "
    "ix_orders_channel_transaction_id (migration 0006). The dashboard prefilters on the "
    "time-ordered id range; an index on orders(created_at) would serve the same purpose."
)


@contextmanager
def _databases(postgres: str, directory: Path) -> Iterator[list[tuple[str, Engine] | str]]:
    targets: list[tuple[str, Engine] | str] = []
    sqlite_url = f"sqlite:///{directory / 'console-bench.db'}"
    targets.append((sqlite_url, make_engine(sqlite_url)))
    cluster = None
    if postgres == "off":
        targets.append("postgresql skipped: --postgres off")
    elif postgres != "auto":
        targets.append((postgres, make_engine(postgres)))
    else:
        try:
            cluster = start_local_postgres()
            url = cluster.create_database("console_bench")
            targets.append((url, make_engine(url)))
        except PostgresUnavailable as missing:
            targets.append(f"postgresql skipped: {missing}")
    try:
        yield targets
    finally:
        for target in targets:
            if not isinstance(target, str):
                target[1].dispose()
        if cluster is not None:
            cluster.stop()


def run_console_bench(*, orders: int, renders: int, postgres: str = "auto") -> dict[str, Any]:
    results: dict[str, Any] = {"orders": orders, "renders": renders, "cpus": os.cpu_count(),
                               "index_advice": INDEX_ADVICE, "databases": {}}  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="cloudpay-console-bench-") as directory,
        _databases(postgres, Path(directory)) as targets,
    ):
        for target in targets:
            if isinstance(target, str):
                results["databases"]["postgresql"] = {"skipped": target}
                continue
            url, engine = target
            measured = bench_engine(engine, url, orders=orders, renders=renders)
            results["databases"][measured["database"]] = measured
    return results
