"""WeChat Pay API v3: the adapter (`client.py`), pure mapping (`transformers.py`), the trade
bill format (`bill.py`), the shared wire rules (`wire.py`) and a loopback sandbox
(`sandbox/`)."""

from cloudpay.channels.wechat.client import DEFAULT_BASE_URL, WeChatPayChannel, WeChatPayConfig

__all__ = ["DEFAULT_BASE_URL", "WeChatPayChannel", "WeChatPayConfig"]
