"""The demo city's money at its partner banks: two bank sandboxes, an e-account and a fee plan
per merchant in the morning; at the end of the day the settlement run of the next business day
(T+1), its payouts, and the custody check — through the operator API (the custody mirror of a
newly connected bank is a one-off setup step, done with the settlement service).

The city commercial bank (潍坊城市商业银行, WFCB) and the rural commercial bank (潍坊农村商业银行,
WFRCB) each hold part of the platform's customer reserve (备付金). The supermarket chain's Class
II e-account has already taken ¥9,500 from a card that is not its bound one today, so the bank
refuses our payout over the Class II daily cap and it is rerouted to the chain's Class I card;
the pharmacy's Class III e-account holds at most ¥2,000, so the rest carries over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Engine

from cloudpay import ledger
from cloudpay.channels.bank import PartnerBankClient
from cloudpay.channels.bank.protocol import AccountClass as BankClass
from cloudpay.channels.bank.protocol import OwnerKind
from cloudpay.channels.bank.sandbox import BankSandbox, start_bank_sandbox
from cloudpay.channels.bank.sandbox.people import applicant
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.demo.city import Onboarded
from cloudpay.demo.servers import OperatorApi
from cloudpay.kernel.business_time import business_date
from cloudpay.kernel.clock import Clock
from cloudpay.ledger import Purpose
from cloudpay.settlement import (
    CHINA_2026,
    T1,
    AccountClass,
    SettlementContext,
    mirror_custody_opening,
    settlement_date,
)

BANKS = {"WFCB": "潍坊城市商业银行", "WFRCB": "潍坊农村商业银行"}
FEE_METHODS = ("wechat_native", "alipay_qr", "unionpay_qr", "micropay", "aggregated_qr")
BANK_TIME_SCALE = 0.01  # the banks' webhook retries, 100× faster
SETTLEMENT_CLASS = {BankClass.CLASS_II: AccountClass.CLASS_II,
                    BankClass.CLASS_III: AccountClass.CLASS_III}  # fmt: skip


@dataclass(frozen=True)
class AccountPlan:
    """Where a demo merchant is paid, what it is charged, and how a limit is handled."""

    bank_code: str
    account_class: BankClass
    over_limit_policy: str
    rate_bp: int
    # Money from a card that is not the bound one, already in the e-account today: it counts
    # against the Class II daily cap on non-bound inflow (10,000 CNY).
    outside_credit_fen: int = 0


PLANS = {
    "noodle-shop": AccountPlan("WFRCB", BankClass.CLASS_II, "carry_over", 60),
    "supermarket": AccountPlan(
        "WFCB", BankClass.CLASS_II, "reroute_to_class_i", 55, outside_credit_fen=950_000
    ),
    "pharmacy": AccountPlan("WFRCB", BankClass.CLASS_III, "carry_over", 60),
}


@dataclass(frozen=True)
class EAccount:
    merchant_key: str
    merchant_id: str
    legal_name: str
    bank_code: str
    account_no: str
    account_class: str
    class_i_card: str


@dataclass
class DemoBanks:
    sandboxes: dict[str, BankSandbox]
    clients: dict[str, PartnerBankClient]
    accounts: dict[str, EAccount] = field(default_factory=dict)  # by merchant key

    def stop(self) -> None:
        for client in self.clients.values():
            client.close()
        for sandbox in self.sandboxes.values():
            sandbox.stop()


@dataclass
class SettlementOutcome:
    """What the end-of-day run did, as the API reported it."""

    business_date: date
    run: dict[str, Any]
    lines: list[dict[str, Any]]
    payouts: list[dict[str, Any]]
    balances: dict[str, dict[str, Any]]  # merchant id → balance after the run
    custody: dict[str, Any]


def _custody_on_our_books(engine: Engine, clock: Clock, bank_code: str) -> int:
    def work(uow: UnitOfWork) -> int:
        account = ledger.open_chart_account(
            uow, Purpose.BANK_RESERVE, ledger.bank_owner(bank_code), "CNY"
        )
        return ledger.get_account(uow, account.id).balance.net_debit

    return run_in_transaction(engine, work, clock=clock)


def _start_bank(engine: Engine, clock: Clock, bank_code: str) -> BankSandbox:
    """A sandbox keeps nothing between runs: on a database that already mirrors this bank's
    custody account, the bank opens with the balance our books say it holds."""
    ours = _custody_on_our_books(engine, clock, bank_code)
    options: dict[str, Any] = {"custody_balance_fen": ours} if ours else {}
    sandbox = start_bank_sandbox(bank_code, time_scale=BANK_TIME_SCALE, clock=clock, **options)
    if not ours:
        client = PartnerBankClient(sandbox.adapter_config(), clock=clock)
        opening = client.balance(client.custody_account_no).balance_fen
        client.close()
        run_in_transaction(
            engine,
            lambda uow: mirror_custody_opening(uow, bank_code=bank_code, balance_fen=opening),
            clock=clock,
        )
    return sandbox


def open_banks(
    engine: Engine, clock: Clock, app_state: Any, city: list[Onboarded], api: OperatorApi
) -> DemoBanks:
    """Morning: the banks connect, each merchant gets its e-account, fee plans and profile."""
    sandboxes = {code: _start_bank(engine, clock, code) for code in BANKS}
    clients = {
        code: PartnerBankClient(sandbox.adapter_config(), clock=clock)
        for code, sandbox in sandboxes.items()
    }
    app_state.settlement_context = SettlementContext(banks=clients)
    banks = DemoBanks(sandboxes, clients)
    for onboarded in city:
        plan = PLANS[onboarded.merchant.key]
        account = _open_e_account(banks, onboarded, plan)
        banks.accounts[onboarded.merchant.key] = account
        _price(api, onboarded.merchant_id, plan.rate_bp)
        api.put(f"/v1/merchants/{onboarded.merchant_id}/settlement_profile", {
            "bank_code": plan.bank_code, "account_no": account.account_no,
            "account_class": SETTLEMENT_CLASS[plan.account_class].value,
            "account_name": onboarded.merchant.person,
            "class_i_card": account.class_i_card, "cycle": str(T1),
            "over_limit_policy": plan.over_limit_policy,
        })  # fmt: skip
        if plan.outside_credit_fen:
            sandboxes[plan.bank_code].external_credit(
                account.account_no, applicant().bound_card_number, plan.outside_credit_fen
            )
    return banks


def _open_e_account(banks: DemoBanks, onboarded: Onboarded, plan: AccountPlan) -> EAccount:
    person = applicant(name=onboarded.merchant.person)
    request = person.open_request(
        plan.account_class, owner_reference=onboarded.merchant_id, owner_kind=OwnerKind.MERCHANT
    )
    opened = banks.clients[plan.bank_code].open_account(request)
    return EAccount(
        onboarded.merchant.key, onboarded.merchant_id, onboarded.merchant.legal_name,
        plan.bank_code, opened.account_no, plan.account_class.value, person.bound_card_number,
    )  # fmt: skip


def _price(api: OperatorApi, merchant_id: str, rate_bp: int) -> None:
    """One fee plan per method, created once (a plan cannot be backdated or replaced)."""
    priced = {plan["method"] for plan in api.get(f"/v1/merchants/{merchant_id}/fee_plans")["data"]}
    for method in FEE_METHODS:
        if method not in priced:
            api.post(f"/v1/merchants/{merchant_id}/fee_plans",
                     {"method": method, "rate_bp": str(rate_bp)})  # fmt: skip


def settle_the_day(clock: Clock, api: OperatorApi, banks: DemoBanks) -> SettlementOutcome:
    """Today's trades are settled on the next business day (T+1): run it now, as the morning
    job would, then prove each bank's custody balance equals our books."""
    trade_date = business_date(clock.now())
    pay_date = settlement_date(CHINA_2026, T1, trade_date)
    run = api.post("/v1/settlement_runs", {"business_date": pay_date.isoformat()})
    lines, payouts, balances = [], [], {}
    for account in banks.accounts.values():
        mine = api.get("/v1/settlements", merchant_id=account.merchant_id,
                       business_date=pay_date.isoformat(), limit=10)["data"]  # fmt: skip
        for line in mine:
            detail = api.get(f"/v1/settlements/{line['id']}")
            lines.append(detail)
            payouts += [p for p in detail["payouts"] if p not in payouts]
        balances[account.merchant_id] = api.get(f"/v1/merchants/{account.merchant_id}/balance")
    custody = api.get("/v1/settlement/custody_check")
    return SettlementOutcome(pay_date, run, lines, payouts, balances, custody)
