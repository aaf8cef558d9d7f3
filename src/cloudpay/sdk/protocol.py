"""CloudPay's signature wire format, shared by the server and this SDK so the two cannot drift.

Requests (merchant → CloudPay), as WeChat Pay API v3 does it::

    METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n
    Authorization: CLOUDPAY-SHA256-RSA2048 app_id="…",nonce_str="…",timestamp="…",
                   serial_no="…",signature="…"

`PATH?QUERY` is the request target exactly as sent (percent-encoded, no `?` when there is no
query) and `BODY` the exact body bytes (empty for a GET). SM2 keys use the scheme
`CLOUDPAY-SM2-WITH-SM3`.

Responses and webhooks (CloudPay → merchant) are signed by a platform key over
`TIMESTAMP\\nNONCE\\nBODY\\n`, in the headers `Cloudpay-Timestamp`, `Cloudpay-Nonce`,
`Cloudpay-Signature`, `Cloudpay-Serial` (and `Cloudpay-Signature-Type`).

Imports nothing of CloudPay but `cloudpay.kernel.crypto`, so the SDK can be vendored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from cloudpay.kernel import crypto

RSA_SCHEME = "CLOUDPAY-SHA256-RSA2048"
SM2_SCHEME = "CLOUDPAY-SM2-WITH-SM3"
ALGORITHM_BY_SCHEME = {RSA_SCHEME: "RSA", SM2_SCHEME: "SM2"}
SCHEME_BY_ALGORITHM = {algorithm: scheme for scheme, algorithm in ALGORITHM_BY_SCHEME.items()}

HEADER_TIMESTAMP = "Cloudpay-Timestamp"
HEADER_NONCE = "Cloudpay-Nonce"
HEADER_SIGNATURE = "Cloudpay-Signature"
HEADER_SERIAL = "Cloudpay-Serial"
HEADER_SIGNATURE_TYPE = "Cloudpay-Signature-Type"

TIMESTAMP_TOLERANCE_S = 300
MAX_AUTHORIZATION_CHARS = 2048

_AUTHORIZATION_FIELDS = ("app_id", "nonce_str", "timestamp", "serial_no", "signature")
_FIELD_PATTERNS = {
    "app_id": re.compile(r"[A-Za-z0-9_-]{1,64}"),
    "nonce_str": re.compile(r"[A-Za-z0-9_-]{1,64}"),
    "timestamp": re.compile(r"[0-9]{1,12}"),
    "serial_no": re.compile(r"[A-Za-z0-9]{1,64}"),
    # Base64 of an RSA-4096 signature is 684 characters; leave room, but bound it.
    "signature": re.compile(r"[A-Za-z0-9+/]{1,1400}={0,2}"),
}
_PARAMETER = re.compile(r'\s*([a-z_]{1,32})="([^"]{0,1500})"\s*(,|$)')


class MalformedAuthorization(ValueError):
    """The `Authorization` header is not a CloudPay signature header."""


class SignatureVerificationError(Exception):
    """A CloudPay signature is missing, stale, from an unknown key or does not verify."""


@dataclass(frozen=True)
class AuthorizationHeader:
    scheme: str
    app_id: str
    nonce_str: str
    timestamp: int
    serial_no: str
    signature: str

    @property
    def algorithm(self) -> str:
        """`RSA` or `SM2`: which kind of key made the signature."""
        return ALGORITHM_BY_SCHEME[self.scheme]


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def request_signing_message(
    method: str, path_and_query: str | bytes, timestamp: int, nonce: str, body: bytes
) -> bytes:
    """`METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n`, byte for byte."""
    return b"\n".join(
        [
            method.encode("ascii"),
            _as_bytes(path_and_query),
            str(timestamp).encode("ascii"),
            nonce.encode("ascii"),
            body,
            b"",
        ]
    )


def response_signing_message(timestamp: int, nonce: str, body: bytes) -> bytes:
    """`TIMESTAMP\\nNONCE\\nBODY\\n`: what platform signatures of responses and webhooks cover."""
    return b"\n".join([str(timestamp).encode("ascii"), nonce.encode("ascii"), body, b""])


def format_authorization(
    scheme: str, *, app_id: str, nonce_str: str, timestamp: int, serial_no: str, signature: str
) -> str:
    return (
        f'{scheme} app_id="{app_id}",nonce_str="{nonce_str}",timestamp="{timestamp}",'
        f'serial_no="{serial_no}",signature="{signature}"'
    )


def parse_authorization(header: str) -> AuthorizationHeader:
    """The five fields of a CloudPay `Authorization` header; anything else is refused."""
    if len(header) > MAX_AUTHORIZATION_CHARS:
        raise MalformedAuthorization("Authorization header is too long")
    scheme, _, parameters = header.strip().partition(" ")
    if scheme not in ALGORITHM_BY_SCHEME:
        raise MalformedAuthorization(f"unsupported scheme; use {RSA_SCHEME} or {SM2_SCHEME}")
    fields = _parse_parameters(parameters)
    missing = [name for name in _AUTHORIZATION_FIELDS if name not in fields]
    if missing:
        raise MalformedAuthorization(f"Authorization lacks {', '.join(missing)}")
    for name, pattern in _FIELD_PATTERNS.items():
        if not pattern.fullmatch(fields[name]):
            raise MalformedAuthorization(f"Authorization {name} is malformed")
    return AuthorizationHeader(
        scheme=scheme,
        app_id=fields["app_id"],
        nonce_str=fields["nonce_str"],
        timestamp=int(fields["timestamp"]),
        serial_no=fields["serial_no"],
        signature=fields["signature"],
    )


def _parse_parameters(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _PARAMETER.match(text, position)
        if match is None or match.end() == position:
            raise MalformedAuthorization('Authorization parameters must be name="value" pairs')
        name, value, separator = match.groups()
        if name not in _AUTHORIZATION_FIELDS or name in fields:
            raise MalformedAuthorization(f"Authorization has an unknown or repeated {name!r}")
        fields[name] = value
        position = match.end()
        if not separator:
            break
    return fields


def verify_signature(public_key: str, message: bytes, signature_b64: str) -> bool:
    """RSA (a PEM public key) or SM2 (an `04…` hex point) signature check."""
    if public_key.lstrip().startswith("-----BEGIN"):
        return crypto.rsa_verify(public_key, message, signature_b64)
    return crypto.sm2_verify(public_key, message, signature_b64)


def verify_platform_signature(
    headers: Mapping[str, str], body: bytes, platform_public_keys: Mapping[str, str]
) -> int:
    """Checks the `Cloudpay-*` signature headers over `body`; returns the signed timestamp.

    Raises `SignatureVerificationError` when a header is missing or malformed, the serial is
    not among `platform_public_keys`, or the signature does not match.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    values = [lowered.get(name.lower(), "") for name in _PLATFORM_HEADERS]
    timestamp, nonce, signature, serial_no = values
    if not all(values):
        raise SignatureVerificationError("response is not signed by CloudPay")
    if not (_FIELD_PATTERNS["timestamp"].fullmatch(timestamp) and nonce.isascii()):
        raise SignatureVerificationError("platform signature headers are malformed")
    public_key = platform_public_keys.get(serial_no)
    if public_key is None:
        raise SignatureVerificationError(f"unknown platform key serial {serial_no!r}")
    message = response_signing_message(int(timestamp), nonce, body)
    try:
        valid = verify_signature(public_key, message, signature)
    except crypto.InvalidKey as error:
        raise SignatureVerificationError(f"platform key {serial_no!r} is not usable") from error
    if not valid:
        raise SignatureVerificationError("platform signature does not match the body")
    return int(timestamp)


_PLATFORM_HEADERS = (HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE, HEADER_SERIAL)
