"""`Idempotency-Key` over real HTTP, on SQLite and PostgreSQL: a retried POST gets the stored
first response and has one effect; a reused key with another body is a 409; keys expire."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from cloudpay.db.idempotency import MAX_KEY_LENGTH
from cloudpay.kernel.clock import FixedClock
from tests.conftest import OPERATOR_HEADERS
from tests.e2e.api_helpers import (
    ACCOUNTS,
    TRANSFERS,
    assert_error,
    balance,
    books,
    get,
    open_account,
    post,
    transfer_body,
)

FUNDING, MERCHANT = "acc_funding", "acc_merchant"
REPLAYED = "idempotent-replayed"
TTL_HOURS = 48  # Settings.idempotency_ttl_hours, the default the test app runs with


@pytest.fixture
def api(live_api: httpx.Client) -> httpx.Client:
    open_account(live_api, FUNDING)
    open_account(live_api, MERCHANT)
    return live_api


def _account_without_id(owner: str) -> dict[str, Any]:
    """No id: without the key every retry would open (or collide on) another account."""
    return {"owner": owner, "code": "merchant_available"}


def test_same_key_and_body_replays_the_first_response_with_one_effect(api: httpx.Client) -> None:
    """A retry with the same key and body gets the stored status and body, marked as replayed."""
    first = post(api, ACCOUNTS, _account_without_id("merchant:new"), key="open-1")
    assert first.status_code == 201
    assert REPLAYED not in first.headers
    again = post(api, ACCOUNTS, _account_without_id("merchant:new"), key="open-1")
    assert again.status_code == 201
    assert again.headers[REPLAYED] == "true"
    assert again.json() == first.json()
    owned = get(api, ACCOUNTS, owner="merchant:new").json()["data"]
    assert [a["id"] for a in owned] == [first.json()["id"]]

    body = transfer_body("trf_1", FUNDING, MERCHANT, 500)
    created = post(api, TRANSFERS, body, key="pay-1")
    replayed = post(api, TRANSFERS, body, key="pay-1")
    # Without the key a replayed transfer id answers 200 `exists`; the stored 201 proves replay.
    assert (created.status_code, replayed.status_code) == (201, 201)
    assert replayed.json() == created.json()
    assert replayed.headers[REPLAYED] == "true"
    assert balance(api, MERCHANT)["credits_posted"] == 500


def test_same_key_with_another_body_or_route_is_a_409(api: httpx.Client) -> None:
    """A key reused for another request is refused with `idempotency_key_reused`; nothing runs."""
    assert post(api, TRANSFERS, transfer_body("trf_1", FUNDING, MERCHANT, 100), key="k").is_success
    before = books(api)
    others = [
        (TRANSFERS, transfer_body("trf_1", FUNDING, MERCHANT, 200)),
        (TRANSFERS, transfer_body("trf_2", FUNDING, MERCHANT, 100)),
        (ACCOUNTS, _account_without_id("merchant:other")),
    ]
    for path, body in others:
        response = post(api, path, body, key="k")
        error = assert_error(response, 409, "idempotency_key_reused", "Idempotency-Key")
        assert error["type"] == "idempotency_error"
        assert REPLAYED not in response.headers
    assert books(api) == before
    assert_error(get(api, f"{TRANSFERS}/trf_2"), 404, "resource_missing")


def test_key_order_and_whitespace_do_not_make_another_body(api: httpx.Client) -> None:
    """The same JSON with its keys reordered and spaced differently is the same request."""
    compact = (
        b'{"id":"trf_1","debit_account_id":"acc_funding","credit_account_id":"acc_merchant",'
        b'"amount":250,"code":"payment"}'
    )
    spaced = (
        b'{\n  "code": "payment",\n  "amount": 250,\n  "credit_account_id": "acc_merchant",'
        b'\n  "debit_account_id": "acc_funding",   "id": "trf_1"\n}\n'
    )
    headers = {**OPERATOR_HEADERS, "content-type": "application/json", "Idempotency-Key": "ws"}
    first = api.post(TRANSFERS, content=compact, headers=headers)
    second = api.post(TRANSFERS, content=spaced, headers=headers)
    assert first.status_code == 201
    assert second.status_code == 201
    assert second.headers[REPLAYED] == "true"
    assert second.json() == first.json()
    assert balance(api, MERCHANT)["credits_posted"] == 250


@pytest.mark.parametrize(
    "key", ["k" * (MAX_KEY_LENGTH + 1), "tab\there"], ids=["too_long", "unprintable"]
)
def test_malformed_key_is_a_400_and_writes_nothing(api: httpx.Client, key: str) -> None:
    """An over-long or unprintable key is refused before any work; a 255-character key is fine."""
    before = books(api)
    response = post(api, TRANSFERS, transfer_body("trf_1", FUNDING, MERCHANT, 100), key=key)
    assert_error(response, 400, "idempotency_key_invalid", "Idempotency-Key")
    assert books(api) == before
    assert_error(get(api, f"{TRANSFERS}/trf_1"), 404, "resource_missing")
    longest = "k" * MAX_KEY_LENGTH
    assert (
        post(
            api, TRANSFERS, transfer_body("trf_1", FUNDING, MERCHANT, 100), key=longest
        ).status_code
        == 201
    )


def test_key_is_kept_for_its_ttl_and_reusable_after(api: httpx.Client, clock: FixedClock) -> None:
    """Within 48 h the key replays and refuses other bodies; after it, the key starts afresh."""
    first = transfer_body("trf_1", FUNDING, MERCHANT, 100)
    later = transfer_body("trf_2", FUNDING, MERCHANT, 40)
    assert post(api, TRANSFERS, first, key="daily").status_code == 201
    clock.advance(hours=TTL_HOURS - 1)
    assert post(api, TRANSFERS, first, key="daily").headers[REPLAYED] == "true"
    assert_error(post(api, TRANSFERS, later, key="daily"), 409, "idempotency_key_reused")
    clock.advance(hours=2)
    reused = post(api, TRANSFERS, later, key="daily")
    assert reused.status_code == 201
    assert REPLAYED not in reused.headers
    assert reused.json()["id"] == "trf_2"
    assert balance(api, MERCHANT)["credits_posted"] == 140
    assert post(api, TRANSFERS, later, key="daily").headers[REPLAYED] == "true"


@pytest.mark.parametrize("kind", ["account", "transfer"])
def test_concurrent_requests_with_one_key_have_one_effect(api: httpx.Client, kind: str) -> None:
    """Eight simultaneous requests with one key: one effect, eight identical responses."""
    path, body = (
        (ACCOUNTS, _account_without_id("merchant:raced"))
        if kind == "account"
        else (TRANSFERS, transfer_body("trf_raced", FUNDING, MERCHANT, 700))
    )
    threads = 8
    start = threading.Barrier(threads)

    def send(_: int) -> httpx.Response:
        start.wait()
        return post(api, path, body, key=f"race-{kind}")

    with ThreadPoolExecutor(threads) as pool:
        responses = list(pool.map(send, range(threads)))
    answers = [(r.status_code, r.json()) for r in responses]
    assert answers == [answers[0]] * threads
    assert answers[0][0] == 201
    assert sum(REPLAYED not in r.headers for r in responses) == 1
    if kind == "account":
        assert len(get(api, ACCOUNTS, owner="merchant:raced").json()["data"]) == 1
    else:
        assert balance(api, MERCHANT)["credits_posted"] == 700
    assert get(api, "/v1/ledger/check").json()["ok"]
