"""`cloudpay bench …`: each benchmark prints JSON (and can write it to a file), with a
baseline measured in the same run. Heavy imports happen inside each command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cloudpay.logging import configure_logging

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (JSON on stdout).")


def _emit(result: dict[str, Any], json_out: Path | None) -> None:
    text = json.dumps(result, indent=2, ensure_ascii=False)
    typer.echo(text)
    if json_out:
        json_out.write_text(text + "\n")


@bench_app.command("settlement")
def bench_settlement(
    orders: Annotated[int, typer.Option(min=1_000, help="orders in the day")] = 1_000_000,
    merchant_count: Annotated[int, typer.Option("--merchants", min=10, help="merchants")] = 10_000,
    postgres: Annotated[str, typer.Option(help="auto | off | a PostgreSQL URL")] = "off",
    json_out: Annotated[Path | None, typer.Option(help="also write the JSON here")] = None,
) -> None:
    """Settle a day of orders across merchants, against a bare SQL aggregate of the same."""
    from cloudpay.bench.settlement import run_settlement_bench

    configure_logging("WARNING")
    result = run_settlement_bench(orders=orders, merchants=merchant_count, postgres=postgres)
    _emit(result, json_out)


@bench_app.command("ledger")
def bench_ledger(
    transfers: Annotated[int, typer.Option(min=1_000)] = 200_000,
    accounts: Annotated[int, typer.Option(min=10)] = 10_000,
    single_commit_transfers: Annotated[int, typer.Option(min=100)] = 20_000,
    postgres: Annotated[str, typer.Option(help="auto | off | a PostgreSQL URL")] = "auto",
    json_out: Annotated[Path | None, typer.Option(help="also write the JSON here")] = None,
) -> None:
    """Ledger throughput on SQLite and PostgreSQL against a raw-insert baseline."""
    from cloudpay.bench.ledger import run_ledger_bench

    configure_logging("WARNING")
    result = run_ledger_bench(
        transfers=transfers, accounts=accounts,
        single_commit_transfers=single_commit_transfers, postgres=postgres,
    )  # fmt: skip
    _emit(result, json_out)


@bench_app.command("payments")
def bench_payments(
    clients: Annotated[int, typer.Option(min=1, max=256, help="concurrent clients")] = 8,
    seconds: Annotated[float, typer.Option(min=1, help="measured seconds per run")] = 10.0,
    orders: Annotated[
        int | None, typer.Option(min=1, help="measure this many requests instead of --seconds")
    ] = None,
    warmup_seconds: Annotated[float, typer.Option(min=0)] = 3.0,
    postgres: Annotated[str, typer.Option(help="auto | off | a PostgreSQL URL")] = "auto",
    json_out: Annotated[Path | None, typer.Option(help="also write the JSON here")] = None,
) -> None:
    """Signed POST /v1/orders over HTTP (WeChat sandbox as channel) against bare FastAPI."""
    from cloudpay.bench.payments import run_payments_bench

    configure_logging("WARNING")
    result = run_payments_bench(
        clients=clients, seconds=seconds, orders=orders, warmup_seconds=warmup_seconds,
        postgres=postgres,
    )  # fmt: skip
    _emit(result, json_out)


@bench_app.command("console")
def bench_console(
    orders: Annotated[int, typer.Option(min=1_000, help="orders generated")] = 1_000_000,
    renders: Annotated[int, typer.Option(min=5, help="renders timed per page")] = 100,
    postgres: Annotated[str, typer.Option(help="auto | off | a PostgreSQL URL")] = "auto",
    json_out: Annotated[Path | None, typer.Option(help="also write the JSON here")] = None,
) -> None:
    """Console dashboard and order-search render times (p50/p99) over generated orders."""
    from cloudpay.bench.console import run_console_bench

    configure_logging("WARNING")
    result = run_console_bench(orders=orders, renders=renders, postgres=postgres)
    _emit(result, json_out)


@bench_app.command("claims")
def bench_claims(
    stock: Annotated[int, typer.Option(min=10, help="vouchers in the campaign")] = 5_000,
    people: Annotated[int, typer.Option(min=10, help="citizens claiming")] = 6_000,
    threads: Annotated[int, typer.Option(min=1, max=128, help="PostgreSQL claimers")] = 16,
    sqlite_threads: Annotated[int, typer.Option(min=1, max=64)] = 8,
    postgres: Annotated[str, typer.Option(help="auto | off | a PostgreSQL URL")] = "auto",
    processes: Annotated[int, typer.Option(min=1, max=16, help="PostgreSQL processes")] = 2,
    json_out: Annotated[Path | None, typer.Option(help="also write the JSON here")] = None,
) -> None:
    """Concurrent voucher claims: claims/s, p99, and issued = stock, against a hot-row baseline."""
    from cloudpay.bench.claims import run_claims_bench

    configure_logging("WARNING")
    result = run_claims_bench(
        stock=stock, people=people, threads=threads, sqlite_threads=sqlite_threads,
        postgres=postgres, processes=processes,
    )  # fmt: skip
    _emit(result, json_out)


@bench_app.command("recon")
def bench_recon(
    rows: Annotated[int, typer.Option(min=10_000, help="trade bill rows")] = 1_000_000,
    json_out: Annotated[Path | None, typer.Option(help="also write the JSON here")] = None,
) -> None:
    """Reconcile a generated WeChat trade bill with injected mistakes, against a plain read."""
    from cloudpay.bench.recon import run_recon_bench

    configure_logging("WARNING")
    _emit(run_recon_bench(rows=rows), json_out)
