"""The partner-bank channel's interface and vocabulary: e-accounts, limits, transfers,
statements.

CloudPay keeps merchants' and citizens' money in personal e-accounts at local partner banks
(电子账户, Class II / Class III, opened remotely against a bound Class I card) and holds its own
customer reserve (备付金) in a custody account at each bank. Settlement code sees only this
module; `client.py` speaks one bank's wire format behind `BankChannel`.

Account-class rules (PBoC 个人银行账户分类管理):
- 银发〔2016〕261号 created the classes; a Class II account's *non-bound* inflow (转入 from any
  account other than the bound Class I card, plus cash) and its *non-bound* outflow
  (consumption, payments, transfers to accounts other than the bound card, cash) are each
  capped at 10,000 CNY a day and 200,000 CNY a year. Transfers between an e-account and its
  bound Class I card are not counted against those caps.
  https://m.phb7.com/renwu/caijing/144155.html
  https://www.awrui.net/mayi/xingqiu/jinrong/20630.html
- 银发〔2018〕16号 set the Class III caps used here: balance at any time ≤ 2,000 CNY, non-bound
  inflow and non-bound outflow each ≤ 5,000 CNY a day and ≤ 100,000 CNY a year. Older figures
  still circulate (a 1,000 CNY balance; 2,000 a day and 50,000 a year under the 2016 rules),
  and a bank may set lower caps of its own: hence `BankLimits`, configurable per bank.
  https://m.how234.com/eamyrerdzcr.html
  http://lhj.u0y.com/jujiao/2023/0215/10124.html
Money is integer fen everywhere; days and years are Asia/Shanghai calendar days and years.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from cloudpay.channels.protocol import ChannelError, ChannelErrorKind

CNY_FEN_PER_YUAN = 100


# The channel protocol's kinds, so routing and retry code treats banks like any channel.
BankErrorKind = ChannelErrorKind


class BankError(ChannelError):
    """A bank call failed. `code` is the bank's reason (e.g. `id_number_invalid`,
    `account_not_found`, `request_id_reused`); `outcome_unknown` says query before retrying."""


class NotificationRejected(Exception):
    """A bank webhook failed verification (signature, stale timestamp, replayed nonce)."""


class AccountClass(StrEnum):
    CLASS_II = "II"  # 钱夹: deposits, wealth products, limited non-bound flows
    CLASS_III = "III"  # 零钱包: small, frequent payments; balance capped


class OwnerKind(StrEnum):
    MERCHANT = "merchant"  # an individual business owner (个体工商户) holding merchant funds
    CITIZEN = "citizen"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"  # 冻结: no money moves in or out (court order, risk hold)
    CLOSED = "closed"


class TransferStatus(StrEnum):
    SUCCEEDED = "succeeded"
    PROCESSING = "processing"  # accepted; a webhook (or a query) tells the end
    FAILED = "failed"  # refused; no money moved (see `failure_reason`)
    RETURNED = "returned"  # 退票: succeeded, then the receiving bank sent the money back


class TransferFailure(StrEnum):
    """Why the bank refused a transfer, in the order the bank checks them."""

    ACCOUNT_NOT_FOUND = "account_not_found"
    ACCOUNT_CLOSED = "account_closed"
    ACCOUNT_FROZEN = "account_frozen"
    COUNTERPARTY_NOT_ALLOWED = "counterparty_not_allowed"  # e.g. pulling from a non-bound card
    LIMIT_EXCEEDED = "limit_exceeded"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    RETURNED_BY_RECEIVER = "returned_by_receiver"  # a processing transfer that ended failed


class LimitKind(StrEnum):
    """Which PBoC cap a transfer would break (`TransferResult.limit`)."""

    NONBOUND_INFLOW_DAILY = "nonbound_inflow_daily"
    NONBOUND_INFLOW_YEARLY = "nonbound_inflow_yearly"
    NONBOUND_OUTFLOW_DAILY = "nonbound_outflow_daily"
    NONBOUND_OUTFLOW_YEARLY = "nonbound_outflow_yearly"
    BALANCE_CAP = "balance_cap"


@dataclass(frozen=True)
class ClassLimits:
    """One account class's caps in fen; None = no cap."""

    nonbound_inflow_daily_fen: int | None
    nonbound_inflow_yearly_fen: int | None
    nonbound_outflow_daily_fen: int | None
    nonbound_outflow_yearly_fen: int | None
    balance_cap_fen: int | None = None

    def __post_init__(self) -> None:
        for name, value in self.as_dict().items():
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer of fen or None")

    def as_dict(self) -> dict[str, int | None]:
        return {
            "nonbound_inflow_daily_fen": self.nonbound_inflow_daily_fen,
            "nonbound_inflow_yearly_fen": self.nonbound_inflow_yearly_fen,
            "nonbound_outflow_daily_fen": self.nonbound_outflow_daily_fen,
            "nonbound_outflow_yearly_fen": self.nonbound_outflow_yearly_fen,
            "balance_cap_fen": self.balance_cap_fen,
        }


PBOC_CLASS_II = ClassLimits(1_000_000, 20_000_000, 1_000_000, 20_000_000, None)
PBOC_CLASS_III = ClassLimits(500_000, 10_000_000, 500_000, 10_000_000, 200_000)


@dataclass(frozen=True)
class BankLimits:
    """A bank's caps per account class: the PBoC ceilings by default; a bank may set lower."""

    class_ii: ClassLimits = PBOC_CLASS_II
    class_iii: ClassLimits = PBOC_CLASS_III

    def of(self, account_class: AccountClass) -> ClassLimits:
        return self.class_ii if account_class is AccountClass.CLASS_II else self.class_iii

    def as_dict(self) -> dict[str, dict[str, int | None]]:
        return {"II": self.class_ii.as_dict(), "III": self.class_iii.as_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, int | None]]) -> BankLimits:
        return cls(class_ii=ClassLimits(**data["II"]), class_iii=ClassLimits(**data["III"]))


# ---------------------------------------------------------------- accounts


@dataclass(frozen=True)
class OpenAccount:
    """Open an e-account after real-name checks. `request_id` makes the call idempotent."""

    request_id: str
    account_class: AccountClass
    owner_kind: OwnerKind
    owner_reference: str  # our merchant or citizen id, echoed back
    name: str
    id_number: str  # 居民身份证号 (GB 11643)
    phone: str  # mainland mobile number
    bound_card_number: str  # the owner's Class I debit card (any bank)


@dataclass(frozen=True)
class AccountOpened:
    account_no: str
    account_class: AccountClass
    status: AccountStatus
    owner_reference: str
    bound_card_masked: str
    opened_at: datetime
    warnings: tuple[str, ...] = ()  # e.g. `bound_card_luhn_failed`: accepted, check it
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AccountInfo:
    account_no: str
    account_class: AccountClass | None  # None for the platform's custody account
    status: AccountStatus
    owner_reference: str
    bound_card_masked: str | None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Balance:
    account_no: str
    balance_fen: int  # ledger balance, what the statement's closing balance shows
    available_fen: int  # what can leave now (less holds for processing transfers)
    currency: str
    as_of: datetime


# ---------------------------------------------------------------- transfers


@dataclass(frozen=True)
class TransferRequest:
    """Move money from `debit_account` to `credit_account` (account numbers at this bank, or
    an external card number). `transfer_id` is our id: the bank moves money once per id."""

    transfer_id: str
    debit_account: str
    credit_account: str
    amount_fen: int
    currency: str = "CNY"
    memo: str = ""
    counterparty_name: str | None = None  # the external card holder, for outgoing payouts

    def __post_init__(self) -> None:
        if not isinstance(self.amount_fen, int) or self.amount_fen <= 0:
            raise ValueError("amount_fen must be a positive integer")


@dataclass(frozen=True)
class TransferResult:
    transfer_id: str
    status: TransferStatus
    amount_fen: int
    debit_account: str
    credit_account: str
    bank_serial: str | None = None  # the bank's own reference (流水号)
    failure_reason: TransferFailure | None = None
    failure_message: str | None = None
    limit: LimitKind | None = None  # set with LIMIT_EXCEEDED
    limit_remaining_fen: int | None = None  # what could still pass today/this year
    accepted_at: datetime | None = None
    finished_at: datetime | None = None
    returned_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- statements


class Direction(StrEnum):
    CREDIT = "C"  # money in
    DEBIT = "D"  # money out


@dataclass(frozen=True)
class StatementLine:
    booked_at: datetime  # UTC
    direction: Direction
    amount_fen: int
    counterparty_masked: str
    reference: str  # our transfer id (or the bank's for movements it started)
    bank_serial: str
    balance_after_fen: int


@dataclass(frozen=True)
class Statement:
    """One account's day (对账单), parsed and checked; `raw` is the file as received."""

    bank_code: str
    account_no: str
    statement_date: date
    currency: str
    opening_balance_fen: int
    closing_balance_fen: int
    lines: tuple[StatementLine, ...]
    sha256: str
    raw: bytes = field(repr=False, default=b"")

    @property
    def credits_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines if line.direction is Direction.CREDIT)

    @property
    def debits_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines if line.direction is Direction.DEBIT)


# ---------------------------------------------------------------- webhooks


class NotificationKind(StrEnum):
    CREDIT_RECEIVED = "credit.received"  # money came in from outside (e.g. a top-up)
    TRANSFER_SUCCEEDED = "transfer.succeeded"  # a processing transfer finished
    TRANSFER_FAILED = "transfer.failed"  # a processing transfer ended refused
    TRANSFER_RETURNED = "transfer.returned"  # 退票: a payout came back


@dataclass(frozen=True)
class BankNotification:
    """A verified webhook. `transfer` is the transfer as the bank sees it now."""

    kind: NotificationKind
    event_id: str
    bank_code: str
    transfer: TransferResult
    created_at: datetime


@runtime_checkable
class BankChannel(Protocol):
    """One partner bank. Calls are synchronous and never run inside a DB transaction."""

    bank_code: str
    limits: BankLimits  # what this bank enforces, known up front

    @property
    def custody_account_no(self) -> str:
        """The platform's reserve (备付金) account at this bank."""
        ...

    def open_account(self, request: OpenAccount) -> AccountOpened:
        """Raise `BankError(REJECTED, code=…)` when a real-name check refuses."""
        ...

    def account(self, account_no: str) -> AccountInfo: ...

    def balance(self, account_no: str) -> Balance: ...

    def transfer(self, request: TransferRequest) -> TransferResult:
        """Idempotent by `transfer_id`; a refusal is a FAILED result, not an exception."""
        ...

    def query_transfer(self, transfer_id: str) -> TransferResult: ...

    def download_statement(self, account_no: str, statement_date: date) -> Statement: ...

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> BankNotification:
        """Verify and parse a webhook; raise `NotificationRejected` if it fails."""
        ...
