"""The load generator of `cloudpay bench payments`: N client threads, warm-up, then measure.

Each client is a thread with its own connection (a `CloudPayClient` for orders: every request
signed, every answer verified; a plain `httpx.Client` for the bare baseline). Timed mode
measures for `seconds`; counted mode for exactly `orders` requests. Latency is measured per
request around the whole call (signing and verification included); CPU per request is read
from each server process and from this one over the measured window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console

from cloudpay.bench.payments_servers import BARE_PATH, BenchFailure, Child
from cloudpay.sdk import CloudPayClient

ORDER_AMOUNT_FEN = 1_800
MAX_ERRORS_KEPT = 5
progress = Console(stderr=True)


class BadAnswer(RuntimeError):
    """One request's answer was wrong (counted as an error, the run goes on)."""


@dataclass(frozen=True)
class BenchApp:
    """The merchant app the clients sign as, and the platform keys they verify with."""

    app_id: str
    serial_no: str
    private_key_pem: str = field(repr=False)
    platform_public_keys: dict[str, str] = field(repr=False)


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
    if plan.seconds is not None:
        elapsed_s = plan.seconds
    else:  # counted: until the last measured answer
        elapsed_s = max((log.last_end_s for log in logs), default=measure_from) - measure_from
    return _stats(logs, elapsed_s, cpu_before, cpu_after)


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
        # How many cores the bench's processes kept busy: the rest went to the neighbours.
        "cores_busy": round(sum(cpu_ms.values()) * done / elapsed_s / 1000, 2),
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
