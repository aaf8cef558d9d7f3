"""What the SDK raises: a refused request, or a response or webhook that is not CloudPay's."""

from __future__ import annotations

from cloudpay.sdk.protocol import SignatureVerificationError

__all__ = ["CloudPayAPIError", "SignatureVerificationError"]


class CloudPayAPIError(Exception):
    """CloudPay answered with its error shape: `{"error": {"type", "code", …}}`."""

    def __init__(
        self,
        status: int,
        type: str,
        code: str,
        message: str,
        param: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{status} {type}/{code}: {message}")
        self.status = status
        self.type = type
        self.code = code
        self.message = message
        self.param = param
        self.request_id = request_id
