"""What `cloudpay bench ledger` runs: the accounts it opens and the transfers it sends.

Mostly merchant accounts that must not be overdrawn, funded first so the balance check really
refuses some transfers, plus a few hot platform accounts from the chart (unlimited, sharded).
Two distributions: `uniform` (any account to any other) and `skewed` (captures from channel
clearing and fees to fee income: most transfers touch a hot account).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy import Engine

from cloudpay.bench.ledger_runs import BenchFailure, submit_batch
from cloudpay.db.unit_of_work import run_in_transaction
from cloudpay.kernel.ids import new_ids
from cloudpay.ledger import (
    CHART,
    PLATFORM,
    AccountResult,
    NewAccount,
    Purpose,
    Transfer,
    create_accounts,
)
from cloudpay.ledger.chart import channel_owner, merchant_owner

LEDGER = "CNY"
CHANNELS = ("wechat", "alipay", "unionpay")
MERCHANT_FUNDING_FEN = 200_000
MIN_AMOUNT_FEN = 100
# Up to a fifth of a merchant's funding: the random walk drains some accounts below the next
# debit, so refusals happen without dominating the run.
MAX_AMOUNT_FEN = 40_000
SKEWED_CAPTURE_SHARE = 0.60  # channel clearing -> merchant
SKEWED_FEE_SHARE = 0.25  # merchant -> fee income; the rest is merchant -> merchant
# Splits move larger sums out of merchants, so some find too little there and are refused.
SPLIT_AMOUNT_FACTOR = 8


@dataclass(frozen=True)
class BenchAccounts:
    clearing_ids: tuple[str, ...]
    fee_income_id: str
    merchant_ids: tuple[str, ...]

    @property
    def hot_ids(self) -> frozenset[str]:
        return frozenset((*self.clearing_ids, self.fee_income_id))

    @property
    def all_ids(self) -> tuple[str, ...]:
        return (*self.clearing_ids, self.fee_income_id, *self.merchant_ids)


def open_bench_accounts(engine: Engine, count: int, batch_size: int) -> BenchAccounts:
    """Hot platform accounts per the chart, merchants that must not be overdrawn, funded."""
    suffix = uuid.uuid4().hex[:8]  # one database may hold several runs (a given URL)
    clearing, fee_income, merchant = (
        CHART[Purpose.CHANNEL_CLEARING], CHART[Purpose.FEE_INCOME], CHART[Purpose.MERCHANT_PENDING],
    )  # fmt: skip
    hot = [
        NewAccount(channel_owner(f"{c}-{suffix}"), Purpose.CHANNEL_CLEARING.value, LEDGER,
                   clearing.flags, clearing.shards)
        for c in CHANNELS
    ]  # fmt: skip
    hot.append(
        NewAccount(f"{PLATFORM}-{suffix}", Purpose.FEE_INCOME.value, LEDGER,
                   fee_income.flags, fee_income.shards)
    )  # fmt: skip
    merchants = [
        NewAccount(merchant_owner(f"m{i}-{suffix}"), Purpose.MERCHANT_PENDING.value, LEDGER,
                   merchant.flags)
        for i in range(max(1, count - len(hot)))
    ]  # fmt: skip
    ids = [r.id for r in _create_accounts(engine, [*hot, *merchants], batch_size)]
    accounts = BenchAccounts(tuple(ids[:3]), ids[3], tuple(ids[4:]))
    funding = [
        Transfer(transfer_id, accounts.clearing_ids[0], merchant_id, MERCHANT_FUNDING_FEN,
                 LEDGER, "funding")
        for transfer_id, merchant_id in zip(
            new_ids("trf", len(accounts.merchant_ids)), accounts.merchant_ids, strict=True
        )
    ]  # fmt: skip
    for batch in in_batches(funding, batch_size):
        results, _ = submit_batch(engine, batch)
        if not all(r.ok for r in results):
            raise BenchFailure(f"funding refused: {[r for r in results if not r.ok][:3]}")
    return accounts


def _create_accounts(
    engine: Engine, accounts: list[NewAccount], batch_size: int
) -> list[AccountResult]:
    results: list[AccountResult] = []
    for start in range(0, len(accounts), batch_size):
        work = partial(create_accounts, accounts=accounts[start : start + batch_size])
        results.extend(run_in_transaction(engine, work))
    if not all(r.ok for r in results):
        raise BenchFailure(f"accounts refused: {[r for r in results if not r.ok][:3]}")
    return results


def uniform_transfers(rng: random.Random, accounts: BenchAccounts, n: int) -> list[Transfer]:
    """Debit and credit drawn at random among all accounts."""
    everyone = accounts.all_ids
    transfers = []
    for transfer_id in new_ids("trf", n):
        debit, credit = rng.sample(everyone, 2)
        amount = rng.randint(MIN_AMOUNT_FEN, MAX_AMOUNT_FEN)
        transfers.append(Transfer(transfer_id, debit, credit, amount, LEDGER, "transfer"))
    return transfers


def skewed_transfers(
    rng: random.Random, accounts: BenchAccounts, n: int, merchant_ids: Sequence[str]
) -> list[Transfer]:
    """Captures from channel clearing and fees to fee income: most touch a hot account."""
    transfers = []
    for transfer_id in new_ids("trf", n):
        draw = rng.random()
        amount = rng.randint(MIN_AMOUNT_FEN, MAX_AMOUNT_FEN)
        if draw < SKEWED_CAPTURE_SHARE:
            debit, credit, code = (
                rng.choice(accounts.clearing_ids),
                rng.choice(merchant_ids),
                "capture",
            )
        elif draw < SKEWED_CAPTURE_SHARE + SKEWED_FEE_SHARE:
            debit, credit, code = rng.choice(merchant_ids), accounts.fee_income_id, "fee"
            amount //= 10
        else:
            debit, credit = rng.sample(merchant_ids, 2)
            code = "split"
            amount *= SPLIT_AMOUNT_FACTOR
        transfers.append(Transfer(transfer_id, debit, credit, amount, LEDGER, code))
    return transfers


def hot_share(transfers: Sequence[Transfer], accounts: BenchAccounts) -> float:
    hot = accounts.hot_ids
    touching = sum(1 for t in transfers if t.debit_account_id in hot or t.credit_account_id in hot)
    return round(touching / len(transfers), 3)


def in_batches(items: Sequence[Transfer], size: int) -> list[Sequence[Transfer]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
