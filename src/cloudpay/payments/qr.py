"""QR images of an order's `code_url`, at a URL that needs no signature but cannot be guessed.

A payer's browser or a till's screen loads the image directly, so the URL carries an HMAC of
the order id instead of the merchant's request signature. Images come from segno (a
maintained, dependency-free QR encoder) as PNG or SVG.
"""

from __future__ import annotations

import hashlib
import hmac
import io

import segno

TOKEN_HEX_CHARS = 24  # 96 bits: unguessable, short enough for a URL in a receipt
FORMATS = {"png": "image/png", "svg": "image/svg+xml"}


def qr_token(order_id: str, key: bytes) -> str:
    return hmac.new(key, b"qr:" + order_id.encode(), hashlib.sha256).hexdigest()[:TOKEN_HEX_CHARS]


def token_matches(order_id: str, token: str, key: bytes) -> bool:
    return hmac.compare_digest(qr_token(order_id, key), token)


def qr_image_path(order_id: str, key: bytes, image_format: str = "png") -> str:
    return f"/pay/qr/{order_id}.{image_format}?t={qr_token(order_id, key)}"


def render(payload: str, image_format: str) -> bytes:
    """The QR image: error correction M, a quiet zone of 4 modules as the standard asks."""
    code = segno.make(payload, error="m", micro=False)
    buffer = io.BytesIO()
    if image_format == "svg":
        code.save(buffer, kind="svg", scale=8, border=4)
    else:
        code.save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()
