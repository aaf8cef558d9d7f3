"""What `cloudpay demo` prints after the gateway day."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from cloudpay.config import Settings
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.demo.gateway_day import GatewayDay, fresh_orders
from cloudpay.kernel.business_time import format_shanghai
from cloudpay.kernel.money import Money
from cloudpay.ledger import CheckReport, Purpose, lookup_accounts, merchant_owner
from cloudpay.ledger.repository import find_account


def _yuan(amount_fen: int) -> str:
    return "¥" + Money(amount_fen, "CNY").format_yuan()


def _day_table(day: GatewayDay, orders: list[dict[str, Any]]) -> Table:
    by_status = Counter(o["status"] for o in orders)
    paid = [o for o in orders if o["status"] in ("succeeded", "partially_refunded", "refunded")]
    refunded_fen = sum(r["amount"] for r in day.refunds)
    table = Table(title="The demo city's day at the gateway (WeChat Pay, Alipay, UnionPay)",
                  show_header=False)  # fmt: skip
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(day.kinds.items()))
    table.add_row("orders created", f"{len(orders)}", kinds)
    acts = ", ".join(f"{outcome} {n}" for outcome, n in sorted(day.outcomes.items()))
    table.add_row("what QR payers did", acts, "")
    table.add_row("paid", f"{len(paid)}", _yuan(sum(o["amount"] for o in paid)))
    table.add_row("declined by the payer's bank", f"{by_status['failed']}", "found by polling")
    table.add_row("walked away, closed by the till", f"{by_status['closed']}", "")
    table.add_row(
        "paid twice / duplicate notices", f"{day.outcomes['pay_twice']}", "captured once each"
    )
    table.add_row("refunds", f"{len(day.refunds)}", _yuan(refunded_fen))
    refused = ", ".join(f"{code} x{n}" for code, n in day.refused.items()) or "none"
    table.add_row("refused on purpose", refused, "")
    table.add_row(
        "webhooks",
        f"{day.receiver.unique_events} events verified by the merchant",
        f"{day.receiver.refused_while_down} attempts hit the endpoint while it was down, "
        f"retried on schedule (15 s, 15 s, 30 s …); {day.resent} resent by the merchant",
    )
    return table


def _routing_table(day: GatewayDay, orders: list[dict[str, Any]]) -> Table:
    """Per route: orders, what they cost, and the failovers; the fee saved against always
    taking each order's dearest eligible route."""
    routed = [o for o in orders if o.get("routing")]
    table = Table(title="Routing (cheapest healthy route; failover when a channel is down)")
    for column in ("route", "orders", "channel cost", "failed over from here"):
        table.add_column(column)
    names = {route_id: connector for connector, route_id in day.routes.items()}
    for route_id, connector in names.items():
        mine = [o for o in routed if o["routing"]["route_id"] == route_id]
        away = [o for o in routed if any(a["route_id"] == route_id
                                         for a in o["routing"]["attempts"])]  # fmt: skip
        cost = sum(o["routing"]["cost_fen"] or 0 for o in mine)
        table.add_row(connector, str(len(mine)), _yuan(cost), str(len(away)))
    paid = sum(o["routing"]["cost_fen"] or 0 for o in routed)
    dearest = sum(o["routing"]["decision"]["most_expensive_fen"] for o in routed)
    table.add_row("total", str(len(routed)), _yuan(paid),
                  f"saved {_yuan(dearest - paid)} vs the dearest route each time")  # fmt: skip
    return table


def _circuits(day: GatewayDay) -> str:
    """Each route's circuit transitions today, as this API process saw them."""
    board = day.app.state.channel_context.board
    lines = []
    for connector, route_id in day.routes.items():
        snapshot = board.snapshot(route_id)
        if snapshot.changed_at is not None:
            lines.append(f"  circuit of {connector}: now {snapshot.state.value}, "
                         f"last change {format_shanghai(snapshot.changed_at)}, "
                         f"last error: {snapshot.last_error or 'none'}")  # fmt: skip
    return "\n".join(lines) or "  every circuit stayed closed"


def _merchant_table(engine: Engine, day: GatewayDay, orders: list[dict[str, Any]]) -> Table:
    table = Table(title="Merchants")
    for column in ("merchant", "app", "orders", "paid", "refunded", "unsettled (ledger)"):
        table.add_column(column)
    for onboarded in day.city:
        mine = [o for o in orders if o["merchant"] == onboarded.merchant.key]
        paid = sum(o["amount"] for o in mine if o["paid_at"])
        refunded = sum(o["amount_refunded"] for o in mine)
        table.add_row(
            onboarded.merchant.legal_name, onboarded.app_id, str(len(mine)), _yuan(paid),
            _yuan(refunded), _yuan(_unsettled(engine, onboarded.merchant_id)),
        )  # fmt: skip
    return table


def _unsettled(engine: Engine, merchant_id: str) -> int:
    def work(uow: UnitOfWork) -> int:
        account = find_account(
            uow.connection, owner=merchant_owner(merchant_id),
            code=Purpose.MERCHANT_PENDING.value, ledger="CNY",
        )  # fmt: skip
        return 0 if account is None else lookup_accounts(uow, [account.id])[0].balance.net_credit

    return run_in_transaction(engine, work, read_only=True)


def print_gateway_report(
    engine: Engine, day: GatewayDay, report: CheckReport, *, settings: Settings
) -> None:
    console = Console(width=140)
    orders = fresh_orders(day)
    console.print(_day_table(day, orders))
    console.print(_routing_table(day, orders))
    console.print(_circuits(day))
    console.print(_merchant_table(engine, day, orders))
    verdict = "[green]✓ books balance[/green]" if report.ok else "[red]✗ books do not balance[/red]"
    for ledger, totals in report.totals.items():
        amount = _yuan if ledger == "CNY" else str  # PTS: marketing points, not money
        verdict += f"  {ledger}: debits {amount(totals['debits_posted'])}"
        verdict += f" = credits {amount(totals['credits_posted'])}"
    console.print(verdict)
    for problem in report.problems:
        console.print(f"  [red]{problem}[/red]")


def print_try_it(day: GatewayDay, settings: Settings) -> None:
    console = Console(width=140)
    token = settings.operator_token.get_secret_value()
    noodles = day.city[0]
    api = day.api.url
    stores = ", ".join(f"{api}/pay/{code}" for o in day.city for code in o.store_codes)
    logins = "\n".join(
        f"    {role:<15} {email:<40} {password}" for role, email, password in day.logins
    )
    console.print(
        f"\nTry it (while `cloudpay demo` serves; `--once` has already stopped):\n"
        f"  console         {api}/console/  — log in as any role:\n{logins}\n"
        f"  API docs        {api}/docs\n"
        f"  platform keys   {api}/v1/platform/keys\n"
        f"  books check     curl -H 'Authorization: Bearer {token}' {api}/v1/ledger/check\n"
        f"  merchants       curl -H 'Authorization: Bearer {token}' {api}/v1/merchants\n"
        f"  settlements     curl -H 'Authorization: Bearer {token}' {api}/v1/settlements\n"
        f"  recon breaks    curl -H 'Authorization: Bearer {token}' "
        f"{api}/v1/reconciliation/breaks\n"
        f"  campaigns       curl -H 'Authorization: Bearer {token}' {api}/v1/campaigns\n"
        f"  sandboxes       {', '.join(f'{k} {u}' for k, u in day.channels.urls().items())}\n"
        f"  store QR pages  {stores}\n"
        f"  as the noodle shop (app {noodles.app_id}, key {noodles.private_key_path}):\n"
        f"    from cloudpay.sdk import CloudPayClient\n"
        f"    key = open('{noodles.private_key_path}').read()\n"
        f"    shop = CloudPayClient('{api}', '{noodles.app_id}', key, '{noodles.serial_no}')\n"
        f"    order = shop.create_order(out_trade_no='TRY1', amount=2800, subject='牛肉面',"
        f" method='wechat_native')\n"
        f"  then pay it as the customer:\n"
        f"    cloudpay sandbox pay ORDER_ID --outcome success"
        f" --base-url {day.channels.bank_wechat.base_url}"
    )
