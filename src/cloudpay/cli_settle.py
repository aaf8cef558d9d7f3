"""`cloudpay settle …`: the settlement run of a business date, and the regional report.

The partner banks come from the deployment's connectors file (`CLOUDPAY_CONNECTORS_FILE`,
entries with `"channel": "bank"`, see `cloudpay.connectors`), like the payment channels. Heavy
imports happen inside each command so `cloudpay --help` stays fast.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from cloudpay.config import Settings, get_settings
from cloudpay.kernel.clock import SystemClock
from cloudpay.logging import configure_logging

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from cloudpay.connectors import BankConnectors

settle_app = typer.Typer(no_args_is_help=True, help="Settlement (结算) runs, payouts, reports.")
console = Console(stderr=True)
Database = Annotated[str | None, typer.Option(help="database URL (default: settings)")]
NO_BANK = (
    'no partner bank configured: add an entry with "channel": "bank" (see cloudpay.connectors)'
)


def _settings(database: str | None) -> Settings:
    settings = get_settings()
    if database:
        settings = settings.model_copy(update={"database_url": database})
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


def _migrated_engine(settings: Settings) -> Engine:
    from cloudpay.db.engine import make_engine
    from cloudpay.migrations import upgrade

    engine = make_engine(
        settings.database_url,
        isolation_level=settings.database_isolation,
        pool_size=settings.database_pool_size,
        sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
    )
    upgrade(engine)
    return engine


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint=option) from error


def bank_connectors(settings: Settings, *, required: bool) -> BankConnectors:
    """The partner banks of the connectors file; exit 2 with the reason when the file is
    wrong, or when `required` and it names no bank."""
    from cloudpay.connectors import BankConnectors, ConnectorConfigError, load_bank_connectors

    if not settings.connectors_file:
        if required:
            console.print(f"[red]{NO_BANK}[/red] to the file CLOUDPAY_CONNECTORS_FILE names")
            raise typer.Exit(2)
        return BankConnectors({}, frozenset(), ())
    try:
        connectors = load_bank_connectors(Path(settings.connectors_file), SystemClock())
    except ConnectorConfigError as error:
        console.print(f"[red]connectors file refused[/red]: {error}")
        raise typer.Exit(2) from error
    if required and not connectors.banks:
        console.print(f"[red]{NO_BANK}[/red] in {settings.connectors_file}")
        raise typer.Exit(2)
    return connectors


@settle_app.command("run")
def settle_run(
    business_date: Annotated[str, typer.Option("--date", help="business date YYYY-MM-DD")],
    pay_out: Annotated[bool, typer.Option(help="send payouts to the configured banks")] = True,
    database: Database = None,
) -> None:
    """Settle (or resume settling) one business date and pay out through the partner banks of
    CLOUDPAY_CONNECTORS_FILE (needed unless --no-pay-out); prints the run summary as JSON."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from cloudpay.db.unit_of_work import transactor
    from cloudpay.main import local_policy
    from cloudpay.settlement.flows import SettlementContext, run_settlement

    day = _day(business_date, "--date")
    settings = _settings(database)
    connectors = bank_connectors(settings, required=pay_out)
    engine = _migrated_engine(settings)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with ExitStack() as clients, Progress(*columns, console=console, transient=True) as progress:
        for bank in connectors.banks.values():
            clients.callback(bank.close)  # type: ignore[attr-defined]
        task = progress.add_task(f"settling {day}, {len(connectors.banks)} banks", total=None)
        ctx = SettlementContext(banks=connectors.banks, local=local_policy(connectors))
        summary = run_settlement(
            transactor(engine), ctx, day, pay_out=pay_out,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )  # fmt: skip
    engine.dispose()
    typer.echo(json.dumps(summary.as_dict(), indent=2))


@settle_app.command("report")
def settle_report(
    start: Annotated[str, typer.Option("--from", help="first business date YYYY-MM-DD")],
    end: Annotated[str, typer.Option("--to", help="last business date YYYY-MM-DD")],
    period: Annotated[str, typer.Option(help="day | week")] = "day",
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV instead of JSON")] = False,
    database: Database = None,
) -> None:
    """资金闭环: per partner bank, merchants' receipts held there, settled there and custody;
    per day or week, the share of payouts kept in local banks (banks of the connectors file
    marked `local`; without a file every partner bank counts as local)."""
    from cloudpay.db.unit_of_work import run_in_transaction
    from cloudpay.kernel.errors import CloudPayError
    from cloudpay.main import local_policy
    from cloudpay.settlement import regional, service

    first, last = _day(start, "--from"), _day(end, "--to")
    try:
        grouping = regional.Period(period)
    except ValueError as error:
        raise typer.BadParameter("day or week", param_hint="--period") from error
    settings = _settings(database)
    connectors = bank_connectors(settings, required=False)
    policy = local_policy(connectors)
    engine = _migrated_engine(settings)
    try:
        report = run_in_transaction(
            engine,
            lambda uow: service.regional_flows(
                uow, start=first, end=last, period=grouping, policy=policy,
                banks=sorted(connectors.banks)),
            read_only=True,
        )  # fmt: skip
    except CloudPayError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error
    finally:
        engine.dispose()
    if as_csv:
        typer.echo(regional.report_csv(report), nl=False)
    else:
        typer.echo(json.dumps(regional.report_view(report), indent=2))
