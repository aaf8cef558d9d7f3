"""Pure mapping between the partner bank's JSON dialect and `protocol.py` types.

The bank's field names (`acct_no`, `txn_status`, `ret_code`, …), its account-class codes
("2", "3") and its status words (NORMAL / FROZEN / CLOSED, SUCCESS / PROCESSING / FAILED /
RETURNED) stay in this module; nothing else in CloudPay sees them. Times travel as ISO 8601
with the +08:00 offset the bank works in. No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cloudpay.channels.bank.protocol import (
    AccountClass,
    AccountInfo,
    AccountOpened,
    AccountStatus,
    Balance,
    BankNotification,
    LimitKind,
    NotificationKind,
    OpenAccount,
    TransferFailure,
    TransferRequest,
    TransferResult,
    TransferStatus,
)
from cloudpay.kernel.business_time import SHANGHAI
from cloudpay.kernel.clock import require_utc

API = "/api/v1"
ACCOUNTS_PATH = f"{API}/e-accounts"
TRANSFERS_PATH = f"{API}/transfers"
STATEMENTS_PATH = f"{API}/statements"
LIMITS_PATH = f"{API}/limits"
CUSTODY_CLASS = "CUSTODY"

CLASS_TO_WIRE = {AccountClass.CLASS_II: "2", AccountClass.CLASS_III: "3"}
CLASS_FROM_WIRE = {wire: ours for ours, wire in CLASS_TO_WIRE.items()}
STATUS_TO_WIRE = {
    AccountStatus.ACTIVE: "NORMAL",
    AccountStatus.FROZEN: "FROZEN",
    AccountStatus.CLOSED: "CLOSED",
}
STATUS_FROM_WIRE = {wire: ours for ours, wire in STATUS_TO_WIRE.items()}
TXN_TO_WIRE = {
    TransferStatus.SUCCEEDED: "SUCCESS",
    TransferStatus.PROCESSING: "PROCESSING",
    TransferStatus.FAILED: "FAILED",
    TransferStatus.RETURNED: "RETURNED",
}
TXN_FROM_WIRE = {wire: ours for ours, wire in TXN_TO_WIRE.items()}
EVENT_TO_WIRE = {
    NotificationKind.CREDIT_RECEIVED: "CREDIT_RECEIVED",
    NotificationKind.TRANSFER_SUCCEEDED: "TXN_SUCCESS",
    NotificationKind.TRANSFER_FAILED: "TXN_FAILED",
    NotificationKind.TRANSFER_RETURNED: "TXN_RETURNED",
}
EVENT_FROM_WIRE = {wire: ours for ours, wire in EVENT_TO_WIRE.items()}


class UnexpectedField(ValueError):
    """The bank sent a value this adapter does not know: an invalid answer, not a guess."""


def _lookup(table: Mapping[str, Any], value: object, what: str) -> Any:
    if not isinstance(value, str) or value not in table:
        raise UnexpectedField(f"unknown {what} {value!r}")
    return table[value]


def format_time(instant: datetime) -> str:
    return require_utc(instant).astimezone(SHANGHAI).isoformat(timespec="seconds")


def parse_time(value: object) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise UnexpectedField(f"time must be a string, got {value!r}")
    return require_utc(datetime.fromisoformat(value))


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnexpectedField(f"{what} must be an integer of fen, got {value!r}")
    return value


# ---------------------------------------------------------------- requests


def open_account_body(request: OpenAccount) -> dict[str, Any]:
    return {
        "req_id": request.request_id,
        "acct_class": CLASS_TO_WIRE[request.account_class],
        "owner_type": request.owner_kind.value.upper(),
        "owner_ref": request.owner_reference,
        "cust_name": request.name,
        "cert_type": "01",  # 居民身份证
        "cert_no": request.id_number,
        "mobile": request.phone,
        "bind_card_no": request.bound_card_number,
    }


def transfer_body(request: TransferRequest) -> dict[str, Any]:
    return {
        "req_id": request.transfer_id,
        "payer_acct": request.debit_account,
        "payee_acct": request.credit_account,
        "amount": request.amount_fen,
        "ccy": request.currency,
        "memo": request.memo,
        "payee_name": request.counterparty_name,
    }


# ---------------------------------------------------------------- answers


def account_opened(answer: Mapping[str, Any]) -> AccountOpened:
    opened_at = parse_time(answer["open_time"])
    if opened_at is None:
        raise UnexpectedField("open_time is missing")
    warnings = answer.get("warnings") or []
    if not isinstance(warnings, list):
        raise UnexpectedField("warnings must be a list")
    return AccountOpened(
        account_no=str(answer["acct_no"]),
        account_class=_lookup(CLASS_FROM_WIRE, answer["acct_class"], "account class"),
        status=_lookup(STATUS_FROM_WIRE, answer["acct_status"], "account status"),
        owner_reference=str(answer["owner_ref"]),
        bound_card_masked=str(answer["bind_card_no"]),
        opened_at=opened_at,
        warnings=tuple(str(warning["code"]) for warning in warnings),
        raw=answer,
    )


def account_info(answer: Mapping[str, Any]) -> AccountInfo:
    wire_class = answer["acct_class"]
    account_class = (
        None if wire_class == CUSTODY_CLASS else _lookup(CLASS_FROM_WIRE, wire_class, "class")
    )
    card = answer.get("bind_card_no")
    return AccountInfo(
        account_no=str(answer["acct_no"]),
        account_class=account_class,
        status=_lookup(STATUS_FROM_WIRE, answer["acct_status"], "account status"),
        owner_reference=str(answer["owner_ref"]),
        bound_card_masked=None if card is None else str(card),
        raw=answer,
    )


def balance(answer: Mapping[str, Any]) -> Balance:
    as_of = parse_time(answer["as_of"])
    if as_of is None:
        raise UnexpectedField("as_of is missing")
    return Balance(
        account_no=str(answer["acct_no"]),
        balance_fen=_int(answer["ledger_bal"], "ledger_bal"),
        available_fen=_int(answer["avail_bal"], "avail_bal"),
        currency=str(answer["ccy"]),
        as_of=as_of,
    )


def transfer_result(answer: Mapping[str, Any]) -> TransferResult:
    failure = answer.get("fail_code")
    limit = answer.get("limit_type")
    remaining = answer.get("limit_remaining")
    return TransferResult(
        transfer_id=str(answer["req_id"]),
        status=_lookup(TXN_FROM_WIRE, answer["txn_status"], "transfer status"),
        amount_fen=_int(answer["amount"], "amount"),
        debit_account=str(answer["payer_acct"]),
        credit_account=str(answer["payee_acct"]),
        bank_serial=answer.get("bank_serial"),
        failure_reason=None
        if failure is None
        else _lookup({f.value: f for f in TransferFailure}, failure, "failure code"),
        failure_message=answer.get("fail_msg"),
        limit=None if limit is None else _lookup({k.value: k for k in LimitKind}, limit, "limit"),
        limit_remaining_fen=None if remaining is None else _int(remaining, "limit_remaining"),
        accepted_at=parse_time(answer.get("accept_time")),
        finished_at=parse_time(answer.get("finish_time")),
        returned_at=parse_time(answer.get("return_time")),
        raw=answer,
    )


def notification(event: Mapping[str, Any]) -> BankNotification:
    created_at = parse_time(event["create_time"])
    if created_at is None:
        raise UnexpectedField("create_time is missing")
    transaction = event["txn"]
    if not isinstance(transaction, Mapping):
        raise UnexpectedField("txn must be an object")
    return BankNotification(
        kind=_lookup(EVENT_FROM_WIRE, event["event_type"], "event type"),
        event_id=str(event["event_id"]),
        bank_code=str(event["bank_code"]),
        transfer=transfer_result(transaction),
        created_at=created_at,
    )
