"""Operator API of the ledger: parse → service → schema. Mounted under `/v1/ledger`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.clock import ns_from_datetime
from cloudpay.kernel.errors import (
    CloudPayError,
    Conflict,
    InvalidRequest,
    NotFound,
    PaymentRefused,
)
from cloudpay.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, page_envelope
from cloudpay.ledger import service
from cloudpay.ledger.check import check_books
from cloudpay.ledger.model import ID_PATTERN, MAX_BALANCE
from cloudpay.ledger.schemas import (
    AccountCreate,
    TransferBatch,
    TransferCreate,
    account_view,
    balance_view,
    result_view,
    transfer_view,
)
from cloudpay.web.deps import Operator, TxRunner

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
# Ids in URLs have the ledger's id shape: anything else (a NUL byte, which PostgreSQL refuses
# in text, or 10 kB of junk) is a 400 here rather than a database error later.
AccountId = Annotated[str, Path(pattern=ID_PATTERN.pattern)]
TransferId = Annotated[str, Path(pattern=ID_PATTERN.pattern)]
Cursor = Annotated[str | None, Query(pattern=ID_PATTERN.pattern)]
Owner = Annotated[str | None, Query(max_length=96, pattern=r"^[^\x00]+$")]

# Which request field a ledger result code is about, first match wins (order matters:
# `timeout_reserved_for_pending_transfer` is about the timeout, `debit_account_id_invalid`
# about the debit account, not the transfer's own id).
_PARAM_BY_CODE_PART = (
    ("exists_with_different", "id"),
    ("timeout", "timeout_s"),
    ("amount", "amount"),
    ("exceeds", "amount"),
    ("overflows", "amount"),
    ("debit_account", "debit_account_id"),
    ("credit_account", "credit_account_id"),
    ("accounts_must", "credit_account_id"),
    ("id_invalid", "id"),
    ("ledger", "ledger"),
    ("code", "code"),
    ("user_data", "user_data"),
    ("flag", "flags"),
    ("pending", "pending_id"),
    ("owner", "owner"),
    ("shard", "balance_shards"),
)


def param_of(code: str) -> str | None:
    """The request field a ledger result code points at, for the error's `param`."""
    return next((param for part, param in _PARAM_BY_CODE_PART if part in code), None)


def refusal(code: str, subject: str) -> CloudPayError:
    """The HTTP error for a ledger result code (single-item endpoints only)."""
    message = f"{subject} refused: {code}"
    param = param_of(code)
    if code.startswith(("exists_with_different", "pending_transfer_already")):
        return Conflict(message, code=code, param=param)
    if code in ("pending_transfer_expired", "linked_event_failed", "linked_event_chain_open"):
        return Conflict(message, code=code, param=param)
    if code in ("exceeds_credits", "exceeds_debits"):
        return PaymentRefused(message, code=code, param=param)
    if code.endswith("_not_found"):
        return NotFound(message, code=code, param=param)
    return InvalidRequest(message, code=code, param=param)


@router.post("/accounts", status_code=201)
async def create_account(body: AccountCreate, runner: TxRunner, _: Operator) -> JSONResponse:
    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        new = service.NewAccount(
            owner=body.owner, code=body.code, ledger=body.ledger, flags=body.flag_bits(),
            balance_shards=body.balance_shards, user_data=body.user_data, id=body.id,
        )  # fmt: skip
        [result] = service.create_accounts(uow, [new])
        if not result.ok:
            raise refusal(result.result, "account")
        found = service.get_account(uow, result.id)
        return (201 if result.result == "ok" else 200), account_view(found.account, found.balance)

    return await runner.write_idempotent("operator", work)


@router.get("/accounts")
def list_accounts(
    request: Request,
    runner: TxRunner,
    _: Operator,
    owner: Owner = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: Cursor = None,
) -> dict[str, Any]:
    rows = runner.read(
        lambda uow: service.list_accounts(
            uow, owner=owner, limit=limit + 1, starting_after=starting_after
        )
    )
    items = [account_view(r.account, r.balance) for r in rows]
    return page_envelope(items, limit=limit, url=request.url.path)


@router.get("/accounts/{account_id}")
def get_account(account_id: AccountId, runner: TxRunner, _: Operator) -> dict[str, Any]:
    found = runner.read(lambda uow: service.get_account(uow, account_id))
    return account_view(found.account, found.balance)


@router.get("/accounts/{account_id}/balance")
def get_balance(
    account_id: AccountId, runner: TxRunner, _: Operator, as_of: datetime | None = None
) -> dict[str, Any]:
    """The balance now, or recomputed from the transfers as of an instant (ISO 8601, zoned)."""
    if as_of is None:
        found = runner.read(lambda uow: service.get_account(uow, account_id))
        return {"object": "ledger.balance", "as_of": None, **balance_view(found.balance)}
    if as_of.tzinfo is None:
        raise InvalidRequest("as_of needs a time zone", code="parameter_invalid", param="as_of")
    as_of_ns = _as_of_ns(as_of)
    balance = runner.read(lambda uow: service.balance_as_of(uow, account_id, as_of_ns))
    return {"object": "ledger.balance", "as_of": as_of.isoformat(), **balance_view(balance)}


def _as_of_ns(as_of: datetime) -> int:
    """Ledger timestamps are BIGINT nanoseconds: 1970 to 2262 is all there is to ask about."""
    try:
        as_of_ns = ns_from_datetime(as_of)
    except OverflowError:  # year 1 at +14:00 is before datetime.min in UTC
        as_of_ns = -1
    if not 0 <= as_of_ns <= MAX_BALANCE:
        raise InvalidRequest(
            "as_of must be between 1970-01-01 and 2262-04-11 (UTC)",
            code="parameter_invalid", param="as_of",
        )  # fmt: skip
    return as_of_ns


@router.get("/accounts/{account_id}/transfers")
def account_statement(
    request: Request,
    account_id: AccountId,
    runner: TxRunner,
    _: Operator,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: Cursor = None,
) -> dict[str, Any]:
    records = runner.read(
        lambda uow: service.account_statement(
            uow, account_id, limit=limit + 1, starting_after=starting_after
        )
    )
    return page_envelope([transfer_view(r) for r in records], limit=limit, url=request.url.path)


@router.post("/accounts/{account_id}/close")
async def close_account(account_id: AccountId, runner: TxRunner, _: Operator) -> JSONResponse:
    return await _set_closed(runner, account_id, closed=True)


@router.post("/accounts/{account_id}/reopen")
async def reopen_account(account_id: AccountId, runner: TxRunner, _: Operator) -> JSONResponse:
    return await _set_closed(runner, account_id, closed=False)


async def _set_closed(runner: TxRunner, account_id: str, *, closed: bool) -> JSONResponse:
    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        found = service.set_account_closed(uow, account_id, closed=closed)
        return 200, account_view(found.account, found.balance)

    return await runner.write_idempotent("operator", work)


@router.post("/transfers", status_code=201)
async def create_transfer(body: TransferCreate, runner: TxRunner, _: Operator) -> JSONResponse:
    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        result = service.create_transfer(uow, body.to_domain())
        if not result.ok:
            raise refusal(result.result, "transfer")
        record = service.get_transfer(uow, result.id)
        pending = service.get_pending_state(uow, record.id)
        return (201 if result.result == "ok" else 200), transfer_view(record, pending)

    return await runner.write_idempotent("operator", work)


@router.post("/transfers/batch")
async def create_transfer_batch(body: TransferBatch, runner: TxRunner, _: Operator) -> JSONResponse:
    """Per-item results, in order; refused items do not stop the others (unless linked)."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        results = service.create_transfers(uow, [t.to_domain() for t in body.transfers])
        return 200, {
            "object": "list",
            "data": [result_view(r) for r in results],
            "failed": sum(1 for r in results if not r.ok),
        }

    return await runner.write_idempotent("operator", work)


@router.get("/transfers/{transfer_id}")
def get_transfer(transfer_id: TransferId, runner: TxRunner, _: Operator) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        record = service.get_transfer(uow, transfer_id)
        return transfer_view(record, service.get_pending_state(uow, transfer_id))

    result: dict[str, Any] = runner.read(work)
    return result


@router.get("/check")
def books_check(runner: TxRunner, _: Operator) -> dict[str, Any]:
    report = runner.read(check_books)
    return {
        "object": "ledger.check",
        "ok": report.ok,
        "accounts": report.accounts,
        "totals": report.totals,
        "problems": report.problems,
    }
