"""A protocol-faithful UnionPay 全渠道 5.1.0 sandbox for loopback, with a simulated customer.

Production points `UnionPayChannel` at https://gateway.95516.com; tests and the demo point it
here with `start_unionpay_sandbox(...).adapter_config()`.
"""

from cloudpay.channels.unionpay.sandbox.notifier import DeliveryAttempt
from cloudpay.channels.unionpay.sandbox.server import (
    SandboxMerchant,
    UnionPaySandbox,
    start_unionpay_sandbox,
)
from cloudpay.channels.unionpay.sandbox.state import (
    AUTH_CODE_OUTCOMES,
    FAULT_KINDS,
    PAY_OUTCOMES,
    RETRY_SCHEDULE_S,
    BillTamper,
    CustomerRefused,
)

__all__ = [
    "AUTH_CODE_OUTCOMES",
    "FAULT_KINDS",
    "PAY_OUTCOMES",
    "RETRY_SCHEDULE_S",
    "BillTamper",
    "CustomerRefused",
    "DeliveryAttempt",
    "SandboxMerchant",
    "UnionPaySandbox",
    "start_unionpay_sandbox",
]
