"""UnionPay full-channel (全渠道 5.1.0): the adapter (`client.py`), pure mapping
(`transformers.py`), the reconciliation file (`bill.py`), signatures and certificates
(`wire.py`) and a loopback sandbox (`sandbox/`)."""

from cloudpay.channels.unionpay.client import (
    DEFAULT_FILE_URL,
    DEFAULT_GATEWAY_URL,
    UnionPayChannel,
    UnionPayConfig,
)

__all__ = ["DEFAULT_FILE_URL", "DEFAULT_GATEWAY_URL", "UnionPayChannel", "UnionPayConfig"]
