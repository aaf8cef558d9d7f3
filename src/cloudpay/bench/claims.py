"""`cloudpay bench claims`: a burst of concurrent voucher claims on SQLite and PostgreSQL.

Each database gets a freshly migrated schema, `people` registered citizens and one funded
campaign of `stock` vouchers; `threads` workers (on PostgreSQL, in each of `processes`
processes, as an API server runs several workers) then claim for every person (plus a share of
people claiming twice) as fast as they can, each claim the API's own transaction — the
`Idempotency-Key` row and `marketing.claim_instrument` (campaign, citizen, one statement for
stock shard + caps + claim row) — through `execute_idempotently`. The report checks the result
against the database afterwards: claims issued must equal the stock exactly and nobody may
hold more than the cap (`issued_equals_stock`, `over_issued`, `double_claims`).

Baseline, same database, same threads, same run: a bare transaction that only runs the
conditional `UPDATE … SET n = n + 1 WHERE n < stock` on one hot row — the ceiling any exact
stock counter on one row has here. The ratio claims/s ÷ baseline/s is the number to compare
across machines; absolute rates depend on the machine and its neighbours.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import random
import sqlite3
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import Engine, select, text
from stdnum.cn import ric

from cloudpay import marketing
from cloudpay.citizen import Registration, register_citizen
from cloudpay.db.engine import make_engine
from cloudpay.db.idempotency import execute_idempotently, fingerprint
from cloudpay.db.local_postgres import PostgresUnavailable, start_local_postgres
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import SystemClock
from cloudpay.kernel.errors import CloudPayError
from cloudpay.kernel.vault import PersonalDataVault
from cloudpay.marketing import (
    CampaignDraft,
    CampaignKind,
    DiscountRule,
    FunderKind,
    RuleKind,
    Windows,
)
from cloudpay.marketing.tables import marketing_claims

TARGET_CLAIMS_PER_S = 2_000
VOUCHER_FEN = 1_000
REGISTRATION_BATCH = 500
MAX_ATTEMPTS = 1_000  # SERIALIZABLE databases retry every collision on the hot row
SECOND_TRY_SHARE = 0.1  # people who claim twice, to exercise the per-person cap
console = Console(stderr=True)


def _vault() -> PersonalDataVault:
    return PersonalDataVault.from_hex(os.urandom(32).hex(), os.urandom(32).hex())


def _resident_id(n: int) -> str:
    day = time.gmtime(631_152_000 + (n // 1_000) * 86_400)  # from 1990-01-01
    body = f"370702{day.tm_year:04d}{day.tm_mon:02d}{day.tm_mday:02d}{n % 1_000:03d}"
    return body + ric.calc_check_digit(body + "0")


def _register_people(engine: Engine, count: int) -> list[str]:
    vault, ids = _vault(), []
    for start in range(0, count, REGISTRATION_BATCH):
        numbers = range(start, min(start + REGISTRATION_BATCH, count))

        def batch(uow: UnitOfWork, numbers: range = numbers) -> list[str]:
            return [
                register_citizen(uow, vault=vault, registration=Registration(
                    "孙七", _resident_id(n), f"135{n:08d}", True, "370702")).id
                for n in numbers
            ]  # fmt: skip

        ids.extend(run_in_transaction(engine, batch))
    return ids


def _open_campaign(engine: Engine, stock: int) -> str:
    now = SystemClock().now()
    draft = CampaignDraft(
        name="bench vouchers", funder_kind=FunderKind.GOVERNMENT, funder_id="bench",
        kind=CampaignKind.VOUCHER, currency="CNY",
        rule=DiscountRule(RuleKind.NO_THRESHOLD, discount_fen=VOUCHER_FEN), stock=stock,
        windows=Windows(now - timedelta(minutes=1), now + timedelta(hours=1),
                        now - timedelta(minutes=1), now + timedelta(days=1)),
    )  # fmt: skip

    def work(uow: UnitOfWork) -> str:
        campaign = marketing.create_campaign(uow, draft)
        marketing.fund_campaign(uow, campaign.id, amount_fen=stock * VOUCHER_FEN, currency="CNY")
        return campaign.id

    return run_in_transaction(engine, work)


def _burst(threads: int, jobs: list[Callable[[], str]]) -> tuple[Counter[str], list[float], float]:
    """Run the jobs on `threads` workers released together: outcomes, latencies (ms), seconds."""
    outcomes: Counter[str] = Counter()
    latencies_ms: list[float] = []
    lock = threading.Lock()
    queue = iter(jobs)
    start = threading.Barrier(threads + 1)

    def worker() -> None:
        start.wait()
        while True:
            with lock:
                job = next(queue, None)
            if job is None:
                return
            began = time.perf_counter()
            try:
                outcome = job()
            except CloudPayError as refused:
                outcome = refused.code
            elapsed_ms = (time.perf_counter() - began) * 1_000
            with lock:
                outcomes[outcome] += 1
                latencies_ms.append(elapsed_ms)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in workers:
        thread.join()
    return outcomes, latencies_ms, time.perf_counter() - began


JobsFor = Callable[[Engine, int, int], list[Callable[[], str]]]  # engine, worker no, workers


def _run(
    engine: Engine, *, threads: int, processes: int, jobs_for: JobsFor
) -> tuple[Counter[str], list[float], float]:
    """`_burst` on `processes` processes of `threads` threads each, all released together.

    Processes because one Python process runs Python on one core at a time: an API server runs
    several workers for the same reason. Each gets its own engine (no pooled connection may
    cross a fork) and the `worker no`-th share of the jobs; seconds run from the first start
    to the last finish."""
    if processes == 1:
        return _burst(threads, jobs_for(engine, 0, 1))
    context = multiprocessing.get_context("fork")
    url = engine.url.render_as_string(hide_password=False)
    ready = context.Barrier(processes + 1)
    results: Any = context.Queue()

    def child(number: int) -> None:
        own = make_engine(url, pool_size=threads + 2)
        jobs = jobs_for(own, number, processes)
        ready.wait()
        began = time.time()
        outcomes, latencies, _ = _burst(threads, jobs)
        results.put((dict(outcomes), latencies, began, time.time()))
        own.dispose()

    engine.dispose()
    workers = [context.Process(target=child, args=(n,)) for n in range(processes)]
    for worker in workers:
        worker.start()
    ready.wait()
    finished = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    outcomes: Counter[str] = Counter()
    for counts, *_ in finished:
        outcomes.update(counts)
    latencies = [ms for _, part, _, _ in finished for ms in part]
    seconds = max(end for *_, end in finished) - min(began for *_, began, _ in finished)
    return outcomes, latencies, seconds


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2) if ordered else 0.0


def _claim_job(engine: Engine, campaign_id: str, citizen_id: str) -> Callable[[], str]:
    key = uuid.uuid4().hex
    body = f'{{"citizen_id":"{citizen_id}"}}'.encode()
    request_hash = fingerprint("POST", f"/v1/campaigns/{campaign_id}/claims", body)

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        claim = marketing.claim_instrument(uow, campaign_id, citizen_id=citizen_id)
        return 201, {"id": claim.id}

    def run() -> str:
        execute_idempotently(
            engine, scope="bench", key=key, request_hash=request_hash, work=work,
            clock=SystemClock(),
        )  # fmt: skip
        return "issued"

    return run


def _verify(engine: Engine, campaign_id: str, stock: int) -> dict[str, Any]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(marketing_claims.c.citizen_id).where(
                marketing_claims.c.campaign_id == campaign_id
            )
        ).scalars()
        per_person = Counter(rows)
    campaign = run_in_transaction(engine, lambda uow: marketing.get_campaign(uow, campaign_id))
    issued = sum(per_person.values())
    return {
        "stock": stock, "issued": issued, "campaign_issued_counter": campaign.issued,
        "issued_equals_stock": issued == stock == campaign.issued,
        "over_issued": max(issued - stock, 0),
        "double_claims": sum(1 for n in per_person.values() if n > 1),
        "committed_within_budget": campaign.committed_fen <= campaign.funded_fen,
    }  # fmt: skip


def _baseline(engine: Engine, threads: int, processes: int, updates: int) -> dict[str, Any]:
    """The bare hot-row counter: a transaction of one conditional UPDATE."""
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE bench_counter (id INTEGER PRIMARY KEY, n INTEGER)"))
        connection.execute(text("INSERT INTO bench_counter VALUES (1, 0)"))
    bump = text("UPDATE bench_counter SET n = n + 1 WHERE id = 1 AND n < :stock")

    def jobs_for(own: Engine, number: int, workers: int) -> list[Callable[[], str]]:
        def job() -> str:
            run_in_transaction(
                own, lambda uow: uow.connection.execute(bump, {"stock": updates}),
                max_attempts=MAX_ATTEMPTS,
            )  # fmt: skip
            return "updated"

        return [job] * len(range(number, updates, workers))

    _outcomes, latencies, seconds = _run(
        engine, threads=threads, processes=processes, jobs_for=jobs_for
    )
    return {
        "updates_per_s": round(updates / seconds, 1),
        "latency_ms_p99": _percentile(latencies, 0.99),
    }


def bench_database(
    engine: Engine, *, stock: int, people: int, threads: int, processes: int = 1
) -> dict[str, Any]:
    """`threads` claimers in each of `processes` processes; see the module docstring."""
    console.print(f"[bold]{engine.dialect.name}[/bold]: registering {people} citizens")
    citizens = _register_people(engine, people)
    campaign_id = _open_campaign(engine, stock)
    claimants = citizens + random.Random(7).sample(citizens, int(people * SECOND_TRY_SHARE))
    random.Random(11).shuffle(claimants)
    console.print(
        f"{engine.dialect.name}: {len(claimants)} claims, {processes} × {threads} threads"
    )

    def jobs_for(own: Engine, number: int, workers: int) -> list[Callable[[], str]]:
        return [_claim_job(own, campaign_id, c) for c in claimants[number::workers]]

    outcomes, latencies, seconds = _run(
        engine, threads=threads, processes=processes, jobs_for=jobs_for
    )
    issued = outcomes.get("issued", 0)
    console.print(f"{engine.dialect.name}: baseline (bare hot-row update)")
    baseline = _baseline(engine, threads, processes, max(issued, 1))
    claims_per_s = round(issued / seconds, 1)
    return {
        "threads": threads, "processes": processes, "requests": len(claimants),
        "seconds": round(seconds, 3),
        "claims_per_s": claims_per_s,
        "requests_per_s": round(len(claimants) / seconds, 1),
        "latency_ms_p50": _percentile(latencies, 0.5),
        "latency_ms_p99": _percentile(latencies, 0.99),
        "outcomes": dict(outcomes), "check": _verify(engine, campaign_id, stock),
        "baseline_hot_row_update": baseline,
        "ratio_to_baseline": round(claims_per_s / baseline["updates_per_s"], 3),
    }  # fmt: skip


@contextmanager
def _postgres_engine(postgres: str, threads: int) -> Iterator[Engine | str]:
    """An engine on the given URL or on a throwaway cluster; a string says why none."""
    if postgres != "auto":
        engine = make_engine(postgres, pool_size=threads + 2)
        yield engine
        engine.dispose()
        return
    try:
        cluster = start_local_postgres()
    except PostgresUnavailable as missing:
        yield str(missing)
        return
    try:
        engine = make_engine(cluster.create_database("bench_claims"), pool_size=threads + 2)
        yield engine
        engine.dispose()
    finally:
        cluster.stop()


def _migrated(engine: Engine) -> Engine:
    from cloudpay.migrations import upgrade

    upgrade(engine)
    return engine


def run_claims_bench(
    *,
    stock: int,
    people: int,
    threads: int,
    sqlite_threads: int,
    postgres: str = "auto",
    processes: int = 1,
) -> dict[str, Any]:
    """Measure claims on SQLite and (unless `postgres="off"`) PostgreSQL; JSON-able."""
    databases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cloudpay-bench-claims-") as directory:
        engine = _migrated(make_engine(f"sqlite:///{Path(directory) / 'claims.db'}"))
        try:
            databases["sqlite"] = bench_database(
                engine, stock=stock, people=people, threads=sqlite_threads
            )
        finally:
            engine.dispose()
    if postgres == "off":
        databases["postgresql"] = {"skipped": "--postgres off"}
    else:
        with _postgres_engine(postgres, threads) as pg:
            databases["postgresql"] = (
                {"skipped": pg} if isinstance(pg, str)
                else bench_database(
                    _migrated(pg), stock=stock, people=people, threads=threads,
                    processes=processes,
                )
            )  # fmt: skip
    return {
        "benchmark": "claims",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
        },
        "databases": databases,
        "target": _verdict(databases.get("postgresql", {})),
    }


def _verdict(postgres: dict[str, Any]) -> dict[str, Any]:
    if "claims_per_s" not in postgres:
        return {"claims_per_s": TARGET_CLAIMS_PER_S, "met": None, "why": postgres.get("skipped")}
    return {
        "claims_per_s": TARGET_CLAIMS_PER_S,
        "measured": postgres["claims_per_s"],
        "met": postgres["claims_per_s"] >= TARGET_CLAIMS_PER_S
        and postgres["check"]["over_issued"] == 0,
        "zero_over_issue": postgres["check"]["over_issued"] == 0,
    }
