"""A day of a city payment hub, told in ledger journals (until the gateway lands).

Morning to night: wallet payments captured into merchants' pending balances, a few refunds,
deposit holds (parking, bike rental) that are posted, voided or left to expire; at night the
channels settle into the platform's custody account at the partner bank, merchants are
settled T+1 with the platform's fee, and paid out. An overdraft attempt and a replayed batch
show the ledger refusing and deduplicating. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sqlalchemy import Engine

from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import Clock
from cloudpay.kernel.ids import new_id
from cloudpay.kernel.money import apply_rate_bp
from cloudpay.ledger import (
    BALANCING_DEBIT,
    LINKED,
    MAX_BATCH_SIZE,
    PENDING,
    PLATFORM,
    POST_PENDING,
    VOID_PENDING,
    Account,
    Purpose,
    Transfer,
    TransferResult,
    create_transfers,
    lookup_accounts,
    open_chart_account,
)
from cloudpay.ledger.chart import bank_owner, channel_owner, merchant_owner

CHANNELS = ("wechat", "alipay", "unionpay")
CHANNEL_SHARE = (60, 32, 8)  # of payments, roughly the city's wallet mix
BANK = "wfrcb"  # the demo city's partner bank
MERCHANTS = {
    "noodle-shop": ("老王牛肉面", 1_800, 4_500),  # name, min and max ticket in fen
    "supermarket-hq": ("潍坊优选超市(总店)", 2_000, 30_000),
    "supermarket-east": ("潍坊优选超市(东风街店)", 1_000, 20_000),
    "pharmacy": ("仁和大药房", 1_500, 25_000),
    "parking": ("城区智慧停车", 200, 2_000),
}
FEE_RATE_BP = 38  # 0.38%: the common rate for small merchants
DEPOSIT_FEN = 20_000  # 200 yuan parking/rental deposit hold


@dataclass
class DemoBooks:
    reserve: Account
    funding: Account
    fee_income: Account
    clearing: dict[str, Account]
    pending: dict[str, Account]
    available: dict[str, Account]


@dataclass
class DaySummary:
    payments: int = 0
    payment_fen: int = 0
    refunds: int = 0
    refund_fen: int = 0
    holds_posted: int = 0
    holds_voided: int = 0
    holds_open: int = 0
    fees_fen: int = 0
    payouts_fen: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    replayed: int = 0
    transfers: int = 0

    def count(self, results: list[TransferResult]) -> None:
        for result in results:
            if result.result == "ok":
                self.transfers += 1
            elif result.result != "exists":
                self.refused[result.result] = self.refused.get(result.result, 0) + 1


def open_books(engine: Engine, clock: Clock) -> DemoBooks:
    def work(uow: UnitOfWork) -> DemoBooks:
        return DemoBooks(
            reserve=open_chart_account(uow, Purpose.BANK_RESERVE, bank_owner(BANK)),
            funding=open_chart_account(uow, Purpose.FUNDING, PLATFORM),
            fee_income=open_chart_account(uow, Purpose.FEE_INCOME, PLATFORM),
            clearing={
                c: open_chart_account(uow, Purpose.CHANNEL_CLEARING, channel_owner(c))
                for c in CHANNELS
            },
            pending={
                m: open_chart_account(uow, Purpose.MERCHANT_PENDING, merchant_owner(m))
                for m in MERCHANTS
            },
            available={
                m: open_chart_account(uow, Purpose.MERCHANT_AVAILABLE, merchant_owner(m))
                for m in MERCHANTS
            },
        )

    return run_in_transaction(engine, work, clock=clock)


def _submit(
    engine: Engine, clock: Clock, transfers: list[Transfer], summary: DaySummary
) -> list[TransferResult]:
    results: list[TransferResult] = []
    for start in range(0, len(transfers), MAX_BATCH_SIZE):
        chunk = transfers[start : start + MAX_BATCH_SIZE]

        def work(uow: UnitOfWork, chunk: list[Transfer] = chunk) -> list[TransferResult]:
            return create_transfers(uow, chunk)

        results += run_in_transaction(engine, work, clock=clock)
    summary.count(results)
    return results


def _payments(books: DemoBooks, rng: random.Random, count: int) -> list[tuple[str, str, Transfer]]:
    payments = []
    for _ in range(count):
        merchant = rng.choice(list(MERCHANTS))
        channel = rng.choices(CHANNELS, weights=CHANNEL_SHARE)[0]
        _, low, high = MERCHANTS[merchant]
        amount = rng.randint(low, high)
        transfer = Transfer(
            new_id("trf"), books.clearing[channel].id, books.pending[merchant].id, amount,
            "CNY", "payment.capture", user_data=new_id("ord"),
        )  # fmt: skip
        payments.append((merchant, channel, transfer))
    return payments


def run_ledger_day(
    engine: Engine, clock: Clock, *, payments: int = 3_000, seed: int = 7
) -> DaySummary:
    rng = random.Random(seed)
    books = open_books(engine, clock)
    summary = DaySummary()
    captured = _payments(books, rng, payments)
    _submit(engine, clock, [t for _, _, t in captured], summary)
    summary.payments = len(captured)
    summary.payment_fen = sum(t.amount or 0 for _, _, t in captured)
    _refund_some(engine, clock, books, rng, captured, summary)
    _deposit_holds(engine, clock, books, rng, summary)
    _channels_settle(engine, clock, books, summary)
    _settle_and_pay_out(engine, clock, books, summary)
    _show_refusals(engine, clock, books, captured, summary)
    return summary


def _refund_some(
    engine: Engine, clock: Clock, books: DemoBooks, rng: random.Random,
    captured: list[tuple[str, str, Transfer]], summary: DaySummary,
) -> None:  # fmt: skip
    refunds = []
    for merchant, channel, payment in rng.sample(captured, k=max(1, len(captured) // 50)):
        amount = payment.amount or 0
        refund_fen = amount if rng.random() < 0.6 else amount // 2  # full or partial
        refunds.append(
            Transfer(
                new_id("trf"), books.pending[merchant].id, books.clearing[channel].id,
                refund_fen, "CNY", "refund", user_data=payment.user_data,
            )
        )  # fmt: skip
    results = _submit(engine, clock, refunds, summary)
    ok = [r for r in results if r.result == "ok"]
    summary.refunds = len(ok)
    summary.refund_fen = sum(r.amount or 0 for r in ok)


def _deposit_holds(
    engine: Engine, clock: Clock, books: DemoBooks, rng: random.Random, summary: DaySummary
) -> None:
    """Parking deposits: a pending transfer, then posted (partly), voided, or left open."""
    holds = [
        Transfer(
            new_id("trf"), books.clearing["wechat"].id, books.pending["parking"].id,
            DEPOSIT_FEN, "CNY", "deposit.hold", flags=PENDING, timeout_s=24 * 3600,
        )
        for _ in range(60)
    ]  # fmt: skip
    _submit(engine, clock, holds, summary)
    resolutions = []
    for hold in holds:
        roll = rng.random()
        if roll < 0.6:
            fee_fen = rng.randint(300, 3_000)  # the parking fee actually charged
            capture = Transfer(new_id("trf"), amount=fee_fen, flags=POST_PENDING,
                               pending_id=hold.id, user_data="deposit.capture")  # fmt: skip
            resolutions.append(capture)
            summary.holds_posted += 1
        elif roll < 0.9:
            release = Transfer(new_id("trf"), flags=VOID_PENDING, pending_id=hold.id,
                               user_data="deposit.release")  # fmt: skip
            resolutions.append(release)
            summary.holds_voided += 1
        else:
            summary.holds_open += 1  # expires tomorrow via the worker
    _submit(engine, clock, resolutions, summary)


def _channels_settle(engine: Engine, clock: Clock, books: DemoBooks, summary: DaySummary) -> None:
    """Each wallet pays what it owes into our custody account (net of refunds)."""

    def owed(uow: UnitOfWork) -> dict[str, int]:
        found = lookup_accounts(uow, [a.id for a in books.clearing.values()])
        return {row.account.id: row.balance.net_debit for row in found}

    amounts = run_in_transaction(engine, owed, read_only=True, clock=clock)
    settlements = [
        Transfer(new_id("trf"), books.reserve.id, account.id, amounts[account.id], "CNY",
                 "channel.settlement", user_data=f"{channel}:daily")
        for channel, account in books.clearing.items()
        if amounts[account.id] > 0
    ]  # fmt: skip
    _submit(engine, clock, settlements, summary)


def _settle_and_pay_out(
    engine: Engine, clock: Clock, books: DemoBooks, summary: DaySummary
) -> None:
    """T+1: fee to the platform, the rest swept to available (balancing), then paid out."""

    def pending_balances(uow: UnitOfWork) -> dict[str, int]:
        found = lookup_accounts(uow, [a.id for a in books.pending.values()])
        return {row.account.id: row.balance.net_credit for row in found}

    balances = run_in_transaction(engine, pending_balances, read_only=True, clock=clock)
    journal: list[Transfer] = []
    for merchant, pending in books.pending.items():
        fee_fen = apply_rate_bp(balances[pending.id], FEE_RATE_BP)
        summary.fees_fen += fee_fen
        journal += [
            Transfer(new_id("trf"), pending.id, books.fee_income.id, fee_fen, "CNY",
                     "settlement.fee", flags=LINKED, user_data=merchant),
            Transfer(new_id("trf"), pending.id, books.available[merchant].id, None, "CNY",
                     "settlement.net", flags=BALANCING_DEBIT, user_data=merchant),
        ]  # fmt: skip
    _submit(engine, clock, journal, summary)
    payouts = [
        Transfer(new_id("trf"), available.id, books.reserve.id, None, "CNY", "payout",
                 flags=BALANCING_DEBIT, user_data=merchant)
        for merchant, available in books.available.items()
    ]  # fmt: skip
    results = _submit(engine, clock, payouts, summary)
    summary.payouts_fen = sum(r.amount or 0 for r in results if r.result == "ok")


def _show_refusals(
    engine: Engine, clock: Clock, books: DemoBooks,
    captured: list[tuple[str, str, Transfer]], summary: DaySummary,
) -> None:  # fmt: skip
    """A payout beyond the balance is refused; a replayed batch changes nothing."""
    overdraft = Transfer(new_id("trf"), books.available["noodle-shop"].id, books.reserve.id,
                         1_000_000, "CNY", "payout")  # fmt: skip
    _submit(engine, clock, [overdraft], summary)
    replay = [t for _, _, t in captured[:100]]
    results = _submit(engine, clock, replay, summary)
    summary.replayed = sum(1 for r in results if r.result == "exists")
