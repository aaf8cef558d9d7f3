"""The sandbox bank's books: accounts, transfers, limits, holds, returns. One lock; every
public method is atomic. Business decisions live here; `app.py` only speaks HTTP.

Booking rules: a transfer that succeeds at once books a debit on the payer and a credit on the
payee at the same instant. A *processing* transfer holds the payer's money (available balance
drops, ledger balance does not) and reserves its limit usage; it books both sides when it
settles, or releases both when it fails. A returned payout (退票) books a credit back to the
payer with the original transfer id as reference. Statements are read from these bookings, so
they always reconcile with balances.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime

from stdnum import luhn

from cloudpay.channels.bank.limits import LimitBreach, Usage, inflow_breach, outflow_breach
from cloudpay.channels.bank.protocol import (
    AccountClass,
    AccountStatus,
    BankLimits,
    Direction,
    OwnerKind,
    StatementLine,
    TransferFailure,
    TransferStatus,
)
from cloudpay.channels.bank.sandbox.realname import check_applicant
from cloudpay.kernel.business_time import business_date
from cloudpay.kernel.clock import Clock
from cloudpay.kernel.masking import mask_card_number

FAULT_KINDS = frozenset({"timeout", "server_error", "bad_signature"})
SETTLE_OUTCOMES = frozenset({"succeeded", "failed"})
E_ACCOUNT_PREFIX = "623"  # a debit-card BIN range, so e-account numbers look like cards


class BankRefusal(Exception):
    """A request the bank answers with an error status (not a failed transfer)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class OpenCommand:
    request_id: str
    account_class: AccountClass
    owner_kind: OwnerKind
    owner_reference: str
    name: str
    id_number: str
    phone: str
    bound_card: str


@dataclass(frozen=True)
class TransferCommand:
    transfer_id: str
    payer: str
    payee: str
    amount_fen: int
    currency: str
    memo: str
    payee_name: str | None


@dataclass(frozen=True)
class Booking:
    line: StatementLine
    counterparty: str  # unmasked, kept inside the bank


@dataclass
class Account:
    account_no: str
    account_class: AccountClass | None  # None: the platform's custody account
    owner_reference: str
    opened_at: datetime
    bound_card: str | None = None
    command: OpenCommand | None = None
    warnings: tuple[str, ...] = ()
    status: AccountStatus = AccountStatus.ACTIVE
    balance_fen: int = 0
    held_fen: int = 0
    bookings: list[Booking] = field(default_factory=list)
    # Non-bound movements that count against the PBoC caps (held ones included).
    nonbound: dict[str, tuple[datetime, Direction, int]] = field(default_factory=dict)


@dataclass
class Transfer:
    command: TransferCommand
    bank_serial: str
    accepted_at: datetime
    status: TransferStatus
    failure: TransferFailure | None = None
    failure_message: str | None = None
    breach: LimitBreach | None = None
    finished_at: datetime | None = None
    returned_at: datetime | None = None


@dataclass(frozen=True)
class Settlement:
    """A processing transfer to finish later."""

    transfer_id: str
    outcome: str
    delay_s: float


class BankState:
    def __init__(self, *, bank_code: str, limits: BankLimits, clock: Clock) -> None:
        self.bank_code, self.limits, self.clock = bank_code, limits, clock
        self.lock = threading.RLock()
        self._accounts: dict[str, Account] = {}
        self._transfers: dict[str, Transfer] = {}
        self._opened_by_request: dict[str, str] = {}
        self._faults: deque[str] = deque()
        self._later: deque[tuple[str, float]] = deque()  # (outcome, delay_s) per next transfer
        self._sequence = 0

    # ------------------------------------------------------------ ids, faults, modes

    def _serial(self) -> str:
        self._sequence += 1
        stamp = business_date(self.clock.now()).strftime("%Y%m%d")
        return f"{self.bank_code}{stamp}{self._sequence:010d}"

    def _new_account_no(self) -> str:
        while True:
            body = E_ACCOUNT_PREFIX + "".join(secrets.choice("0123456789") for _ in range(15))
            number = body + luhn.calc_check_digit(body)
            if number not in self._accounts:
                return number

    def inject_fault(self, kind: str, count: int = 1) -> None:
        if kind not in FAULT_KINDS or not 1 <= count <= 1000:
            raise ValueError(f"fault kind is one of {sorted(FAULT_KINDS)}, count 1..1000")
        with self.lock:
            self._faults.extend([kind] * count)

    def take_fault(self) -> str | None:
        with self.lock:
            return self._faults.popleft() if self._faults else None

    def settle_later(self, count: int, delay_s: float, outcome: str) -> None:
        if outcome not in SETTLE_OUTCOMES or not 1 <= count <= 1000 or delay_s < 0:
            raise ValueError(f"outcome is one of {sorted(SETTLE_OUTCOMES)}, count 1..1000")
        with self.lock:
            self._later.extend([(outcome, delay_s)] * count)

    # ------------------------------------------------------------ accounts

    def open_custody(self, account_no: str, owner_reference: str, balance_fen: int) -> Account:
        with self.lock:
            now = self.clock.now()
            account = Account(account_no, None, owner_reference, now)
            self._accounts[account_no] = account
            if balance_fen:
                self._book(account, Direction.CREDIT, balance_fen, "OPENING", "opening", now)
            return account

    def open_account(self, command: OpenCommand) -> Account:
        with self.lock:
            known = self._opened_by_request.get(command.request_id)
            if known is not None:
                account = self._accounts[known]
                if account.command != command:
                    raise BankRefusal(409, "request_id_reused", "请求号已用于不同的开户申请")
                return account
            warnings = check_applicant(
                name=command.name,
                id_number=command.id_number,
                phone=command.phone,
                bound_card_number=command.bound_card,
                today=business_date(self.clock.now()),
            )
            account = Account(
                account_no=self._new_account_no(),
                account_class=command.account_class,
                owner_reference=command.owner_reference,
                opened_at=self.clock.now(),
                bound_card=command.bound_card,
                command=command,
                warnings=warnings,
            )
            self._accounts[account.account_no] = account
            self._opened_by_request[command.request_id] = account.account_no
            return account

    def account(self, account_no: str) -> Account:
        with self.lock:
            account = self._accounts.get(account_no)
            if account is None:
                raise BankRefusal(404, "account_not_found", "账户不存在")
            return account

    def set_status(self, account_no: str, status: AccountStatus) -> None:
        with self.lock:
            account = self.account(account_no)
            if account.status is AccountStatus.CLOSED:
                raise BankRefusal(409, "account_closed", "账户已销户")
            if status is AccountStatus.CLOSED and account.balance_fen + account.held_fen:
                raise BankRefusal(409, "balance_not_zero", "账户余额不为零，不能销户")
            account.status = status

    # ------------------------------------------------------------ bookings and usage

    def _book(
        self,
        account: Account,
        direction: Direction,
        amount_fen: int,
        counterparty: str,
        reference: str,
        at: datetime,
    ) -> None:
        account.balance_fen += amount_fen if direction is Direction.CREDIT else -amount_fen
        line = StatementLine(
            booked_at=at,
            direction=direction,
            amount_fen=amount_fen,
            counterparty_masked=mask_card_number(counterparty),
            reference=reference,
            bank_serial=self._serial(),
            balance_after_fen=account.balance_fen,
        )
        account.bookings.append(Booking(line, counterparty))

    def _usage(self, account: Account, now: datetime) -> Usage:
        today = business_date(now)
        sums = dict.fromkeys(("in_day", "in_year", "out_day", "out_year"), 0)
        for at, direction, amount in account.nonbound.values():
            day = business_date(at)
            side = "in" if direction is Direction.CREDIT else "out"
            if day.year == today.year:
                sums[f"{side}_year"] += amount
                if day == today:
                    sums[f"{side}_day"] += amount
        return Usage(sums["in_day"], sums["in_year"], sums["out_day"], sums["out_year"])

    def statement_lines(self, account_no: str, day: date) -> tuple[int, list[StatementLine]]:
        """(opening balance, that day's lines) of an account, from its bookings."""
        with self.lock:
            account = self.account(account_no)
            if day > business_date(self.clock.now()):
                raise BankRefusal(400, "statement_not_ready", "对账单日期不能晚于今天")
            before = [b.line for b in account.bookings if business_date(b.line.booked_at) < day]
            lines = [b.line for b in account.bookings if business_date(b.line.booked_at) == day]
            opening = before[-1].balance_after_fen if before else 0
            return opening, lines

    # ------------------------------------------------------------ transfers

    def transfer(
        self, command: TransferCommand, *, pushed_from_outside: bool = False
    ) -> tuple[Transfer, Settlement | None]:
        """Book, hold or refuse a transfer; the same id twice moves money once."""
        with self.lock:
            existing = self._transfers.get(command.transfer_id)
            if existing is not None:
                if existing.command != command:
                    raise BankRefusal(409, "request_id_reused", "请求号已用于不同的转账")
                return existing, None
            if command.currency != "CNY":
                raise BankRefusal(400, "currency_not_supported", "仅支持人民币")
            now = self.clock.now()
            transfer = Transfer(command, self._serial(), now, TransferStatus.PROCESSING)
            self._transfers[command.transfer_id] = transfer
            refusal = self._refusal(command, now, pushed_from_outside)
            if refusal is not None:
                transfer.failure, transfer.failure_message, transfer.breach = refusal
                transfer.status, transfer.finished_at = TransferStatus.FAILED, now
                return transfer, None
            self._reserve(transfer)
            if not self._later:
                self._complete(transfer, now)
                return transfer, None
            outcome, delay_s = self._later.popleft()
            return transfer, Settlement(command.transfer_id, outcome, delay_s)

    def _internal(self, number: str) -> Account | None:
        return self._accounts.get(number)

    def _refusal(
        self, command: TransferCommand, now: datetime, pushed: bool
    ) -> tuple[TransferFailure, str, LimitBreach | None] | None:
        payer, payee = self._internal(command.payer), self._internal(command.payee)
        for number, account in ((command.payer, payer), (command.payee, payee)):
            if account is None and not (number.isdigit() and 12 <= len(number) <= 19):
                return TransferFailure.ACCOUNT_NOT_FOUND, f"账户 {number} 不存在", None
        if command.payer == command.payee or (payer is None and payee is None):
            return TransferFailure.COUNTERPARTY_NOT_ALLOWED, "付款方与收款方无效", None
        if payer is None and payee is not None and not pushed and payee.bound_card != command.payer:
            return TransferFailure.COUNTERPARTY_NOT_ALLOWED, "只能从绑定卡主动转入", None
        for account in (payer, payee):
            if account is not None and account.status is AccountStatus.CLOSED:
                return TransferFailure.ACCOUNT_CLOSED, f"账户 {account.account_no} 已销户", None
            if account is not None and account.status is AccountStatus.FROZEN:
                return TransferFailure.ACCOUNT_FROZEN, f"账户 {account.account_no} 已冻结", None
        breach = self._breach(command, payer, payee, now)
        if breach is not None:
            return TransferFailure.LIMIT_EXCEEDED, breach.describe(command.amount_fen), breach
        if payer is not None and payer.balance_fen - payer.held_fen < command.amount_fen:
            return TransferFailure.INSUFFICIENT_FUNDS, "可用余额不足", None
        return None

    def _breach(
        self, command: TransferCommand, payer: Account | None, payee: Account | None, now: datetime
    ) -> LimitBreach | None:
        if payer is not None and payer.account_class is not None:
            breach = outflow_breach(
                self.limits.of(payer.account_class),
                self._usage(payer, now),
                amount_fen=command.amount_fen,
                bound=command.payee == payer.bound_card,
            )
            if breach is not None:
                return breach
        if payee is not None and payee.account_class is not None:
            return inflow_breach(
                self.limits.of(payee.account_class),
                self._usage(payee, now),
                amount_fen=command.amount_fen,
                bound=command.payer == payee.bound_card,
                balance_fen=payee.balance_fen,
            )
        return None

    def _reserve(self, transfer: Transfer) -> None:
        command, now = transfer.command, transfer.accepted_at
        payer, payee = self._internal(command.payer), self._internal(command.payee)
        if payer is not None:
            payer.held_fen += command.amount_fen
            if payer.account_class is not None and command.payee != payer.bound_card:
                payer.nonbound[command.transfer_id] = (now, Direction.DEBIT, command.amount_fen)
        bound_inflow = payee is not None and command.payer == payee.bound_card
        if payee is not None and payee.account_class is not None and not bound_inflow:
            payee.nonbound[command.transfer_id] = (now, Direction.CREDIT, command.amount_fen)

    def _complete(self, transfer: Transfer, at: datetime) -> None:
        command = transfer.command
        payer, payee = self._internal(command.payer), self._internal(command.payee)
        if payer is not None:
            payer.held_fen -= command.amount_fen
            self._book(payer, Direction.DEBIT, command.amount_fen, command.payee,
                       command.transfer_id, at)  # fmt: skip
        if payee is not None:
            self._book(payee, Direction.CREDIT, command.amount_fen, command.payer,
                       command.transfer_id, at)  # fmt: skip
        transfer.status, transfer.finished_at = TransferStatus.SUCCEEDED, at

    def settle(self, transfer_id: str, outcome: str) -> Transfer:
        """Finish a processing transfer: book it, or release its hold and usage."""
        with self.lock:
            transfer = self._transfers[transfer_id]
            if transfer.status is not TransferStatus.PROCESSING:
                return transfer
            now = self.clock.now()
            if outcome == "succeeded":
                self._complete(transfer, now)
                return transfer
            command = transfer.command
            for account in (self._internal(command.payer), self._internal(command.payee)):
                if account is not None:
                    account.nonbound.pop(transfer_id, None)
            payer = self._internal(command.payer)
            if payer is not None:
                payer.held_fen -= command.amount_fen
            transfer.status, transfer.finished_at = TransferStatus.FAILED, now
            transfer.failure = TransferFailure.RETURNED_BY_RECEIVER
            transfer.failure_message = "收款行拒绝入账"
            return transfer

    def find_transfer(self, transfer_id: str) -> Transfer:
        with self.lock:
            transfer = self._transfers.get(transfer_id)
            if transfer is None:
                raise BankRefusal(404, "transfer_not_found", "交易不存在")
            return transfer

    def return_payout(self, transfer_id: str, reason: str) -> Transfer:
        """退票: a payout to an external card comes back to the account that sent it."""
        with self.lock:
            transfer = self.find_transfer(transfer_id)
            command = transfer.command
            payer = self._internal(command.payer)
            if transfer.status is not TransferStatus.SUCCEEDED or payer is None:
                raise BankRefusal(409, "not_returnable", "只有成功的付款才能退票")
            if self._internal(command.payee) is not None:
                raise BankRefusal(409, "not_returnable", "行内转账不会退票")
            now = self.clock.now()
            self._book(payer, Direction.CREDIT, command.amount_fen, command.payee, transfer_id, now)
            transfer.status, transfer.returned_at = TransferStatus.RETURNED, now
            transfer.failure_message = reason
            return transfer

    def credit_from_outside(
        self, account_no: str, card_number: str, amount_fen: int, reference: str | None
    ) -> Transfer:
        """Someone pays into an account from a card at another bank (e.g. a top-up)."""
        command = TransferCommand(
            transfer_id=reference or f"ext{secrets.token_hex(8)}",
            payer=card_number,
            payee=account_no,
            amount_fen=amount_fen,
            currency="CNY",
            memo="external credit",
            payee_name=None,
        )
        with self.lock:
            later = list(self._later)
            self._later.clear()  # an incoming credit is booked at once, not "processing"
            try:
                transfer, _ = self.transfer(command, pushed_from_outside=True)
            finally:
                self._later.extend(later)
            return transfer
