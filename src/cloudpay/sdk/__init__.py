"""CloudPay's Python SDK: signed requests, verified responses and webhooks.

    from cloudpay.sdk import CloudPayClient, verify_webhook

Depends on httpx and `cloudpay.kernel.crypto` only, so it can be vendored on its own.
"""

from cloudpay.sdk.client import CloudPayClient, SM2Key
from cloudpay.sdk.errors import CloudPayAPIError, SignatureVerificationError
from cloudpay.sdk.protocol import (
    HEADER_NONCE,
    HEADER_SERIAL,
    HEADER_SIGNATURE,
    HEADER_SIGNATURE_TYPE,
    HEADER_TIMESTAMP,
    RSA_SCHEME,
    SM2_SCHEME,
)
from cloudpay.sdk.webhooks import verify_webhook

__all__ = [
    "HEADER_NONCE",
    "HEADER_SERIAL",
    "HEADER_SIGNATURE",
    "HEADER_SIGNATURE_TYPE",
    "HEADER_TIMESTAMP",
    "RSA_SCHEME",
    "SM2_SCHEME",
    "CloudPayAPIError",
    "CloudPayClient",
    "SM2Key",
    "SignatureVerificationError",
    "verify_webhook",
]
