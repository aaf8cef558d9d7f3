"""Wire shapes of the ledger's operator API. Never ORM rows; amounts are integer fen."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from cloudpay.kernel.clock import datetime_from_ns
from cloudpay.ledger.model import (
    ACCOUNT_FLAG_NAMES,
    MAX_BATCH_SIZE,
    TRANSFER_FLAG_NAMES,
    Account,
    Balance,
    PendingState,
    Transfer,
    TransferRecord,
    TransferResult,
)

AccountFlagName = Literal["debits_must_not_exceed_credits", "credits_must_not_exceed_debits"]
TransferFlagName = Literal[
    "linked",
    "pending",
    "post_pending_transfer",
    "void_pending_transfer",
    "balancing_debit",
    "balancing_credit",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL text cannot hold NUL and SQLite would store it: refuse it on both.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class AccountCreate(Strict):
    id: str | None = Field(default=None, max_length=64, description="your id; makes retries safe")
    owner: str = Field(min_length=1, max_length=96, examples=["merchant:mch_01…"])
    code: str = Field(min_length=1, max_length=64, examples=["merchant_pending"])
    ledger: str = Field(default="CNY", min_length=3, max_length=3)
    flags: list[AccountFlagName] = Field(default_factory=list)
    balance_shards: StrictInt = Field(default=1, ge=1, le=64)
    user_data: str | None = Field(default=None, max_length=128)

    def flag_bits(self) -> int:
        return sum(ACCOUNT_FLAG_NAMES[name] for name in set(self.flags))


class TransferCreate(Strict):
    id: str = Field(min_length=1, max_length=64, description="your id: the idempotency key")
    debit_account_id: str = Field(default="", max_length=64)
    credit_account_id: str = Field(default="", max_length=64)
    amount: StrictInt | None = Field(default=None, description="fen; omit to post all / balance")
    ledger: str = Field(default="", max_length=3, description="currency; CNY if omitted")
    code: str = Field(default="", max_length=64, description="why the money moves")
    flags: list[TransferFlagName] = Field(default_factory=list)
    pending_id: str | None = Field(default=None, max_length=64)
    timeout_s: StrictInt = 0
    user_data: str | None = Field(default=None, max_length=128)

    def to_domain(self) -> Transfer:
        flags = sum(TRANSFER_FLAG_NAMES[name] for name in set(self.flags))
        resolving = "post_pending_transfer" in self.flags or "void_pending_transfer" in self.flags
        return Transfer(
            self.id,
            self.debit_account_id,
            self.credit_account_id,
            self.amount,
            self.ledger or ("" if resolving else "CNY"),
            self.code,
            flags=flags,
            pending_id=self.pending_id,
            timeout_s=self.timeout_s,
            user_data=self.user_data,
        )


class TransferBatch(Strict):
    transfers: list[TransferCreate] = Field(min_length=1, max_length=MAX_BATCH_SIZE)


def balance_view(balance: Balance) -> dict[str, int]:
    return {
        "debits_pending": balance.debits_pending,
        "debits_posted": balance.debits_posted,
        "credits_pending": balance.credits_pending,
        "credits_posted": balance.credits_posted,
        "net_credit_posted": balance.net_credit,
    }


def account_view(account: Account, balance: Balance) -> dict[str, object]:
    return {
        "object": "ledger.account",
        "id": account.id,
        "owner": account.owner,
        "code": account.code,
        "ledger": account.ledger,
        "flags": [name for name, bit in ACCOUNT_FLAG_NAMES.items() if account.flags & bit],
        "closed": account.closed,
        "balance_shards": account.balance_shards,
        "user_data": account.user_data,
        "created": datetime_from_ns(account.timestamp_ns).isoformat(),
        "balance": balance_view(balance),
    }


def transfer_view(record: TransferRecord, pending: PendingState | None = None) -> dict[str, object]:
    view: dict[str, object] = {
        "object": "ledger.transfer",
        "id": record.id,
        "debit_account_id": record.debit_account_id,
        "credit_account_id": record.credit_account_id,
        "amount": record.amount,
        "ledger": record.ledger,
        "code": record.code,
        "flags": [name for name, bit in TRANSFER_FLAG_NAMES.items() if record.flags & bit],
        "pending_id": record.pending_id,
        "timeout_s": record.timeout_s,
        "user_data": record.user_data,
        "timestamp_ns": record.timestamp_ns,
        "created": datetime_from_ns(record.timestamp_ns).isoformat(),
    }
    if pending is not None:
        view["pending_status"] = pending.status
    return view


def result_view(result: TransferResult) -> dict[str, object]:
    return {
        "index": result.index,
        "id": result.id,
        "result": result.result,
        "amount": result.amount,
        "timestamp_ns": result.timestamp_ns,
    }
