"""Alipay OpenAPI: the adapter (`client.py`), pure mapping (`transformers.py`), the trade
bill format (`bill.py`), the shared wire rules (`wire.py`) and a loopback sandbox
(`sandbox/`)."""

from cloudpay.channels.alipay import bill as trade_bill_format
from cloudpay.channels.alipay.client import DEFAULT_GATEWAY_URL, AlipayChannel, AlipayConfig

# `trade_bill_format`: the bill's facts (member names, titles, list markers, headers, kinds)
# for readers elsewhere, such as reconciliation's column-wise one.
__all__ = ["DEFAULT_GATEWAY_URL", "AlipayChannel", "AlipayConfig", "trade_bill_format"]
