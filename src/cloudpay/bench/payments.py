"""`cloudpay bench payments`: signed create-order requests over real HTTP on loopback.

Three processes besides this one, all on loopback (`payments_servers.py`):

- our API (`main.create_app`), served by uvicorn in a **subprocess** on a migrated database
  (a fresh SQLite file, then a throwaway PostgreSQL cluster or a given URL);
- the WeChat Pay v3 sandbox as the channel, in its own subprocess (`start_wechat_sandbox`);
- the baseline, a bare FastAPI endpoint (a POST returning a small JSON), served the same way.

Subprocesses, not threads: the server, the sandbox and the load generator each have their own
GIL, as they would in production (the load generator is the merchants, the sandbox is
Tencent); in one process the three would queue on one interpreter lock and the benchmark
would measure that lock. They still share the machine's cores, so absolute rates depend on the
machine (and on whatever else runs on it): the ratio to the bare endpoint, measured with the
same load generator and concurrency right before each database run, is the number to compare.

The load generator (`payments_load.py`) is `clients` threads in this process, each with its
own `CloudPayClient` (keep-alive connection, pinned platform key): every request is really
signed, every response really verified, and every order must come back `paying` with a
`code_url`, or it counts as an error. CPU time per request of each process is reported too: it
does not depend on the neighbours, and it shows where an order's cost goes (four RSA-2048
signatures among it: the merchant's request, our request to WeChat, the sandbox's answer, ours).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func
from sqlalchemy import select as sql_select

from cloudpay.bench.payments_load import (
    ORDER_AMOUNT_FEN,
    BenchApp,
    LoadPlan,
    bare_senders,
    order_senders,
    progress,
    run_load,
)
from cloudpay.bench.payments_servers import BARE_PATH, Child, sandbox_server, served
from cloudpay.config import Settings
from cloudpay.db.engine import make_engine
from cloudpay.db.local_postgres import PostgresUnavailable, start_local_postgres
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.crypto import generate_rsa_key_pair, rsa_public_key_serial_no, rsa_sign
from cloudpay.merchants import service as merchants
from cloudpay.merchants.model import KeyAlgorithm, MerchantApplication, ReviewAction
from cloudpay.migrations import upgrade
from cloudpay.payments.tables import orders as orders_table

DEFAULT_CLIENTS = 8
DEFAULT_SECONDS = 10.0
DEFAULT_WARMUP_S = 3.0
TARGET_SQLITE_ORDERS_PER_S = 500
TARGET_SQLITE_RATIO_TO_BARE = 0.3
RSA_SIGNATURES_PER_ORDER = 4  # merchant request, our WeChat request, sandbox answer, our answer
RSA_PROBE_SIGNATURES = 200
# A fixed, valid test merchant (GB 32100 check character, GB 11643 resident id).
BENCH_MERCHANT = MerchantApplication(
    legal_name="潍坊压测面馆有限公司", unified_social_credit_code="91350100M000100Y43",
    legal_person_name="张三", legal_person_id_number="11010519491231002X",
    contact_phone="13800138000", mcc="5812",
)  # fmt: skip


# --- the merchant and the databases -----------------------------------------------------
def onboard_bench_app(
    engine: Engine, settings: Settings, platform_keys: dict[str, str]
) -> BenchApp:
    """An approved merchant with an app whose RSA key was generated (as `cloudpay app create`)."""
    from cloudpay.main import vault_for

    key = merchants.prepare_key(KeyAlgorithm.RSA)

    def work(uow: UnitOfWork) -> str:
        merchant = merchants.onboard_merchant(uow, vault=vault_for(settings),
                                              application=BENCH_MERCHANT)  # fmt: skip
        for action in (ReviewAction.SUBMIT, ReviewAction.APPROVE):
            merchants.review_merchant(uow, merchant.id, action=action, actor="bench")
        return merchants.create_app(uow, merchant.id, name="bench", key=key).id

    app_id = run_in_transaction(engine, work)
    assert key.private_key is not None  # generated here
    return BenchApp(app_id, key.serial_no, key.private_key.reveal(), platform_keys)


def orders_by_status(engine: Engine) -> dict[str, int]:
    query = sql_select(orders_table.c.status, func.count()).group_by(orders_table.c.status)
    with engine.connect() as connection:
        return {str(status): int(count) for status, count in connection.execute(query)}


@dataclass(frozen=True)
class Database:
    name: str
    url: str
    note: str


@contextmanager
def databases(directory: Path, postgres: str) -> Iterator[tuple[list[Database], dict[str, Any]]]:
    """SQLite always; PostgreSQL from `postgres` (off | auto | URL); skipped ones explained."""
    found = [Database("sqlite", f"sqlite:///{directory / 'payments.db'}", "fresh file, WAL")]
    skipped: dict[str, Any] = {}
    if postgres == "off":
        skipped["postgresql"] = {"skipped": "--postgres off"}
        yield found, skipped
        return
    if postgres != "auto":
        found.append(Database("postgresql", postgres, "given URL"))
        yield found, skipped
        return
    try:
        cluster = start_local_postgres()
    except PostgresUnavailable as missing:
        skipped["postgresql"] = {"skipped": str(missing)}
        yield found, skipped
        return
    try:
        url = cluster.create_database(f"bench_payments_{uuid.uuid4().hex[:8]}")
        note = "throwaway local cluster, unix socket (fsync=off, synchronous_commit=off)"
        found.append(Database("postgresql", url, note))
        yield found, skipped
    finally:
        cluster.stop()


# --- a run ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shared:
    """What every database run uses: the sandbox, the bare server, the platform key."""

    directory: Path
    sandbox: Child
    wechat_credentials: Path
    bare: Child
    bare_url: str
    platform_key_path: Path
    platform_public_keys: dict[str, str]


def bench_database(db: Database, shared: Shared, plan: LoadPlan) -> dict[str, Any]:
    settings = Settings(_env_file=None, env="dev", database_url=db.url)
    engine = make_engine(db.url)
    try:
        progress.print(f"{db.name}: migrating and onboarding the bench merchant")
        upgrade(engine)
        app = onboard_bench_app(engine, settings, shared.platform_public_keys)
        baseline = _bare_run(shared, plan, f"bare FastAPI (before {db.name})")
        orders = _orders_run(db, shared, plan, app)
        stored = orders_by_status(engine)
    finally:
        engine.dispose()
    orders = {"orders_per_s": orders.pop("requests_per_s"), **orders}
    return {
        "database": db.note,
        "orders": orders,
        "baseline_bare": baseline,
        "ratio_orders_to_bare": round(orders["orders_per_s"] / baseline["requests_per_s"], 3),
        "cpu_ratio_order_to_bare": round(
            orders["cpu_ms_per_request_total"] / baseline["cpu_ms_per_request_total"], 2
        ),
        "orders_in_database_by_status": stored,
    }


def _bare_run(shared: Shared, plan: LoadPlan, label: str) -> dict[str, Any]:
    with ExitStack() as stack:
        senders = bare_senders(shared.bare_url, plan.clients, stack)
        return run_load(label, senders, plan, [shared.bare])


def _orders_run(db: Database, shared: Shared, plan: LoadPlan, app: BenchApp) -> dict[str, Any]:
    config = {
        "database_url": db.url,
        "wechat_credentials": str(shared.wechat_credentials),
        "platform_key_path": str(shared.platform_key_path),
    }
    with served(f"api ({db.name})", "api", config) as (api, url), ExitStack() as stack:
        senders = order_senders(url, app, plan.clients, stack, uuid.uuid4().hex[:6])
        result = run_load(f"orders on {db.name}", senders, plan, [api, shared.sandbox])
    result["cpu_ms_per_request"] = {
        name.replace(f" ({db.name})", ""): ms for name, ms in result["cpu_ms_per_request"].items()
    }
    return result


@contextmanager
def shared_servers(directory: Path) -> Iterator[Shared]:
    key = generate_rsa_key_pair()
    key_path = directory / "platform_key.pem"
    key_path.touch(mode=0o600)
    key_path.write_text(key.private_key_pem.reveal())
    public_keys = {rsa_public_key_serial_no(key.public_key_pem): key.public_key_pem}
    with sandbox_server(directory) as (sandbox, credentials), \
            served("bare", "bare", {}) as (bare, bare_url):  # fmt: skip
        yield Shared(directory, sandbox, credentials, bare, bare_url, key_path, public_keys)


def rsa_sign_cpu_ms() -> float:
    """CPU time of one RSA-2048 SHA256 signature here (what each order pays four times)."""
    key = generate_rsa_key_pair()
    rsa_sign(key.private_key_pem, b"warm-up")
    started = time.process_time()
    for index in range(RSA_PROBE_SIGNATURES):
        rsa_sign(key.private_key_pem, f"{index}\n{'x' * 300}\n".encode())
    return round((time.process_time() - started) * 1000 / RSA_PROBE_SIGNATURES, 3)


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        **{name: version(name) for name in ("fastapi", "uvicorn", "httpx", "cryptography",
                                            "sqlalchemy", "psycopg")},
        "uvicorn_http": "httptools" if find_spec("httptools") else "h11",
        "uvicorn_loop": "uvloop" if find_spec("uvloop") else "asyncio",
    }  # fmt: skip


def bounds(databases: dict[str, Any], sign_ms: float) -> dict[str, Any]:
    """What the CPU an order costs allows on this machine's cores, whoever else uses them."""
    cores = os.cpu_count() or 1
    rsa_ms = round(RSA_SIGNATURES_PER_ORDER * sign_ms, 3)
    out: dict[str, Any] = {
        "rsa2048_sign_cpu_ms": sign_ms,
        "rsa_signatures_per_order": RSA_SIGNATURES_PER_ORDER,
        "rsa_cpu_ms_per_order": rsa_ms,
        "orders_per_s_ceiling_from_rsa_alone": round(cores * 1000 / rsa_ms),
    }
    for name, result in databases.items():
        if "orders" in result:
            total = result["orders"]["cpu_ms_per_request_total"]
            out[f"{name}_cpu_ms_per_order_all_processes"] = total
            out[f"{name}_orders_per_s_ceiling_on_idle_cores"] = round(cores * 1000 / total)
            # Rates go as 1/CPU when the bench has the cores: the ratio its CPU costs allow.
            out[f"{name}_ratio_to_bare_ceiling_from_cpu"] = round(
                1 / result["cpu_ratio_order_to_bare"], 3
            )
    return out


def targets_report(databases: dict[str, Any]) -> list[dict[str, Any]]:
    sqlite = databases["sqlite"]
    clean = sqlite["orders"]["errors"] == 0
    report = [
        _verdict("sqlite orders/s", TARGET_SQLITE_ORDERS_PER_S,
                 sqlite["orders"]["orders_per_s"], clean),
        _verdict("sqlite orders/s ÷ bare FastAPI requests/s", TARGET_SQLITE_RATIO_TO_BARE,
                 sqlite["ratio_orders_to_bare"], clean),
    ]  # fmt: skip
    postgres = databases.get("postgresql", {})
    report.append(
        {"name": "postgresql orders/s (reported, no target)", "target": None,
         "measured": postgres["orders"]["orders_per_s"] if "orders" in postgres else None,
         "pass": None}
    )  # fmt: skip
    return report


def _verdict(name: str, target: float, measured: float, clean: bool) -> dict[str, Any]:
    return {"name": name, "target": target, "measured": measured,
            "pass": clean and measured >= target}  # fmt: skip


def run_payments_bench(
    *,
    clients: int = DEFAULT_CLIENTS,
    seconds: float | None = DEFAULT_SECONDS,
    orders: int | None = None,
    warmup_seconds: float = DEFAULT_WARMUP_S,
    postgres: str = "auto",
) -> dict[str, Any]:
    """Orders/s and latency on SQLite and PostgreSQL against a bare FastAPI endpoint; JSON-able."""
    if clients < 1 or warmup_seconds < 0:
        raise ValueError("clients must be ≥ 1 and warmup_seconds ≥ 0")
    plan = LoadPlan(clients, None if orders else seconds, orders, warmup_seconds)
    machine = machine_info()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cloudpay-bench-payments-") as tmp, \
            shared_servers(Path(tmp)) as shared, \
            databases(Path(tmp), postgres) as (found, skipped):  # fmt: skip
        for db in found:
            results[db.name] = bench_database(db, shared, plan)
        results.update(skipped)
    sign_ms = rsa_sign_cpu_ms()
    return {
        "benchmark": "payments",
        "endpoint": "POST /v1/orders (wechat_native), signed, response verified",
        "parameters": {**asdict(plan), "amount_fen": ORDER_AMOUNT_FEN},
        "setup": {
            "api": "uvicorn subprocess, 1 worker (own GIL)",
            "channel": "WeChat Pay v3 sandbox subprocess on loopback",
            "baseline": f"bare FastAPI POST {BARE_PATH}, uvicorn subprocess, unsigned, same "
            "clients; measured right before each database run",
            "load_generator": "threads in the parent, one CloudPayClient each (keep-alive)",
        },
        "machine": machine,
        "databases": results,
        "bounds": bounds(results, sign_ms),
        "targets": targets_report(results),
    }


def main(argv: Sequence[str] | None = None) -> None:
    from cloudpay.logging import configure_logging

    parser = argparse.ArgumentParser(prog="python -m cloudpay.bench.payments")
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--orders", type=int, default=None)
    parser.add_argument("--warmup-seconds", type=float, default=DEFAULT_WARMUP_S)
    parser.add_argument("--postgres", default="auto", help="auto | off | a PostgreSQL URL")
    parsed = parser.parse_args(argv)
    configure_logging("WARNING")
    result = run_payments_bench(
        clients=parsed.clients, seconds=parsed.seconds, orders=parsed.orders,
        warmup_seconds=parsed.warmup_seconds, postgres=parsed.postgres,
    )  # fmt: skip
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
