"""`cloudpay bench payments`: signed create-order requests over real HTTP on loopback.

Three processes besides this one, all on loopback:

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

The load generator is `clients` threads in this process, each with its own `CloudPayClient`
(keep-alive connection, pinned platform key): every request is really signed, every response
really verified, and every order must come back `paying` with a `code_url`, or it counts as an
error. CPU time per request of each process is reported too: it does not depend on the
neighbours, and it shows where an order's cost goes (four RSA-2048 signatures: the merchant's
request, our request to WeChat, the sandbox's answer, our answer).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from rich.console import Console
from sqlalchemy import Engine, func
from sqlalchemy import select as sql_select

from cloudpay.config import Settings
from cloudpay.db.engine import make_engine
from cloudpay.db.local_postgres import PostgresUnavailable, start_local_postgres
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.crypto import generate_rsa_key_pair, rsa_sign
from cloudpay.merchants import service as merchants
from cloudpay.merchants.model import KeyAlgorithm, MerchantApplication, ReviewAction
from cloudpay.migrations import upgrade
from cloudpay.payments.tables import orders as orders_table
from cloudpay.sdk import CloudPayClient

DEFAULT_CLIENTS = 8
DEFAULT_SECONDS = 10.0
DEFAULT_WARMUP_S = 3.0
ORDER_AMOUNT_FEN = 1_800
BARE_PATH = "/bench/bare"
TARGET_SQLITE_ORDERS_PER_S = 500
TARGET_SQLITE_RATIO_TO_BARE = 0.3
RSA_SIGNATURES_PER_ORDER = 4  # merchant request, our WeChat request, sandbox answer, our answer
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
RSA_PROBE_SIGNATURES = 200
MAX_ERRORS_KEPT = 5
# A fixed, valid test merchant (GB 32100 check character, GB 11643 resident id).
BENCH_MERCHANT = MerchantApplication(
    legal_name="潍坊压测面馆有限公司", unified_social_credit_code="91350100M000100Y43",
    legal_person_name="张三", legal_person_id_number="11010519491231002X",
    contact_phone="13800138000", mcc="5812",
)  # fmt: skip
progress = Console(stderr=True)


class BenchFailure(RuntimeError):
    """A server did not start, or a request did not get the answer it must get."""


class BadAnswer(RuntimeError):
    """One request's answer was wrong (counted as an error, the run goes on)."""


# --- processes --------------------------------------------------------------------------
def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (all its threads) so far; None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    """A server subprocess: it prints one JSON line when ready and stops when stdin closes."""

    name: str
    process: subprocess.Popen[bytes]
    ready: dict[str, Any] = field(default_factory=dict)

    def cpu_s(self) -> float | None:
        return _cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)


def _spawn(name: str, role: str, config: dict[str, Any], sock: socket.socket | None) -> Child:
    fds = (sock.fileno(),) if sock is not None else ()
    if sock is not None:
        config = {**config, "fd": sock.fileno()}
    argv = [sys.executable, "-m", "cloudpay.bench.payments", "serve", role, json.dumps(config)]
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=fds, close_fds=True
    )
    child = Child(name, process)
    try:
        child.ready = _await_ready(child)
    except BaseException:
        child.stop()
        raise
    return child


def _await_ready(child: Child) -> dict[str, Any]:
    stdout = child.process.stdout
    assert stdout is not None
    readable, _, _ = select.select([stdout], [], [], READY_TIMEOUT_S)
    line = stdout.readline() if readable else b""
    if not line:
        raise BenchFailure(f"{child.name} did not start (exit code {child.process.poll()})")
    ready: dict[str, Any] = json.loads(line)
    return ready


@contextmanager
def _served(name: str, role: str, config: dict[str, Any]) -> Iterator[tuple[Child, str]]:
    """A uvicorn server subprocess on a loopback socket bound here (so its port is known)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        child = _spawn(name, role, {**config, "base_url": url}, sock)
    finally:
        sock.close()  # the child holds its own copy
    try:
        yield child, url
    finally:
        child.stop()


@contextmanager
def _sandbox(directory: Path) -> Iterator[tuple[Child, Path]]:
    credentials = directory / "wechat-sandbox.json"
    child = _spawn("wechat sandbox", "sandbox", {"credentials": str(credentials)}, None)
    try:
        yield child, credentials
    finally:
        child.stop()


# --- the served apps (run in the subprocesses) ------------------------------------------
def bare_app() -> FastAPI:
    """The baseline: FastAPI with one trivial POST (parse the JSON body, answer a small JSON)."""
    app = FastAPI()

    @app.post(BARE_PATH)
    async def bare(payload: dict[str, Any]) -> dict[str, Any]:
        return {"object": "bare", "out_trade_no": payload.get("out_trade_no"), "ok": True}

    return app


def api_settings(config: dict[str, Any]) -> Settings:
    return Settings(
        _env_file=None,  # not the project's .env
        env="dev",
        database_url=config["database_url"],
        public_base_url=config["base_url"],
        wechat_sandbox_credentials=config["wechat_credentials"],
        platform_private_key_path=config["platform_key_path"],
        log_level="WARNING",
    )


def _serve_uvicorn(app: Any, fd: int) -> None:
    """Serve `app` on the inherited listening socket until stdin closes."""
    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    _stop_on_stdin_eof(lambda: setattr(server, "should_exit", True))
    ready = threading.Thread(target=_announce_when_started, args=(server,), daemon=True)
    ready.start()
    server.run(sockets=[sock])


def _announce_when_started(server: uvicorn.Server) -> None:
    while not server.started:
        time.sleep(0.01)
    _announce({"pid": os.getpid()})


def _announce(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def _stop_on_stdin_eof(stop: Callable[[], None]) -> None:
    def watch() -> None:
        sys.stdin.buffer.read()
        stop()

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def serve(role: str, config: dict[str, Any]) -> None:
    """Entry point of the subprocesses: `python -m cloudpay.bench.payments serve ROLE JSON`."""
    from cloudpay.logging import configure_logging

    configure_logging("WARNING")
    if role == "sandbox":
        from cloudpay.channels.wechat.sandbox.server import start_wechat_sandbox

        sandbox = start_wechat_sandbox(credentials_path=Path(config["credentials"]))
        done = threading.Event()
        _stop_on_stdin_eof(done.set)
        _announce({"pid": os.getpid(), "base_url": sandbox.base_url})
        done.wait()
        sandbox.stop()
    elif role == "bare":
        _serve_uvicorn(bare_app(), config["fd"])
    elif role == "api":
        from cloudpay.main import create_app

        _serve_uvicorn(create_app(api_settings(config)), config["fd"])
    else:
        raise ValueError(f"unknown role {role!r}")


# --- load generation --------------------------------------------------------------------
Sender = Callable[[int], None]


@dataclass(frozen=True)
class LoadPlan:
    clients: int
    seconds: float | None  # timed: measure this long
    orders: int | None  # counted: measure exactly this many requests
    warmup_seconds: float


@dataclass
class ThreadLog:
    latencies_s: list[float] = field(default_factory=list)
    last_end_s: float = 0.0
    errors: int = 0
    messages: list[str] = field(default_factory=list)


class Tickets:
    """Counted mode: hands out `total` request numbers across the clients."""

    def __init__(self, total: int | None) -> None:
        self.left = total
        self.lock = threading.Lock()

    def take(self) -> bool:
        if self.left is None:
            return True
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


def _client_loop(
    send: Sender, log: ThreadLog, marks: tuple[float, float], tickets: Tickets
) -> None:
    measure_from, measure_until = marks
    seq = 0
    while True:
        measuring = time.perf_counter() >= measure_from
        if measuring and (time.perf_counter() >= measure_until or not tickets.take()):
            return
        seq += 1
        started = time.perf_counter()
        try:
            send(seq)
        except Exception as error:  # any failure is an error of this request
            if measuring:
                log.errors += 1
                if len(log.messages) < MAX_ERRORS_KEPT:
                    log.messages.append(f"{type(error).__name__}: {error}"[:300])
            continue
        ended = time.perf_counter()
        if measuring and ended <= measure_until:
            log.latencies_s.append(ended - started)
            log.last_end_s = ended


def run_load(
    label: str, senders: Sequence[Sender], plan: LoadPlan, children: Sequence[Child]
) -> dict[str, Any]:
    """Drive `senders` (one per client) through warm-up and measurement; stats and CPU."""
    progress.print(f"[bold]{label}[/bold]: {len(senders)} clients, warm-up {plan.warmup_seconds}s")
    start = time.perf_counter()
    measure_from = start + plan.warmup_seconds
    measure_until = measure_from + plan.seconds if plan.seconds is not None else float("inf")
    logs = [ThreadLog() for _ in senders]
    tickets = Tickets(plan.orders)
    threads = [
        threading.Thread(target=_client_loop, name=f"client-{i}",
                         args=(send, log, (measure_from, measure_until), tickets))
        for i, (send, log) in enumerate(zip(senders, logs, strict=True))
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, measure_from - time.perf_counter()))
    cpu_before = _cpu_sample(children)
    if plan.seconds is not None:  # sample at the end of the window, before in-flight tails
        time.sleep(max(0.0, measure_until - time.perf_counter()))
        cpu_after = _cpu_sample(children)
    for thread in threads:
        thread.join()
    if plan.seconds is None:
        cpu_after = _cpu_sample(children)
    ended = min(measure_until, max((log.last_end_s for log in logs), default=measure_from))
    return _stats(logs, ended - measure_from, cpu_before, cpu_after)


def _cpu_sample(children: Sequence[Child]) -> dict[str, float | None]:
    sample = {child.name: child.cpu_s() for child in children}
    sample["load generator"] = time.process_time()
    return sample


def _stats(
    logs: Sequence[ThreadLog], elapsed_s: float, before: dict[str, float | None],
    after: dict[str, float | None],
) -> dict[str, Any]:  # fmt: skip
    latencies = sorted(latency for log in logs for latency in log.latencies_s)
    done = len(latencies)
    if done == 0 or elapsed_s <= 0:
        messages = [m for log in logs for m in log.messages]
        raise BenchFailure(f"no request succeeded: {messages}")
    cpu_ms = {
        name: round((end - start) * 1000 / done, 3)
        for name, start in before.items()
        if start is not None and (end := after[name]) is not None
    }
    return {
        "requests": done,
        "errors": sum(log.errors for log in logs),
        "error_examples": [m for log in logs for m in log.messages][:MAX_ERRORS_KEPT],
        "seconds": round(elapsed_s, 3),
        "requests_per_s": round(done / elapsed_s, 1),
        "latency_ms_mean": round(sum(latencies) / done * 1000, 2),
        "latency_ms_p50": _percentile_ms(latencies, 50),
        "latency_ms_p90": _percentile_ms(latencies, 90),
        "latency_ms_p99": _percentile_ms(latencies, 99),
        "latency_ms_max": round(latencies[-1] * 1000, 2),
        "cpu_ms_per_request": cpu_ms,
        "cpu_ms_per_request_total": round(sum(cpu_ms.values()), 3),
    }


def _percentile_ms(sorted_s: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile of sorted seconds, in milliseconds."""
    rank = max(1, -(-len(sorted_s) * percent // 100))
    return round(sorted_s[int(rank) - 1] * 1000, 2)


def bare_senders(base_url: str, clients: int, stack: ExitStack) -> list[Sender]:
    def sender(index: int) -> Sender:
        http = stack.enter_context(httpx.Client(base_url=base_url, timeout=30.0))

        def send(seq: int) -> None:
            body = _order_fields(f"c{index}", seq)
            response = http.post(BARE_PATH, json=body)
            if response.status_code != 200 or response.json().get("ok") is not True:
                raise BadAnswer(f"bare answered {response.status_code}")

        return send

    return [sender(i) for i in range(clients)]


def order_senders(
    base_url: str, app: BenchApp, clients: int, stack: ExitStack, run_tag: str
) -> list[Sender]:
    def sender(index: int) -> Sender:
        client = stack.enter_context(
            CloudPayClient(base_url, app.app_id, app.private_key_pem, app.serial_no,
                           app.platform_public_keys, timeout_s=30.0)
        )  # fmt: skip

        def send(seq: int) -> None:
            order = client.create_order(**_order_fields(f"{run_tag}c{index}", seq))
            action = order.get("next_action") or {}
            if order.get("status") != "paying" or not action.get("code_url"):
                raise BadAnswer(f"order came back {order.get('status')} without a code_url")

        return send

    return [sender(i) for i in range(clients)]


def _order_fields(prefix: str, seq: int) -> dict[str, Any]:
    return {
        "out_trade_no": f"{prefix}n{seq}",
        "amount": ORDER_AMOUNT_FEN,
        "currency": "CNY",
        "subject": "牛肉面 bench",
        "method": "wechat_native",
    }


# --- the merchant and the databases -----------------------------------------------------
@dataclass(frozen=True)
class BenchApp:
    app_id: str
    serial_no: str
    private_key_pem: str = field(repr=False)
    platform_public_keys: dict[str, str] = field(repr=False)


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
        found.append(Database("postgresql", url, "throwaway local cluster (fsync=off)"))
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
    orders["orders_per_s"] = orders.pop("requests_per_s")
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
    with _served(f"api ({db.name})", "api", config) as (api, url), ExitStack() as stack:
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
    from cloudpay.kernel.crypto import rsa_public_key_serial_no

    public_keys = {rsa_public_key_serial_no(key.public_key_pem): key.public_key_pem}
    with _sandbox(directory) as (sandbox, credentials), \
            _served("bare", "bare", {}) as (bare, bare_url):  # fmt: skip
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
    """What the signatures alone allow on this machine, against what was measured."""
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
            out[f"{name}_orders_per_s_ceiling_from_cpu"] = round(cores * 1000 / total)
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
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        serve(args[1], json.loads(args[2]))
        return
    parser = argparse.ArgumentParser(prog="python -m cloudpay.bench.payments")
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--orders", type=int, default=None)
    parser.add_argument("--warmup-seconds", type=float, default=DEFAULT_WARMUP_S)
    parser.add_argument("--postgres", default="auto", help="auto | off | a PostgreSQL URL")
    parsed = parser.parse_args(args)
    result = run_payments_bench(
        clients=parsed.clients, seconds=parsed.seconds, orders=parsed.orders,
        warmup_seconds=parsed.warmup_seconds, postgres=parsed.postgres,
    )  # fmt: skip
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
