"""The `cloudpay` command line."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from sqlalchemy import Engine

from cloudpay.config import Settings, get_settings
from cloudpay.db.unit_of_work import run_in_transaction
from cloudpay.demo.report import print_demo_report
from cloudpay.kernel.clock import SystemClock
from cloudpay.ledger import check_books
from cloudpay.logging import configure_logging
from cloudpay.main import create_app, engine_for
from cloudpay.migrations import current_revision, head_revision, upgrade
from cloudpay.worker import run_due_jobs, run_worker

app = typer.Typer(no_args_is_help=True, help="CloudPay: a city's cloud payment hub.")
ledger_app = typer.Typer(no_args_is_help=True, help="Ledger operations.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (JSON on stdout).")
app.add_typer(ledger_app, name="ledger")
app.add_typer(bench_app, name="bench")
console = Console(stderr=True)


def _settings(database: str | None = None) -> Settings:
    settings = get_settings()
    if database:
        settings = settings.model_copy(update={"database_url": database})
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


def _migrated_engine(settings: Settings) -> Engine:
    engine = engine_for(settings)
    upgrade(engine)
    return engine


@app.command()
def migrate(database: Annotated[str | None, typer.Option(help="database URL")] = None) -> None:
    """Bring the database schema to the latest revision."""
    settings = _settings(database)
    engine = _migrated_engine(settings)
    console.print(
        f"migrated {engine.url.render_as_string(hide_password=True)} to {current_revision(engine)}"
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Serve the API (and, as it lands, the console)."""
    settings = _settings()
    engine = engine_for(settings)
    if current_revision(engine) != head_revision():
        console.print("[red]database not migrated: run `cloudpay migrate` first[/red]")
        raise typer.Exit(2)
    uvicorn.run(
        create_app(settings, engine=engine), host=host or settings.host, port=port or settings.port
    )


@app.command()
def worker(once: Annotated[bool, typer.Option(help="run due jobs once and exit")] = False) -> None:
    """Run scheduled jobs: expire ledger holds, purge old idempotency keys."""
    settings = _settings()
    engine = engine_for(settings)
    if once:
        console.print(run_due_jobs(engine, SystemClock(), {}))
        return
    stop = threading.Event()
    try:
        run_worker(engine, SystemClock(), stop=stop)
    except KeyboardInterrupt:
        stop.set()


@app.command()
def demo(
    once: Annotated[bool, typer.Option(help="run the demo day, print the summary, exit")] = False,
    database: Annotated[str, typer.Option(help="database URL")] = "sqlite:///./cloudpay.db",
    port: Annotated[int, typer.Option()] = 8000,
    payments: Annotated[int, typer.Option(min=10, max=200_000)] = 3_000,
) -> None:
    """Seed a demo city on the embedded database, run a day of traffic, then serve it."""
    from cloudpay.demo.ledger_day import run_ledger_day

    settings = _settings(database)
    engine = _migrated_engine(settings)
    clock = SystemClock()
    with console.status("running a day of the demo city…"):
        summary = run_ledger_day(engine, clock, payments=payments)
    report = run_in_transaction(engine, check_books, read_only=True)
    print_demo_report(engine, summary, report, settings=settings, port=port)
    if not report.ok:
        raise typer.Exit(1)
    if once:
        return
    stop = threading.Event()
    threading.Thread(
        target=run_worker, args=(engine, clock), kwargs={"stop": stop}, daemon=True
    ).start()
    console.print(f"[green]serving on http://127.0.0.1:{port} — Ctrl-C to stop[/green]")
    try:
        uvicorn.run(
            create_app(settings, engine=engine, clock=clock),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    finally:
        stop.set()


@ledger_app.command("check")
def ledger_check(
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    database: Annotated[str | None, typer.Option(help="database URL")] = None,
) -> None:
    """Prove the books balance; exit 1 with a report if they do not."""
    settings = _settings(database)
    report = run_in_transaction(engine_for(settings), check_books, read_only=True)
    payload = {
        "ok": report.ok,
        "accounts": report.accounts,
        "totals": report.totals,
        "problems": report.problems,
    }
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
    else:
        verdict = "[green]books balance[/green]" if report.ok else "[red]books do NOT balance[/red]"
        console.print(f"{verdict}: {report.accounts} accounts")
        for ledger, totals in report.totals.items():
            console.print(f"  {ledger}: {totals}")
        for problem in report.problems:
            console.print(f"  [red]✗[/red] {problem}")
    if not report.ok:
        raise typer.Exit(1)


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
    text = json.dumps(result, indent=2)
    typer.echo(text)
    if json_out:
        json_out.write_text(text + "\n")
