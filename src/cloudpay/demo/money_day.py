"""The demo day's money, morning to night, around the gateway day (`gateway_day.py`).

Morning: the partner banks connect, merchants get e-accounts and fee plans, the supermarket
chain binds its split receivers, the voucher campaigns open and citizens claim. During the day
citizens pay with their vouchers among the day's traffic. Night: reconciliation of every
channel's bill (two mistakes injected, the lost payment repaired), then the settlement run of
the next business day, the custody check and what each split receiver got.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine

from cloudpay.config import Settings
from cloudpay.demo.gateway_day import GatewayDay
from cloudpay.demo.money_report import money_summary, print_money_report
from cloudpay.demo.recon_day import ReconOutcome, reconcile_the_day
from cloudpay.demo.servers import OperatorApi
from cloudpay.demo.settlement_day import DemoBanks, SettlementOutcome, open_banks, settle_the_day
from cloudpay.demo.splits_day import ChainSplits, receiver_balances, set_up_splits
from cloudpay.demo.vouchers_day import (
    VoucherDay,
    leverage_reports,
    open_campaigns,
    shop_with_vouchers,
)
from cloudpay.kernel.clock import Clock


@dataclass
class MoneyDay:
    api: OperatorApi
    banks: DemoBanks
    vouchers: VoucherDay
    splits: ChainSplits
    recon: ReconOutcome | None = None
    settlement: SettlementOutcome | None = None

    def stop(self) -> None:
        self.api.close()
        self.banks.stop()


def open_the_day(engine: Engine, clock: Clock, settings: Settings, day: GatewayDay) -> MoneyDay:
    api = OperatorApi.connect(day.api.url, settings.operator_token.get_secret_value())
    banks = open_banks(engine, clock, day.app.state, day.city, api)
    splits = set_up_splits(day, banks, api)
    vouchers = open_campaigns(engine, clock, api, day.city, banks)
    shop_with_vouchers(day, vouchers)  # among the day's orders: run_day waits for them too
    return MoneyDay(api, banks, vouchers, splits)


def close_the_day(clock: Clock, day: GatewayDay, money: MoneyDay) -> None:
    money.recon = reconcile_the_day(clock, day, money.api)
    money.settlement = settle_the_day(clock, money.api, money.banks)
    receiver_balances(day, money.splits)
    leverage_reports(money.api, money.vouchers)


def report_the_day(money: MoneyDay, *, summary_path: Path | None) -> None:
    assert money.recon is not None
    assert money.settlement is not None
    console = Console(width=140)
    print_money_report(
        console, money.banks, money.settlement, money.recon, money.vouchers, money.splits
    )
    if summary_path is not None:
        summary = money_summary(money.settlement, money.recon, money.vouchers, money.splits)
        summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
