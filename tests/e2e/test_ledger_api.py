"""The ledger's operator API over real HTTP, on SQLite and PostgreSQL.

Bad input is a 4xx in the one error shape and writes nothing; the happy paths (accounts,
transfers, batches, holds, statements, balances as of a time, closing) do what the ledger
promises.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import httpx
import pytest

from cloudpay.config import Settings
from cloudpay.db.engine import make_engine
from cloudpay.db.local_postgres import LocalPostgres
from cloudpay.kernel.clock import FixedClock
from cloudpay.ledger.model import ID_PATTERN, MAX_BATCH_SIZE
from cloudpay.main import create_app
from cloudpay.web.middleware import MAX_BODY_BYTES
from tests.conftest import OPERATOR_HEADERS, OPERATOR_TOKEN, serving
from tests.e2e.api_helpers import (
    ACCOUNTS,
    BATCH,
    TRANSFERS,
    assert_error,
    balance,
    books,
    get,
    move,
    open_account,
    post,
    transfer_body,
)

FUNDING, MERCHANT, LIMITED, DOLLARS, CLOSED = (
    "acc_funding", "acc_merchant", "acc_limited", "acc_dollars", "acc_closed",
)  # fmt: skip


# --- one server per backend for the bad-input table ---------------------------------------
# Bad input must write nothing, so the cases can share a database; a server per case would
# cost half a second each.
@pytest.fixture(scope="module")
def shared_api(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("bad_input") / "cloudpay.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url, drop = f"sqlite:///{path}", (lambda: None)
    else:
        cluster: LocalPostgres = request.getfixturevalue("postgres_cluster")
        name = f"t_{uuid.uuid4().hex[:12]}"
        url = cluster.create_database(name, template="cloudpay_template")
        drop = lambda: cluster.drop_database(name)  # noqa: E731
    isolation = str(request.config.getoption("--pg-isolation"))
    settings = Settings(
        env="test", database_url=url, database_isolation=isolation,  # type: ignore[arg-type]
        operator_token=OPERATOR_TOKEN,  # type: ignore[arg-type]
    )  # fmt: skip
    engine = make_engine(url, isolation_level=isolation, pool_size=10)
    try:
        with serving(create_app(settings, engine=engine, clock=FixedClock())) as client:
            _build_world(client)
            yield client
    finally:
        engine.dispose()
        drop()


def _build_world(client: httpx.Client) -> None:
    """A funded merchant, an empty limited account, a dollar account and a closed one."""
    open_account(client, FUNDING, code="platform_funding")
    open_account(client, MERCHANT)
    open_account(client, LIMITED, flags=("debits_must_not_exceed_credits",))
    open_account(client, DOLLARS, ledger="USD")
    open_account(client, CLOSED)
    assert post(client, f"{ACCOUNTS}/{CLOSED}/close").status_code == 200
    move(client, "seed_1", FUNDING, MERCHANT, 10_000)


@dataclass(frozen=True)
class Bad:
    """One bad request and the error it must get."""

    status: int
    code: str
    param: str | None
    body: Any = None
    content: bytes | Callable[[], bytes] | None = None
    method: str = "POST"
    path: str = TRANSFERS
    headers: dict[str, str | None] = field(default_factory=dict)


BadAccount = partial(Bad, path=ACCOUNTS)


def _t(**changes: Any) -> dict[str, Any]:
    """A valid transfer (funding → merchant, 100 fen) with `changes`; None removes a field."""
    body = transfer_body("t_bad", FUNDING, MERCHANT, 100)
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def _a(**changes: Any) -> dict[str, Any]:
    body = {"id": "acc_new", "owner": "merchant:new", "code": "merchant_available", **changes}
    return {k: v for k, v in body.items() if v is not None}


JSON = {"content-type": "application/json"}
INVALID, MISSING = "parameter_invalid", "parameter_missing"
NO_AUTH: dict[str, str | None] = {"authorization": None}
BALANCE = f"{ACCOUNTS}/{MERCHANT}/balance?as_of="
BOTH_LIMITS = ["debits_must_not_exceed_credits", "credits_must_not_exceed_debits"]
POST_UNKNOWN = {"id": "t_bad", "pending_id": "t_nope", "flags": ["post_pending_transfer"]}


def _big_batch() -> dict[str, Any]:
    return {"transfers": [_t(id=f"t_big_{i}") for i in range(MAX_BATCH_SIZE + 1)]}


_BAD = {
    # amounts: integers in fen, positive, at most 10^15
    "amount_negative": Bad(400, "amount_must_be_positive", "amount", _t(amount=-1)),
    "amount_zero": Bad(400, "amount_must_be_positive", "amount", _t(amount=0)),
    "amount_over_1e15": Bad(400, "amount_exceeds_maximum", "amount", _t(amount=10**15 + 1)),
    "amount_over_2e63": Bad(400, "amount_exceeds_maximum", "amount", _t(amount=2**63)),
    "amount_over_2e64": Bad(400, "amount_exceeds_maximum", "amount", _t(amount=2**64 + 1)),
    "amount_float": Bad(400, INVALID, "amount", _t(amount=1.5)),
    "amount_whole_float": Bad(400, INVALID, "amount", _t(amount=100.0)),
    "amount_exponent": Bad(400, INVALID, "amount", content=b'{"id":"t_bad","amount":1e3}'),
    "amount_string": Bad(400, INVALID, "amount", _t(amount="100")),
    "amount_boolean": Bad(400, INVALID, "amount", _t(amount=True)),
    "amount_nan": Bad(400, INVALID, "amount", content=b'{"id":"t_bad","amount":NaN}'),
    "timeout_string": Bad(400, INVALID, "timeout_s", _t(timeout_s="60")),
    "timeout_not_pending": Bad(
        400, "timeout_reserved_for_pending_transfer", "timeout_s", _t(timeout_s=60)
    ),
    "timeout_huge": Bad(
        400, "timeout_out_of_range", "timeout_s", _t(flags=["pending"], timeout_s=10**30)
    ),
    # accounts
    "debit_unknown": Bad(
        404, "debit_account_not_found", "debit_account_id", _t(debit_account_id="acc_nope")
    ),
    "credit_unknown": Bad(
        404, "credit_account_not_found", "credit_account_id", _t(credit_account_id="acc_nope")
    ),
    "debit_missing": Bad(
        400, "debit_account_id_invalid", "debit_account_id", _t(debit_account_id=None)
    ),
    "currency_mismatch": Bad(
        400, "accounts_must_have_the_same_ledger", "credit_account_id",
        _t(credit_account_id=DOLLARS),
    ),
    "ledger_not_the_accounts": Bad(
        400, "transfer_must_have_the_same_ledger_as_accounts", "ledger", _t(ledger="USD")
    ),
    "same_account": Bad(
        400, "accounts_must_be_different", "credit_account_id", _t(credit_account_id=FUNDING)
    ),
    "credit_closed": Bad(
        400, "credit_account_closed", "credit_account_id", _t(credit_account_id=CLOSED)
    ),
    "exceeds_credits": Bad(402, "exceeds_credits", "amount", _t(debit_account_id=LIMITED)),
    "post_unknown_pending": Bad(404, "pending_transfer_not_found", "pending_id", POST_UNKNOWN),
    # fields
    "flag_unknown": Bad(400, INVALID, "flags.0", _t(flags=["instant"])),
    "flags_not_list": Bad(400, INVALID, "flags", _t(flags="linked")),
    "field_unknown": Bad(400, INVALID, "amount_yuan", _t(amount_yuan=1)),
    "id_missing": Bad(400, MISSING, "id", _t(id=None)),
    "id_too_long": Bad(400, INVALID, "id", _t(id="t" * 65)),
    "id_bad_characters": Bad(400, "id_invalid", "id", _t(id="t bad!")),
    "id_number": Bad(400, INVALID, "id", _t(id=42)),
    "code_too_long": Bad(400, INVALID, "code", _t(code="c" * 65)),
    "code_empty": Bad(400, "code_invalid", "code", _t(code="")),
    "ledger_too_long": Bad(400, INVALID, "ledger", _t(ledger="CNYX")),
    "ledger_lowercase": Bad(400, "ledger_invalid", "ledger", _t(ledger="cny")),
    "user_data_too_long": Bad(400, INVALID, "user_data", _t(user_data="u" * 129)),
    "user_data_nul": Bad(400, INVALID, "user_data", _t(user_data="a\x00b")),
    "debit_account_id_nul": Bad(400, INVALID, "debit_account_id", _t(debit_account_id="acc\x00")),
    "lone_surrogate": Bad(400, INVALID, "id", content=b'{"id":"\\ud800"}'),
    # bodies
    "json_malformed": Bad(400, "body_not_json", None, content=b'{"id": "t_bad",'),
    "json_array": Bad(400, "body_invalid", None, content=b'[{"id": "t_bad"}]'),
    "json_string": Bad(400, "body_invalid", None, content=b'"t_bad"'),
    "json_null": Bad(400, "body_invalid", None, content=b"null"),
    "body_empty": Bad(400, "body_missing", None, content=b""),
    "body_not_utf8": Bad(400, "body_not_json", None, content=b'{"id": "t_\xff\xfe"}'),
    "json_too_many_digits": Bad(400, "body_not_json", None, content=b"[" + b"9" * 5000 + b"]"),
    "json_too_deep": Bad(400, "body_not_json", None, content=lambda: b"[" * 100_000),
    "json_as_text_plain": Bad(
        400, "body_invalid", None, content=json.dumps(_t()).encode(),
        headers={"content-type": "text/plain"},
    ),
    "body_over_4mb": Bad(413, "body_too_large", None, content=lambda: b" " * (MAX_BODY_BYTES + 1)),
    # batches
    "batch_too_large": Bad(400, INVALID, "transfers", _big_batch, path=BATCH),
    "batch_empty": Bad(400, INVALID, "transfers", {"transfers": []}, path=BATCH),
    "batch_not_list": Bad(400, INVALID, "transfers", {"transfers": _t()}, path=BATCH),
    "batch_item_float": Bad(
        400, INVALID, "transfers.1.amount",
        {"transfers": [_t(id="t_b1"), _t(id="t_b2", amount=2.5)]}, path=BATCH,
    ),
    "batch_item_string": Bad(400, INVALID, "transfers.0", {"transfers": ["t_bad"]}, path=BATCH),
    # account creation
    "account_ledger_lowercase": BadAccount(400, "ledger_invalid", "ledger", _a(ledger="usd")),
    "account_owner_too_long": BadAccount(400, INVALID, "owner", _a(owner="o" * 97)),
    "account_owner_nul": BadAccount(400, INVALID, "owner", _a(owner="merchant:\x00")),
    "account_code_missing": BadAccount(400, MISSING, "code", _a(code=None)),
    "account_both_limits": BadAccount(
        400, "flags_are_mutually_exclusive", "flags", _a(flags=BOTH_LIMITS)
    ),
    "account_flag_unknown": BadAccount(400, INVALID, "flags.0", _a(flags=["overdraft"])),
    "account_shards_zero": BadAccount(400, INVALID, "balance_shards", _a(balance_shards=0)),
    "account_shards_string": BadAccount(400, INVALID, "balance_shards", _a(balance_shards="2")),
    "account_id_bad_characters": BadAccount(400, "id_invalid", "id", _a(id="acc new")),
    "account_field_unknown": BadAccount(400, INVALID, "currency", _a(currency="CNY")),
    "account_same_owner_code_ledger": BadAccount(
        409, "exists_with_different_id", "id", _a(owner=f"owner:{MERCHANT}")
    ),
    "account_same_id_other_code": BadAccount(
        409, "exists_with_different_code", "id",
        _a(id=MERCHANT, owner=f"owner:{MERCHANT}", code="fees"),
    ),
    "close_unknown": Bad(404, "resource_missing", "account_id", path=f"{ACCOUNTS}/acc_nope/close"),
    # reads: query and path parameters
    "limit_zero": Bad(400, INVALID, "limit", path=f"{ACCOUNTS}?limit=0", method="GET"),
    "limit_over_100": Bad(400, INVALID, "limit", path=f"{ACCOUNTS}?limit=101", method="GET"),
    "limit_word": Bad(400, INVALID, "limit", path=f"{ACCOUNTS}?limit=ten", method="GET"),
    "owner_nul": Bad(400, INVALID, "owner", path=f"{ACCOUNTS}?owner=a%00b", method="GET"),
    "cursor_nul": Bad(
        400, INVALID, "starting_after", path=f"{ACCOUNTS}?starting_after=a%00", method="GET"
    ),
    "cursor_unknown": Bad(
        400, "cursor_invalid", "starting_after", method="GET",
        path=f"{ACCOUNTS}/{MERCHANT}/transfers?starting_after=t_nope",
    ),
    "account_unknown": Bad(
        404, "resource_missing", "account_id", path=f"{ACCOUNTS}/acc_nope", method="GET"
    ),
    "account_id_path_nul": Bad(400, INVALID, "account_id", path=f"{ACCOUNTS}/acc%00", method="GET"),
    "account_id_path_long": Bad(
        400, INVALID, "account_id", path=f"{ACCOUNTS}/{'a' * 300}", method="GET"
    ),
    "transfer_id_path_nul": Bad(
        400, INVALID, "transfer_id", path=f"{TRANSFERS}/t%00", method="GET"
    ),
    "as_of_naive": Bad(400, INVALID, "as_of", path=BALANCE + "2026-01-01T08:00:00", method="GET"),
    "as_of_garbage": Bad(400, INVALID, "as_of", path=BALANCE + "yesterday", method="GET"),
    "as_of_year_9999": Bad(400, INVALID, "as_of", path=BALANCE + "9999-12-31T23:59Z", method="GET"),
    "as_of_year_1": Bad(
        400, INVALID, "as_of", path=BALANCE + "0001-01-01T00:00:00%2B14:00", method="GET"
    ),
    # authentication and routing
    "token_missing": Bad(401, "credentials_missing", None, _t(), headers=NO_AUTH),
    "token_wrong": Bad(
        401, "credentials_invalid", None, _t(), headers={"authorization": "Bearer nope"}
    ),
    "token_basic_scheme": Bad(
        401, "credentials_missing", None, _t(), headers={"authorization": "Basic b3A6cHc="}
    ),
    "token_missing_on_read": Bad(
        401, "credentials_missing", None, path="/v1/ledger/check", method="GET", headers=NO_AUTH
    ),
    "route_unknown": Bad(404, "route_not_found", None, path="/v1/ledger/nothing", method="GET"),
    "method_wrong": Bad(405, "method_not_allowed", None, path=TRANSFERS, method="DELETE"),
}  # fmt: skip


def _send(client: httpx.Client, case: Bad) -> httpx.Response:
    headers: dict[str, str | None] = {}
    for given in (OPERATOR_HEADERS, JSON, case.headers):
        headers.update({name.lower(): value for name, value in given.items()})
    body = case.body() if callable(case.body) else case.body
    content = case.content() if callable(case.content) else case.content
    sent = {name: value for name, value in headers.items() if value is not None}
    if content is None and body is not None:
        content = json.dumps(body).encode()
    return client.request(case.method, case.path, content=content, headers=sent)


def _transfer_ids(case: Bad) -> list[str]:
    """Ids of the transfers a bad request names, which must not exist afterwards."""
    body = case.body() if callable(case.body) else case.body
    if not isinstance(body, dict) or case.path not in (TRANSFERS, BATCH):
        return []
    items = body.get("transfers", [body])
    items = items[:3] if isinstance(items, list) else []
    ids = [item.get("id") for item in items if isinstance(item, dict)]
    return [i for i in ids if isinstance(i, str) and ID_PATTERN.match(i)]


@pytest.mark.parametrize("case", list(_BAD.values()), ids=list(_BAD))
def test_bad_input_is_a_4xx_in_the_error_shape_and_writes_nothing(
    shared_api: httpx.Client, case: Bad
) -> None:
    """A bad request gets its 4xx, code and param in the error shape; the books stay unchanged."""
    before = books(shared_api)
    response = _send(shared_api, case)
    assert_error(response, case.status, case.code, case.param)
    assert books(shared_api) == before
    for transfer_id in _transfer_ids(case):
        assert_error(get(shared_api, f"{TRANSFERS}/{transfer_id}"), 404, "resource_missing")


# --- happy paths, each on its own fresh database -----------------------------------------
def test_account_creation_is_idempotent_by_id_and_refuses_different_fields(
    live_api: httpx.Client,
) -> None:
    """An account id is created once (201), returned as it is again (200), never redefined (409)."""
    body = {"id": "acc_shop", "owner": "merchant:shop", "code": "merchant_pending",
            "flags": ["debits_must_not_exceed_credits"], "user_data": "shop #1"}  # fmt: skip
    created = post(live_api, ACCOUNTS, body)
    assert created.status_code == 201
    account = created.json()
    assert account["object"] == "ledger.account"
    assert (account["ledger"], account["closed"]) == ("CNY", False)
    assert account["flags"] == ["debits_must_not_exceed_credits"]
    assert account["balance"] == dict.fromkeys(account["balance"], 0)
    again = post(live_api, ACCOUNTS, body)
    assert again.status_code == 200
    assert again.json() == account
    for field_name, value in [("code", "fees"), ("owner", "merchant:other"), ("user_data", "x"),
                              ("flags", []), ("ledger", "USD")]:  # fmt: skip
        error = assert_error(post(live_api, ACCOUNTS, {**body, field_name: value}), 409,
                             f"exists_with_different_{field_name}", "id")  # fmt: skip
        assert field_name in error["message"]
    assert_error(post(live_api, ACCOUNTS, {**body, "id": "acc_twin"}), 409,
                 "exists_with_different_id", "id")  # fmt: skip
    listed = get(live_api, ACCOUNTS).json()
    assert [a["id"] for a in listed["data"]] == ["acc_shop"]
    assert get(live_api, f"{ACCOUNTS}/acc_shop").json() == account


def test_account_list_pages_newest_first_and_filters_by_owner(live_api: httpx.Client) -> None:
    """Accounts list in pages of `limit` with `has_more` and `next_cursor`, and filter by owner."""
    for n in range(1, 6):
        owner = "merchant:a" if n % 2 else "merchant:b"
        open_account(live_api, f"acc_{n}", owner=owner, code=f"purpose_{n}")
    first = get(live_api, ACCOUNTS, limit=2).json()
    assert [a["id"] for a in first["data"]] == ["acc_5", "acc_4"]
    assert (first["has_more"], first["next_cursor"]) == (True, "acc_4")
    assert (first["object"], first["url"]) == ("list", ACCOUNTS)
    second = get(live_api, ACCOUNTS, limit=2, starting_after="acc_4").json()
    assert [a["id"] for a in second["data"]] == ["acc_3", "acc_2"]
    last = get(live_api, ACCOUNTS, limit=2, starting_after="acc_2").json()
    assert [a["id"] for a in last["data"]] == ["acc_1"]
    assert (last["has_more"], last["next_cursor"]) == (False, None)
    owned = get(live_api, ACCOUNTS, owner="merchant:a").json()
    assert [a["id"] for a in owned["data"]] == ["acc_5", "acc_3", "acc_1"]


def test_transfer_is_created_once_and_replayed_by_id(live_api: httpx.Client) -> None:
    """A transfer is created (201), replayed by id unchanged (200), and never redefined (409)."""
    open_account(live_api, FUNDING)
    open_account(live_api, MERCHANT)
    body = transfer_body("trf_1", FUNDING, MERCHANT, 1_234, user_data="order 1")
    created = post(live_api, TRANSFERS, body)
    assert created.status_code == 201
    view = created.json()
    assert view["object"] == "ledger.transfer"
    assert (view["amount"], view["ledger"], view["flags"]) == (1_234, "CNY", [])
    replayed = post(live_api, TRANSFERS, body)
    assert replayed.status_code == 200
    assert replayed.json() == view
    assert_error(post(live_api, TRANSFERS, {**body, "amount": 1_235}), 409,
                 "exists_with_different_amount", "id")  # fmt: skip
    assert get(live_api, f"{TRANSFERS}/trf_1").json() == view
    assert balance(live_api, MERCHANT)["credits_posted"] == 1_234
    assert balance(live_api, FUNDING)["debits_posted"] == 1_234
    assert get(live_api, "/v1/ledger/check").json()["totals"]["CNY"]["credits_posted"] == 1_234


def test_batch_reports_each_item_and_linked_chains_are_all_or_nothing(
    live_api: httpx.Client,
) -> None:
    """A batch answers per item: a refused item stops nothing, a failing link undoes its chain."""
    open_account(live_api, FUNDING)
    open_account(live_api, MERCHANT)
    open_account(live_api, LIMITED, flags=("debits_must_not_exceed_credits",))
    transfers = [
        transfer_body("b1", FUNDING, MERCHANT, 100),
        transfer_body("b2", FUNDING, "acc_nope", 100),
        transfer_body("b3", FUNDING, LIMITED, 40, flags=["linked"]),
        transfer_body("b4", LIMITED, MERCHANT, 30),
        transfer_body("b5", FUNDING, LIMITED, 10, flags=["linked"]),
        transfer_body("b6", LIMITED, MERCHANT, 1_000),
        transfer_body("b7", FUNDING, MERCHANT, 7),
    ]
    response = post(live_api, BATCH, {"transfers": transfers})
    assert response.status_code == 200, response.text
    page = response.json()
    results = [(r["index"], r["id"], r["result"]) for r in page["data"]]
    assert results == [
        (0, "b1", "ok"), (1, "b2", "credit_account_not_found"), (2, "b3", "ok"), (3, "b4", "ok"),
        (4, "b5", "linked_event_failed"), (5, "b6", "exceeds_credits"), (6, "b7", "ok"),
    ]  # fmt: skip
    assert page["failed"] == 3
    for refused in ("b2", "b5", "b6"):
        assert_error(get(live_api, f"{TRANSFERS}/{refused}"), 404, "resource_missing")
    assert balance(live_api, LIMITED)["net_credit_posted"] == 10
    assert balance(live_api, MERCHANT)["credits_posted"] == 137
    check = get(live_api, "/v1/ledger/check").json()
    assert check["ok"]
    assert check["totals"]["CNY"]["debits_posted"] == 177
    replay = post(live_api, BATCH, {"transfers": transfers}).json()
    assert [r["result"] for r in replay["data"]][:4] == ["exists", "credit_account_not_found",
                                                          "exists", "exists"]  # fmt: skip


def test_pending_transfer_is_posted_voided_or_expires(
    live_api: httpx.Client, clock: FixedClock
) -> None:
    """A hold reserves money; a post moves (part of) it, a void frees it, expiry refuses it."""
    open_account(live_api, FUNDING)
    open_account(live_api, MERCHANT)
    move(live_api, "hold_1", FUNDING, MERCHANT, 300, flags=["pending"], timeout_s=3_600)
    move(live_api, "hold_2", FUNDING, MERCHANT, 50, flags=["pending"])
    move(live_api, "hold_3", FUNDING, MERCHANT, 20, flags=["pending"], timeout_s=60)
    assert balance(live_api, MERCHANT)["credits_pending"] == 370
    assert get(live_api, f"{TRANSFERS}/hold_1").json()["pending_status"] == "pending"
    posted = post(live_api, TRANSFERS, {"id": "post_1", "pending_id": "hold_1", "amount": 200,
                                         "flags": ["post_pending_transfer"]})  # fmt: skip
    assert (posted.status_code, posted.json()["amount"]) == (201, 200)
    voided = post(live_api, TRANSFERS, {"id": "void_2", "pending_id": "hold_2",
                                         "flags": ["void_pending_transfer"]})  # fmt: skip
    assert voided.status_code == 201
    assert get(live_api, f"{TRANSFERS}/hold_1").json()["pending_status"] == "posted"
    assert get(live_api, f"{TRANSFERS}/hold_2").json()["pending_status"] == "voided"
    assert balance(live_api, MERCHANT) == {
        "debits_pending": 0, "debits_posted": 0, "credits_pending": 20, "credits_posted": 200,
        "net_credit_posted": 200,
    }  # fmt: skip
    again = {"id": "post_1b", "pending_id": "hold_1", "flags": ["post_pending_transfer"]}
    assert_error(
        post(live_api, TRANSFERS, again), 409, "pending_transfer_already_posted", "pending_id"
    )
    clock.advance(61)
    late = {"id": "post_3", "pending_id": "hold_3", "flags": ["post_pending_transfer"]}
    assert_error(post(live_api, TRANSFERS, late), 409, "pending_transfer_expired", "pending_id")
    assert get(live_api, "/v1/ledger/check").json()["ok"]


def test_account_statement_pages_newest_first(live_api: httpx.Client, clock: FixedClock) -> None:
    """An account's transfers list newest first in pages, with `has_more` and `next_cursor`."""
    open_account(live_api, FUNDING)
    open_account(live_api, MERCHANT)
    open_account(live_api, "acc_other")
    made = ["p3", "p1", "p5", "p2", "p4"]  # ids out of time order: the order must be by time
    for n, transfer_id in enumerate(made):
        move(live_api, transfer_id, FUNDING, MERCHANT, 10 + n)
        clock.advance(1)
    move(live_api, "p_elsewhere", FUNDING, "acc_other", 1)
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"starting_after": cursor} if cursor else {})
        page = get(live_api, f"{ACCOUNTS}/{MERCHANT}/transfers", **params).json()
        pages.append([t["id"] for t in page["data"]])
        assert page["has_more"] is (page["next_cursor"] is not None)
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
        assert cursor == pages[-1][-1]
    assert pages == [["p4", "p2"], ["p5", "p1"], ["p3"]]
    whole = get(live_api, f"{ACCOUNTS}/{MERCHANT}/transfers", limit=100).json()
    assert [t["id"] for t in whole["data"]] == list(reversed(made))
    assert whole["has_more"] is False


def test_balance_as_of_a_zoned_instant(live_api: httpx.Client, clock: FixedClock) -> None:
    """The balance as of an ISO 8601 instant with a zone counts only transfers up to it."""
    open_account(live_api, FUNDING)
    open_account(live_api, MERCHANT)
    start = clock.now()
    move(live_api, "early", FUNDING, MERCHANT, 100)
    clock.advance(hours=1)
    move(live_api, "late", FUNDING, MERCHANT, 50)

    def credits_as_of(instant: str) -> int:
        response = get(live_api, f"{ACCOUNTS}/{MERCHANT}/balance", as_of=instant)
        assert response.status_code == 200, response.text
        assert response.json()["object"] == "ledger.balance"
        return int(response.json()["credits_posted"])

    assert credits_as_of((start - timedelta(seconds=1)).isoformat()) == 0
    assert credits_as_of("2026-01-01T08:30:00+08:00") == 100  # 00:30 UTC, in Shanghai time
    assert credits_as_of((start + timedelta(hours=1)).isoformat()) == 150
    assert credits_as_of("2026-01-01T00:30:00Z") == 100
    assert balance(live_api, MERCHANT)["credits_posted"] == 150
    naive = get(live_api, f"{ACCOUNTS}/{MERCHANT}/balance", as_of="2026-01-01T00:30:00")
    assert_error(naive, 400, "parameter_invalid", "as_of")


def test_closed_account_refuses_transfers_until_reopened(live_api: httpx.Client) -> None:
    """A closed account takes no transfer on either side; reopened, it does again."""
    open_account(live_api, FUNDING)
    open_account(live_api, MERCHANT)
    move(live_api, "before", FUNDING, MERCHANT, 10)
    closed = post(live_api, f"{ACCOUNTS}/{MERCHANT}/close")
    assert (closed.status_code, closed.json()["closed"]) == (200, True)
    assert_error(post(live_api, TRANSFERS, transfer_body("in", FUNDING, MERCHANT, 5)), 400,
                 "credit_account_closed", "credit_account_id")  # fmt: skip
    assert_error(post(live_api, TRANSFERS, transfer_body("out", MERCHANT, FUNDING, 5)), 400,
                 "debit_account_closed", "debit_account_id")  # fmt: skip
    assert get(live_api, f"{ACCOUNTS}/{MERCHANT}").json()["closed"] is True
    reopened = post(live_api, f"{ACCOUNTS}/{MERCHANT}/reopen")
    assert (reopened.status_code, reopened.json()["closed"]) == (200, False)
    move(live_api, "in", FUNDING, MERCHANT, 5)
    assert balance(live_api, MERCHANT)["credits_posted"] == 15


def test_healthz_and_openapi_describe_the_service(live_api: httpx.Client, backend: str) -> None:
    """`/healthz` reaches the database; `/openapi.json` lists every ledger route."""
    health = live_api.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "database": "sqlite" if backend == "sqlite" else "postgresql",
    }
    assert health.headers["request-id"].startswith("req_")
    spec = live_api.get("/openapi.json").json()
    paths = spec["paths"]
    expected = {
        ACCOUNTS: {"get", "post"}, f"{ACCOUNTS}/{{account_id}}": {"get"},
        f"{ACCOUNTS}/{{account_id}}/balance": {"get"},
        f"{ACCOUNTS}/{{account_id}}/transfers": {"get"},
        f"{ACCOUNTS}/{{account_id}}/close": {"post"}, f"{ACCOUNTS}/{{account_id}}/reopen": {"post"},
        TRANSFERS: {"post"}, BATCH: {"post"}, f"{TRANSFERS}/{{transfer_id}}": {"get"},
        "/v1/ledger/check": {"get"},
    }  # fmt: skip
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
