"""UnionPay full-channel (全渠道 5.1.0): the adapter (`client.py`), pure mapping
(`transformers.py`), the reconciliation file (`bill.py`), signatures and certificates
(`wire.py`) and a loopback sandbox (`sandbox/`)."""

from cloudpay.channels.unionpay import bill as bill_format
from cloudpay.channels.unionpay.client import (
    DEFAULT_FILE_URL,
    DEFAULT_GATEWAY_URL,
    UnionPayChannel,
    UnionPayConfig,
)
from cloudpay.channels.unionpay.transformers import VOID_SUFFIX

# `bill_format`: the ZM file's facts (field widths and names, line length, trade codes) and
# `VOID_SUFFIX` (how a void's orderId names its order) for readers such as reconciliation's.

__all__ = [
    "DEFAULT_FILE_URL",
    "DEFAULT_GATEWAY_URL",
    "VOID_SUFFIX",
    "UnionPayChannel",
    "UnionPayConfig",
    "bill_format",
]
