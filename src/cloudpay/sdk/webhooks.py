"""`verify_webhook`: is this POST really CloudPay's, and recent? Then the event it carries."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from cloudpay.sdk.protocol import (
    TIMESTAMP_TOLERANCE_S,
    SignatureVerificationError,
    verify_platform_signature,
)


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    platform_public_keys: Mapping[str, str],
    *,
    tolerance_s: int = TIMESTAMP_TOLERANCE_S,
    now: float | None = None,
) -> dict[str, Any]:
    """The event of a webhook whose platform signature verifies and whose timestamp is fresh.

    Pass the raw body bytes as received (not re-serialised JSON) and the headers in any case.
    Raises `SignatureVerificationError` otherwise. Deliveries are at least once: dedupe on
    the event's `id`. `now` (Unix seconds) is for tests.
    """
    timestamp = verify_platform_signature(headers, body, platform_public_keys)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureVerificationError(
            f"webhook timestamp {timestamp} is more than {tolerance_s}s from now"
        )
    try:
        event = json.loads(body)
    except ValueError as error:
        raise SignatureVerificationError("webhook body is not JSON") from error
    if not isinstance(event, dict):
        raise SignatureVerificationError("webhook body is not a JSON object")
    return event
