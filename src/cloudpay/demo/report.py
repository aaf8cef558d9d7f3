"""What the demo prints: the day in numbers, every account's balance, how to look around."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from cloudpay.config import Settings
from cloudpay.db.unit_of_work import run_in_transaction
from cloudpay.demo.ledger_day import DaySummary
from cloudpay.kernel.money import Money
from cloudpay.ledger import CheckReport
from cloudpay.ledger.chart import normal_balance
from cloudpay.ledger.service import AccountWithBalance, list_accounts

MAX_ACCOUNTS_SHOWN = 100


def _yuan(amount_fen: int) -> str:
    return "¥" + Money(amount_fen, "CNY").format_yuan()


def _day_table(summary: DaySummary) -> Table:
    table = Table(title="The demo city's day", show_header=False)
    table.add_row("payments captured", f"{summary.payments:,}", _yuan(summary.payment_fen))
    table.add_row("refunds", f"{summary.refunds:,}", _yuan(summary.refund_fen))
    table.add_row(
        "parking deposits",
        f"{summary.holds_posted} posted, {summary.holds_voided} voided",
        f"{summary.holds_open} still held (expire in 24 h)",
    )
    table.add_row("platform fees (0.38%)", "", _yuan(summary.fees_fen))
    table.add_row("merchant payouts", "", _yuan(summary.payouts_fen))
    table.add_row("transfers written", f"{summary.transfers:,}", "")
    refused = ", ".join(f"{code} x{n}" for code, n in sorted(summary.refused.items())) or "none"
    table.add_row("refused (on purpose)", refused, "")
    table.add_row("replayed ids (deduplicated)", f"{summary.replayed}", "changed nothing")
    return table


def _balances_table(rows: list[AccountWithBalance]) -> Table:
    table = Table(title="Ledger balances")
    for column in ("owner", "account", "debits posted", "credits posted", "pending", "balance"):
        table.add_column(column, justify="right" if column not in ("owner", "account") else "left")
    for row in sorted(rows, key=lambda r: (r.account.owner, r.account.code)):
        b = row.balance
        table.add_row(
            row.account.owner,
            row.account.code,
            _yuan(b.debits_posted),
            _yuan(b.credits_posted),
            _yuan(b.debits_pending + b.credits_pending),
            _yuan(normal_balance(row.account.code, b.debits_posted, b.credits_posted)),
        )
    return table


def print_demo_report(
    engine: Engine, summary: DaySummary, report: CheckReport, *, settings: Settings, port: int
) -> None:
    console = Console(width=140)
    rows = run_in_transaction(
        engine, lambda uow: list_accounts(uow, limit=MAX_ACCOUNTS_SHOWN), read_only=True
    )
    console.print(_day_table(summary))
    console.print(_balances_table(rows))
    verdict = "[green]✓ books balance[/green]" if report.ok else "[red]✗ books do not balance[/red]"
    for ledger, totals in report.totals.items():
        debits, credits = _yuan(totals["debits_posted"]), _yuan(totals["credits_posted"])
        verdict += f"  {ledger}: debits {debits} = credits {credits}"
    console.print(verdict)
    for problem in report.problems:
        console.print(f"  [red]{problem}[/red]")
    token = settings.operator_token.get_secret_value()
    base = f"http://127.0.0.1:{port}"
    console.print(
        f"\nTry it (while `cloudpay demo` serves):\n"
        f"  API docs      {base}/docs\n"
        f"  health        {base}/healthz\n"
        f"  accounts      curl -H 'Authorization: Bearer {token}' {base}/v1/ledger/accounts\n"
        f"  books check   curl -H 'Authorization: Bearer {token}' {base}/v1/ledger/check\n"
        f"  from a shell  cloudpay ledger check --database {settings.database_url}"
    )
