"""`CloudPayClient`: signs every request, verifies every response, raises on errors."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from cloudpay.kernel import crypto
from cloudpay.sdk.errors import CloudPayAPIError, SignatureVerificationError
from cloudpay.sdk.protocol import (
    RSA_SCHEME,
    SM2_SCHEME,
    format_authorization,
    request_signing_message,
    verify_platform_signature,
)

SDK_VERSION = "0.1.0"
PLATFORM_KEYS_PATH = "/v1/platform/keys"
DEFAULT_TIMEOUT_S = 10.0

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class SM2Key:
    """An SM2 key pair: 64-hex private scalar and the `04…` public point (SM2 signs with both)."""

    private_key_hex: str = field(repr=False)
    public_key_hex: str


class CloudPayClient:
    """A signed client of CloudPay's merchant API.

    `private_key` is the app's RSA private key (PEM) or an `SM2Key`; `serial_no` the serial of
    its public key as CloudPay registered it. `platform_public_keys` maps platform key serials
    to public keys (from `GET /v1/platform/keys`, kept in your configuration). Given `None`,
    the client fetches them on first use and trusts what it gets (trust on first use): fine
    over TLS to the right host, but pin them in production so a man in the middle on the
    very first call cannot substitute his own key. Only in that mode does an unknown serial
    (after a platform key rotation) trigger one refetch.

    Every `POST` carries an `Idempotency-Key` (a new UUID4 unless you pass one): retry a
    failed POST with the same key and CloudPay returns the first answer instead of acting
    twice. Responses whose platform signature is missing or wrong raise
    `SignatureVerificationError`; error responses raise `CloudPayAPIError`.
    """

    def __init__(
        self,
        base_url: str,
        app_id: str,
        private_key: str | SM2Key,
        serial_no: str,
        platform_public_keys: Mapping[str, str] | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.app_id = app_id
        self.serial_no = serial_no
        self._private_key = private_key
        self._scheme = SM2_SCHEME if isinstance(private_key, SM2Key) else RSA_SCHEME
        self._sign(b"")  # a wrong key fails here, not on the first payment
        self._pinned = platform_public_keys is not None
        self._platform_keys: dict[str, str] | None = (
            dict(platform_public_keys) if platform_public_keys is not None else None
        )
        self._clock = clock
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout_s,
            transport=transport,
            headers={"User-Agent": f"cloudpay-python/{SDK_VERSION}", "Accept": "application/json"},
        )

    # ------------------------------------------------------------------ plumbing

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> JsonObject:
        """Send one signed request; the verified JSON body of a 2xx, else `CloudPayAPIError`."""
        method = method.upper()
        body = b"" if json is None else _dumps(json)
        headers = {"Content-Type": "application/json"} if body else {}
        if method == "POST" or idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        request = self._http.build_request(
            method, path, params=_clean(params), content=body, headers=headers
        )
        request.headers["Authorization"] = self._authorization(method, request.url.raw_path, body)
        self.platform_public_keys()  # before sending: no POST whose answer we cannot check
        response = self._http.send(request)
        self._verify(response)
        return _json_or_raise(response)

    def _authorization(self, method: str, path_and_query: bytes, body: bytes) -> str:
        timestamp = int(self._clock())
        nonce = secrets.token_hex(16)
        message = request_signing_message(method, path_and_query, timestamp, nonce, body)
        return format_authorization(
            self._scheme,
            app_id=self.app_id,
            nonce_str=nonce,
            timestamp=timestamp,
            serial_no=self.serial_no,
            signature=self._sign(message),
        )

    def _sign(self, message: bytes) -> str:
        key = self._private_key
        if isinstance(key, SM2Key):
            return crypto.sm2_sign(key.private_key_hex, key.public_key_hex, message)
        return crypto.rsa_sign(key, message)

    def _verify(self, response: httpx.Response) -> None:
        body = response.read()
        keys = self.platform_public_keys()
        serial_no = response.headers.get("Cloudpay-Serial", "")
        if serial_no and serial_no not in keys and not self._pinned:
            keys = self.platform_public_keys(refresh=True)  # the platform rotated its key
        try:
            verify_platform_signature(response.headers, body, keys)
        except SignatureVerificationError as error:
            raise SignatureVerificationError(
                f"{response.status_code} response to {response.request.method} "
                f"{response.request.url.path}: {error}"
            ) from error

    def platform_public_keys(self, *, refresh: bool = False) -> dict[str, str]:
        """Serial → public key of the platform keys this client trusts."""
        if self._platform_keys is None or (refresh and not self._pinned):
            self._platform_keys = self._fetch_platform_keys()
        return dict(self._platform_keys)

    def _fetch_platform_keys(self) -> dict[str, str]:
        response = self._http.get(PLATFORM_KEYS_PATH)
        listing = _json_or_raise(response)
        keys = {str(key["serial_no"]): str(key["public_key"]) for key in listing["data"]}
        # Proves the listing is whole and self-consistent, not that it is CloudPay's (TOFU).
        verify_platform_signature(response.headers, response.content, keys)
        return keys

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CloudPayClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ the API

    def get_app(self) -> JsonObject:
        """The calling app as CloudPay sees it: app id, merchant id, key serial."""
        return self.request("GET", "/v1/apps/me")

    def create_order(self, *, idempotency_key: str | None = None, **fields: Any) -> JsonObject:
        return self.request("POST", "/v1/orders", json=fields, idempotency_key=idempotency_key)

    def get_order(self, order_id: str) -> JsonObject:
        return self.request("GET", f"/v1/orders/{_segment(order_id)}")

    def list_orders(self, **params: Any) -> JsonObject:
        """One page, newest first: `limit`, `starting_after`, `out_trade_no`, …"""
        return self.request("GET", "/v1/orders", params=params)

    def close_order(self, order_id: str, *, idempotency_key: str | None = None) -> JsonObject:
        path = f"/v1/orders/{_segment(order_id)}/close"
        return self.request("POST", path, idempotency_key=idempotency_key)

    def create_refund(self, *, idempotency_key: str | None = None, **fields: Any) -> JsonObject:
        return self.request("POST", "/v1/refunds", json=fields, idempotency_key=idempotency_key)

    def get_refund(self, refund_id: str) -> JsonObject:
        return self.request("GET", f"/v1/refunds/{_segment(refund_id)}")

    def list_events(self, **params: Any) -> JsonObject:
        return self.request("GET", "/v1/events", params=params)

    def resend_event(self, event_id: str, *, idempotency_key: str | None = None) -> JsonObject:
        path = f"/v1/events/{_segment(event_id)}/resend"
        return self.request("POST", path, idempotency_key=idempotency_key)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return {k: v for k, v in params.items() if v is not None} if params else None


def _segment(value: str) -> str:
    """An id as one path segment: `/` or `?` in it cannot reach another route."""
    return quote(value, safe="")


def _json_or_raise(response: httpx.Response) -> JsonObject:
    request_id = response.headers.get("Request-Id")
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success and isinstance(body, dict):
        return body
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        raise CloudPayAPIError(
            response.status_code, "api_error", "unexpected_response",
            response.text[:200] or response.reason_phrase, None, request_id,
        )  # fmt: skip
    raise CloudPayAPIError(
        response.status_code,
        str(error.get("type", "api_error")),
        str(error.get("code", "unknown")),
        str(error.get("message", "")),
        error.get("param"),
        error.get("request_id") or request_id,
    )
