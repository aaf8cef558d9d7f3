"""Alipay OpenAPI: the adapter (`client.py`), pure mapping (`transformers.py`), the trade
bill format (`bill.py`), the shared wire rules (`wire.py`) and a loopback sandbox
(`sandbox/`)."""

from cloudpay.channels.alipay.client import DEFAULT_GATEWAY_URL, AlipayChannel, AlipayConfig

__all__ = ["DEFAULT_GATEWAY_URL", "AlipayChannel", "AlipayConfig"]
