"""A ledger writer that `test_ledger_crash.py` runs in a child process and kills with SIGKILL.

    python ledger_crash_worker.py journals URL ISOLATION   # batches of linked journals, forever
    python ledger_crash_worker.py expire URL ISOLATION     # expiry passes until nothing is due

Every protocol line on stdout is flushed at once, so the test knows what must have survived:
`begin <batch>` when a batch starts, `committed <batch> <journals_ok>` once its transaction has
committed, `expired <count>` after each committed expiry pass. Other lines (logs) are ignored.

Journal `n` is a chain of 2-4 linked transfers tagged `user_data="j:<n>"`, with ids
`t<n>-<k>of<size>`: its members name its size, so a reader can tell a whole journal from part
of one without knowing how it was generated.
"""

from __future__ import annotations

import random
import sys
from functools import partial
from itertools import count

from cloudpay.db.engine import make_engine
from cloudpay.db.unit_of_work import run_in_transaction
from cloudpay.ledger import (
    ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
    LINKED,
    NewAccount,
    Transfer,
    create_accounts,
    create_transfers,
    expire_pending_transfers,
)

JOURNALS_PER_BATCH = 1_000  # about 3,000 transfers: a batch takes long enough to be killed in
EXPIRY_PASS = 500  # holds released per expiry transaction
RESERVE = "acc_crash_reserve"
FEES = "acc_crash_fees"
CLEARING = "acc_crash_clearing"
MERCHANTS = [f"acc_crash_merchant_{i}" for i in range(8)]
OPENING_BALANCE = 100_000
UNPAYABLE = 10**12


def world_accounts() -> list[NewAccount]:
    hot = [
        NewAccount(id=account_id, owner="platform", code=code, ledger="CNY", balance_shards=16)
        for account_id, code in (
            (RESERVE, "bank_reserve"),
            (FEES, "fee_income"),
            (CLEARING, "channel_clearing"),
        )
    ]
    merchants = [
        NewAccount(id=account_id, owner=f"merchant:{account_id}", code="merchant_pending",
                   ledger="CNY", flags=ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS)
        for account_id in MERCHANTS
    ]  # fmt: skip
    return hot + merchants


def opening_balances() -> list[Transfer]:
    return [Transfer(f"open-{m}", RESERVE, m, OPENING_BALANCE, "CNY", "capture") for m in MERCHANTS]


def journal(n: int, rng: random.Random) -> list[Transfer]:
    """A capture and what follows it. One journal in ten charges a fee nobody can pay, so the
    whole journal must fail, wherever the fee sits; the others always succeed (merchants start
    rich and gain on average), which makes a batch's outcome the same whenever it is sent."""
    size = rng.randint(2, 4)
    a, b, c = rng.sample(MERCHANTS, 3)
    amount = rng.randint(100, 10_000)
    fee = UNPAYABLE if rng.random() < 0.1 else rng.randint(1, 3_000)
    split = rng.randint(1, amount)
    legs = [
        (RESERVE, a, amount, "capture"),
        (b, FEES, fee, "fee"),
        (a, c, split, "split"),
        (c, CLEARING, rng.randint(1, split), "payout"),
    ][:size]
    return [
        Transfer(f"t{n}-{k}of{size}", debit, credit, value, "CNY", code,
                 flags=LINKED if k < size - 1 else 0, user_data=f"j:{n}")
        for k, (debit, credit, value, code) in enumerate(legs)
    ]  # fmt: skip


def batch(number: int) -> list[Transfer]:
    rng = random.Random(number)
    first = number * JOURNALS_PER_BATCH
    return [t for n in range(first, first + JOURNALS_PER_BATCH) for t in journal(n, rng)]


def journal_tag(transfer_id: str) -> str:
    return "j:" + transfer_id[1:].split("-", 1)[0]


def run_journals(url: str, isolation: str, first_batch: int) -> None:
    engine = make_engine(url, isolation_level=isolation)
    run_in_transaction(engine, lambda uow: create_accounts(uow, world_accounts()))
    run_in_transaction(engine, lambda uow: create_transfers(uow, opening_balances()))
    for number in count(first_batch):
        transfers = batch(number)
        print(f"begin {number}", flush=True)
        results = run_in_transaction(engine, partial(create_transfers, transfers=transfers))
        failed = {journal_tag(r.id) for r in results if not r.ok}
        journals_ok = len({journal_tag(t.id) for t in transfers} - failed)
        print(f"committed {number} {journals_ok}", flush=True)


def run_expiry(url: str, isolation: str) -> None:
    engine = make_engine(url, isolation_level=isolation)
    for number in count():
        print(f"begin {number}", flush=True)
        expired = run_in_transaction(engine, partial(expire_pending_transfers, limit=EXPIRY_PASS))
        print(f"expired {expired}", flush=True)
        if expired == 0:
            return


if __name__ == "__main__":
    mode, database_url, isolation_level = sys.argv[1:4]
    if mode == "journals":
        run_journals(database_url, isolation_level, int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    else:
        run_expiry(database_url, isolation_level)
