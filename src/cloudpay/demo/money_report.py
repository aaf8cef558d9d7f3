"""What `cloudpay demo` prints about the money after the day: who is paid what and where
(settlement, payouts, custody), what reconciliation found and how it was resolved, and the
vouchers' leverage report. `money_summary` gives the same facts as JSON for the demo's test.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from cloudpay.demo.recon_day import ReconOutcome
from cloudpay.demo.settlement_day import BANKS, DemoBanks, SettlementOutcome
from cloudpay.demo.splits_day import ChainSplits
from cloudpay.demo.vouchers_day import VoucherDay
from cloudpay.kernel.money import Money


def _yuan(amount_fen: int) -> str:
    return "¥" + Money(amount_fen, "CNY").format_yuan()


def _masked(account_no: str) -> str:
    return f"****{account_no[-4:]}"


def _payout_text(payout: dict[str, Any], banks: DemoBanks) -> str:
    where = "e-account" if payout["destination_kind"] == "e_account" else "Class I card"
    text = f"{_yuan(payout['amount_fen'])} → {where} at {payout['bank_code']}: {payout['status']}"
    if payout["failure_reason"]:
        text += f" ({payout['failure_reason']})"
    if payout["limited_by"]:
        text += f", limited by {payout['limited_by']}"
    return text


def _settlement_table(outcome: SettlementOutcome, banks: DemoBanks) -> Table:
    table = Table(title=f"Settlement run of {outcome.business_date} (T+1 of today's trades)")
    for column in ("merchant", "e-account", "gross", "refunds", "fees", "net", "payouts",
                   "left available"):  # fmt: skip
        table.add_column(column)
    for account in banks.accounts.values():
        lines = [line for line in outcome.lines if line["merchant_id"] == account.merchant_id]
        payouts = [p for p in outcome.payouts if p["merchant_id"] == account.merchant_id]
        balance = outcome.balances[account.merchant_id]
        table.add_row(
            account.legal_name,
            f"{BANKS[account.bank_code]} Class {account.account_class} "
            f"{_masked(account.account_no)}",
            _yuan(sum(line["gross_fen"] for line in lines)),
            _yuan(sum(line["refunds_fen"] for line in lines)),
            _yuan(sum(line["fees_fen"] - line["fee_returns_fen"] for line in lines)),
            _yuan(sum(line["net_fen"] for line in lines)),
            "\n".join(_payout_text(p, banks) for p in payouts) or "none",
            _yuan(balance["available"]),
        )
    return table


def _custody_lines(outcome: SettlementOutcome) -> str:
    verdict = "[green]✓ custody matches[/green]" if outcome.custody["ok"] else "[red]✗[/red]"
    rows = [
        f"{row['bank_code']}: ledger {_yuan(row['ledger_fen'])} "
        f"{'=' if row['matches'] else '≠'} bank {_yuan(row['bank_fen'])}"
        for row in outcome.custody["data"]
    ]
    return f"{verdict}  " + "; ".join(rows)


def _recon_table(recon: ReconOutcome) -> Table:
    table = Table(title=f"Reconciliation of {recon.bill_date}: each channel's bill vs our books")
    for column in ("connector", "bill rows", "matched", "breaks", "re-run"):
        table.add_column(column)
    for connector, run in recon.runs.items():
        rerun = recon.reruns.get(connector, {})
        types = ", ".join(f"{t} x{n}" for t, n in sorted(run["breaks_by_type"].items()))
        again = ", ".join(f"{t} x{n}" for t, n in sorted(rerun.get("breaks_by_type", {}).items()))
        table.add_row(
            connector, str(run["channel_rows"]),
            f"{run['matched_count']} ({_yuan(run['matched_amount_fen'])})", types or "none",
            f"matched {rerun.get('matched_count', 0)}; {again or 'no breaks'}",
        )  # fmt: skip
    for connector, why in recon.skipped.items():
        table.add_row(connector, "", "", f"not reconciled: {why}", "")
    return table


def _break_lines(recon: ReconOutcome) -> str:
    lines = [f"  injected: {', '.join(recon.injected.values())}; breaks found: {recon.found}"]
    if recon.from_earlier_runs:
        lines.append(
            f"  {recon.from_earlier_runs} of them are orders of an earlier demo run today that "
            "the restarted sandboxes never saw: left open for the console"
        )
    resolved = {b["id"]: b for b in recon.resolved}
    for found in (b for b in recon.breaks if b["order_id"] in recon.injected):
        after = resolved.get(found["id"], {})
        amounts = (f"channel {_yuan(found['channel_amount_fen'] or 0)} fee "
                   f"{_yuan(found['channel_fee_fen'] or 0)} / ours "
                   f"{_yuan(found['platform_amount_fen'] or 0)} fee "
                   f"{_yuan(found['platform_fee_fen'] or 0)}")  # fmt: skip
        lines.append(
            f"  {found['type']:<20} {found['channel']:<16} {found['order_id']}  {amounts}  "
            f"→ {after.get('status', 'open')} ({after.get('resolution') or '-'})"
        )
    lines.append(f"  open breaks after the repair and the re-run: {recon.open_after}")
    return "\n".join(lines)


def _funder(campaign: dict[str, Any], banks: DemoBanks) -> str:
    funder = campaign["funder"]
    names = {a.merchant_id: a.legal_name for a in banks.accounts.values()}
    return f"{funder['kind']}: {names.get(funder['id'], funder['id'])}"


def _leverage_table(vouchers: VoucherDay, banks: DemoBanks) -> Table:
    table = Table(title="Vouchers and coupons: the leverage report (杠杆率 = spend ÷ subsidy)")
    for column in ("campaign", "funder", "stock", "issued", "claimed", "redeemed", "subsidy",
                   "spend", "leverage"):  # fmt: skip
        table.add_column(column)
    for label, campaign in vouchers.campaigns.items():
        report = vouchers.reports[label]
        by_status = report["claims_by_status"]
        table.add_row(
            campaign["name"], _funder(campaign, banks),
            str(report["stock"]), str(report["issued"]), str(sum(by_status.values())),
            str(report["redemptions"]), _yuan(report["subsidy_fen"]),
            _yuan(report["driven_amount_fen"]), report["leverage"] or "n/a (nothing redeemed)",
        )  # fmt: skip
    return table


def paid_out_fen(balance: dict[str, Any]) -> int:
    """What left the receiver's account for its e-account: all it was split, less what it
    gave back, still holds, or has on the way."""
    kept = int(balance["held_for_settlement_fen"]) + int(balance["available_fen"] or 0)
    net = int(balance["split_fen"]) - int(balance["returned_fen"])
    return net - kept - int(balance["in_transit_fen"] or 0)


def _receivers_table(splits: ChainSplits) -> Table:
    table = Table(title="Split receivers of the supermarket chain (分账: HQ → store → supplier)")
    for column in ("receiver", "kind", "e-account", "rule", "split to it", "held", "paid out",
                   "available"):  # fmt: skip
        table.add_column(column)
    rules = {rule["receiver_id"]: rule for rule in splits.rules["rules"]}
    for receiver_id, receiver in splits.receivers.items():
        rule, balance = rules[receiver_id], splits.balances[receiver_id]["balance"]
        share = f"{int(rule['rate_bp']) / 100:g}% of each order"
        if rule.get("split_from"):
            share += f" (from {splits.receivers[rule['split_from']]['name']}'s part)"
        table.add_row(
            receiver["name"], receiver["kind"],
            f"{BANKS[receiver['bank_code']]} {receiver['account_no']}", share,
            _yuan(balance["split_fen"] - balance["returned_fen"]),
            _yuan(balance["held_for_settlement_fen"]), _yuan(paid_out_fen(balance)),
            _yuan(balance["available_fen"] or 0),
        )  # fmt: skip
    return table


def print_money_report(
    console: Console, banks: DemoBanks, settlement: SettlementOutcome, recon: ReconOutcome,
    vouchers: VoucherDay, splits: ChainSplits,
) -> None:  # fmt: skip
    console.print(_leverage_table(vouchers, banks))
    refused = ", ".join(f"{code} x{n}" for code, n in sorted(vouchers.refused.items()))
    console.print(f"  claims refused: {refused or 'none'}; citizens' orders: "
                  f"{len(vouchers.orders)}")  # fmt: skip
    console.print(_recon_table(recon))
    console.print(_break_lines(recon))
    console.print(_settlement_table(settlement, banks))
    console.print(_receivers_table(splits))
    console.print(_custody_lines(settlement))


def money_summary(
    settlement: SettlementOutcome, recon: ReconOutcome, vouchers: VoucherDay,
    splits: ChainSplits,
) -> dict[str, Any]:  # fmt: skip
    """The facts the demo's test checks, as the API reported them."""
    return {
        "settlement": {
            "business_date": settlement.business_date.isoformat(),
            "settled_merchants": len({line["merchant_id"] for line in settlement.lines}),
            "net_fen": sum(line["net_fen"] for line in settlement.lines),
            "payouts": [
                {
                    k: p[k]
                    for k in (
                        "merchant_id",
                        "destination_kind",
                        "bank_code",
                        "amount_fen",
                        "status",
                        "limited_by",
                        "failure_reason",
                    )
                }
                for p in settlement.payouts
            ],
            "custody_ok": settlement.custody["ok"],
        },
        "reconciliation": {
            "injected": len(recon.injected),
            "breaks_found": recon.found,
            "breaks_by_type": dict(recon.by_type()),
            "injected_orders_found": sorted(
                b["order_id"] for b in recon.breaks if b["order_id"] in recon.injected
            ),
            "open_after_rerun": recon.open_after,
            "reconciled": sorted(recon.runs),
            "skipped": recon.skipped,
        },
        "vouchers": dict(vouchers.reports),
        "split_receivers": [
            {
                "kind": splits.receivers[rid]["kind"],
                "paid_out_fen": paid_out_fen(view["balance"]),
                **view["balance"],
            }
            for rid, view in splits.balances.items()
        ],
    }
