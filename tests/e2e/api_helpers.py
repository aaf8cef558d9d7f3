"""Small HTTP helpers for the operator API tests: the error-shape check and ledger calls."""

from __future__ import annotations

from typing import Any

import httpx

from cloudpay.kernel.errors import STATUS_BY_TYPE
from tests.conftest import OPERATOR_HEADERS

ACCOUNTS = "/v1/ledger/accounts"
TRANSFERS = "/v1/ledger/transfers"
BATCH = "/v1/ledger/transfers/batch"
CHECK = "/v1/ledger/check"
ERROR_FIELDS = {"type", "code", "message", "param", "request_id"}
ANY_PARAM = object()
# Statuses whose error type is not the STATUS_BY_TYPE one (they come from the HTTP layer).
_HTTP_LAYER_STATUSES = {405, 413}
_INTERNALS = ("Traceback", "sqlalchemy", "psycopg", "sqlite3", "IntegrityError", "Exception")


def assert_error(
    response: httpx.Response, status: int, code: str, param: object = ANY_PARAM
) -> dict[str, Any]:
    """`response` is the one error shape with this status, code and param; returns the error."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) - {"details"} == ERROR_FIELDS, error
    assert error["code"] == code, error
    if param is not ANY_PARAM:
        assert error["param"] == param, error
    assert error["request_id"] == response.headers["request-id"]
    assert error["request_id"].startswith("req_")
    assert isinstance(error["message"], str)
    assert error["message"]
    assert not any(word in error["message"] for word in _INTERNALS), error["message"]
    if status not in _HTTP_LAYER_STATUSES:
        assert STATUS_BY_TYPE[error["type"]] == status, error
    return error


def post(
    client: httpx.Client, path: str, body: Any = None, *, key: str | None = None
) -> httpx.Response:
    headers = dict(OPERATOR_HEADERS)
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(path, json=body, headers=headers)


def get(client: httpx.Client, path: str, **params: Any) -> httpx.Response:
    return client.get(path, params=params, headers=OPERATOR_HEADERS)


def open_account(
    client: httpx.Client,
    account_id: str,
    *,
    owner: str | None = None,
    code: str = "merchant_available",
    ledger: str = "CNY",
    flags: tuple[str, ...] = (),
) -> dict[str, Any]:
    body = {
        "id": account_id, "owner": owner or f"owner:{account_id}", "code": code,
        "ledger": ledger, "flags": list(flags),
    }  # fmt: skip
    response = post(client, ACCOUNTS, body)
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()
    return account


def transfer_body(
    transfer_id: str, debit: str, credit: str, amount: int | None, **fields: Any
) -> dict[str, Any]:
    return {
        "id": transfer_id, "debit_account_id": debit, "credit_account_id": credit,
        "amount": amount, "code": "payment", **fields,
    }  # fmt: skip


def move(
    client: httpx.Client, transfer_id: str, debit: str, credit: str, amount: int, **fields: Any
) -> dict[str, Any]:
    """Create a transfer that must succeed; returns its view."""
    response = post(client, TRANSFERS, transfer_body(transfer_id, debit, credit, amount, **fields))
    assert response.status_code == 201, response.text
    view: dict[str, Any] = response.json()
    return view


def balance(client: httpx.Client, account_id: str) -> dict[str, int]:
    response = get(client, f"{ACCOUNTS}/{account_id}/balance")
    assert response.status_code == 200, response.text
    return {k: v for k, v in response.json().items() if k not in ("object", "as_of")}


def books(client: httpx.Client) -> dict[str, Any]:
    """Everything a request could have written, as the API shows it: totals and accounts."""
    check = get(client, CHECK).json()
    accounts = get(client, ACCOUNTS, limit=100).json()
    assert check["ok"], check["problems"]
    return {
        "accounts": check["accounts"],
        "totals": check["totals"],
        "listed": [(a["id"], a["code"], a["closed"], a["balance"]) for a in accounts["data"]],
    }
