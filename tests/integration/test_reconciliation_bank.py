"""The bank leg against the bank sandbox's real custody statement, on SQLite and PostgreSQL:
a settlement credit no bill explains is raised, a rerun from the kept file raises nothing
twice, a corrupt or foreign statement is rejected and recorded, and the daily schedule does
not fetch a reconciled statement again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from cloudpay.channels.bank import PartnerBankClient
from cloudpay.channels.bank.sandbox import BankSandbox, start_bank_sandbox
from cloudpay.db.unit_of_work import Transact, transactor
from cloudpay.kernel.clock import FixedClock
from cloudpay.reconciliation import StatementRejected, bank_channel_key, reconcile_all
from cloudpay.reconciliation import service as recon
from cloudpay.reconciliation.bank import run_bank_day

DAY = date(2026, 11, 25)
MORNING = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
AFTERNOON = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)  # 14:00 the next day


@pytest.fixture
def bank(clock: FixedClock) -> Iterator[tuple[BankSandbox, PartnerBankClient]]:
    clock.set(MORNING)
    with (
        start_bank_sandbox("WFCB", time_scale=0.001, clock=clock) as sandbox,
        PartnerBankClient(sandbox.adapter_config(), clock=clock) as client,
    ):
        yield sandbox, client


def _statement(bank: tuple[BankSandbox, PartnerBankClient], clock: FixedClock) -> bytes:
    sandbox, client = bank
    clock.set(AFTERNOON)
    return client.download_statement(sandbox.custody_account_no, DAY).raw


def _run(transact: Transact, data: bytes, bank_code: str = "WFCB") -> dict[str, Any]:
    return run_bank_day(transact, bank_code=bank_code, statement_date=DAY, data=data,
                        source="file:statement.csv", actor="operator")  # fmt: skip


def _breaks(transact: Transact) -> list[tuple[str, str]]:
    found = transact(lambda uow: recon.list_breaks(
        uow, status=None, type_=None, channel="bank_wfcb", bill_date=DAY, limit=50,
        starting_after=None))  # fmt: skip
    return [(b["type"], b["match_key"]) for b in found]


def test_a_settlement_credit_no_bill_explains_is_raised_once(
    engine: Engine, clock: FixedClock, bank: tuple[BankSandbox, PartnerBankClient]
) -> None:
    """No channel was reconciled for the day before, yet WeChat Pay credits its settlement:
    unexpected; a top-up beside it is not the bank leg's; the rerun raises nothing twice."""
    sandbox, _ = bank
    sandbox.external_credit(sandbox.custody_account_no, "9100000000000018", 5_000,
                            "WXPAY-SETTLE-20261124")  # fmt: skip
    sandbox.external_credit(sandbox.custody_account_no, "6222020000000000018", 800, "topup-1")
    transact = transactor(engine, clock)
    first = _run(transact, _statement(bank, clock))
    assert (first["status"], first["breaks_by_type"]) == (
        "completed",
        {"bank_credit_unexpected": 1},
    )
    assert first["channel_rows"] == 3  # the opening booking and both credits
    again = recon.rerun(transact, run_id=first["id"], actor="operator")
    assert (again["file_id"], again["breaks_by_type"]) == (
        first["file_id"],
        first["breaks_by_type"],
    )
    assert _breaks(transact) == [("bank_credit_unexpected", "WXPAY-SETTLE-20261124")]


@pytest.mark.parametrize(
    ("spoil", "bank_code", "reason"),
    [
        (lambda data: data[:-30], "WFCB", "truncated"),
        (lambda data: data.replace(b"H,BANKSTMT1", b"H,BANKSTMT2"), "WFCB", "SHA-256"),
        (lambda data: data, "QDRCB", "not QDRCB"),
    ],
)
def test_a_corrupt_or_foreign_statement_is_rejected_and_recorded(
    engine: Engine, clock: FixedClock, bank: tuple[BankSandbox, PartnerBankClient],
    spoil: Any, bank_code: str, reason: str,
) -> None:  # fmt: skip
    """Truncated, altered or another bank's: a clear error, a rejected run with the reason,
    no break."""
    transact = transactor(engine, clock)
    with pytest.raises(StatementRejected) as rejected:
        _run(transact, spoil(_statement(bank, clock)), bank_code)
    assert reason in rejected.value.message
    runs = transact(lambda uow: recon.list_runs(
        uow, channel=bank_channel_key(bank_code), bill_date=DAY, limit=5,
        starting_after=None))  # fmt: skip
    assert [(r["status"], reason in r["error"]) for r in runs] == [("rejected", True)]
    assert _breaks(transact) == []


def test_the_schedule_reconciles_a_statement_once(
    engine: Engine, clock: FixedClock, bank: tuple[BankSandbox, PartnerBankClient]
) -> None:
    """A second pass (or a restarted worker) finds the day done and fetches nothing."""
    sandbox, client = bank
    transact = transactor(engine, clock)
    clock.set(AFTERNOON)
    banks = {"WFCB": client}
    first = reconcile_all(transact, channels=None, banks=banks, day=DAY)
    again = reconcile_all(transact, channels=None, banks=banks, day=DAY)
    assert (first, again) == ({"bank_wfcb": "reconciled"}, {"bank_wfcb": "done"})
    sandbox.set_available(False)  # nothing is asked of the bank for a day that is done
    assert reconcile_all(transact, channels=None, banks=banks, day=DAY) == {"bank_wfcb": "done"}
    runs = transact(lambda uow: recon.list_runs(
        uow, channel="bank_wfcb", bill_date=DAY, limit=5, starting_after=None))  # fmt: skip
    assert len(runs) == 1
