"""A protocol-faithful Alipay OpenAPI sandbox for loopback, with a simulated customer.

Production points `AlipayChannel` at https://openapi.alipay.com/gateway.do; tests and the
demo point it here with `start_alipay_sandbox(...).adapter_config()`.
"""

from cloudpay.channels.alipay.sandbox.bills import BillTamper
from cloudpay.channels.alipay.sandbox.notifier import DeliveryAttempt
from cloudpay.channels.alipay.sandbox.server import (
    AlipaySandbox,
    SandboxAppCredentials,
    new_alipay_credentials,
    start_alipay_sandbox,
)
from cloudpay.channels.alipay.sandbox.state import (
    FAULT_KINDS,
    MICROPAY_OUTCOMES,
    PAY_OUTCOMES,
    RETRY_SCHEDULE_S,
)

__all__ = [
    "FAULT_KINDS",
    "MICROPAY_OUTCOMES",
    "PAY_OUTCOMES",
    "RETRY_SCHEDULE_S",
    "AlipaySandbox",
    "BillTamper",
    "DeliveryAttempt",
    "SandboxAppCredentials",
    "new_alipay_credentials",
    "start_alipay_sandbox",
]
