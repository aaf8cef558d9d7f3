"""The SDK's signatures, byte for byte, against an in-process fake of the CloudPay wire."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import Callable

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudpay.kernel.crypto import (
    RsaKeyPair,
    Sm2KeyPair,
    generate_rsa_key_pair,
    generate_sm2_key_pair,
    rsa_public_key_serial_no,
    rsa_sign,
    rsa_verify,
    sm2_verify,
)
from cloudpay.sdk import CloudPayAPIError, CloudPayClient, SignatureVerificationError, SM2Key
from cloudpay.sdk.protocol import (
    MalformedAuthorization,
    format_authorization,
    parse_authorization,
    request_signing_message,
    response_signing_message,
)

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
NONCE = "593BEC0C930BF1AFEB40B4A08C8FB242"


@pytest.fixture(scope="module")
def merchant_rsa() -> RsaKeyPair:
    return generate_rsa_key_pair()


@pytest.fixture(scope="module")
def merchant_sm2() -> Sm2KeyPair:
    return generate_sm2_key_pair()


@pytest.fixture(scope="module")
def platform() -> RsaKeyPair:
    return generate_rsa_key_pair()


def platform_headers(platform: RsaKeyPair, body: bytes, timestamp: int = NOW) -> dict[str, str]:
    message = response_signing_message(timestamp, "n0nce", body)
    return {
        "Cloudpay-Timestamp": str(timestamp),
        "Cloudpay-Nonce": "n0nce",
        "Cloudpay-Signature": rsa_sign(platform.private_key_pem, message),
        "Cloudpay-Serial": rsa_public_key_serial_no(platform.public_key_pem),
    }


class FakeCloudPay:
    """Records what the client put on the wire and answers with a signed response."""

    def __init__(self, platform: RsaKeyPair, status: int = 200, body: bytes = b'{"ok":true}'):
        self.platform = platform
        self.status = status
        self.body = body
        self.sign_response: Callable[[bytes], dict[str, str]] = lambda b: platform_headers(
            platform, b
        )
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        headers = {"Content-Type": "application/json", **self.sign_response(self.body)}
        return httpx.Response(self.status, content=self.body, headers=headers)


def client_for(
    fake: FakeCloudPay, key: str | SM2Key, serial_no: str = "SERIAL1", *, pinned: bool = True
) -> CloudPayClient:
    keys = {rsa_public_key_serial_no(fake.platform.public_key_pem): fake.platform.public_key_pem}
    return CloudPayClient(
        "https://cloudpay.test",
        "app_01TEST",
        key,
        serial_no,
        keys if pinned else None,
        clock=lambda: NOW,
        transport=httpx.MockTransport(fake),
    )


def wire_message(request: httpx.Request) -> tuple[bytes, dict[str, str | int]]:
    """The signing string rebuilt from the bytes that went out, and the Authorization fields."""
    header = parse_authorization(request.headers["Authorization"])
    message = request_signing_message(
        request.method, request.url.raw_path, header.timestamp, header.nonce_str, request.content
    )
    fields: dict[str, str | int] = {
        "scheme": header.scheme, "app_id": header.app_id, "serial_no": header.serial_no,
        "timestamp": header.timestamp, "signature": header.signature,
    }  # fmt: skip
    return message, fields


# ---------------------------------------------------------------- the signing strings


def test_get_with_query_and_empty_body_is_byte_exact() -> None:
    """A GET signs the percent-encoded target with its query, and an empty body line."""
    message = request_signing_message(
        "GET", "/v1/orders?limit=2&out_trade_no=A%201", NOW, NONCE, b""
    )
    assert message == (
        b"GET\n/v1/orders?limit=2&out_trade_no=A%201\n1767225600\n"
        b"593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
    )


def test_post_with_utf8_body_signs_the_raw_bytes() -> None:
    """A UTF-8 body is signed as its exact bytes, not as re-encoded text."""
    body = '{"subject":"潍坊 面馆","amount":1}'.encode()
    message = request_signing_message("POST", b"/v1/orders", NOW, NONCE, body)
    assert message == b"POST\n/v1/orders\n1767225600\n" + NONCE.encode() + b"\n" + body + b"\n"


def test_response_string_is_timestamp_nonce_body() -> None:
    """Platform signatures cover `TIMESTAMP\\nNONCE\\nBODY\\n` exactly."""
    assert response_signing_message(NOW, "abc", b"{}") == b"1767225600\nabc\n{}\n"
    assert response_signing_message(NOW, "abc", b"") == b"1767225600\nabc\n\n"


def test_authorization_header_round_trips() -> None:
    """The header the SDK formats parses back into the same five fields."""
    header = format_authorization(
        "CLOUDPAY-SHA256-RSA2048", app_id="app_1", nonce_str=NONCE, timestamp=NOW,
        serial_no="ABC123", signature="c2lnbmF0dXJl",
    )  # fmt: skip
    assert header == (
        'CLOUDPAY-SHA256-RSA2048 app_id="app_1",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",'
        'timestamp="1767225600",serial_no="ABC123",signature="c2lnbmF0dXJl"'
    )
    parsed = parse_authorization(header)
    assert (parsed.app_id, parsed.timestamp, parsed.algorithm) == ("app_1", NOW, "RSA")


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer abc",
        "CLOUDPAY-SHA256-RSA2048",
        'CLOUDPAY-SHA256-RSA2048 app_id="a"',
        'CLOUDPAY-SHA256-RSA2048 app_id="a",app_id="b",nonce_str="n",timestamp="1",'
        'serial_no="s",signature="AA=="',
        'CLOUDPAY-SHA256-RSA2048 app_id="a",nonce_str="n",timestamp="-1",serial_no="s",'
        'signature="AA=="',
        'CLOUDPAY-SHA256-RSA2048 app_id="a",nonce_str="n",timestamp="1",serial_no="s",'
        'signature="AA==",extra="x"',
        'CLOUDPAY-SHA256-RSA2048 app_id="a b",nonce_str="n",timestamp="1",serial_no="s",'
        'signature="AA=="',
        'CLOUDPAY-SHA256-RSA2048 app_id=a,nonce_str="n",timestamp="1",serial_no="s",'
        'signature="AA=="',
        "CLOUDPAY-SM2-WITH-SM3 " + "x" * 5000,
    ],
)
def test_malformed_headers_are_refused_by_name(header: str) -> None:
    """Anything but the five well-formed fields is a `MalformedAuthorization`."""
    with pytest.raises(MalformedAuthorization):
        parse_authorization(header)


@given(st.text(max_size=300))
def test_parser_never_fails_otherwise(header: str) -> None:
    """Garbage in: either five fields or `MalformedAuthorization`, never another exception."""
    with contextlib.suppress(MalformedAuthorization):
        parse_authorization(header)


# ---------------------------------------------------------------- the client on the wire


def test_rsa_client_signs_exactly_what_it_sends(
    merchant_rsa: RsaKeyPair, platform: RsaKeyPair
) -> None:
    """The RSA signature verifies over the raw target, query and UTF-8 body as sent."""
    fake = FakeCloudPay(platform)
    with client_for(fake, merchant_rsa.private_key_pem.reveal()) as client:
        client.request("POST", "/v1/orders", json={"subject": "潍坊面馆", "amount": 100})
        client.list_orders(limit=2, out_trade_no="A 1/潍", starting_after=None)
    post, get = fake.requests
    assert post.content == '{"subject":"潍坊面馆","amount":100}'.encode()
    assert get.url.raw_path == b"/v1/orders?limit=2&out_trade_no=A+1%2F%E6%BD%8D"
    assert get.content == b""
    for request in (post, get):
        message, fields = wire_message(request)
        assert fields["scheme"] == "CLOUDPAY-SHA256-RSA2048"
        assert (fields["app_id"], fields["serial_no"], fields["timestamp"]) == (
            "app_01TEST", "SERIAL1", NOW,
        )  # fmt: skip
        assert rsa_verify(merchant_rsa.public_key_pem, message, str(fields["signature"]))


def test_sm2_client_signs_with_sm3(merchant_sm2: Sm2KeyPair, platform: RsaKeyPair) -> None:
    """An `SM2Key` signs with `CLOUDPAY-SM2-WITH-SM3`, verifiable with its public point."""
    fake = FakeCloudPay(platform)
    key = SM2Key(merchant_sm2.private_key_hex.reveal(), merchant_sm2.public_key_hex)
    with client_for(fake, key) as client:
        client.create_refund(order_id="ord_1", amount=50, reason="退货")
    [request] = fake.requests
    message, fields = wire_message(request)
    assert fields["scheme"] == "CLOUDPAY-SM2-WITH-SM3"
    assert message.startswith(b"POST\n/v1/refunds\n1767225600\n")
    assert sm2_verify(merchant_sm2.public_key_hex, message, str(fields["signature"]))


def test_post_carries_an_idempotency_key(merchant_rsa: RsaKeyPair, platform: RsaKeyPair) -> None:
    """Every POST sends `Idempotency-Key`: a fresh UUID4, or the one given; GETs send none."""
    fake = FakeCloudPay(platform)
    with client_for(fake, merchant_rsa.private_key_pem.reveal()) as client:
        client.close_order("ord_1")
        client.create_order(idempotency_key="retry-42", amount=1)
        client.get_order("ord/../1")
    close, create, get = fake.requests
    assert uuid.UUID(close.headers["Idempotency-Key"]).version == 4
    assert close.content == b""
    assert create.headers["Idempotency-Key"] == "retry-42"
    assert "Idempotency-Key" not in get.headers
    assert get.url.raw_path == b"/v1/orders/ord%2F..%2F1"


def test_unsigned_or_tampered_response_is_refused(
    merchant_rsa: RsaKeyPair, platform: RsaKeyPair
) -> None:
    """A response without a valid platform signature raises `SignatureVerificationError`."""
    fake = FakeCloudPay(platform)
    with client_for(fake, merchant_rsa.private_key_pem.reveal()) as client:
        fake.sign_response = lambda body: {}
        with pytest.raises(SignatureVerificationError, match="not signed"):
            client.get_app()
        fake.sign_response = lambda body: platform_headers(platform, b'{"ok":false}')
        with pytest.raises(SignatureVerificationError, match="does not match"):
            client.get_app()
        other = generate_rsa_key_pair()
        fake.sign_response = lambda body: platform_headers(other, body)
        with pytest.raises(SignatureVerificationError, match="unknown platform key"):
            client.get_app()


def test_error_body_becomes_cloudpay_api_error(
    merchant_rsa: RsaKeyPair, platform: RsaKeyPair
) -> None:
    """The one error shape surfaces as `CloudPayAPIError` with every field."""
    error = {"type": "authentication_error", "code": "nonce_reused", "message": "used",
             "param": "Authorization", "request_id": "req_1"}  # fmt: skip
    fake = FakeCloudPay(platform, status=401, body=json.dumps({"error": error}).encode())
    client = client_for(fake, merchant_rsa.private_key_pem.reveal())
    with client, pytest.raises(CloudPayAPIError) as raised:
        client.get_refund("rfd_1")
    assert (raised.value.status, raised.value.type, raised.value.code) == (
        401, "authentication_error", "nonce_reused",
    )  # fmt: skip
    assert (raised.value.param, raised.value.request_id) == ("Authorization", "req_1")


def test_platform_keys_are_fetched_once_when_not_pinned(
    merchant_rsa: RsaKeyPair, platform: RsaKeyPair
) -> None:
    """Trust on first use: one `GET /v1/platform/keys`, then every response verifies with it."""
    listing = {"object": "list", "data": [{
        "serial_no": rsa_public_key_serial_no(platform.public_key_pem),
        "public_key": platform.public_key_pem, "status": "active",
    }]}  # fmt: skip
    fake = FakeCloudPay(platform, body=json.dumps(listing).encode())
    with client_for(fake, merchant_rsa.private_key_pem.reveal(), pinned=False) as client:
        client.list_events(limit=1)
        client.resend_event("evt_1")
    paths = [r.url.path for r in fake.requests]
    assert paths == ["/v1/platform/keys", "/v1/events", "/v1/events/evt_1/resend"]
    assert "Authorization" not in fake.requests[0].headers


def test_a_bad_private_key_fails_at_construction(platform: RsaKeyPair) -> None:
    """A client with an unusable key refuses to be built rather than failing on a payment."""
    with pytest.raises(ValueError, match="PEM"):
        client_for(FakeCloudPay(platform), "not a key")


def test_sdk_imports_nothing_of_the_server() -> None:
    """`cloudpay.sdk` pulls in only `cloudpay.kernel.crypto` (and its `masking`): vendorable."""
    code = (
        "import sys, cloudpay.sdk; "
        "print(sorted(m for m in sys.modules if m.startswith('cloudpay')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    modules = set(json.loads(loaded.replace("'", '"')))
    server_side = {m for m in modules if not m.startswith("cloudpay.sdk")} - {
        "cloudpay", "cloudpay.kernel", "cloudpay.kernel.crypto", "cloudpay.kernel.masking",
    }  # fmt: skip
    assert server_side == set()
