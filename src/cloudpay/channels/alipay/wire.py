"""Alipay OpenAPI wire rules shared by the adapter and the sandbox (pure functions).

- Request signature (RSA2): every parameter but `sign`, empty values left out, sorted by key
  (ASCII), joined as raw `k=v` pairs with `&`, signed SHA256withRSA with the app private key,
  base64. https://opendocs.alipay.com/common/02kf5q
- Synchronous answers: `{"<method_with_underscores>_response": {...}, "sign": "..."}`, the
  signature covering the `_response` value's JSON text exactly as it appears in the body.
  https://opendocs.alipay.com/common/02mse7
- Asynchronous notifications (form POST): verify over the sorted `k=v&` string of every
  parameter except `sign` and `sign_type`. https://opendocs.alipay.com/open/270/105902
- Amounts are yuan strings with at most two decimals ("12.34"); times are Beijing wall time
  "yyyy-MM-dd HH:mm:ss" (GMT+8). A request's `timestamp` is accepted 30 minutes either way
  (https://global.alipay.com/doc/global/precreate_transaction: "By default, the request
  expires in 30 minutes").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime

from cloudpay.kernel.business_time import format_shanghai, parse_shanghai
from cloudpay.kernel.crypto import rsa_sign, rsa_verify
from cloudpay.kernel.masking import Secret

SIGN_TYPE = "RSA2"
CHARSET = "utf-8"
VERSION = "1.0"
FORMAT = "JSON"
MAX_TIMESTAMP_SKEW_S = 30 * 60
SUCCESS_CODE = "10000"
PENDING_CODE = "10003"  # "订单创建成功支付处理中" (trade.pay waiting for the payer's password)
ERROR_RESPONSE_KEY = "error_response"

_AMOUNT = re.compile(r"(0|[1-9]\d{0,11})(\.\d{1,2})?")
_JSON = json.JSONDecoder()


class WireFormatError(ValueError):
    """A value does not follow Alipay's wire format."""


def response_key(api_method: str) -> str:
    """`alipay.trade.query` → `alipay_trade_query_response`."""
    return api_method.replace(".", "_") + "_response"


def signing_string(params: Mapping[str, str], *, exclude: frozenset[str]) -> str:
    """Sorted raw `k=v` pairs joined by `&`, without excluded keys and empty values."""
    return "&".join(
        f"{key}={value}" for key, value in sorted(params.items()) if key not in exclude and value
    )


REQUEST_EXCLUDED = frozenset({"sign"})
NOTIFICATION_EXCLUDED = frozenset({"sign", "sign_type"})


def sign_params(
    params: Mapping[str, str], private_key_pem: Secret[str], *, exclude: frozenset[str]
) -> str:
    return rsa_sign(private_key_pem, signing_string(params, exclude=exclude).encode())


def verify_params(
    params: Mapping[str, str], public_key_pem: str, *, exclude: frozenset[str]
) -> bool:
    signature = params.get("sign", "")
    if not signature:
        return False
    return rsa_verify(public_key_pem, signing_string(params, exclude=exclude).encode(), signature)


def signed_request(params: Mapping[str, str], private_key_pem: Secret[str]) -> dict[str, str]:
    """`params` plus the `sign` over them (request rules: `sign_type` is signed too)."""
    return {**params, "sign": sign_params(params, private_key_pem, exclude=REQUEST_EXCLUDED)}


def compact_json(payload: object) -> str:
    """JSON as Alipay writes it: no spaces, Chinese characters unescaped."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def signed_response_body(key: str, content: str, private_key_pem: Secret[str]) -> str:
    """The answer text `{"<key>":<content>,"sign":"…"}`, `content` signed as it stands."""
    signature = rsa_sign(private_key_pem, content.encode())
    return f'{{"{key}":{content},"sign":"{signature}"}}'


def response_content(raw: str, key: str) -> str | None:
    """The exact text of the top-level `key`'s JSON value in `raw`, or None if absent.

    Scans the top-level object with the JSON decoder itself, so braces inside strings, other
    keys or nesting cannot move the boundaries (a naive brace count can be fooled).
    """
    position = _skip_space(raw, 0)
    if not raw.startswith("{", position):
        return None
    position = _skip_space(raw, position + 1)
    while position < len(raw) and raw[position] == '"':
        name, position = _JSON.raw_decode(raw, position)
        position = _skip_space(raw, position)
        if not raw.startswith(":", position):
            return None
        start = _skip_space(raw, position + 1)
        _, end = _JSON.raw_decode(raw, start)
        if name == key:
            return raw[start:end]
        position = _skip_space(raw, end)
        if raw.startswith(",", position):
            position = _skip_space(raw, position + 1)
    return None


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


# ---------------------------------------------------------------- values


def yuan(amount_fen: int) -> str:
    """Integer fen as Alipay's yuan string: 1234 → "12.34"."""
    if amount_fen < 0:
        raise WireFormatError("amounts on the wire are never negative")
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def fen(amount_yuan: str) -> int:
    """Alipay's yuan string as integer fen, refusing anything but `\\d+(.\\d{1,2})?`."""
    match = _AMOUNT.fullmatch(amount_yuan.strip() if isinstance(amount_yuan, str) else "")
    if match is None:
        raise WireFormatError(f"not an amount in yuan: {amount_yuan!r}")
    fraction = (match.group(2) or ".")[1:].ljust(2, "0")
    return int(match.group(1)) * 100 + int(fraction)


def beijing_time(instant: datetime) -> str:
    return format_shanghai(instant)


def parse_beijing_time(text: str) -> datetime:
    try:
        return parse_shanghai(text)
    except (TypeError, ValueError) as error:
        raise WireFormatError(f"not a Beijing time yyyy-MM-dd HH:mm:ss: {text!r}") from error


def rsa_verify_text(public_key_pem: str, text: str, signature: str) -> bool:
    """Verify an answer's `sign` over the exact `_response` text (UTF-8)."""
    return rsa_verify(public_key_pem, text.encode(CHARSET), signature)
