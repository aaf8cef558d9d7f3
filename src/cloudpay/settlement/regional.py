"""The regional closed loop (资金闭环): where merchants' money is held and where it goes.

Seed 000 promises that the money a city's merchants take stays in the city's banks. Per
partner bank the report shows the merchants' receipts held there in custody (备付金), what was
settled there (payouts into merchants' e-accounts at that bank), and, per day or week, the
share of the payouts that stayed in local banks.

What counts as local, in order:
1. a payout into an e-account at a partner bank configured as local stays; at any other
   bank it leaves;
2. a payout to a merchant's Class I card (the reroute over a Class II/III limit) stays only
   if the card's issuer identification number (its first six digits, the BIN) is one a local
   bank issues; an unknown card counts as leaving, since nothing shows it is local.

Pure: the caller reads the rows (repository) and the configuration; amounts are integer fen,
shares integer basis points rounded half-up once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, Final

E_ACCOUNT: Final = "e_account"
CLASS_I: Final = "class_i"
BIN_DIGITS: Final = 6
MAX_REPORT_DAYS: Final = 366  # a year of days: the report is read in one query per part
BASIS_POINTS: Final = 10_000


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, named by their Monday


@dataclass(frozen=True)
class LocalPolicy:
    """Which partner banks are local (None: every partner bank is) and the BINs of the
    Class I cards those banks issue."""

    local_banks: frozenset[str] | None = None
    local_card_bins: frozenset[str] = frozenset()

    def is_local_bank(self, bank_code: str) -> bool:
        return self.local_banks is None or bank_code in self.local_banks


@dataclass(frozen=True)
class PayoutFlow:
    """A succeeded payout: money that left the platform's custody for a merchant."""

    pay_date: date
    bank_code: str  # the partner bank it was paid from (and, for an e-account, into)
    destination_kind: str  # e_account | class_i
    destination_account: str
    amount_fen: int


@dataclass
class BankFlows:
    bank_code: str
    local: bool
    receipts_fen: int = 0  # merchants' net receipts (gross − refunds) settled in the window
    custody_fen: int | None = None  # the ledger's custody balance there at the window's end
    settled_fen: int = 0  # paid into merchants' e-accounts at this bank
    to_cards_fen: int = 0  # paid from this bank's custody to merchants' Class I cards
    left_fen: int = 0  # of those payouts, what left the local banks


@dataclass
class PeriodFlows:
    period_start: date
    kept_fen: int = 0
    left_fen: int = 0

    @property
    def local_share_bp(self) -> int | None:
        return share_bp(self.kept_fen, self.kept_fen + self.left_fen)


@dataclass
class RegionalReport:
    start: date
    end: date
    period: Period
    banks: list[BankFlows] = field(default_factory=list)
    periods: list[PeriodFlows] = field(default_factory=list)

    @property
    def kept_fen(self) -> int:
        return sum(p.kept_fen for p in self.periods)

    @property
    def left_fen(self) -> int:
        return sum(p.left_fen for p in self.periods)


def share_bp(part: int, whole: int) -> int | None:
    """`part / whole` in basis points, rounded half-up; None when there is no whole."""
    if whole <= 0:
        return None
    return (part * BASIS_POINTS * 2 + whole) // (whole * 2)


def stays_local(flow: PayoutFlow, policy: LocalPolicy) -> bool:
    if flow.destination_kind == CLASS_I:
        return flow.destination_account[:BIN_DIGITS] in policy.local_card_bins
    return policy.is_local_bank(flow.bank_code)


def period_start(day: date, period: Period) -> date:
    return day if period is Period.DAY else day - timedelta(days=day.weekday())


def periods_between(start: date, end: date, period: Period) -> list[date]:
    """Every period touching [start, end], so a quiet day shows as a row with nothing."""
    first, last = period_start(start, period), period_start(end, period)
    step = timedelta(days=1 if period is Period.DAY else 7)
    return [first + step * n for n in range((last - first) // step + 1)]


def regional_report(
    *,
    start: date,
    end: date,
    period: Period,
    policy: LocalPolicy,
    banks: Iterable[str],
    receipts_fen: Mapping[str, int],
    custody_fen: Mapping[str, int],
    payouts: Iterable[PayoutFlow],
) -> RegionalReport:
    """The report of [start, end] from the window's rows (see the module's rules)."""
    codes = sorted({*banks, *receipts_fen, *custody_fen})
    by_bank = {code: BankFlows(code, policy.is_local_bank(code)) for code in codes}
    by_period = {d: PeriodFlows(d) for d in periods_between(start, end, period)}
    for code in codes:
        by_bank[code].receipts_fen = receipts_fen.get(code, 0)
        by_bank[code].custody_fen = custody_fen.get(code)
    for flow in payouts:
        bank = by_bank.setdefault(
            flow.bank_code, BankFlows(flow.bank_code, policy.is_local_bank(flow.bank_code))
        )
        if flow.destination_kind == CLASS_I:
            bank.to_cards_fen += flow.amount_fen
        else:
            bank.settled_fen += flow.amount_fen
        bucket = by_period[period_start(flow.pay_date, period)]
        if stays_local(flow, policy):
            bucket.kept_fen += flow.amount_fen
        else:
            bucket.left_fen += flow.amount_fen
            bank.left_fen += flow.amount_fen
    return RegionalReport(
        start, end, period, [by_bank[c] for c in sorted(by_bank)], list(by_period.values())
    )


def report_view(report: RegionalReport) -> dict[str, Any]:
    """The report as the API returns it."""
    return {
        "object": "regional_flows",
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "period": report.period.value,
        "kept_fen": report.kept_fen,
        "left_fen": report.left_fen,
        "local_share_bp": share_bp(report.kept_fen, report.kept_fen + report.left_fen),
        "banks": [_bank_view(b) for b in report.banks],
        "periods": [
            {
                "period_start": p.period_start.isoformat(),
                "kept_fen": p.kept_fen,
                "left_fen": p.left_fen,
                "local_share_bp": p.local_share_bp,
            }
            for p in report.periods
        ],
    }


def _bank_view(bank: BankFlows) -> dict[str, Any]:
    return {
        "bank_code": bank.bank_code,
        "local": bank.local,
        "receipts_fen": bank.receipts_fen,
        "custody_fen": bank.custody_fen,
        "settled_fen": bank.settled_fen,
        "to_cards_fen": bank.to_cards_fen,
        "left_fen": bank.left_fen,
    }


def report_csv(report: RegionalReport) -> str:
    """Two tables in one CSV (RFC 4180): the banks, then the periods; amounts in fen."""
    view = report_view(report)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    bank_columns = ["bank_code", "local", "receipts_fen", "custody_fen", "settled_fen"]
    bank_columns += ["to_cards_fen", "left_fen"]
    writer.writerow(["section", *bank_columns])
    for bank in view["banks"]:
        writer.writerow(["bank", *(_cell(bank[c]) for c in bank_columns)])
    period_columns = ["period_start", "kept_fen", "left_fen", "local_share_bp"]
    writer.writerow(["section", *period_columns])
    for row in view["periods"]:
        writer.writerow([report.period.value, *(_cell(row[c]) for c in period_columns)])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
