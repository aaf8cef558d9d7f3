"""Merchants over real HTTP: onboarding, personal data protection, review, apps and keys."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from cloudpay.cli import app as cli_app
from cloudpay.config import Settings
from cloudpay.db.unit_of_work import run_in_transaction
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.crypto import generate_sm2_key_pair, rsa_sign, rsa_verify
from cloudpay.main import vault_for
from cloudpay.merchants import AppKeyInfo, find_app_key, find_store_by_code, get_merchant
from cloudpay.merchants.model import CONTACT_PHONE, LEGAL_PERSON_ID_NUMBER
from cloudpay.merchants.tables import merchants
from tests.conftest import OPERATOR_HEADERS

ID_NUMBER = "11010519491231002X"
PHONE = "13800138000"
ACCOUNT = "6222021234567890128"
USCC = "91110000600037341L"
OTHER_USCC = "91350100M000100Y43"


def _application(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "legal_name": "潍坊市老王面馆",
        "unified_social_credit_code": USCC,
        "legal_person_name": "王五",
        "legal_person_id_number": ID_NUMBER,
        "contact_phone": PHONE,
        "mcc": "5812",
        "settlement_account": {
            "bank_name": "潍坊银行",
            "account_name": "潍坊市老王面馆",
            "account_number": ACCOUNT,
        },
    }
    return {**body, **overrides}


def _post(api: httpx.Client, path: str, body: Any = None, **headers: str) -> httpx.Response:
    return api.post(path, json=body, headers={**OPERATOR_HEADERS, **headers})


def _get(api: httpx.Client, path: str, **params: Any) -> httpx.Response:
    return api.get(path, params=params, headers=OPERATOR_HEADERS)


def _approved_merchant(api: httpx.Client, **overrides: Any) -> dict[str, Any]:
    merchant = _post(api, "/v1/merchants", _application(**overrides)).json()
    _post(api, f"/v1/merchants/{merchant['id']}/submit")
    approved: dict[str, Any] = _post(api, f"/v1/merchants/{merchant['id']}/approve").json()
    assert approved["status"] == "approved"
    return approved


def _find_key(engine: Engine, clock: FixedClock, app_id: str, serial_no: str) -> AppKeyInfo:
    found = run_in_transaction(
        engine,
        lambda uow: find_app_key(uow, app_id=app_id, serial_no=serial_no),
        clock=clock,
        read_only=True,
    )
    assert found is not None
    return found


def _assert_no_plain_personal_data(text: str) -> None:
    for plain in (ID_NUMBER, ID_NUMBER.lower(), PHONE, ACCOUNT):
        assert plain not in text


def test_onboarding_happy_path_returns_masked_personal_data(live_api: httpx.Client) -> None:
    """A merchant is onboarded as a draft; every response shows ID, phone, account masked."""
    created = _post(live_api, "/v1/merchants", _application(), **{"Idempotency-Key": "onb-1"})
    assert created.status_code == 201, created.text
    merchant = created.json()
    assert merchant["object"] == "merchant"
    assert merchant["id"].startswith("mch_")
    assert merchant["status"] == "draft"
    assert merchant["legal_person_id_number"] == "110***********002X"
    assert merchant["contact_phone"] == "138****8000"
    assert merchant["settlement_account"]["account_number"] == "622202*********0128"
    assert merchant["warnings"] == []
    replay = _post(live_api, "/v1/merchants", _application(), **{"Idempotency-Key": "onb-1"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == merchant
    responses = [
        created,
        replay,
        _get(live_api, f"/v1/merchants/{merchant['id']}"),
        _get(live_api, "/v1/merchants"),
        _post(live_api, f"/v1/merchants/{merchant['id']}/submit"),
        _post(live_api, "/v1/merchants/search", {"legal_person_id_number": ID_NUMBER}),
    ]
    for response in responses:
        assert response.status_code in (200, 201), response.text
        _assert_no_plain_personal_data(response.text)
    listed = responses[3].json()
    assert listed["object"] == "list"
    assert [m["id"] for m in listed["data"]] == [merchant["id"]]


@pytest.mark.parametrize(
    ("overrides", "code", "param"),
    [
        ({"unified_social_credit_code": "91110000600037341A"}, "uscc_invalid",
         "unified_social_credit_code"),
        ({"legal_person_id_number": "110105194912310021"}, "resident_id_invalid",
         "legal_person_id_number"),
        ({"contact_phone": "0535-8888888"}, "phone_invalid", "contact_phone"),
        ({"mcc": "58"}, "mcc_invalid", "mcc"),
        ({"settlement_account": {"bank_name": "b", "account_name": "a", "account_number": "12ab"}},
         "bank_account_invalid", "settlement_account.account_number"),
        ({"legal_name": ""}, "parameter_invalid", "legal_name"),
        ({"mcc": None}, "parameter_invalid", "mcc"),
    ],
)  # fmt: skip
def test_invalid_application_fields_are_400_naming_the_param(
    live_api: httpx.Client, overrides: dict[str, Any], code: str, param: str
) -> None:
    """Each malformed field is a 400 in the one error shape with its `param`, value not echoed."""
    response = _post(live_api, "/v1/merchants", _application(**overrides))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (code, param, "invalid_request_error")
    if code in ("resident_id_invalid", "phone_invalid"):
        assert str(overrides[param]) not in response.text  # personal data is never echoed


def test_personal_data_is_encrypted_at_rest_and_found_by_blind_index(
    live_api: httpx.Client, engine: Engine, settings: Settings
) -> None:
    """The raw row holds no plain ID, phone or account; blind indexes find the merchant."""
    merchant = _post(live_api, "/v1/merchants", _application()).json()
    with engine.connect() as connection:
        row = connection.execute(select(merchants).where(merchants.c.id == merchant["id"])).one()
    _assert_no_plain_personal_data(json.dumps([str(value) for value in row]))
    vault = vault_for(settings)
    token = row.legal_person_id_number_encrypted
    assert vault.open(LEGAL_PERSON_ID_NUMBER, token).reveal() == ID_NUMBER
    assert vault.open(CONTACT_PHONE, row.contact_phone_encrypted).reveal() == PHONE

    for query in (
        {"legal_person_id_number": "110105 19491231 002x"},
        {"contact_phone": "+86 138-0013-8000"},
    ):
        found = _post(live_api, "/v1/merchants/search", query).json()
        assert [m["id"] for m in found["data"]] == [merchant["id"]]
    nobody = _post(live_api, "/v1/merchants/search", {"contact_phone": "13900139000"}).json()
    assert nobody["data"] == []
    refused = _post(live_api, "/v1/merchants/search", {"contact_phone": "12345"})
    assert refused.json()["error"]["param"] == "contact_phone"


def test_review_actions_follow_the_state_machine_and_are_recorded(
    live_api: httpx.Client, engine: Engine
) -> None:
    """Submit → approve → freeze ↔ unfreeze → close works; wrong moves are 409; all recorded."""
    merchant_id = _post(live_api, "/v1/merchants", _application()).json()["id"]
    path = f"/v1/merchants/{merchant_id}"
    early = _post(live_api, f"{path}/approve")
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "merchant_transition_invalid"
    assert _post(live_api, f"{path}/submit").json()["status"] == "submitted"
    assert _post(live_api, f"{path}/approve").json()["status"] == "approved"
    no_reason = _post(live_api, f"{path}/freeze")
    assert no_reason.status_code == 400
    assert no_reason.json()["error"]["param"] == "reason"
    frozen = _post(live_api, f"{path}/freeze", {"reason": "risk: chargeback spike"}).json()
    assert (frozen["status"], frozen["status_reason"]) == ("frozen", "risk: chargeback spike")
    assert _get(live_api, "/v1/merchants", status="frozen").json()["data"][0]["id"] == merchant_id
    assert _post(live_api, f"{path}/unfreeze").json()["status"] == "approved"
    assert _post(live_api, f"{path}/close", {"reason": "merchant left"}).json()["status"] == (
        "closed"
    )
    assert _post(live_api, f"{path}/unfreeze").status_code == 409
    assert _post(live_api, f"{path}/apps", {"name": "pos"}).json()["error"]["code"] == (
        "merchant_closed"
    )
    reviews = _get(live_api, f"{path}/reviews").json()["data"]
    assert [(r["action"], r["to_status"]) for r in reversed(reviews)] == [
        ("submit", "submitted"),
        ("approve", "approved"),
        ("freeze", "frozen"),
        ("unfreeze", "approved"),
        ("close", "closed"),
    ]
    assert {r["actor"] for r in reviews} == {"operator"}
    status = run_in_transaction(engine, lambda uow: get_merchant(uow, merchant_id).status)
    assert status.value == "closed"


def test_rejected_merchant_may_resubmit_and_uscc_is_onboarded_once(live_api: httpx.Client) -> None:
    """A rejection keeps its reason; a second live merchant with the same USCC is a 409."""
    merchant_id = _post(live_api, "/v1/merchants", _application()).json()["id"]
    duplicate = _post(live_api, "/v1/merchants", _application())
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "merchant_already_onboarded"
    _post(live_api, f"/v1/merchants/{merchant_id}/submit")
    rejected = _post(live_api, f"/v1/merchants/{merchant_id}/reject", {"reason": "blurry licence"})
    assert rejected.json()["status_reason"] == "blurry licence"
    assert _post(live_api, "/v1/merchants", _application()).status_code == 201
    assert _post(live_api, f"/v1/merchants/{merchant_id}/submit").json()["status"] == "submitted"


def test_app_with_generated_key_returns_the_private_key_once(
    live_api: httpx.Client, engine: Engine, clock: FixedClock
) -> None:
    """The private key is in the create response only; it signs what the stored key verifies."""
    merchant = _approved_merchant(live_api)
    body = {"name": "pos", "notify_url": "https://shop.example.com/notify"}
    created = _post(
        live_api, f"/v1/merchants/{merchant['id']}/apps", body, **{"Idempotency-Key": "a1"}
    )
    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    app = created.json()
    assert app["object"] == "app"
    assert app["id"].startswith("app_")
    assert app["payment_methods"][:2] == ["wechat_native", "wechat_jsapi"]  # all, in order
    assert "micropay" in app["payment_methods"]
    [key] = app["keys"]
    assert (key["algorithm"], key["status"], key["source"], key["usable"]) == (
        "RSA", "active", "generated", True,
    )  # fmt: skip
    signature = rsa_sign(app["private_key"], b"GET\n/v1/orders\n")
    info = _find_key(engine, clock, app["id"], key["serial_no"])
    assert rsa_verify(info.public_key, b"GET\n/v1/orders\n", signature)
    assert (info.merchant_id, info.usable, info.merchant_status) == (
        merchant["id"],
        True,
        "approved",
    )

    replay = _post(
        live_api, f"/v1/merchants/{merchant['id']}/apps", body, **{"Idempotency-Key": "a1"}
    )
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["private_key"] is None
    assert replay.json()["id"] == app["id"]
    for later in (
        replay,
        _get(live_api, f"/v1/apps/{app['id']}"),
        _get(live_api, f"/v1/apps/{app['id']}/keys"),
        _get(live_api, f"/v1/merchants/{merchant['id']}/apps"),
    ):
        assert later.status_code in (200, 201)
        assert "PRIVATE KEY" not in later.text
    bad_url = _post(
        live_api, f"/v1/merchants/{merchant['id']}/apps", {"name": "x", "notify_url": "ftp://x"}
    )
    assert bad_url.json()["error"]["param"] == "notify_url"


def test_uploaded_public_keys_are_validated(live_api: httpx.Client) -> None:
    """Uploaded RSA ≥ 2048 PEM and SM2 hex keys register; weak or repeated keys are refused."""
    merchant = _approved_merchant(live_api)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    app = _post(
        live_api, f"/v1/merchants/{merchant['id']}/apps",
        {"name": "web", "payment_methods": ["wechat_jsapi"], "key": {"public_key": pem}},
    ).json()  # fmt: skip
    assert app["private_key"] is None
    assert app["keys"][0]["source"] == "uploaded"
    assert app["keys"][0]["public_key"] == pem
    keys_path = f"/v1/apps/{app['id']}/keys"
    again = _post(live_api, keys_path, {"public_key": pem})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "app_key_exists"
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505 — the weak key under test
    weak_pem = weak.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    refused = _post(live_api, keys_path, {"public_key": weak_pem}).json()["error"]
    assert (refused["code"], refused["param"]) == ("public_key_invalid", "public_key")
    sm2_hex = generate_sm2_key_pair().public_key_hex
    sm2 = _post(live_api, keys_path, {"algorithm": "SM2", "public_key": sm2_hex})
    assert sm2.status_code == 201
    assert sm2.json()["public_key"] == sm2_hex
    generated_sm2 = _post(live_api, keys_path, {"algorithm": "SM2"}).json()
    assert len(generated_sm2["private_key"]) == 64


def test_rotation_keeps_the_old_key_until_retire_at_and_revoke_is_immediate(
    live_api: httpx.Client, engine: Engine, clock: FixedClock
) -> None:
    """After rotation the old key verifies for the overlap only; revoked keys never do."""
    merchant = _approved_merchant(live_api)
    app = _post(live_api, f"/v1/merchants/{merchant['id']}/apps", {"name": "pos"}).json()
    old_serial = app["keys"][0]["serial_no"]
    rotated = _post(live_api, f"/v1/apps/{app['id']}/keys", {"previous_key_overlap_hours": 72})
    assert rotated.status_code == 201
    new_serial = rotated.json()["serial_no"]
    keys = _get(live_api, f"/v1/apps/{app['id']}/keys").json()["data"]
    assert [(k["serial_no"], k["status"]) for k in keys] == [
        (new_serial, "active"),
        (old_serial, "retiring"),
    ]
    assert keys[1]["retire_at"] == (clock.now() + timedelta(hours=72)).isoformat()
    clock.advance(hours=71, minutes=59)
    assert _find_key(engine, clock, app["id"], old_serial).usable
    clock.advance(minutes=1)
    old = _find_key(engine, clock, app["id"], old_serial)
    assert (old.status, old.usable) == ("retiring", False)
    assert _find_key(engine, clock, app["id"], new_serial).usable

    _post(live_api, f"/v1/merchants/{merchant['id']}/freeze", {"reason": "review"})
    frozen = _find_key(engine, clock, app["id"], new_serial)
    assert (frozen.usable, frozen.merchant_status) == (False, "frozen")
    _post(live_api, f"/v1/merchants/{merchant['id']}/unfreeze")
    assert _post(live_api, f"/v1/apps/{app['id']}/disable").json()["status"] == "disabled"
    assert not _find_key(engine, clock, app["id"], new_serial).usable
    _post(live_api, f"/v1/apps/{app['id']}/enable")

    revoked = _post(live_api, f"/v1/apps/{app['id']}/keys/{new_serial}/revoke")
    assert (revoked.json()["status"], revoked.json()["usable"]) == ("revoked", False)
    assert not _find_key(engine, clock, app["id"], new_serial).usable
    missing = _post(live_api, f"/v1/apps/{app['id']}/keys/NOPE/revoke")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "app_key_not_found")


def test_agent_hierarchy_is_bounded_and_merchants_filter_by_agent(live_api: httpx.Client) -> None:
    """Agents nest five deep, a sixth level is 409, and merchants list by their agent."""
    parent = None
    chain = []
    for level in range(1, 6):
        agent = _post(live_api, "/v1/agents", {"name": f"L{level}", "parent_agent_id": parent})
        assert agent.status_code == 201
        assert agent.json()["depth"] == level
        parent = agent.json()["id"]
        chain.append(parent)
    too_deep = _post(live_api, "/v1/agents", {"name": "L6", "parent_agent_id": parent})
    assert (too_deep.status_code, too_deep.json()["error"]["code"]) == (
        409, "agent_depth_exceeded",
    )  # fmt: skip
    unknown = _post(live_api, "/v1/agents", {"name": "x", "parent_agent_id": "agt_nope"})
    assert (unknown.status_code, unknown.json()["error"]["param"]) == (404, "parent_agent_id")
    children = _get(live_api, "/v1/agents", parent_agent_id=chain[0]).json()["data"]
    assert [a["id"] for a in children] == [chain[1]]
    page = _get(live_api, "/v1/agents", limit=2).json()
    assert page["has_more"]
    assert [a["id"] for a in page["data"]] == chain[:-3:-1]

    merchant = _post(live_api, "/v1/merchants", _application(agent_id=chain[2])).json()
    _post(live_api, "/v1/merchants", _application(unified_social_credit_code=OTHER_USCC))
    listed = _get(live_api, "/v1/merchants", agent_id=chain[2]).json()["data"]
    assert [m["id"] for m in listed] == [merchant["id"]]
    orphan = _post(live_api, "/v1/merchants", _application(agent_id="agt_nope"))
    assert orphan.json()["error"]["code"] == "agent_not_found"


def test_stores_get_unique_short_codes(live_api: httpx.Client, engine: Engine) -> None:
    """Stores get a generated or chosen code, unique platform-wide and found by code."""
    merchant = _approved_merchant(live_api)
    stores_path = f"/v1/merchants/{merchant['id']}/stores"
    generated = _post(live_api, stores_path, {"name": "东风街店"}).json()
    assert generated["object"] == "store"
    assert len(generated["store_code"]) == 8
    chosen = _post(live_api, stores_path, {"name": "奎文店", "store_code": "wf01"}).json()
    assert chosen["store_code"] == "WF01"
    taken = _post(live_api, stores_path, {"name": "again", "store_code": "WF01"})
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "store_code_taken")
    listed = _get(live_api, stores_path).json()["data"]
    assert [s["id"] for s in listed] == [chosen["id"], generated["id"]]
    store = run_in_transaction(engine, lambda uow: find_store_by_code(uow, "wf01"))
    assert store is not None
    assert store.id == chosen["id"]


def test_isv_sub_merchants_carry_channel_sub_merchant_ids(live_api: httpx.Client) -> None:
    """ISV merchants hold per-channel sub-merchant ids; direct merchants are refused them."""
    direct = _post(
        live_api, "/v1/merchants", _application(channel_sub_merchant_ids={"wechat": "1900000109"})
    )
    assert direct.json()["error"]["code"] == "sub_merchant_ids_require_isv"
    isv = _post(
        live_api,
        "/v1/merchants",
        _application(acquiring_mode="isv", channel_sub_merchant_ids={"wechat": "1900000109"}),
    ).json()
    assert isv["channel_sub_merchant_ids"] == {"wechat": "1900000109"}
    updated = _post(
        live_api,
        f"/v1/merchants/{isv['id']}/channel_sub_merchant_ids",
        {"channel": "alipay", "sub_merchant_id": "2088000000000001"},
    ).json()
    assert updated["channel_sub_merchant_ids"] == {
        "alipay": "2088000000000001",
        "wechat": "1900000109",
    }


def test_cli_onboards_a_merchant_and_writes_the_app_private_key(
    database_url: str, engine: Engine, clock: FixedClock, tmp_path: Path
) -> None:
    """`merchant create --approve` then `app create --json` leave a 0600 key that verifies."""
    runner = CliRunner()
    created = runner.invoke(
        cli_app,
        ["merchant", "create", "--name", "潍坊药房", "--uscc", USCC, "--legal-person", "李四",
         "--id-number", ID_NUMBER, "--phone", PHONE, "--mcc", "5912", "--approve", "--json",
         "--database", database_url],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    merchant = json.loads(created.stdout)
    assert merchant["status"] == "approved"
    listed = runner.invoke(cli_app, ["merchant", "list", "--json", "--database", database_url])
    assert PHONE not in listed.stdout
    assert "138****8000" in listed.stdout

    made = runner.invoke(
        cli_app,
        ["app", "create", "--merchant", merchant["merchant_id"], "--json",
         "--keys-dir", str(tmp_path / "keys"), "--database", database_url],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    payload = json.loads(made.stdout)
    key_path = Path(payload["private_key_path"])
    assert key_path == tmp_path / "keys" / f"{payload['app_id']}.pem"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    signature = rsa_sign(key_path.read_text(), b"hello")
    info = _find_key(engine, clock, payload["app_id"], payload["serial_no"])
    assert info.usable
    assert rsa_verify(info.public_key, b"hello", signature)

    refused = runner.invoke(
        cli_app, ["merchant", "approve", "mch_nope", "--database", database_url]
    )
    assert refused.exit_code == 2
