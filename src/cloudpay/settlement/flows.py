"""The settlement run of a business date: settle, release reserves, pay out — resumable.

Each step is its own short transaction; bank calls happen between transactions, never in
one. A crash anywhere leaves rows that say where to pick up: merchants already settled for a
trade date are skipped (one line per merchant and trade date), payouts still `sending` are
sent again under the same id (the bank moves money once per id).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Final

import structlog

from cloudpay import merchants, payments
from cloudpay.channels.bank import BankChannel, BankError
from cloudpay.channels.bank.protocol import (
    AccountClass as BankAccountClass,
)
from cloudpay.channels.bank.protocol import TransferFailure, TransferRequest, TransferStatus
from cloudpay.db.unit_of_work import Transact, UnitOfWork
from cloudpay.kernel.business_time import day_bounds_utc
from cloudpay.kernel.errors import NotFound
from cloudpay.kernel.ids import new_id
from cloudpay.settlement import payouts as po
from cloudpay.settlement import repository, service, splits
from cloudpay.settlement.calendar import (
    CHINA_2026,
    T1,
    BusinessCalendar,
    SettlementCycle,
    settlement_date,
)
from cloudpay.settlement.daybook import MerchantDay, PlanSums, RefundFacts, from_centi_bp
from cloudpay.settlement.daybook import settle_day as settle_one_day
from cloudpay.settlement.model import AgentTier, RefundFeePolicy
from cloudpay.settlement.regional import LocalPolicy
from cloudpay.settlement.run import (
    AccountClass,
    AccountLimits,
    OverLimitPolicy,
    plan_payouts,
)

BATCH_MERCHANTS: Final = 1_000  # merchants per journal transaction
LOOKBACK_DAYS: Final = 45  # longest cycle (T+30) plus a long holiday
MAX_PAYOUTS_PER_PASS: Final = 10_000
log = structlog.get_logger(__name__)
Progress = Callable[[int, int], None]


@dataclass
class SettlementContext:
    """The partner banks by code (configured connectors, like channels), the calendar, and
    which banks and cards count as local in the regional report."""

    banks: Mapping[str, BankChannel] = field(default_factory=dict)
    calendar: BusinessCalendar = CHINA_2026
    local: LocalPolicy = field(default_factory=LocalPolicy)


@dataclass
class RunSummary:
    run_id: str
    business_date: date
    settled: int = 0
    reserves_released: int = 0
    payouts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "business_date": self.business_date.isoformat(),
            "settled": self.settled,
            "reserves_released": self.reserves_released,
            "payouts": dict(self.payouts),
        }


def due_trade_dates(
    calendar: BusinessCalendar, cycles: set[str], business_date: date
) -> dict[date, set[str]]:
    """Which trade dates each cycle pays on `business_date` (T+1 pays Friday to Sunday on
    Monday)."""
    due: dict[date, set[str]] = defaultdict(set)
    for text in cycles:
        cycle = SettlementCycle.parse(text)
        for back in range(LOOKBACK_DAYS + 1):
            trade_date = business_date - timedelta(days=back)
            if settlement_date(calendar, cycle, trade_date) == business_date:
                due[trade_date].add(text)
    return dict(sorted(due.items()))


def _start_run(uow: UnitOfWork, business_date: date) -> tuple[str, str]:
    run = repository.get_run(uow.connection, business_date)
    if run is not None:
        return run.id, run.status
    run_id = new_id("srn")
    repository.insert_run(
        uow.connection,
        {
            "id": run_id,
            "business_date": business_date,
            "status": "running",
            "merchants_total": 0,
            "merchants_done": 0,
            "payouts_sent": 0,
            "started_at": uow.clock.now(),
            "finished_at": None,
        },
    )
    return run_id, "running"


@dataclass
class _DayInputs:
    sums: dict[tuple[str, str], list[PlanSums]]
    refunds: dict[str, list[RefundFacts]]
    plan_rates: dict[str, Decimal | None]
    profiles: dict[str, dict[str, Any]]
    chains: dict[str, dict[str, list[AgentTier]]]


def _plan_for_whole_day(uow: UnitOfWork) -> None:
    """PostgreSQL settings for the rest of this read transaction, which reads the whole day.

    The day's sums are read through a server-side cursor (in pages), which PostgreSQL plans
    for the first tenth of the rows by default: it then sorted a million orders instead of
    hashing them (5-8 s against 2 s). JIT compiling those expressions took 0.4-0.7 s more
    than it saved on a million rows."""
    if uow.connection.dialect.name == "postgresql":
        uow.connection.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1")
        uow.connection.exec_driver_sql("SET LOCAL jit = off")


def _read_day(uow: UnitOfWork, trade_date: date, cycles: set[str]) -> _DayInputs:
    start, end = day_bounds_utc(trade_date)
    _plan_for_whole_day(uow)
    pricing = repository.pricing()
    cycle_of = repository.profiles_by_cycle(uow.connection)

    def wanted(merchant_id: str) -> bool:
        return cycle_of.get(merchant_id, str(T1)) in cycles

    sums: dict[tuple[str, str], list[PlanSums]] = defaultdict(list)
    for page in payments.priced_orders(uow.connection, start=start, end=end, pricing=pricing):
        for row in page:
            if wanted(row.merchant_id):
                sums[(row.merchant_id, row.currency)].append(
                    PlanSums(
                        row.fee_plan_id,
                        row.method,
                        row.orders_count,
                        row.gross_fen,
                        row.fees_fen,
                        row.surcharge_fen,
                        row.channel_cost_fen,
                    )
                )
    priced = payments.priced_refunds(uow.connection, start=start, end=end, pricing=pricing)
    plan_ids = {s.fee_plan_id for day in sums.values() for s in day if s.fee_plan_id}
    plan_ids |= {r.fee_plan_id for r in priced if r.fee_plan_id}
    plans = repository.load_fee_plans(uow.connection, sorted(plan_ids))
    refunds: dict[str, list[RefundFacts]] = defaultdict(list)
    for r in priced:
        if not wanted(r.merchant_id):
            continue
        policy = (
            RefundFeePolicy(plans[r.fee_plan_id].refund_policy)
            if r.fee_plan_id
            else (RefundFeePolicy.PROPORTIONAL)
        )
        refunds[r.merchant_id].append(
            RefundFacts(
                r.fee_plan_id,
                r.amount_fen,
                r.order_amount_fen,
                r.order_fee_fen,
                r.refunded_before_fen,
                policy,
            )
        )
        if r.subsidy_reversed_fen:
            # The voucher subsidy the refund gave back left merchant_pending with it: taken
            # off like a refund of its own, with no fee to return.
            refunds[r.merchant_id].append(
                RefundFacts(
                    None, r.subsidy_reversed_fen, r.subsidy_reversed_fen, 0, 0, RefundFeePolicy.NONE
                )
            )
        sums.setdefault((r.merchant_id, r.currency), [])
    merchant_ids = sorted({m for m, _ in sums})
    profiles = {
        m: dict(row._mapping)
        for m, row in repository.load_profiles(uow.connection, merchant_ids).items()
    }
    rates = {
        pid: (None if p.fixed_fen is not None else from_centi_bp(p.rate_centi_bp))
        for pid, p in plans.items()
    }
    chains = _agent_chains(uow, merchant_ids)
    return _DayInputs(sums, refunds, rates, profiles, chains)


def _read_split_days(uow: UnitOfWork, trade_date: date) -> dict[str, splits.SplitDay]:
    _plan_for_whole_day(uow)  # the rule merchants' orders: a tenth of the day, or more
    return splits.read_split_days(uow, trade_date)


def _agent_chains(
    uow: UnitOfWork, merchant_ids: list[str]
) -> dict[str, dict[str, list[AgentTier]]]:
    """Each merchant's agent chain priced per method, level 1 first (only if any agent has
    a cost rate: most cities start without agents)."""
    rates = repository.all_agent_rates(uow.connection)
    if not rates:
        return {}
    chains: dict[str, dict[str, list[AgentTier]]] = {}
    methods = {method for _, method in rates}
    for merchant_id in merchant_ids:
        try:
            agent_id = merchants.get_merchant(uow, merchant_id).agent_id
        except NotFound:
            continue
        path: list[str] = []
        while agent_id is not None and len(path) < merchants.MAX_AGENT_DEPTH:
            path.insert(0, agent_id)
            agent_id = merchants.get_agent(uow, agent_id).parent_agent_id
        chains[merchant_id] = {
            method: [AgentTier(a, from_centi_bp(rates[(a, method)])) for a in path]
            for method in methods
            if path and all((a, method) in rates for a in path)
        }
    return chains


def _settle_trade_date(
    transact: Transact,
    run_id: str,
    business_date: date,
    trade_date: date,
    cycles: set[str],
    progress: Progress | None,
) -> int:
    inputs = transact(lambda uow: _read_day(uow, trade_date, cycles))
    split_days = transact(lambda uow: _read_split_days(uow, trade_date))
    days: list[tuple[str, str, MerchantDay]] = []
    for (merchant_id, currency), sums in sorted(inputs.sums.items()):
        profile = inputs.profiles.get(merchant_id)
        cycle = SettlementCycle.parse(profile["cycle"]) if profile else T1
        days.append(
            (
                merchant_id,
                currency,
                splits.with_splits(
                    settle_one_day(
                        trade_date=trade_date,
                        sums=sums,
                        refunds=inputs.refunds.get(merchant_id, []),
                        reserve=service.reserve_policy_of(profile),
                        same_day=cycle.is_same_day,
                        plan_rates=inputs.plan_rates,
                        chain_for=inputs.chains.get(merchant_id, {}),
                    ),
                    split_days.get(merchant_id),
                    service.reserve_policy_of(profile),
                ),
            )
        )
    settled = 0
    for first in range(0, len(days), BATCH_MERCHANTS):
        batch = days[first : first + BATCH_MERCHANTS]
        settled += transact(
            lambda uow, batch=batch: _settle_and_count(  # type: ignore[misc]
                uow, run_id, business_date, trade_date, batch, split_days
            )
        )
        if progress is not None:
            progress(min(first + BATCH_MERCHANTS, len(days)), len(days))
    return settled


def _settle_and_count(
    uow: UnitOfWork,
    run_id: str,
    business_date: date,
    trade_date: date,
    batch: list[tuple[str, str, MerchantDay]],
    split_days: dict[str, splits.SplitDay],
) -> int:
    settled = service.settle_batch(
        uow,
        run_id=run_id,
        business_date=business_date,
        trade_date=trade_date,
        days=batch,
        split_days=split_days,
    )
    repository.update_run(
        uow.connection, run_id, merchants_done=repository.count_lines(uow.connection, run_id)
    )
    return settled


def run_settlement(
    transact: Transact,
    ctx: SettlementContext,
    business_date: date,
    *,
    progress: Progress | None = None,
    pay_out: bool = True,
) -> RunSummary:
    """Settle every merchant whose trades fall due on `business_date`, then pay them.

    Running it again for the same date (after a crash, or by mistake) settles and pays
    nothing twice: it picks up the merchants and payouts not yet done."""
    run_id, _status = transact(lambda uow: _start_run(uow, business_date))
    summary = RunSummary(run_id, business_date)
    transact(splits.auto_unfreeze)  # held orders due today settle in the next run
    cycles = transact(lambda uow: set(repository.profiles_by_cycle(uow.connection).values()))
    for trade_date, due in due_trade_dates(ctx.calendar, cycles | {str(T1)}, business_date).items():
        summary.settled += _settle_trade_date(
            transact, run_id, business_date, trade_date, due, progress
        )
    summary.reserves_released = transact(
        lambda uow: service.release_reserves(uow, on=business_date)
    )
    if pay_out:
        pay_merchants(transact, ctx, run_id, business_date, summary)
    transact(
        lambda uow: repository.update_run(
            uow.connection,
            run_id,
            status="completed",
            finished_at=uow.clock.now(),
            payouts_sent=sum(summary.payouts.values()),
        )
    )
    log.info("settlement.run", **summary.as_dict())
    return summary


# --- payouts ----------------------------------------------------------------------------
def _limits(bank: BankChannel, account_class: AccountClass) -> dict[AccountClass, AccountLimits]:
    """The bank's own caps on money coming into the e-account (what it will enforce)."""
    caps = bank.limits.of(
        BankAccountClass.CLASS_II
        if account_class is AccountClass.CLASS_II
        else BankAccountClass.CLASS_III
    )
    inflow = AccountLimits(
        caps.nonbound_inflow_daily_fen, caps.nonbound_inflow_yearly_fen, caps.balance_cap_fen
    )
    return {account_class: inflow, AccountClass.CLASS_I: AccountLimits()}


def pay_merchants(
    transact: Transact, ctx: SettlementContext, run_id: str, pay_date: date, summary: RunSummary
) -> None:
    """Resend what a crash left `sending`, then pay each profiled merchant's available."""
    resend_pending_payouts(transact, ctx, summary)
    merchant_ids = transact(lambda uow: sorted(repository.profiles_by_cycle(uow.connection)))
    for merchant_id in merchant_ids:
        for payout_id in _plan_merchant_payouts(transact, ctx, run_id, merchant_id, pay_date):
            _send(transact, ctx, payout_id, summary)


def _plan_merchant_payouts(
    transact: Transact, ctx: SettlementContext, run_id: str, merchant_id: str, pay_date: date
) -> list[str]:
    profile = transact(lambda uow: service.get_profile(uow, merchant_id))
    bank = ctx.banks.get(profile["bank_code"])
    amount = transact(lambda uow: po.available_fen(uow, merchant_id))
    if bank is None or amount <= 0:
        return []
    account_class = (
        AccountClass.CLASS_II if profile["account_class"] == "II" else AccountClass.CLASS_III
    )
    balance_fen = 0
    if account_class is AccountClass.CLASS_III:
        try:
            balance_fen = bank.balance(profile["account_no"]).balance_fen
        except BankError:
            return []  # without the balance the cap cannot be planned: try next run
    used_today, used_year = transact(lambda uow: po.used_this_year_fen(uow, merchant_id, pay_date))
    plan = plan_payouts(
        amount,
        account_class,
        _limits(bank, account_class),
        used_today,
        used_year,
        balance_fen,
        OverLimitPolicy(profile["over_limit_policy"]),
    )
    legs = [
        (po.E_ACCOUNT, profile["account_no"], plan.pay_today_fen),
        (po.CLASS_I, profile["class_i_card"], plan.to_class_i_fen),
    ]
    created = []
    for kind, destination, leg_fen in legs:
        if leg_fen > 0 and destination:
            payout_id = transact(
                lambda uow, k=kind, d=destination, f=leg_fen: po.create_payout(  # type: ignore[misc]
                    uow,
                    run_id=run_id,
                    merchant_id=merchant_id,
                    pay_date=pay_date,
                    kind=k,
                    bank_code=bank.bank_code,
                    destination=d,
                    amount_fen=f,
                    limited_by=plan.limited_by,
                )
            )
            if payout_id is not None:
                created.append(payout_id)
    return created


def resend_pending_payouts(transact: Transact, ctx: SettlementContext, summary: RunSummary) -> None:
    rows = transact(
        lambda uow: repository.payouts_in_status(uow.connection, po.SENDING, MAX_PAYOUTS_PER_PASS)
    )
    for row in rows:
        _send(transact, ctx, row.id, summary)


def _send(transact: Transact, ctx: SettlementContext, payout_id: str, summary: RunSummary) -> None:
    row = transact(lambda uow: repository.get_payout(uow.connection, payout_id))
    bank = ctx.banks.get(row.bank_code) if row is not None else None
    if row is None or bank is None or row.status != po.SENDING:
        return
    profile = transact(lambda uow: service.get_profile(uow, row.merchant_id))
    request = TransferRequest(
        payout_id,
        bank.custody_account_no,
        row.destination_account,
        row.amount_fen,
        memo=f"settlement {row.pay_date}",
        counterparty_name=profile["account_name"],
    )
    try:
        answer = bank.transfer(request)
    except BankError as error:
        log.warning("settlement.payout.unsent", payout_id=payout_id, error=str(error))
        summary.payouts["unsent"] += 1
        return  # nothing known: stays `sending`, the same id goes again next pass
    _apply_answer(
        transact, ctx, row, answer.status, answer.bank_serial, answer.failure_reason, summary
    )


def _apply_answer(
    transact: Transact,
    ctx: SettlementContext,
    row: Any,
    status: TransferStatus,
    bank_serial: str | None,
    failure: TransferFailure | None,
    summary: RunSummary,
) -> None:
    if status is TransferStatus.PROCESSING:
        summary.payouts["processing"] += 1
        return
    ours = {
        TransferStatus.SUCCEEDED: po.SUCCEEDED,
        TransferStatus.FAILED: po.FAILED,
        TransferStatus.RETURNED: po.RETURNED,
    }[status]
    reason = failure.value if failure is not None else None
    transact(
        lambda uow: po.record_outcome(
            uow, payout_id=row.id, status=ours, bank_serial=bank_serial, failure_reason=reason
        )
    )
    summary.payouts[ours] += 1
    if ours == po.FAILED and failure is TransferFailure.LIMIT_EXCEEDED:
        _reroute(transact, ctx, row, summary)


def _reroute(transact: Transact, ctx: SettlementContext, row: Any, summary: RunSummary) -> None:
    """The bank refused over a limit we did not know of: reroute now if the merchant chose
    so; otherwise the money stays available and goes with the next run."""
    profile = transact(lambda uow: service.get_profile(uow, row.merchant_id))
    if row.destination_kind != po.E_ACCOUNT or not profile["class_i_card"]:
        return
    if profile["over_limit_policy"] != OverLimitPolicy.REROUTE_TO_CLASS_I.value:
        return
    payout_id = transact(
        lambda uow: po.create_payout(
            uow,
            run_id=row.run_id,
            merchant_id=row.merchant_id,
            pay_date=row.pay_date,
            kind=po.CLASS_I,
            bank_code=row.bank_code,
            destination=profile["class_i_card"],
            amount_fen=row.amount_fen,
            limited_by="bank_limit",
        )
    )
    if payout_id is not None:
        _send(transact, ctx, payout_id, summary)


def sync_payout(transact: Transact, ctx: SettlementContext, payout_id: str) -> dict[str, Any]:
    """Ask the bank where a payout stands and apply it (a processing transfer that ended, a
    returned payout 退票); what a bank webhook triggers too."""
    row = transact(lambda uow: repository.get_payout(uow.connection, payout_id))
    if row is None:
        raise NotFound(f"no payout {payout_id}", param="payout_id")
    answer = ctx.banks[row.bank_code].query_transfer(payout_id)
    summary = RunSummary(row.run_id, row.pay_date)
    _apply_answer(
        transact, ctx, row, answer.status, answer.bank_serial, answer.failure_reason, summary
    )
    return transact(lambda uow: po.get_payout(uow, payout_id))


def check_custody(transact: Transact, ctx: SettlementContext) -> list[dict[str, Any]]:
    """The daily proof: each bank's custody balance in our ledger equals the bank's own."""
    report = []
    for code, bank in sorted(ctx.banks.items()):
        ours = transact(lambda uow, c=code: po.custody_balance_fen(uow, c))  # type: ignore[misc]
        theirs = bank.balance(bank.custody_account_no).balance_fen
        report.append(
            {"bank_code": code, "ledger_fen": ours, "bank_fen": theirs, "matches": ours == theirs}
        )
    return report
