"""`cloudpay ledger check`: prove the books balance, from the stored rows alone.

Checks, each named in the report: per currency total debits equal total credits (posted and
pending); every account's stored balance equals the one recomputed from its transfers; no
account breaks its limit flag; every transfer names existing accounts of its ledger; every
pending record has its transfer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection

from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.ledger import repository
from cloudpay.ledger.model import Balance, credit_limit_breached, debit_limit_breached

MAX_PROBLEMS_REPORTED = 50


@dataclass
class CheckReport:
    accounts: int = 0
    transfers_checked_against: int = 0
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS_REPORTED:
            self.problems.append(problem)
        elif len(self.problems) == MAX_PROBLEMS_REPORTED:
            self.problems.append("… more problems not listed")


def check_books(uow: UnitOfWork) -> CheckReport:
    """Run as the first (and only) work of its transaction, so it reads one snapshot."""
    connection = uow.connection
    _read_one_snapshot(connection)
    report = CheckReport()
    _check_totals(report, repository.totals_by_ledger(connection))
    stored = repository.stored_balances(connection)
    recomputed = repository.balances_from_transfers(connection)
    report.transfers_checked_against = len(recomputed)
    for account_id in sorted(set(stored) | set(recomputed)):
        have = stored.get(account_id, (0, 0, 0, 0))
        want = recomputed.get(account_id, (0, 0, 0, 0))
        if have != want:
            report.add(f"{account_id}: stored balance {have} != from transfers {want}")
    accounts = repository.all_accounts(connection)
    report.accounts = len(accounts)
    for account in accounts:
        balance = Balance(*stored.get(account.id, (0, 0, 0, 0)))
        if debit_limit_breached(account.flags, balance):
            report.add(f"{account.id}: debits exceed credits {balance}")
        if credit_limit_breached(account.flags, balance):
            report.add(f"{account.id}: credits exceed debits {balance}")
    if (orphans := repository.transfers_with_unknown_accounts(connection)) > 0:
        report.add(f"{orphans} transfers name a missing account or another ledger")
    if (lost := repository.pendings_without_transfer(connection)) > 0:
        report.add(f"{lost} pending records have no transfer")
    return report


def _read_one_snapshot(connection: Connection) -> None:
    """All the check's queries must see the same instant, or a transfer committed between two
    of them reads as a mismatch on a live system. PostgreSQL at READ COMMITTED takes a new
    snapshot per statement; REPEATABLE READ keeps the first. SQLite's read transaction
    already is one snapshot."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def _check_totals(report: CheckReport, totals: dict[str, tuple[int, int, int, int]]) -> None:
    for ledger, (dp, dpo, cp, cpo) in sorted(totals.items()):
        report.totals[ledger] = {
            "debits_pending": dp,
            "debits_posted": dpo,
            "credits_pending": cp,
            "credits_posted": cpo,
        }
        if dpo != cpo:
            report.add(f"{ledger}: posted debits {dpo} != posted credits {cpo}")
        if dp != cp:
            report.add(f"{ledger}: pending debits {dp} != pending credits {cp}")
