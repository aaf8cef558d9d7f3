"""Crash safety of the settlement run, on SQLite and PostgreSQL: a run killed with SIGKILL
right after the bank accepted a payout (before we recorded it) is resumed by running the same
date again, and every merchant is paid exactly once — the bank's balances say so.

The run itself happens in a child process (`python -m tests.integration.test_settlement_crash
URL CONFIG`); the sandbox bank lives in the test process, so it outlives the kill.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from cloudpay.channels.bank import PartnerBankClient, PartnerBankConfig
from cloudpay.channels.bank.protocol import TransferRequest, TransferResult
from cloudpay.channels.bank.sandbox import start_bank_sandbox
from cloudpay.db.engine import make_engine
from cloudpay.db.unit_of_work import transactor
from cloudpay.kernel.clock import FixedClock
from cloudpay.settlement.flows import SettlementContext, check_custody, run_settlement
from cloudpay.settlement.payouts import mirror_custody_opening
from cloudpay.settlement.tables import settlement_payouts

MONDAY = date(2026, 3, 2)
TUESDAY = MONDAY + timedelta(days=1)
RUN_AT = datetime(2026, 3, 3, 2, tzinfo=UTC)  # 10:00 Tuesday in Shanghai
MERCHANTS = 12
KILL_AFTER_PAYOUTS = 5


class SlowBank(PartnerBankClient):
    """Says on stdout when the bank has accepted a payout, then lingers: the window in which
    the parent kills us is exactly 'money moved, not yet recorded'."""

    def transfer(self, request: TransferRequest) -> TransferResult:
        result = super().transfer(request)
        print(f"sent {request.transfer_id}", flush=True)
        time.sleep(0.3)
        return result


def _child(url: str, config_path: str) -> None:
    config: PartnerBankConfig = pickle.loads(Path(config_path).read_bytes())  # noqa: S301
    clock = FixedClock(RUN_AT)
    with SlowBank(config, clock=clock) as bank:
        engine = make_engine(url)
        run_settlement(transactor(engine, clock), SettlementContext(banks={"WFCB": bank}), TUESDAY)
    print("done", flush=True)


def _run_child_until_killed(url: str, config_path: Path) -> int:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.test_settlement_crash", url, str(config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=os.getcwd(),
    )  # fmt: skip
    assert process.stdout is not None
    sent = 0
    for line in process.stdout:
        if line.startswith("sent "):
            sent += 1
            if sent == KILL_AFTER_PAYOUTS:
                os.kill(process.pid, signal.SIGKILL)
                break
    process.wait(timeout=30)
    return sent


def test_a_killed_run_resumes_and_pays_each_merchant_once(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    """Killed with payouts half sent (one accepted by the bank but not recorded), the run
    of the same date resumes: every merchant's e-account holds its net exactly once."""
    from tests.integration.test_settlement_journal import World
    from tests.integration.test_settlement_payouts import _shop

    clock = FixedClock(datetime(2026, 3, 1, 2, tzinfo=UTC))
    with start_bank_sandbox(bank_code="WFCB", time_scale=0.001, clock=clock) as sandbox:
        config = sandbox.adapter_config()
        with PartnerBankClient(config, clock=clock) as client:
            world = World(engine, clock)
            custody = client.balance(client.custody_account_no).balance_fen
            world.transact(lambda uow: mirror_custody_opening(
                uow, bank_code="WFCB", balance_fen=custody))  # fmt: skip
            shops = [_shop(world, client) for _ in range(MERCHANTS)]
            world.at(MONDAY, 10)
            for number, (shop, _account, _card) in enumerate(shops):
                world.order(shop, 10_000 + number)
            clock.set(RUN_AT)
            config_path = tmp_path / "bank.pickle"
            config_path.write_bytes(pickle.dumps(config))
            assert _run_child_until_killed(database_url, config_path) == KILL_AFTER_PAYOUTS
            paid_before = _count(engine, "succeeded")
            assert paid_before < KILL_AFTER_PAYOUTS  # the last one was never recorded
            ctx = SettlementContext(banks={"WFCB": client})
            run_settlement(world.transact, ctx, TUESDAY)
            run_settlement(world.transact, ctx, TUESDAY)
            balances = [client.balance(account).balance_fen for _shop_id, account, _ in shops]
            assert balances == [10_000 + n for n in range(MERCHANTS)]
            assert _count(engine, "succeeded") == MERCHANTS
            assert all(row["matches"] for row in check_custody(world.transact, ctx))
            assert world.books_ok()


def _count(engine: Engine, status: str) -> int:
    query = select(func.count()).select_from(settlement_payouts).where(
        settlement_payouts.c.status == status)  # fmt: skip
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


if __name__ == "__main__":
    _child(*sys.argv[1:3])
