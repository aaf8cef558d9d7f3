"""A protocol-faithful WeChat Pay API v3 sandbox for loopback, with a simulated customer.

Production points `WeChatPayChannel` at https://api.mch.weixin.qq.com; tests, the demo and
`cloudpay sandbox` point it here. Entry points: `start_wechat_sandbox` (in-process, returns a
`WeChatSandbox` handle) and `customer_pay`, `expect_micropay`, `set_available` (drive a
sandbox in another process over HTTP).
"""

from cloudpay.channels.wechat.sandbox.micropay import MICROPAY_OUTCOMES
from cloudpay.channels.wechat.sandbox.notifier import DeliveryAttempt
from cloudpay.channels.wechat.sandbox.server import (
    SandboxMerchantCredentials,
    WeChatSandbox,
    adapter_config_from_credentials,
    customer_pay,
    expect_micropay,
    new_merchant_credentials,
    set_available,
    start_wechat_sandbox,
)
from cloudpay.channels.wechat.sandbox.state import (
    FAULT_KINDS,
    PAY_OUTCOMES,
    RETRY_SCHEDULE_S,
    BillTamper,
)

__all__ = [
    "FAULT_KINDS",
    "MICROPAY_OUTCOMES",
    "PAY_OUTCOMES",
    "RETRY_SCHEDULE_S",
    "BillTamper",
    "DeliveryAttempt",
    "SandboxMerchantCredentials",
    "WeChatSandbox",
    "adapter_config_from_credentials",
    "customer_pay",
    "expect_micropay",
    "new_merchant_credentials",
    "set_available",
    "start_wechat_sandbox",
]
