"""WeChat Pay API v3 wire rules shared by the adapter and the sandbox.

Everything here is a pure function of its arguments (no HTTP, no clock):

- Request signature (签名生成): the five-line string `METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`
  signed SHA256withRSA with the merchant's API private key, sent as
  `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",
  timestamp="…",serial_no="…"` (the five fields in any order).
  https://pay.weixin.qq.com/docs/merchant/development/interface-rules/signature-generation.html
- Response and notification signature (验签): the three-line string `TIMESTAMP\\nNONCE\\nBODY\\n`
  from the `Wechatpay-Timestamp`, `Wechatpay-Nonce` headers and the raw body, verified with the
  WeChat Pay public key named by `Wechatpay-Serial`; timestamps more than 5 minutes off are
  refused against replay.
  https://pay.wechatpay.cn/docs/merchant/development/interface-rules/build-verify-sign-src.html
- Notification resource: AEAD_AES_256_GCM (RFC 5116) with the 32-byte APIv3 key, the
  resource's `nonce` (12 bytes) and `associated_data` as UTF-8, ciphertext+tag in base64.
  https://pay.weixin.qq.com/wiki/doc/apiv3/apis/chapter3_4_5.shtml
- JSAPI pay parameters: `paySign` signs `appId\\ntimeStamp\\nnonceStr\\npackage\\n`.
  https://payapp.weixin.qq.com/wiki/doc/apiv3_partner/apis/chapter4_5_4.shtml
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cloudpay.kernel.crypto import rsa_sign, rsa_verify
from cloudpay.kernel.masking import Secret

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
SIGNATURE_TYPE = AUTH_SCHEME  # the value of `Wechatpay-Signature-Type`
AEAD_ALGORITHM = "AEAD_AES_256_GCM"
APIV3_KEY_BYTES = 32
AEAD_NONCE_CHARS = 12
MAX_CLOCK_SKEW_S = 300  # WeChat's advice: refuse timestamps more than 5 minutes off
# WeChat sends probe traffic whose signatures start with this; it must never verify.
SIGNATURE_PROBE_PREFIX = "WECHATPAY/SIGNTEST/"

HEADER_TIMESTAMP = "Wechatpay-Timestamp"
HEADER_NONCE = "Wechatpay-Nonce"
HEADER_SIGNATURE = "Wechatpay-Signature"
HEADER_SERIAL = "Wechatpay-Serial"
HEADER_SIGNATURE_TYPE = "Wechatpay-Signature-Type"

_AUTH_FIELDS = frozenset({"mchid", "nonce_str", "signature", "timestamp", "serial_no"})
_AUTH_PAIR = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*')
_NONCE_ALPHABET = string.ascii_uppercase + string.digits


class WireFormatError(ValueError):
    """A header or resource does not follow the v3 wire format."""


def new_nonce(length: int = 32) -> str:
    """A random nonce of upper-case letters and digits (WeChat's examples use 32)."""
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


# ---------------------------------------------------------------- requests


def request_message(method: str, url_path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The five-line string a merchant signs; `url_path` is the path plus `?query` if any."""
    head = f"{method.upper()}\n{url_path}\n{timestamp}\n{nonce}\n".encode()
    return head + body + b"\n"


@dataclass(frozen=True)
class Authorization:
    """The parsed `Authorization` header of a v3 request."""

    mchid: str
    nonce_str: str
    signature: str
    timestamp: str
    serial_no: str

    def header_value(self) -> str:
        return (
            f'{AUTH_SCHEME} mchid="{self.mchid}",nonce_str="{self.nonce_str}",'
            f'signature="{self.signature}",timestamp="{self.timestamp}",'
            f'serial_no="{self.serial_no}"'
        )


def sign_request(
    *,
    method: str,
    url_path: str,
    body: bytes,
    mchid: str,
    serial_no: str,
    private_key_pem: Secret[str],
    timestamp: str,
    nonce: str,
) -> Authorization:
    message = request_message(method, url_path, timestamp, nonce, body)
    signature = rsa_sign(private_key_pem, message)
    return Authorization(mchid, nonce, signature, timestamp, serial_no)


def parse_authorization(header: str) -> Authorization:
    """Parse an `Authorization` header; raise `WireFormatError` if it is not v3's shape."""
    scheme, _, params = header.strip().partition(" ")
    if scheme != AUTH_SCHEME:
        raise WireFormatError(f"authorization scheme must be {AUTH_SCHEME}")
    fields: dict[str, str] = {}
    for part in params.split(","):
        match = _AUTH_PAIR.fullmatch(part)
        if match is None or match.group(1) in fields:
            raise WireFormatError("authorization parameters are malformed")
        fields[match.group(1)] = match.group(2)
    if set(fields) != _AUTH_FIELDS:
        raise WireFormatError(f"authorization needs exactly {sorted(_AUTH_FIELDS)}")
    return Authorization(**fields)


# ---------------------------------------------------------------- responses / notifications


def response_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """The three-line string WeChat signs over a response or notification."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def signed_headers(
    *, body: bytes, private_key_pem: Secret[str], public_key_id: str, timestamp: str
) -> dict[str, str]:
    """The `Wechatpay-*` headers that sign `body` (what the sandbox sends)."""
    nonce = new_nonce()
    signature = rsa_sign(private_key_pem, response_message(timestamp, nonce, body))
    return {
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: signature,
        HEADER_SERIAL: public_key_id,
        HEADER_SIGNATURE_TYPE: SIGNATURE_TYPE,
    }


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup over any mapping (HTTP header names ignore case)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def verify_signed(
    headers: Mapping[str, str],
    body: bytes,
    *,
    public_key_pem: str,
    public_key_id: str,
    now_s: int,
    max_skew_s: int = MAX_CLOCK_SKEW_S,
) -> str | None:
    """Why a signed response or notification must be refused, or None if it verifies.

    Checked in order: headers present, algorithm, key id, timestamp freshness, signature.
    """
    timestamp = header(headers, HEADER_TIMESTAMP)
    nonce = header(headers, HEADER_NONCE)
    signature = header(headers, HEADER_SIGNATURE)
    serial = header(headers, HEADER_SERIAL)
    if not (timestamp and nonce and signature and serial):
        return "missing Wechatpay-* signature headers"
    signature_type = header(headers, HEADER_SIGNATURE_TYPE)
    if signature_type not in (None, SIGNATURE_TYPE):
        return f"unsupported signature type {signature_type!r}"
    if serial != public_key_id:
        return f"signed with an unknown key {serial!r}"
    if not timestamp.isdigit() or abs(now_s - int(timestamp)) > max_skew_s:
        return "timestamp is missing or more than 5 minutes off"
    if signature.startswith(SIGNATURE_PROBE_PREFIX):
        return "signature probe"
    if not rsa_verify(public_key_pem, response_message(timestamp, nonce, body), signature):
        return "signature does not verify"
    return None


# ---------------------------------------------------------------- AEAD resource


def _apiv3_key(key: Secret[str]) -> bytes:
    raw = key.reveal().encode()
    if len(raw) != APIV3_KEY_BYTES:
        raise WireFormatError(f"the APIv3 key must be {APIV3_KEY_BYTES} bytes")
    return raw


def encrypt_resource(
    plaintext: bytes, *, apiv3_key: Secret[str], associated_data: str, nonce: str | None = None
) -> dict[str, str]:
    """The `resource` object of a notification (algorithm, ciphertext, nonce, associated_data)."""
    nonce = nonce or new_nonce(AEAD_NONCE_CHARS)
    sealed = AESGCM(_apiv3_key(apiv3_key)).encrypt(
        nonce.encode(), plaintext, associated_data.encode()
    )
    return {
        "algorithm": AEAD_ALGORITHM,
        "ciphertext": base64.b64encode(sealed).decode("ascii"),
        "nonce": nonce,
        "associated_data": associated_data,
    }


def decrypt_resource(resource: Mapping[str, object], *, apiv3_key: Secret[str]) -> bytes:
    """Plaintext of a notification `resource`; `WireFormatError` if malformed or altered."""
    if resource.get("algorithm") != AEAD_ALGORITHM:
        raise WireFormatError(f"resource algorithm must be {AEAD_ALGORITHM}")
    ciphertext, nonce = resource.get("ciphertext"), resource.get("nonce")
    associated_data = resource.get("associated_data") or ""
    if not (isinstance(ciphertext, str) and isinstance(nonce, str)):
        raise WireFormatError("resource needs ciphertext and nonce strings")
    if not isinstance(associated_data, str):
        raise WireFormatError("resource associated_data must be a string")
    try:
        sealed = base64.b64decode(ciphertext, validate=True)
        return AESGCM(_apiv3_key(apiv3_key)).decrypt(
            nonce.encode(), sealed, associated_data.encode()
        )
    except (binascii.Error, ValueError, InvalidTag) as error:
        raise WireFormatError("resource does not decrypt with the APIv3 key") from error


# ---------------------------------------------------------------- JSAPI pay parameters


def jsapi_pay_params(
    *, appid: str, prepay_id: str, private_key_pem: Secret[str], timestamp: str, nonce: str
) -> dict[str, str]:
    """What `WeixinJSBridge` / `wx.requestPayment` needs, signed with the merchant key."""
    package = f"prepay_id={prepay_id}"
    message = f"{appid}\n{timestamp}\n{nonce}\n{package}\n".encode()
    return {
        "appId": appid,
        "timeStamp": timestamp,
        "nonceStr": nonce,
        "package": package,
        "signType": "RSA",
        "paySign": rsa_sign(private_key_pem, message),
    }
