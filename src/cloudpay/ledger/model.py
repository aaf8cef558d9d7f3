"""The ledger's rules, pure: double entry with TigerBeetle's semantics, no database.

A transfer debits one account and credits another by the same amount, so the books balance by
construction. Account flags limit balances; pending transfers reserve an amount until posted,
voided or expired; linked transfers form a chain that succeeds or fails as one. Each refused
transfer gets one result code, chosen in the order of precedence of `TRANSFER_RESULT_CODES`
(modelled on https://docs.tigerbeetle.com/reference/requests/create_transfers).

The hot loop works on plain ints and slotted classes: this code runs for every transfer of a
batch, and `IntFlag` arithmetic or pydantic objects here would cost more than the SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# --- limits (each a bound on work or on values, TigerStyle) -------------------------------
MAX_BATCH_SIZE: Final = 8_189  # TigerBeetle's batch size; also keeps SQL IN-lists bounded
MAX_AMOUNT_FEN: Final = 10**15  # ten trillion yuan: far above any real single movement
MAX_BALANCE: Final = 2**63 - 1  # BIGINT
MAX_TIMEOUT_S: Final = 366 * 24 * 3600
MAX_CODE_LENGTH: Final = 64
MAX_USER_DATA_LENGTH: Final = 128
MAX_BALANCE_SHARDS: Final = 64
ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-:.]{0,63}$")
LEDGER_PATTERN: Final = re.compile(r"^[A-Z]{3}$")  # a ledger is an ISO 4217 currency

# --- flags ------------------------------------------------------------------------------
ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS: Final = 1 << 0
ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS: Final = 1 << 1
ACCOUNT_FLAG_NAMES: Final = {
    "debits_must_not_exceed_credits": ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
    "credits_must_not_exceed_debits": ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS,
}

LINKED: Final = 1 << 0
PENDING: Final = 1 << 1
POST_PENDING: Final = 1 << 2
VOID_PENDING: Final = 1 << 3
BALANCING_DEBIT: Final = 1 << 4
BALANCING_CREDIT: Final = 1 << 5
TRANSFER_FLAG_NAMES: Final = {
    "linked": LINKED,
    "pending": PENDING,
    "post_pending_transfer": POST_PENDING,
    "void_pending_transfer": VOID_PENDING,
    "balancing_debit": BALANCING_DEBIT,
    "balancing_credit": BALANCING_CREDIT,
}
_ALL_TRANSFER_FLAGS: Final = sum(TRANSFER_FLAG_NAMES.values())
_RESOLVING: Final = POST_PENDING | VOID_PENDING
_BALANCING: Final = BALANCING_DEBIT | BALANCING_CREDIT

# Pending transfer states.
STATUS_PENDING: Final = "pending"
STATUS_POSTED: Final = "posted"
STATUS_VOIDED: Final = "voided"
STATUS_EXPIRED: Final = "expired"

OK: Final = "ok"
EXISTS: Final = "exists"
# In order of precedence: when several apply, the first listed is reported.
TRANSFER_RESULT_CODES: Final = (
    "linked_event_failed",
    "linked_event_chain_open",
    "id_invalid",
    "exists_with_different_flags",
    "exists_with_different_pending_id",
    "exists_with_different_timeout",
    "exists_with_different_debit_account_id",
    "exists_with_different_credit_account_id",
    "exists_with_different_amount",
    "exists_with_different_user_data",
    "exists_with_different_ledger",
    "exists_with_different_code",
    EXISTS,
    "reserved_flag",
    "flags_are_mutually_exclusive",
    "debit_account_id_invalid",
    "credit_account_id_invalid",
    "accounts_must_be_different",
    "pending_id_must_be_empty",
    "pending_id_must_not_be_empty",
    "pending_id_must_be_different",
    "timeout_reserved_for_pending_transfer",
    "timeout_out_of_range",
    "ledger_invalid",
    "code_invalid",
    "user_data_too_long",
    "amount_must_be_positive",
    "amount_exceeds_maximum",
    "debit_account_not_found",
    "credit_account_not_found",
    "accounts_must_have_the_same_ledger",
    "transfer_must_have_the_same_ledger_as_accounts",
    "pending_transfer_not_found",
    "pending_transfer_not_pending",
    "pending_transfer_has_different_debit_account_id",
    "pending_transfer_has_different_credit_account_id",
    "pending_transfer_has_different_ledger",
    "pending_transfer_has_different_code",
    "exceeds_pending_transfer_amount",
    "pending_transfer_has_different_amount",
    "pending_transfer_already_posted",
    "pending_transfer_already_voided",
    "pending_transfer_expired",
    "debit_account_closed",
    "credit_account_closed",
    "overflows_debits_pending",
    "overflows_credits_pending",
    "overflows_debits_posted",
    "overflows_credits_posted",
    "exceeds_credits",
    "exceeds_debits",
)


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    ledger: str
    code: str
    owner: str
    flags: int = 0
    closed: bool = False
    balance_shards: int = 1
    user_data: str | None = None
    timestamp_ns: int = 0

    @property
    def has_limit(self) -> bool:
        return self.flags != 0


class Balance:
    """Mutable running balance of one account (the sum of its shards)."""

    __slots__ = ("credits_pending", "credits_posted", "debits_pending", "debits_posted")

    def __init__(
        self,
        debits_pending: int = 0,
        debits_posted: int = 0,
        credits_pending: int = 0,
        credits_posted: int = 0,
    ) -> None:
        self.debits_pending = debits_pending
        self.debits_posted = debits_posted
        self.credits_pending = credits_pending
        self.credits_posted = credits_posted

    def copy(self) -> Balance:
        return Balance(
            self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted
        )

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Balance) and self.as_tuple() == other.as_tuple()

    def __hash__(self) -> int:
        return hash(self.as_tuple())

    def __repr__(self) -> str:
        return "Balance(dp={}, dpo={}, cp={}, cpo={})".format(*self.as_tuple())

    @property
    def net_debit(self) -> int:
        """Posted debits minus posted credits (positive for a debit-normal account)."""
        return self.debits_posted - self.credits_posted

    @property
    def net_credit(self) -> int:
        return self.credits_posted - self.debits_posted


class Transfer:
    """A request to move `amount` fen from `debit_account_id` to `credit_account_id`.

    For post/void, accounts, ledger and code may be left empty (taken from the pending
    transfer); `amount=None` posts the full pending amount, or for a balancing transfer means
    "as much as the balance allows".
    """

    __slots__ = (
        "amount",
        "code",
        "credit_account_id",
        "debit_account_id",
        "flags",
        "id",
        "ledger",
        "pending_id",
        "timeout_s",
        "user_data",
    )

    def __init__(
        self,
        id: str,
        debit_account_id: str = "",
        credit_account_id: str = "",
        amount: int | None = None,
        ledger: str = "",
        code: str = "",
        *,
        flags: int = 0,
        pending_id: str | None = None,
        timeout_s: int = 0,
        user_data: str | None = None,
    ) -> None:
        self.id = id
        self.debit_account_id = debit_account_id
        self.credit_account_id = credit_account_id
        self.amount = amount
        self.ledger = ledger
        self.code = code
        self.flags = flags
        self.pending_id = pending_id
        self.timeout_s = timeout_s
        self.user_data = user_data

    def __repr__(self) -> str:
        return (
            f"Transfer({self.id!r}, {self.debit_account_id!r} -> {self.credit_account_id!r}, "
            f"amount={self.amount}, flags={self.flags}, pending_id={self.pending_id!r})"
        )


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """A transfer as committed: the amount actually moved and the ledger's timestamp."""

    id: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    ledger: str
    code: str
    flags: int
    pending_id: str | None
    timeout_s: int
    user_data: str | None
    timestamp_ns: int


@dataclass(slots=True)
class PendingState:
    """The life of a pending transfer after creation."""

    transfer: TransferRecord
    status: str
    resolved_at_ns: int | None = None
    resolved_by: str | None = None

    @property
    def expires_at_ns(self) -> int | None:
        if self.transfer.timeout_s == 0:
            return None
        return self.transfer.timestamp_ns + self.transfer.timeout_s * 1_000_000_000


@dataclass(frozen=True, slots=True)
class TransferResult:
    index: int
    id: str
    result: str
    amount: int | None = None
    timestamp_ns: int | None = None

    @property
    def ok(self) -> bool:
        return self.result in (OK, EXISTS)


def account_flags_conflict(flags: int) -> bool:
    both = ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS | ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS
    return flags & both == both


def debit_limit_breached(flags: int, balance: Balance) -> bool:
    if flags & ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS:
        return balance.debits_pending + balance.debits_posted > balance.credits_posted
    return False


def credit_limit_breached(flags: int, balance: Balance) -> bool:
    if flags & ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS:
        return balance.credits_pending + balance.credits_posted > balance.debits_posted
    return False
