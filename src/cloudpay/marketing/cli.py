"""`cloudpay campaign create/fund`: the operator's command line for campaigns.

The entry point (`cloudpay.cli`) owns settings, migrations and the transaction; it hands this
module a `Transact` that runs one unit of work and turns a refusal into exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

import typer

from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.clock import SystemClock
from cloudpay.marketing import service
from cloudpay.marketing.model import (
    Campaign,
    CampaignKind,
    DiscountRule,
    FunderKind,
    MerchantScope,
    RuleKind,
    Windows,
)

Transact = Callable[[str | None, Callable[[UnitOfWork], dict[str, Any]]], dict[str, Any]]
Database = Annotated[str | None, typer.Option(help="database URL (default: settings)")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


def _echo(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        for name, value in payload.items():
            typer.echo(f"{name}: {value}")


def _summary(campaign: Campaign) -> dict[str, Any]:
    return {
        "campaign_id": campaign.id,
        "status": campaign.status.value,
        "funded_fen": campaign.funded_fen,
    }


def build_campaign_app(transact: Transact) -> typer.Typer:
    campaign_app = typer.Typer(no_args_is_help=True, help="Marketing campaigns: create, fund.")

    @campaign_app.command("create")
    def create(
        name: Annotated[str, typer.Option()],
        funder_kind: Annotated[FunderKind, typer.Option()],
        funder_id: Annotated[str, typer.Option(help="e.g. weifang, or a merchant id")],
        stock: Annotated[int, typer.Option(min=1)],
        rule: Annotated[RuleKind, typer.Option()] = RuleKind.THRESHOLD,
        discount_fen: Annotated[int, typer.Option(help="threshold / no_threshold")] = 0,
        threshold_fen: Annotated[int, typer.Option()] = 0,
        percent_bp: Annotated[int, typer.Option(help="percent_off, basis points")] = 0,
        cap_fen: Annotated[int, typer.Option(help="percent_off cap")] = 0,
        kind: Annotated[CampaignKind, typer.Option()] = CampaignKind.VOUCHER,
        claim_days: Annotated[int, typer.Option(min=1, help="claims open from now for")] = 1,
        valid_days: Annotated[int, typer.Option(min=1, help="usable from now for")] = 7,
        mcc: Annotated[list[str] | None, typer.Option(help="eligible MCC (repeat)")] = None,
        fund_fen: Annotated[int | None, typer.Option(help="fund at once with this")] = None,
        as_json: AsJson = False,
        database: Database = None,
    ) -> None:
        """Create a campaign (and fund it with --fund-fen); refusals exit 2 with their code."""
        now = SystemClock().now()
        draft = service.CampaignDraft(
            name=name, funder_kind=funder_kind, funder_id=funder_id, kind=kind,
            currency="CNY", stock=stock,
            rule=DiscountRule(rule, discount_fen, threshold_fen, percent_bp, cap_fen),
            windows=Windows(now, now + timedelta(days=claim_days), now,
                            now + timedelta(days=valid_days)),
            scope=MerchantScope(mccs=frozenset(mcc or ())),
        )  # fmt: skip

        def work(uow: UnitOfWork) -> dict[str, Any]:
            campaign = service.create_campaign(uow, draft)
            if fund_fen is not None:
                campaign = service.fund_campaign(
                    uow, campaign.id, amount_fen=fund_fen, currency="CNY"
                )
            return _summary(campaign)

        _echo(transact(database, work), as_json)

    @campaign_app.command("fund")
    def fund(
        campaign_id: Annotated[str, typer.Argument(help="cmp_…")],
        amount_fen: Annotated[int, typer.Option(min=1)],
        as_json: AsJson = False,
        database: Database = None,
    ) -> None:
        """Move money from the campaign's funder into its budget (a ledger transfer)."""

        def work(uow: UnitOfWork) -> dict[str, Any]:
            return _summary(
                service.fund_campaign(uow, campaign_id, amount_fen=amount_fen, currency="CNY")
            )

        _echo(transact(database, work), as_json)

    return campaign_app
