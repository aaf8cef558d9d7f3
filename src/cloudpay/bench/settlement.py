"""`cloudpay bench settlement`: settle a day of orders across many merchants.

A temporary database (SQLite; PostgreSQL too with `--postgres auto` or a URL) is migrated and
filled with one business day of `orders` paid orders over `merchants` merchants (about 1 %
refunded in part), a fee plan per merchant (a third with agents' commission is not modelled
here: no agents), standing split rules (分账) on one merchant in ten — a tenth of each order to
a supplier, and on every other one of those 5 % more to a second — and the captures those
orders posted to each merchant's pending balance.
Timed: the whole settlement run of the next business day — SQL pricing and aggregation per
merchant, the split parts of the rule merchants' orders, the pure rules per merchant, one
ledger journal per batch of merchants (splits included), the lines. The split reads are also
timed alone afterwards (`split_reads_seconds`, read-only, not part of `seconds`).
Baseline, in the same run: a bare `GROUP BY merchant_id` count and sum over the same orders.
Target: settlement ≤ 5 x the baseline.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, func, insert, select

from cloudpay import ledger, payments
from cloudpay.db.engine import make_engine
from cloudpay.db.local_postgres import PostgresUnavailable, start_local_postgres
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction, transactor
from cloudpay.kernel.business_time import day_bounds_utc
from cloudpay.kernel.clock import FixedClock
from cloudpay.ledger import Purpose, Transfer
from cloudpay.merchants.tables import merchants as merchants_table
from cloudpay.merchants.tables import split_configs, split_receivers
from cloudpay.migrations import upgrade
from cloudpay.payments.tables import orders as orders_table
from cloudpay.payments.tables import refunds as refunds_table
from cloudpay.settlement import splits
from cloudpay.settlement.flows import SettlementContext, run_settlement
from cloudpay.settlement.tables import settlement_fee_plans, settlement_split_parts

TARGET_RATIO: Final = 5.0
TRADE_DATE: Final = date(2026, 3, 2)  # a Monday; T+1 settles it on Tuesday
BATCH: Final = 20_000
SPLIT_EVERY: Final = 10  # one merchant in ten has standing split rules
SPLIT_CAP_CENTI_BP: Final = 300_000  # the default 30 % cap on what leaves an order
_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _id(prefix: str, rng: random.Random) -> str:
    value = rng.getrandbits(130)
    return prefix + "_" + "".join(_CROCKFORD[(value >> s) & 31] for s in range(125, -1, -5))


def _generate(
    count: int, merchant_ids: list[str], rng: random.Random
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    start, _ = day_bounds_utc(TRADE_DATE)
    orders, refunds = [], []
    for number in range(count):
        created = start + timedelta(microseconds=rng.randrange(86_399_000_000))
        merchant_id = merchant_ids[number % len(merchant_ids)]
        amount = rng.randrange(100, 50_000)
        order_id = _id("ord", rng)
        refunded = amount // 2 if number % 100 == 0 else 0
        orders.append(
            {
                "id": order_id,
                "app_id": f"app_{merchant_id[4:]}",
                "merchant_id": merchant_id,
                "out_trade_no": f"B{number:09d}",
                "request_hash": "0" * 64,
                "amount": amount,
                "currency": "CNY",
                "subject": "bench",
                "method": "wechat_native",
                "channel": "wechat",
                "status": "partially_refunded" if refunded else "succeeded",
                "expire_at": created + timedelta(minutes=30),
                "metadata": "{}",
                "refunded_amount": refunded,
                "refund_reserved_amount": 0,
                "poll_attempts": 0,
                "route_cost_fen": amount * 25 // 10_000,
                "paid_at": created + timedelta(seconds=1),
                "booked_at": created + timedelta(seconds=2),
                "created_at": created,
                "updated_at": created,
            }
        )
        if refunded:
            refunds.append(
                {
                    "id": _id("rfd", rng),
                    "order_id": order_id,
                    "app_id": f"app_{merchant_id[4:]}",
                    "merchant_id": merchant_id,
                    "out_refund_no": f"R{number:09d}",
                    "request_hash": "0" * 64,
                    "amount": refunded,
                    "currency": "CNY",
                    "status": "succeeded",
                    "succeeded_at": created + timedelta(seconds=5),
                    "booked_at": created + timedelta(seconds=6),
                    "created_at": created,
                    "updated_at": created,
                }
            )
    return orders, refunds


def _fee_plans(merchant_ids: list[str], at: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": f"fpl_{n:026d}",
            "merchant_id": m,
            "method": "wechat_native",
            "effective_from": at,
            "effective_to": None,
            "rate_centi_bp": 3_800 + (n % 3) * 100,
            "fixed_fen": None,
            "min_fen": 1,
            "max_fen": None,
            "surcharge_centi_bp": 0,
            "refund_policy": "proportional",
            "created_at": at,
        }
        for n, m in enumerate(merchant_ids)
    ]


def _merchant_row(merchant_id: str, at: datetime) -> dict[str, Any]:
    """A bare approved merchant: split receivers and configurations need its row."""
    placeholder = "bench"
    return {
        "id": merchant_id,
        "agent_id": None,
        "legal_name": f"Bench {merchant_id}",
        "unified_social_credit_code": "91110000000000000X",
        "legal_person_name": placeholder,
        "legal_person_id_number_encrypted": placeholder,
        "legal_person_id_number_index": placeholder,
        "legal_person_id_number_masked": placeholder,
        "contact_phone_encrypted": placeholder,
        "contact_phone_index": placeholder,
        "contact_phone_masked": placeholder,
        "mcc": "5411",
        "acquiring_mode": "direct",
        "channel_sub_merchant_ids": {},
        "status": "approved",
        "created_at": at,
        "updated_at": at,
    }


def _receiver_row(merchant_id: str, number: int, at: datetime) -> dict[str, Any]:
    return {
        "id": f"rcv_{merchant_id[4:]}{number}",
        "merchant_id": merchant_id,
        "kind": "supplier",
        "name": f"Supplier {number}",
        "reference_id": None,
        "bank_code": "BENCH",
        "account_class": "II",
        "account_no_encrypted": None,
        "account_no_masked": "6222 **** 0000",
        "status": "bound",
        "created_at": at,
        "updated_at": at,
    }


def _split_setup(merchant_ids: list[str], at: datetime) -> dict[str, list[dict[str, Any]]]:
    """Rows giving one merchant in ten standing rules: 10 % of each order to a supplier,
    and for every other one of them 5 % more to a second supplier."""
    split_merchants = merchant_ids[::SPLIT_EVERY]
    receivers, configs = [], []
    for n, merchant_id in enumerate(split_merchants):
        mine = [_receiver_row(merchant_id, r, at) for r in range(1 + n % 2)]
        receivers += mine
        rates = ("1000", "500")
        rules = [
            {"receiver_id": r["id"], "rate_bp": rate, "fixed_fen": None, "split_from": None}
            for r, rate in zip(mine, rates, strict=False)
        ]
        configs.append(
            {
                "merchant_id": merchant_id,
                "cap_centi_bp": SPLIT_CAP_CENTI_BP,
                "auto_unfreeze_days": 30,
                "rules": rules,
                "updated_at": at,
            }
        )
    return {
        "merchants": [_merchant_row(m, at) for m in split_merchants],
        "receivers": receivers,
        "configs": configs,
    }


def _fill(
    engine: Engine,
    orders: list[dict[str, Any]],
    refunds: list[dict[str, Any]],
    plans: list[dict[str, Any]],
    split_setup: dict[str, list[dict[str, Any]]],
) -> None:
    with engine.begin() as connection:
        for table, rows in (
            (orders_table, orders),
            (refunds_table, refunds),
            (settlement_fee_plans, plans),
            (merchants_table, split_setup["merchants"]),
            (split_receivers, split_setup["receivers"]),
            (split_configs, split_setup["configs"]),
        ):
            for first in range(0, len(rows), BATCH):
                connection.execute(insert(table), rows[first : first + BATCH])
        # A deployment has autovacuum's statistics; the bench has just bulk-loaded a million
        # rows, so it gathers them itself (PostgreSQL plans the day's aggregate on them).
        connection.exec_driver_sql("ANALYZE")


def _capture_totals(orders: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
    """What payments posted to each merchant's pending balance (captures less refunds), as
    one capture per merchant under the payments id of its first order (setup, not timed)."""
    totals: dict[str, tuple[str, int]] = {}
    for order in orders:
        first, amount = totals.get(order["merchant_id"], (order["id"], 0))
        kept = order["amount"] - order["refunded_amount"]
        totals[order["merchant_id"]] = (min(first, order["id"]), amount + kept)
    return totals


def _post_captures(engine: Engine, clock: FixedClock, totals: dict[str, tuple[str, int]]) -> None:
    items = sorted(totals.items())
    for first in range(0, len(items), 2_000):

        def work(
            uow: UnitOfWork, chunk: list[tuple[str, tuple[str, int]]] = items[first : first + 2_000]
        ) -> None:
            clearing = ledger.open_chart_account(
                uow, Purpose.CHANNEL_CLEARING, ledger.channel_owner("wechat")
            ).id
            captures = payments.capture_transfer_ids(order_id for _m, (order_id, _a) in chunk)
            transfers = [
                Transfer(
                    captures[order_id],
                    clearing,
                    ledger.open_chart_account(
                        uow, Purpose.MERCHANT_PENDING, ledger.merchant_owner(m)
                    ).id,
                    amount,
                    "CNY",
                    "payment.capture",
                    user_data=order_id,
                )
                for m, (order_id, amount) in chunk
            ]
            ledger.create_transfers(uow, transfers)

        run_in_transaction(engine, work, clock=clock)


def _baseline(engine: Engine, start: datetime, end: datetime) -> tuple[int, float]:
    began = time.perf_counter()
    grouped = run_in_transaction(
        engine,
        lambda uow: payments.paid_orders_baseline(uow.connection, start=start, end=end),
        read_only=True,
    )
    return grouped, time.perf_counter() - began


def _split_reads_seconds(engine: Engine, clock: FixedClock) -> float:
    """The run's split reads alone, again after the run (read-only: nothing is written)."""
    began = time.perf_counter()
    run_in_transaction(
        engine, lambda uow: splits.read_split_days(uow, TRADE_DATE), clock=clock, read_only=True
    )
    return time.perf_counter() - began


def _split_totals(engine: Engine) -> tuple[int, int]:
    """How many split parts the run recorded, and the fen they moved to receivers."""
    parts = settlement_split_parts.c
    query = select(func.count(), func.coalesce(func.sum(parts.amount_fen), 0))
    with engine.connect() as connection:
        count, total = connection.execute(query).one()
    return int(count), int(total)


def bench_engine(engine: Engine, *, orders: int, merchants: int) -> dict[str, Any]:
    upgrade(engine)
    rng = random.Random(11)
    merchant_ids = [_id("mch", rng) for _ in range(merchants)]
    start, end = day_bounds_utc(TRADE_DATE)
    clock = FixedClock(start - timedelta(days=1))
    order_rows, refund_rows = _generate(orders, merchant_ids, rng)
    _fill(
        engine,
        order_rows,
        refund_rows,
        _fee_plans(merchant_ids, clock.now()),
        _split_setup(merchant_ids, clock.now()),
    )
    _post_captures(engine, clock, _capture_totals(order_rows))
    del order_rows, refund_rows
    grouped, baseline_cold_s = _baseline(engine, start, end)
    clock.set(end + timedelta(hours=10))
    began = time.perf_counter()
    summary = run_settlement(
        transactor(engine, clock),
        SettlementContext(),
        TRADE_DATE + timedelta(days=1),
        pay_out=False,
    )
    settle_s = time.perf_counter() - began
    # The first read pays for a cold page cache; the baseline is its best warm run.
    baseline_s = min(_baseline(engine, start, end)[1] for _ in range(2))
    split_reads_s = _split_reads_seconds(engine, clock)
    split_parts, split_fen = _split_totals(engine)
    books = run_in_transaction(engine, ledger.check_books, read_only=True)
    return {
        "database": engine.dialect.name,
        "orders": orders,
        "merchants": merchants,
        "merchants_settled": summary.settled,
        "merchants_in_baseline": grouped,
        "merchants_with_split_rules": len(merchant_ids[::SPLIT_EVERY]),
        "split_parts": split_parts,
        "split_fen": split_fen,
        "split_reads_seconds": round(split_reads_s, 3),
        "seconds": round(settle_s, 3),
        "orders_per_s": round(orders / settle_s),
        "baseline_seconds": round(baseline_s, 3),
        "baseline_cold_seconds": round(baseline_cold_s, 3),
        "ratio": round(settle_s / baseline_s, 2) if baseline_s else None,
        "target_ratio": TARGET_RATIO,
        "books_balance": books.ok,
    }


@contextmanager
def _databases(postgres: str, directory: Path) -> Iterator[list[Engine | str]]:
    targets: list[Engine | str] = [make_engine(f"sqlite:///{directory / 'settlement.db'}")]
    cluster = None
    if postgres == "off":
        targets.append("postgresql skipped: --postgres off")
    elif postgres != "auto":
        targets.append(make_engine(postgres))
    else:
        try:
            cluster = start_local_postgres()
            targets.append(make_engine(cluster.create_database("settlement_bench")))
        except PostgresUnavailable as missing:
            targets.append(f"postgresql skipped: {missing}")
    try:
        yield targets
    finally:
        for target in targets:
            if not isinstance(target, str):
                target.dispose()
        if cluster is not None:
            cluster.stop()


def run_settlement_bench(*, orders: int, merchants: int, postgres: str = "off") -> dict[str, Any]:
    results: dict[str, Any] = {"cpus": os.cpu_count(), "databases": {}}
    with (
        tempfile.TemporaryDirectory(prefix="cloudpay-settlement-bench-") as directory,
        _databases(postgres, Path(directory)) as targets,
    ):
        for target in targets:
            if isinstance(target, str):
                results["databases"]["postgresql"] = {"skipped": target}
                continue
            measured = bench_engine(target, orders=orders, merchants=merchants)
            results["databases"][measured["database"]] = measured
    return results
