"""Wire rules shared by the bank adapter and its sandbox: signatures both ways, replay
protection. Pure functions plus one bounded nonce memory; no HTTP, no clock of their own.

Partner banks' open APIs (银企直连 / 开放银行) each have their own dialect; the common shape,
which this follows, is the one WeChat Pay v3 documents publicly: SHA256withRSA over a canonical
string holding a timestamp, a one-time nonce and the exact body, a ±5 minute window, and
answers signed by the bank with its own key.
https://pay.weixin.qq.com/docs/merchant/development/interface-rules/signature-generation.html

- Request (we sign): `METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n`, headers `Bank-Client-Id`,
  `Bank-Serial` (our key's serial), `Bank-Timestamp`, `Bank-Nonce`, `Bank-Signature`. The bank
  refuses a nonce it has seen within the window.
- Answer (the bank signs): `STATUS\\nTIMESTAMP\\nNONCE\\nREQUEST_NONCE\\nBODY\\n`; the status
  and our request's nonce are inside the signature, so an old answer cannot be replayed for a
  new call and a refusal cannot be dressed up as a success.
- Webhook (the bank signs): `NOTIFY\\nTIMESTAMP\\nNONCE\\n\\nBODY\\n`, same headers; we refuse a
  nonce seen before.
"""

from __future__ import annotations

import secrets
import string
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from cloudpay.kernel.crypto import rsa_sign, rsa_verify
from cloudpay.kernel.masking import Secret

MAX_CLOCK_SKEW_S = 300
NONCE_CHARS = 32
MAX_NONCES_KEPT = 200_000

HEADER_CLIENT_ID = "Bank-Client-Id"
HEADER_SERIAL = "Bank-Serial"
HEADER_TIMESTAMP = "Bank-Timestamp"
HEADER_NONCE = "Bank-Nonce"
HEADER_SIGNATURE = "Bank-Signature"
HEADER_REQUEST_NONCE = "Bank-Request-Nonce"
WEBHOOK_LINE = "NOTIFY"

_NONCE_ALPHABET = string.ascii_letters + string.digits


def new_nonce() -> str:
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(NONCE_CHARS))


def request_message(method: str, target: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What the client signs; `target` is the path plus `?query` exactly as sent."""
    return f"{method.upper()}\n{target}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def answer_message(
    first_line: str, timestamp: str, nonce: str, request_nonce: str, body: bytes
) -> bytes:
    """What the bank signs: `first_line` is the HTTP status, or `NOTIFY` for a webhook."""
    head = f"{first_line}\n{timestamp}\n{nonce}\n{request_nonce}\n".encode()
    return head + body + b"\n"


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup over any mapping (HTTP header names ignore case)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


@dataclass(frozen=True)
class SigningKey:
    """A private key and the serial its public half is registered under at the other side."""

    private_key_pem: Secret[str]
    serial_no: str


def sign_request(
    key: SigningKey,
    *,
    client_id: str,
    method: str,
    target: str,
    body: bytes,
    timestamp: str,
    nonce: str,
) -> dict[str, str]:
    signature = rsa_sign(
        key.private_key_pem, request_message(method, target, timestamp, nonce, body)
    )
    return {
        HEADER_CLIENT_ID: client_id,
        HEADER_SERIAL: key.serial_no,
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: signature,
    }


def sign_answer(
    key: SigningKey, *, first_line: str, request_nonce: str, body: bytes, timestamp: str
) -> dict[str, str]:
    nonce = new_nonce()
    message = answer_message(first_line, timestamp, nonce, request_nonce, body)
    return {
        HEADER_SERIAL: key.serial_no,
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_REQUEST_NONCE: request_nonce,
        HEADER_SIGNATURE: rsa_sign(key.private_key_pem, message),
    }


def fresh(timestamp: str | None, now_s: int, max_skew_s: int = MAX_CLOCK_SKEW_S) -> bool:
    if timestamp is None or not timestamp.isdigit():
        return False
    return abs(now_s - int(timestamp)) <= max_skew_s


def verify_answer(
    headers: Mapping[str, str],
    body: bytes,
    *,
    first_line: str,
    request_nonce: str,
    public_key_pem: str,
    serial_no: str,
    now_s: int,
) -> str | None:
    """Why a bank answer or webhook must be refused, or None if it verifies."""
    timestamp, nonce = header(headers, HEADER_TIMESTAMP), header(headers, HEADER_NONCE)
    signature, serial = header(headers, HEADER_SIGNATURE), header(headers, HEADER_SERIAL)
    if not (timestamp and nonce and signature and serial):
        return "missing Bank-* signature headers"
    if serial != serial_no:
        return f"signed with an unknown key {serial!r}"
    if not fresh(timestamp, now_s):
        return "timestamp is missing or more than 5 minutes off"
    if header(headers, HEADER_REQUEST_NONCE) not in (None, request_nonce):
        return "answer is for another request"
    message = answer_message(first_line, timestamp, nonce, request_nonce, body)
    if not rsa_verify(public_key_pem, message, signature):
        return "signature does not verify"
    return None


class NonceMemory:
    """Nonces seen within the replay window; bounded, oldest forgotten first.

    A nonce only needs remembering while its timestamp could still pass the freshness
    check (2 × the window covers a sender clock up to 5 minutes ahead)."""

    def __init__(self, *, keep_s: int = 2 * MAX_CLOCK_SKEW_S, limit: int = MAX_NONCES_KEPT):
        self._keep_s, self._limit = keep_s, limit
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def first_use(self, nonce: str, now_s: int) -> bool:
        """Remember `nonce`; False if it was already used within the window."""
        with self._lock:
            while self._seen and (
                next(iter(self._seen.values())) < now_s or len(self._seen) >= self._limit
            ):
                self._seen.popitem(last=False)
            if nonce in self._seen:
                return False
            self._seen[nonce] = now_s + self._keep_s
            return True
