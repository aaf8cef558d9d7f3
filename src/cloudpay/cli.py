"""The `cloudpay` command line."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy import Engine

from cloudpay.cli_bench import bench_app
from cloudpay.cli_settle import settle_app
from cloudpay.config import Settings, get_settings
from cloudpay.db.engine import make_engine
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import SystemClock
from cloudpay.kernel.errors import CloudPayError
from cloudpay.kernel.vault import PersonalDataVault
from cloudpay.ledger import check_books
from cloudpay.logging import configure_logging
from cloudpay.marketing.cli import build_campaign_app
from cloudpay.merchants import service as merchants
from cloudpay.merchants.model import (
    AcquiringMode,
    KeyAlgorithm,
    Merchant,
    MerchantApplication,
    MerchantStatus,
    ReviewAction,
)

app = typer.Typer(no_args_is_help=True, help="CloudPay: a city's cloud payment hub.")
ledger_app = typer.Typer(no_args_is_help=True, help="Ledger operations.")
app.add_typer(ledger_app, name="ledger")
app.add_typer(bench_app, name="bench")
sandbox_app = typer.Typer(help="Channel sandboxes on loopback, and their simulated customer.")
app.add_typer(sandbox_app, name="sandbox")
DEFAULT_SANDBOX_CREDENTIALS = Path("var/wechat-sandbox.json")
merchant_app = typer.Typer(no_args_is_help=True, help="Merchants: onboard (进件), review, list.")
app_app = typer.Typer(no_args_is_help=True, help="Merchant apps and their signing keys.")
app.add_typer(merchant_app, name="merchant")
app.add_typer(app_app, name="app")
user_app = typer.Typer(no_args_is_help=True, help="Console users (the first admin, and more).")
app.add_typer(user_app, name="user")
app.add_typer(settle_app, name="settle")
console = Console(stderr=True)


def _settings(database: str | None = None) -> Settings:
    settings = get_settings()
    if database:
        settings = settings.model_copy(update={"database_url": database})
    configure_logging(settings.log_level, json=settings.log_json)
    return settings


# The web stack, Alembic and the demo are imported inside the commands that need them, so
# `cloudpay ledger check` and friends start in a fraction of the time.
def _engine(settings: Settings) -> Engine:
    return make_engine(
        settings.database_url,
        isolation_level=settings.database_isolation,
        pool_size=settings.database_pool_size,
        sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
    )


def _migrated_engine(settings: Settings) -> Engine:
    from cloudpay.migrations import upgrade

    engine = _engine(settings)
    upgrade(engine)
    return engine


@app.command()
def migrate(database: Annotated[str | None, typer.Option(help="database URL")] = None) -> None:
    """Bring the database schema to the latest revision."""
    settings = _settings(database)
    engine = _migrated_engine(settings)
    console.print(
        f"migrated {engine.url.render_as_string(hide_password=True)} to the latest revision"
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Serve the API (and, as it lands, the console)."""
    settings = _settings()
    import uvicorn

    from cloudpay.main import create_app
    from cloudpay.migrations import current_revision, head_revision

    engine = _engine(settings)
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
    from cloudpay.main import worker_context
    from cloudpay.worker import run_due_jobs, run_worker

    context = worker_context(settings, _engine(settings), SystemClock())
    if once:
        console.print(run_due_jobs(context, {}))
        return
    stop = threading.Event()
    try:
        run_worker(context, stop=stop)
    except KeyboardInterrupt:
        stop.set()


@app.command()
def demo(
    once: Annotated[bool, typer.Option(help="run the demo day, print the summary, exit")] = False,
    database: Annotated[str, typer.Option(help="database URL")] = "sqlite:///./cloudpay.db",
    port: Annotated[int, typer.Option(help="API port (with --once: any free port)")] = 8000,
    orders: Annotated[int, typer.Option(min=10, max=20_000)] = 120,
    scenario: Annotated[str, typer.Option(help="gateway | ledger")] = "gateway",
    summary_json: Annotated[
        Path | None, typer.Option(help="also write the money summary as JSON here")
    ] = None,
) -> None:
    """Seed a demo city on the embedded database, run a day of traffic, then serve it."""
    settings = _settings(database).model_copy(update={"log_level": "WARNING"})
    configure_logging("WARNING")  # the summary is the output; logs stay for `serve`/`worker`
    engine = _migrated_engine(settings)
    clock = SystemClock()
    if scenario == "ledger":
        _ledger_demo(engine, settings, payments=orders * 15)
        return
    from cloudpay.demo.gateway_day import run_day, start_gateway
    from cloudpay.demo.gateway_report import print_gateway_report, print_try_it
    from cloudpay.demo.money_day import close_the_day, open_the_day, report_the_day

    with console.status("starting the API, the sandboxes, the banks and the worker…"):
        day = start_gateway(engine, clock, settings, port=0 if once else port)
        money = open_the_day(engine, clock, settings, day)
    try:
        with console.status(f"a day of the demo city: {orders} orders…"):
            run_day(day, orders=orders)
        with console.status("the night: reconciliation, then settlement…"):
            close_the_day(clock, day, money)
        report = run_in_transaction(engine, check_books, read_only=True)
        print_gateway_report(engine, day, report, settings=settings)
        report_the_day(money, summary_path=summary_json)
        print_try_it(day, settings)
        if not report.ok:
            raise typer.Exit(1)
        if not once:
            console.print(f"[green]serving on {day.api.url} — Ctrl-C to stop[/green]")
            day.api.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        money.stop()
        day.stop()


def _ledger_demo(engine: Engine, settings: Settings, *, payments: int) -> None:
    """The ledger on its own: holds, balancing sweeps, replays, an overdraft refused."""
    from cloudpay.demo.ledger_day import run_ledger_day

    summary = run_ledger_day(engine, SystemClock(), payments=payments)
    report = run_in_transaction(engine, check_books, read_only=True)
    from cloudpay.demo.report import print_demo_report

    print_demo_report(engine, summary, report, settings=settings, port=settings.port)
    if not report.ok:
        raise typer.Exit(1)


@ledger_app.command("check")
def ledger_check(
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    database: Annotated[str | None, typer.Option(help="database URL")] = None,
) -> None:
    """Prove the books balance; exit 1 with a report if they do not."""
    settings = _settings(database)
    report = run_in_transaction(_engine(settings), check_books, read_only=True)
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


# --- reconciliation ----------------------------------------------------------------------
recon_app = typer.Typer(no_args_is_help=True, help="Reconciliation (对账) of channel bills.")
app.add_typer(recon_app, name="recon")


@recon_app.command("run")
def recon_run(
    bill_date: Annotated[str, typer.Option("--date", help="business date YYYY-MM-DD")],
    channel: Annotated[str | None, typer.Option(help="connector key (default: all)")] = None,
    bill_file: Annotated[Path | None, typer.Option("--file", help="a downloaded bill")] = None,
    bill_format: Annotated[str | None, typer.Option(help="reader (default: the channel)")] = None,
    database: Annotated[str | None, typer.Option(help="database URL (default: settings)")] = None,
) -> None:
    """Reconcile a day: the file given, or the bill downloaded from the channel; prints the
    run (matched, breaks by type, carry-over) as JSON. Exit 1 if the file is rejected.
    Without --channel: every configured channel and bank, each once (what is done is kept)."""
    from datetime import date

    from cloudpay.channels.protocol import ChannelError
    from cloudpay.db.unit_of_work import transactor
    from cloudpay.main import bank_channels_for, channel_context_for
    from cloudpay.reconciliation import BillFile, reconcile_all, run_day

    settings = _settings(database)
    try:
        day = date.fromisoformat(bill_date)
    except ValueError:
        raise typer.BadParameter("expected YYYY-MM-DD", param_hint="--date") from None
    engine = _migrated_engine(settings)
    if channel is None:
        if bill_file is not None:
            raise typer.BadParameter("a file is one channel's: name it", param_hint="--channel")
        registry = channel_context_for(settings, SystemClock()).channels
        banks = bank_channels_for(settings, SystemClock())
        outcome = reconcile_all(transactor(engine, SystemClock()), channels=registry, banks=banks,
                                day=day, actor="cli")  # fmt: skip
        typer.echo(json.dumps(outcome, indent=2, ensure_ascii=False))
        return
    if bill_file is not None:
        data, source, code = bill_file.read_bytes(), f"file:{bill_file.name}", channel
    else:
        registry = channel_context_for(settings, SystemClock()).channels
        if channel not in registry.keys:
            raise typer.BadParameter(f"no connector {channel!r} configured", param_hint="--channel")
        adapter = registry.get(channel)
        try:
            data = adapter.download_bill(day)
        except ChannelError as error:
            if error.code != "NO_STATEMENT_EXIST":  # WeChat: no transaction, no bill
                console.print(f"[red]the channel gave no bill[/red]: {error.message}")
                raise typer.Exit(1) from error
            data = b""
        source, code = f"download:{channel}", adapter.code
    # Only a download can say "no bill that day"; an empty file given is rejected as such.
    no_statement = bill_file is None and not data
    bill = BillFile(channel, day, data, source, bill_format or code, no_statement=no_statement)
    try:
        run = run_day(transactor(engine, SystemClock()), bill=bill, actor="cli")
    except CloudPayError as error:
        console.print(f"[red]{error.code}[/red]: {error.message}")
        raise typer.Exit(1) from error
    typer.echo(json.dumps(run, indent=2, ensure_ascii=False, default=str))


# --- merchants and apps -----------------------------------------------------------------
T = TypeVar("T")
Database = Annotated[str | None, typer.Option(help="database URL (default: settings)")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
KEYS_DIR = Path("keys")


def _merchants_transaction(
    database: str | None, work: Callable[[UnitOfWork, PersonalDataVault], T]
) -> T:
    """Migrate, then run `work` in one transaction; a refusal is a message and exit code 2."""
    settings = _settings(database)
    engine = _migrated_engine(settings)
    from cloudpay.main import vault_for

    vault = vault_for(settings)
    try:
        return run_in_transaction(engine, lambda uow: work(uow, vault))
    except CloudPayError as error:
        param = f" ({error.param})" if error.param else ""
        console.print(f"[red]{error.code}[/red]{param}: {error.message}")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()


def _campaign_transaction(database: str | None, work: Callable[[UnitOfWork], Any]) -> Any:
    return _merchants_transaction(database, lambda uow, _vault: work(uow))


app.add_typer(build_campaign_app(_campaign_transaction), name="campaign")


def _echo(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        for name, value in payload.items():
            typer.echo(f"{name}: {value}")


@merchant_app.command("create")
def merchant_create(
    name: Annotated[str, typer.Option(help="legal name (营业执照名称)")],
    uscc: Annotated[str, typer.Option(help="unified social credit code")],
    legal_person: Annotated[str, typer.Option(help="legal person's name")],
    id_number: Annotated[str, typer.Option(help="legal person's resident ID")],
    phone: Annotated[str, typer.Option(help="contact mobile number")],
    mcc: Annotated[str, typer.Option(help="business category, 4 digits")],
    agent: Annotated[str | None, typer.Option(help="agent id (agt_…)")] = None,
    bank_name: Annotated[str | None, typer.Option(help="settlement bank")] = None,
    account_name: Annotated[str | None, typer.Option(help="settlement account name")] = None,
    account_number: Annotated[str | None, typer.Option(help="settlement account number")] = None,
    isv: Annotated[bool, typer.Option(help="sub-merchant under the platform (服务商模式)")] = False,
    approve: Annotated[bool, typer.Option(help="submit and approve at once")] = False,
    as_json: AsJson = False,
    database: Database = None,
) -> None:
    """Onboard a merchant (draft, or approved with --approve). Personal data is encrypted."""
    application = MerchantApplication(
        legal_name=name, unified_social_credit_code=uscc, legal_person_name=legal_person,
        legal_person_id_number=id_number, contact_phone=phone, mcc=mcc,
        settlement_bank_name=bank_name, settlement_account_name=account_name,
        settlement_account_number=account_number, agent_id=agent,
        acquiring_mode=AcquiringMode.ISV if isv else AcquiringMode.DIRECT,
    )  # fmt: skip

    def work(uow: UnitOfWork, vault: PersonalDataVault) -> dict[str, Any]:
        merchant = merchants.onboard_merchant(uow, vault=vault, application=application)
        if approve:
            merchant = _approve(uow, merchant.id)
        return {"merchant_id": merchant.id, "status": merchant.status.value}

    _echo(_merchants_transaction(database, work), as_json)


def _approve(uow: UnitOfWork, merchant_id: str) -> Merchant:
    if merchants.get_merchant(uow, merchant_id).status is MerchantStatus.DRAFT:
        merchants.review_merchant(uow, merchant_id, action=ReviewAction.SUBMIT, actor="cli")
    return merchants.review_merchant(uow, merchant_id, action=ReviewAction.APPROVE, actor="cli")


@merchant_app.command("approve")
def merchant_approve(
    merchant_id: Annotated[str, typer.Argument(help="mch_…")],
    as_json: AsJson = False,
    database: Database = None,
) -> None:
    """Approve a merchant (a draft is submitted first; both steps are recorded)."""
    merchant = _merchants_transaction(database, lambda uow, _: _approve(uow, merchant_id))
    _echo({"merchant_id": merchant.id, "status": merchant.status.value}, as_json)


@merchant_app.command("list")
def merchant_list(
    status: Annotated[MerchantStatus | None, typer.Option(help="only this status")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    as_json: AsJson = False,
    database: Database = None,
) -> None:
    """The newest merchants (personal data masked)."""
    found = _merchants_transaction(
        database, lambda uow, _: merchants.list_merchants(uow, status=status, limit=limit)
    )
    rows = [
        {"merchant_id": m.id, "status": m.status.value, "legal_name": m.legal_name,
         "contact_phone": m.contact_phone_masked, "agent_id": m.agent_id}
        for m in found
    ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for row in rows:
        typer.echo("  ".join(str(value or "-") for value in row.values()))


@app_app.command("create")
def app_create(
    merchant: Annotated[str, typer.Option(help="merchant id (mch_…)")],
    name: Annotated[str, typer.Option(help="app name")] = "default",
    notify_url: Annotated[str | None, typer.Option(help="webhook URL")] = None,
    algorithm: Annotated[KeyAlgorithm, typer.Option(help="key type")] = KeyAlgorithm.RSA,
    keys_dir: Annotated[Path, typer.Option(help="where the private key goes")] = KEYS_DIR,
    as_json: AsJson = False,
    database: Database = None,
) -> None:
    """Create an app with a generated key pair; the private key goes to KEYS_DIR/<app_id>.pem."""
    key = merchants.prepare_key(algorithm)

    def work(uow: UnitOfWork, _: PersonalDataVault) -> str:
        return merchants.create_app(uow, merchant, name=name, notify_url=notify_url, key=key).id

    app_id = _merchants_transaction(database, work)
    assert key.private_key is not None  # generated, so we hold it
    suffix = ".pem" if algorithm is KeyAlgorithm.RSA else ".sm2.hex"
    path = _write_private_key(keys_dir / f"{app_id}{suffix}", key.private_key.reveal())
    payload = {
        "app_id": app_id, "merchant_id": merchant, "serial_no": key.serial_no,
        "algorithm": algorithm.value, "private_key_path": str(path),
    }  # fmt: skip
    _echo(payload, as_json)


def _write_private_key(path: Path, text: str) -> Path:
    """Owner-only file (0600) in an owner-only directory; never overwrites a key."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")
    return path


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="the user's e-mail (their login)")],
    role: Annotated[
        str, typer.Option(help="platform_admin | bank | agent | merchant | risk_officer | auditor")
    ],
    merchant: Annotated[str | None, typer.Option(help="merchant id (role merchant)")] = None,
    agent: Annotated[str | None, typer.Option(help="agent id (role agent)")] = None,
    totp: Annotated[bool, typer.Option(help="require an authenticator code (TOTP)")] = False,
    database: Database = None,
) -> None:
    """Create a console user; the password is read from CLOUDPAY_NEW_USER_PASSWORD or
    generated and printed once."""
    import secrets

    from cloudpay.console import Role, create_user

    password = os.environ.get("CLOUDPAY_NEW_USER_PASSWORD") or secrets.token_urlsafe(18)
    try:
        the_role = Role(role)
    except ValueError:
        console.print(f"[red]unknown role {role}[/red]")
        raise typer.Exit(2) from None

    def work(uow: UnitOfWork, vault: PersonalDataVault) -> tuple[str, str | None]:
        user, secret = create_user(
            uow, vault=vault, email=email, password=password, role=the_role,
            merchant_id=merchant, agent_id=agent, with_totp=totp,
        )  # fmt: skip
        return user.id, secret

    user_id, secret = _merchants_transaction(database, work)
    typer.echo(f"user {user_id} ({the_role.value}) {email.strip().lower()}")
    if not os.environ.get("CLOUDPAY_NEW_USER_PASSWORD"):
        typer.echo(f"password: {password}")
    if secret:
        import pyotp

        uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name="CloudPay Console")
        typer.echo(f"TOTP: {uri}")


@sandbox_app.callback(invoke_without_command=True)
def sandbox(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="WeChat Pay sandbox port")] = 8090,
    credentials: Annotated[
        Path, typer.Option(help="where to keep its keys")
    ] = DEFAULT_SANDBOX_CREDENTIALS,
) -> None:
    """Run the WeChat Pay v3 sandbox until Ctrl-C (point the API at it with the env below)."""
    if ctx.invoked_subcommand is not None:
        return
    from cloudpay.channels.wechat.sandbox.server import start_wechat_sandbox

    credentials.parent.mkdir(parents=True, exist_ok=True)
    handle = start_wechat_sandbox(port=port, credentials_path=credentials)
    typer.echo(json.dumps(handle.describe(), indent=2, ensure_ascii=False))
    console.print(
        f"[green]WeChat Pay sandbox on {handle.base_url}[/green]\n"
        f"  export CLOUDPAY_WECHAT_SANDBOX_CREDENTIALS={credentials}\n"
        "  then `cloudpay serve` and `cloudpay worker` use it; Ctrl-C stops it."
    )
    try:
        handle.wait()
    except KeyboardInterrupt:
        handle.stop()


@sandbox_app.command("pay")
def sandbox_pay(
    order_id: Annotated[str, typer.Argument(help="our order id (the channel's out_trade_no)")],
    outcome: Annotated[str, typer.Option(help="success | fail | timeout | pay_twice")] = "success",
    notify_delay_s: Annotated[float, typer.Option(help="hold the notification back")] = 0.0,
    duplicates: Annotated[int, typer.Option(help="extra copies of the notification")] = 0,
    credentials: Annotated[Path, typer.Option()] = DEFAULT_SANDBOX_CREDENTIALS,
    base_url: Annotated[
        str | None, typer.Option(help="sandbox URL (else from credentials)")
    ] = None,
) -> None:
    """Be the customer: pay (or fail, or walk away from) an order in the WeChat sandbox."""
    from cloudpay.channels.wechat.sandbox.server import customer_pay

    url = base_url or json.loads(credentials.read_text())["base_url"]
    try:
        result = customer_pay(url, order_id, outcome, notify_delay_s=notify_delay_s,
                              duplicate_notifications=duplicates)  # fmt: skip
    except ValueError as refused:
        console.print(f"[red]{refused}[/red]")
        raise typer.Exit(1) from None
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
