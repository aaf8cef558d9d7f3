"""Signed merchant requests, signed responses and webhooks, over real HTTP on both databases.

Merchants and apps are onboarded through the operator API, as an operator would; requests
are signed by the SDK or, for the attacks, by hand with the same protocol functions.
"""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, inspect, select, table

from cloudpay.config import Settings
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.crypto import generate_rsa_key_pair, rsa_sign, sm2_sign
from cloudpay.sdk import (
    CloudPayAPIError,
    CloudPayClient,
    SignatureVerificationError,
    SM2Key,
    verify_webhook,
)
from cloudpay.sdk.protocol import (
    RSA_SCHEME,
    SM2_SCHEME,
    format_authorization,
    request_signing_message,
    verify_platform_signature,
)
from cloudpay.web.platform_keys import load_platform_keyring, sign_webhook
from tests.conftest import OPERATOR_HEADERS
from tests.e2e.api_helpers import assert_error

_numbers = itertools.count(1)


@dataclass(frozen=True)
class OnboardedApp:
    merchant_id: str
    app_id: str
    serial_no: str
    algorithm: str
    private_key: str
    public_key: str

    def sdk_key(self) -> str | SM2Key:
        if self.algorithm == "SM2":
            return SM2Key(self.private_key, self.public_key)
        return self.private_key


def _uscc(number: int) -> str:
    from stdnum.cn import uscc

    body = f"91370700{number:09d}"
    return body + uscc.calc_check_digit(body)


def _operator(api: httpx.Client, path: str, body: dict[str, Any] | None = None) -> Any:
    response = api.post(path, json=body, headers=OPERATOR_HEADERS)
    assert response.status_code in (200, 201), response.text
    return response.json()


def onboard(api: httpx.Client, *, algorithm: str = "RSA") -> OnboardedApp:
    """A merchant created, submitted and approved, and an app with a platform-made key."""
    merchant = _operator(api, "/v1/merchants", {
        "legal_name": "潍坊市白浪河面馆", "unified_social_credit_code": _uscc(next(_numbers)),
        "legal_person_name": "张三", "legal_person_id_number": "11010519491231002X",
        "contact_phone": "13800138000", "mcc": "5812",
    })  # fmt: skip
    _operator(api, f"/v1/merchants/{merchant['id']}/submit")
    _operator(api, f"/v1/merchants/{merchant['id']}/approve")
    app = _operator(api, f"/v1/merchants/{merchant['id']}/apps",
                    {"name": "收银台", "key": {"algorithm": algorithm}})  # fmt: skip
    [key] = app["keys"]
    return OnboardedApp(merchant["id"], app["id"], key["serial_no"], algorithm,
                        app["private_key"], key["public_key"])  # fmt: skip


def rotate_key(api: httpx.Client, app: OnboardedApp, *, overlap_hours: int) -> OnboardedApp:
    key = _operator(api, f"/v1/apps/{app.app_id}/keys",
                    {"algorithm": "RSA", "previous_key_overlap_hours": overlap_hours})  # fmt: skip
    return OnboardedApp(app.merchant_id, app.app_id, key["serial_no"], "RSA",
                        key["private_key"], key["public_key"])  # fmt: skip


def sdk(api: httpx.Client, app: OnboardedApp, clock: FixedClock, **kwargs: Any) -> CloudPayClient:
    return CloudPayClient(
        str(api.base_url), app.app_id, app.sdk_key(), app.serial_no,
        clock=lambda: clock.now().timestamp(), **kwargs,
    )  # fmt: skip


def signed_request(
    api: httpx.Client,
    app: OnboardedApp,
    clock: FixedClock,
    *,
    method: str = "GET",
    path: str = "/v1/apps/me",
    signed_body: bytes = b"",
    sent_body: bytes | None = None,
    nonce: str | None = None,
    skew_s: int = 0,
    serial_no: str | None = None,
    app_id: str | None = None,
    scheme: str | None = None,
) -> httpx.Response:
    """A request signed by hand, so each field can be made wrong on purpose."""
    timestamp = int(clock.now().timestamp()) + skew_s
    the_nonce = nonce or secrets.token_hex(16)
    message = request_signing_message(method, path, timestamp, the_nonce, signed_body)
    if app.algorithm == "SM2":
        signature = sm2_sign(app.private_key, app.public_key, message)
    else:
        signature = rsa_sign(app.private_key, message)
    authorization = format_authorization(
        scheme or (SM2_SCHEME if app.algorithm == "SM2" else RSA_SCHEME),
        app_id=app_id or app.app_id, nonce_str=the_nonce, timestamp=timestamp,
        serial_no=serial_no or app.serial_no, signature=signature,
    )  # fmt: skip
    body = signed_body if sent_body is None else sent_body
    return api.request(method, path, content=body, headers={"Authorization": authorization})


def platform_keys(settings: Settings) -> dict[str, str]:
    return load_platform_keyring(settings).public_keys()


def assert_signed(response: httpx.Response, settings: Settings) -> None:
    verify_platform_signature(response.headers, response.content, platform_keys(settings))


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            name: connection.execute(select(func.count()).select_from(table(name))).scalar_one()
            for name in inspect(connection).get_table_names()
        }


# ---------------------------------------------------------------- accepted requests


def test_sdk_request_passes_and_its_response_verifies(
    live_api: httpx.Client, clock: FixedClock, settings: Settings
) -> None:
    """An SDK-signed request is accepted and the platform signature of its answer verifies."""
    app = onboard(live_api)
    with sdk(live_api, app, clock, platform_public_keys=platform_keys(settings)) as client:
        identity = client.get_app()
    assert identity == {
        "object": "app_identity", "app_id": app.app_id, "merchant_id": app.merchant_id,
        "serial_no": app.serial_no, "algorithm": "RSA",
    }  # fmt: skip


def test_utf8_query_strings_are_signed_as_sent(live_api: httpx.Client, clock: FixedClock) -> None:
    """Spaces, slashes and Chinese in the query are signed percent-encoded, as on the wire."""
    app = onboard(live_api)
    with sdk(live_api, app, clock) as client:
        identity = client.request("GET", "/v1/apps/me", params={"note": "潍坊 a/b&c=d"})
    assert identity["app_id"] == app.app_id


def test_unsigned_broken_json_to_a_merchant_route_is_401(
    live_api: httpx.Client, settings: Settings
) -> None:
    """`POST /v1/orders` checks the signature before it parses the body."""
    response = live_api.post(
        "/v1/orders", content=b'{"amount": ', headers={"Content-Type": "application/json"}
    )
    assert_error(response, 401, "signature_missing", "Authorization")
    assert_signed(response, settings)


def test_sm2_signed_request_passes(live_api: httpx.Client, clock: FixedClock) -> None:
    """An app with an SM2 key signs with SM2-with-SM3 and is recognised."""
    app = onboard(live_api, algorithm="SM2")
    with sdk(live_api, app, clock) as client:
        assert client.get_app()["algorithm"] == "SM2"


@pytest.mark.parametrize("skew_s", [-300, 300])
def test_timestamp_at_the_window_edge_passes(
    live_api: httpx.Client, clock: FixedClock, skew_s: int
) -> None:
    """A timestamp exactly 5 minutes off is still inside the window."""
    app = onboard(live_api)
    assert signed_request(live_api, app, clock, skew_s=skew_s).status_code == 200


# ---------------------------------------------------------------- refused requests


@pytest.mark.parametrize("skew_s", [-360, 360])
def test_timestamp_six_minutes_off_is_refused(
    live_api: httpx.Client, clock: FixedClock, settings: Settings, skew_s: int
) -> None:
    """A timestamp 6 minutes early or late is `timestamp_out_of_window`, signed like any answer."""
    app = onboard(live_api)
    response = signed_request(live_api, app, clock, skew_s=skew_s)
    assert_error(response, 401, "timestamp_out_of_window", "Authorization")
    assert_signed(response, settings)


def test_sdk_with_a_skewed_clock_gets_an_api_error(
    live_api: httpx.Client, clock: FixedClock
) -> None:
    """The SDK surfaces the refusal as `CloudPayAPIError` with its code."""
    app = onboard(live_api)
    client = CloudPayClient(str(live_api.base_url), app.app_id, app.private_key, app.serial_no,
                            clock=lambda: clock.now().timestamp() + 360)  # fmt: skip
    with client, pytest.raises(CloudPayAPIError) as raised:
        client.get_app()
    assert (raised.value.status, raised.value.code) == (401, "timestamp_out_of_window")


def test_reused_nonce_is_refused(live_api: httpx.Client, clock: FixedClock) -> None:
    """The same nonce is accepted once per app; the replay is `nonce_reused`."""
    app = onboard(live_api)
    assert signed_request(live_api, app, clock, nonce="replay-me-0001").status_code == 200
    replay = signed_request(live_api, app, clock, nonce="replay-me-0001")
    assert_error(replay, 401, "nonce_reused", "Authorization")
    other_app = onboard(live_api)
    assert signed_request(live_api, other_app, clock, nonce="replay-me-0001").status_code == 200


def test_wrong_signature_and_tampering_are_refused(
    live_api: httpx.Client, clock: FixedClock
) -> None:
    """Another key's signature, a changed body and a changed query are `signature_invalid`."""
    app = onboard(live_api)
    impostor = OnboardedApp(app.merchant_id, app.app_id, app.serial_no, "RSA",
                            generate_rsa_key_pair().private_key_pem.reveal(), "")  # fmt: skip
    assert_error(signed_request(live_api, impostor, clock), 401, "signature_invalid")
    tampered = signed_request(live_api, app, clock, method="POST", path="/v1/orders",
                              signed_body=b'{"amount":1}', sent_body=b'{"amount":9}')  # fmt: skip
    assert_error(tampered, 401, "signature_invalid")
    message = request_signing_message("GET", "/v1/apps/me?a=1", int(clock.now().timestamp()),
                                      "n-query-1", b"")  # fmt: skip
    header = format_authorization(
        RSA_SCHEME, app_id=app.app_id, nonce_str="n-query-1",
        timestamp=int(clock.now().timestamp()), serial_no=app.serial_no,
        signature=rsa_sign(app.private_key, message),
    )  # fmt: skip
    moved = live_api.get("/v1/apps/me?a=2", headers={"Authorization": header})
    assert_error(moved, 401, "signature_invalid")


def test_unknown_app_and_unknown_serial_are_refused(
    live_api: httpx.Client, clock: FixedClock
) -> None:
    """An app id nobody has is `app_unknown`; a serial the app lacks is `key_unknown`."""
    app = onboard(live_api)
    unknown_app = signed_request(live_api, app, clock, app_id="app_01NOSUCHAPP00000000000000")
    assert_error(unknown_app, 401, "app_unknown")
    assert_error(signed_request(live_api, app, clock, serial_no="0" * 40), 401, "key_unknown")


def test_scheme_must_match_the_key(live_api: httpx.Client, clock: FixedClock) -> None:
    """An RSA key named under the SM2 scheme is `signature_algorithm_mismatch`."""
    app = onboard(live_api)
    response = signed_request(live_api, app, clock, scheme=SM2_SCHEME)
    assert_error(response, 401, "signature_algorithm_mismatch")


def test_revoked_key_is_refused(live_api: httpx.Client, clock: FixedClock) -> None:
    """A revoked key stops working at once: `key_revoked`."""
    app = onboard(live_api)
    _operator(live_api, f"/v1/apps/{app.app_id}/keys/{app.serial_no}/revoke")
    assert_error(signed_request(live_api, app, clock), 401, "key_revoked")


def test_rotated_key_works_during_overlap_then_expires(
    live_api: httpx.Client, clock: FixedClock
) -> None:
    """After rotation the old key verifies until `retire_at`, then is `key_expired`."""
    old = onboard(live_api)
    new = rotate_key(live_api, old, overlap_hours=1)
    assert signed_request(live_api, old, clock).status_code == 200
    clock.advance(hours=1, seconds=1)
    assert_error(signed_request(live_api, old, clock), 401, "key_expired")
    assert signed_request(live_api, new, clock).status_code == 200


def test_disabled_app_and_frozen_merchant_are_forbidden(
    live_api: httpx.Client, clock: FixedClock, settings: Settings
) -> None:
    """A valid signature from a disabled app or a frozen merchant is a signed 403."""
    app = onboard(live_api)
    _operator(live_api, f"/v1/apps/{app.app_id}/disable")
    disabled = signed_request(live_api, app, clock)
    assert_error(disabled, 403, "app_disabled")
    assert_signed(disabled, settings)
    _operator(live_api, f"/v1/apps/{app.app_id}/enable")
    _operator(live_api, f"/v1/merchants/{app.merchant_id}/freeze", {"reason": "风控冻结"})
    assert_error(signed_request(live_api, app, clock), 403, "merchant_not_active")


GARBAGE: list[tuple[bytes, str]] = [
    (b"", "signature_missing"),
    (b"cloudpay-sha256-rsa2048 x", "signature_malformed"),
    (b"Bearer dev-operator-token", "signature_malformed"),
    (b"CLOUDPAY-SHA256-RSA2048", "signature_malformed"),
    (b'CLOUDPAY-SHA256-RSA2048 app_id="', "signature_malformed"),
    (b"CLOUDPAY-SHA256-RSA2048 \xff\xfe garbage \xe6\xbd\x8d", "signature_malformed"),
    (b"CLOUDPAY-SHA256-RSA2048 " + b"a" * 6000, "signature_malformed"),
    (b'CLOUDPAY-SHA256-RSA2048 app_id="a",nonce_str="n",timestamp="99999999999999999999",'
     b'serial_no="s",signature="AA=="', "signature_malformed"),
    (b'CLOUDPAY-SHA256-RSA2048 app_id="a",nonce_str="n",timestamp="1",serial_no="s",'
     b'signature="!!"', "signature_malformed"),
    (b'CLOUDPAY-SHA256-RSA2048 app_id="a",nonce_str="n",timestamp="1",serial_no="s",'
     b'signature="AA=="', "timestamp_out_of_window"),
]  # fmt: skip


@pytest.mark.parametrize(("header", "code"), GARBAGE)
def test_garbage_authorization_never_500s(
    live_api: httpx.Client, settings: Settings, header: bytes, code: str
) -> None:
    """Broken Authorization headers get a signed 401 with a precise code, never a 500."""
    response = live_api.get("/v1/apps/me", headers=[(b"Authorization", header)])
    assert_error(response, 401, code, "Authorization")
    assert_signed(response, settings)


def test_garbage_signature_for_a_real_key_is_invalid(
    live_api: httpx.Client, clock: FixedClock
) -> None:
    """Base64 of the wrong length or random bytes is `signature_invalid`, for RSA and SM2."""
    for app in (onboard(live_api), onboard(live_api, algorithm="SM2")):
        for signature in ("AA==", secrets.token_bytes(256).hex()[:344], "A" * 96):
            header = format_authorization(
                SM2_SCHEME if app.algorithm == "SM2" else RSA_SCHEME, app_id=app.app_id,
                nonce_str=secrets.token_hex(8), timestamp=int(clock.now().timestamp()),
                serial_no=app.serial_no, signature=signature,
            )  # fmt: skip
            response = live_api.get("/v1/apps/me", headers={"Authorization": header})
            assert_error(response, 401, "signature_invalid")


def test_refused_requests_write_nothing(
    live_api: httpx.Client, clock: FixedClock, engine: Engine
) -> None:
    """No refusal, from malformed to frozen merchant, changes a single row anywhere."""
    app = onboard(live_api)
    frozen = onboard(live_api)
    _operator(live_api, f"/v1/merchants/{frozen.merchant_id}/freeze", {"reason": "风控冻结"})
    before = row_counts(engine)
    refusals = [
        live_api.get("/v1/apps/me"),
        live_api.get("/v1/apps/me", headers={"Authorization": "CLOUDPAY-SHA256-RSA2048 x"}),
        signed_request(live_api, app, clock, skew_s=400),
        signed_request(live_api, app, clock, serial_no="F" * 40),
        signed_request(live_api, app, clock, signed_body=b"a", sent_body=b"b"),
        signed_request(live_api, frozen, clock),
    ]
    assert [r.status_code for r in refusals] == [401, 401, 401, 401, 401, 403]
    assert row_counts(engine) == before
    assert signed_request(live_api, app, clock).status_code == 200
    assert row_counts(engine)["api_nonces"] == before["api_nonces"] + 1


# ---------------------------------------------------------------- platform keys, webhooks


def test_platform_keys_listing_verifies_the_sdk(
    live_api: httpx.Client, clock: FixedClock, settings: Settings
) -> None:
    """`GET /v1/platform/keys` lists the signing key; a TOFU SDK verifies with it."""
    response = live_api.get("/v1/platform/keys")
    assert response.status_code == 200
    listing = response.json()
    active = load_platform_keyring(settings).active
    assert [(k["serial_no"], k["status"], k["algorithm"]) for k in listing["data"]] == [
        (active.serial_no, "active", "RSA")
    ]
    assert listing["data"][0]["public_key"] == active.public_key_pem
    assert_signed(response, settings)
    app = onboard(live_api)
    with sdk(live_api, app, clock) as client:
        assert client.get_app()["app_id"] == app.app_id
        assert client.platform_public_keys() == {active.serial_no: active.public_key_pem}
    wrong = {active.serial_no: generate_rsa_key_pair().public_key_pem}
    pinned = sdk(live_api, app, clock, platform_public_keys=wrong)
    with pinned, pytest.raises(SignatureVerificationError):
        pinned.get_app()


def test_operator_routes_are_not_signed_but_v1_404s_are(
    live_api: httpx.Client, settings: Settings
) -> None:
    """Operator answers carry no platform signature; an unknown `/v1/` path's 404 does."""
    operator = live_api.get("/v1/merchants", headers=OPERATOR_HEADERS)
    assert operator.status_code == 200
    assert "Cloudpay-Signature" not in operator.headers
    missing = live_api.get("/v1/no-such-route")
    assert_error(missing, 404, "route_not_found")
    assert_signed(missing, settings)


def test_verify_webhook_accepts_signed_and_rejects_tampered_or_stale(
    live_api: httpx.Client, clock: FixedClock, settings: Settings
) -> None:
    """A webhook signed by `sign_webhook` verifies with the listed keys until it is stale."""
    keys = {
        k["serial_no"]: k["public_key"] for k in live_api.get("/v1/platform/keys").json()["data"]
    }
    event = {"id": "evt_01TEST", "type": "order.succeeded", "data": {"amount": 100}}
    body = json.dumps(event, ensure_ascii=False).encode()
    headers = sign_webhook(body, keyring=load_platform_keyring(settings), clock=clock)
    now = clock.now().timestamp()
    assert verify_webhook(headers, body, keys, now=now) == event
    lower_case = {name.lower(): value for name, value in headers.items()}
    assert verify_webhook(lower_case, body, keys, now=now + 300) == event
    with pytest.raises(SignatureVerificationError, match="does not match"):
        verify_webhook(headers, body.replace(b"100", b"999"), keys, now=now)
    with pytest.raises(SignatureVerificationError, match="from now"):
        verify_webhook(headers, body, keys, now=now + 301)
    with pytest.raises(SignatureVerificationError, match="not signed"):
        verify_webhook({}, body, keys, now=now)
