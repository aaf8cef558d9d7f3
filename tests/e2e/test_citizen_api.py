"""The citizen API over HTTP: real-name registration with masked responses, one person per
resident ID, wallet payer ids, and every bad input a 4xx in the one error shape."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.api_helpers import assert_error, get, post
from tests.integration.test_marketing_claims import resident_id

CITIZENS = "/v1/citizens"


def citizen_body(n: int = 1, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "刘德华", "resident_id": resident_id(n), "phone": f"136{n:08d}",
        "resident": True, "district": "370702",
    }  # fmt: skip
    body.update(changes)
    return body


def register(client: httpx.Client, n: int = 1, **changes: Any) -> dict[str, Any]:
    response = post(client, CITIZENS, citizen_body(n, **changes))
    assert response.status_code == 201, response.text
    citizen: dict[str, Any] = response.json()
    return citizen


def test_register_read_and_link_a_wallet(live_api: httpx.Client) -> None:
    """A registered citizen comes back masked, and a linked openid shows on the citizen."""
    created = register(live_api, 5)
    assert created["name"] == "刘**"
    assert created["phone"] == "136****0005"
    assert created["resident_id"].count("*") == 11
    assert resident_id(5) not in str(created)
    link = post(live_api, f"{CITIZENS}/{created['id']}/payer-ids",
                {"channel": "wechat", "payer_id": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"})  # fmt: skip
    assert link.status_code == 201, link.text
    fetched = get(live_api, f"{CITIZENS}/{created['id']}").json()
    assert [p["channel"] for p in fetched["payer_ids"]] == ["wechat"]
    assert fetched["resident_id"] == created["resident_id"]


def test_bad_registrations_are_refused_with_their_code(live_api: httpx.Client) -> None:
    """Wrong check digit, landline, bad district, unknown field, duplicate ID: each its 4xx."""
    cases = [
        (citizen_body(resident_id="110105194912310021"), 400, "resident_id_invalid"),
        (citizen_body(phone="0536-8888888"), 400, "phone_invalid"),
        (citizen_body(district="3707"), 400, "district_invalid"),
        (citizen_body(nickname="x"), 400, None),
    ]
    for body, status, code in cases:
        response = post(live_api, CITIZENS, body)
        if code is None:
            assert response.status_code == status, response.text
        else:
            assert_error(response, status, code)
    first = register(live_api, 9)
    again = post(live_api, CITIZENS, citizen_body(9, resident_id=resident_id(9).lower()))
    error = assert_error(again, 409, "citizen_already_registered", "resident_id")
    assert error["details"] == {"citizen_id": first["id"]}


def test_payer_ids_belong_to_one_citizen(live_api: httpx.Client) -> None:
    """Another citizen cannot take a linked Alipay buyer id; a malformed one is a 400."""
    me, other = register(live_api, 1), register(live_api, 2)
    body = {"channel": "alipay", "payer_id": "2088102146225135"}
    assert post(live_api, f"{CITIZENS}/{me['id']}/payer-ids", body).status_code == 201
    taken = post(live_api, f"{CITIZENS}/{other['id']}/payer-ids", body)
    assert_error(taken, 409, "payer_id_taken", "payer_id")
    bad = post(
        live_api, f"{CITIZENS}/{me['id']}/payer-ids", {"channel": "alipay", "payer_id": "a b"}
    )
    assert_error(bad, 400, "payer_id_invalid", "payer_id")
    unknown_channel = post(live_api, f"{CITIZENS}/{me['id']}/payer-ids",
                           {"channel": "paypal", "payer_id": "abcdef1"})  # fmt: skip
    assert unknown_channel.status_code == 400


def test_unknown_citizens_and_missing_credentials(live_api: httpx.Client) -> None:
    """A well-formed unknown id is a 404; no bearer token is a 401."""
    missing = get(live_api, f"{CITIZENS}/ctz_{'0' * 26}")
    assert_error(missing, 404, "citizen_not_found")
    anonymous = live_api.post(CITIZENS, json=citizen_body())
    assert_error(anonymous, 401, "credentials_missing")
