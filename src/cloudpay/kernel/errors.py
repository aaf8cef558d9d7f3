"""The one error shape of CloudPay.

Every failure a caller can cause is a `CloudPayError` subclass with a stable `code`; the API
turns it into `{"error": {"type", "code", "message", "param", "request_id"}}` with the status
that its `error_type` implies. Programmer errors (a broken invariant) are not `CloudPayError`s:
they stay exceptions and become a logged 500.
"""

from __future__ import annotations

from typing import Any, ClassVar

# error type → HTTP status. Stripe's vocabulary, so integrators meet familiar words.
STATUS_BY_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "payment_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "idempotency_error": 409,
    "validation_error": 422,
    "rate_limit_error": 429,
    "channel_error": 424,
    "api_error": 500,
}


class CloudPayError(Exception):
    """A failure the caller can understand and act on."""

    error_type: ClassVar[str] = "invalid_request_error"
    default_code: ClassVar[str] = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        self.details = details or {}

    @property
    def http_status(self) -> int:
        return STATUS_BY_TYPE[self.error_type]

    def to_dict(self, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.error_type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "request_id": request_id,
        }
        if self.details:
            body["details"] = self.details
        return {"error": body}


class InvalidRequest(CloudPayError):
    error_type = "invalid_request_error"
    default_code = "invalid_request"


class ValidationFailed(CloudPayError):
    error_type = "validation_error"
    default_code = "validation_failed"


class AuthenticationFailed(CloudPayError):
    error_type = "authentication_error"
    default_code = "authentication_failed"


class PermissionDenied(CloudPayError):
    error_type = "permission_error"
    default_code = "permission_denied"


class NotFound(CloudPayError):
    error_type = "not_found_error"
    default_code = "resource_missing"


class Conflict(CloudPayError):
    error_type = "conflict_error"
    default_code = "conflict"


class IdempotencyConflict(CloudPayError):
    error_type = "idempotency_error"
    default_code = "idempotency_key_reused"


class PaymentRefused(CloudPayError):
    error_type = "payment_error"
    default_code = "payment_refused"


class ChannelFailed(CloudPayError):
    error_type = "channel_error"
    default_code = "channel_unavailable"


class CurrencyMismatch(InvalidRequest):
    default_code = "currency_mismatch"
