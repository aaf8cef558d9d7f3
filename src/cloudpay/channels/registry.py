"""Connector key → adapter, and payment method → the channels that serve it.

A connector is one configured adapter: its key is the channel code (`wechat`) for the
deployment's default account, or any name (`wechat_bank_b`) for a second account of the same
channel, e.g. through another acquiring service provider. Routes point at connector keys.
"""

from __future__ import annotations

from collections.abc import Iterable

from cloudpay.channels.protocol import PaymentChannel


class UnknownChannel(KeyError):
    """No adapter is registered for that channel code or method."""


class ChannelRegistry:
    def __init__(self, channels: Iterable[PaymentChannel] = ()) -> None:
        self._by_code: dict[str, PaymentChannel] = {}
        for channel in channels:
            self.register(channel)

    def register(self, channel: PaymentChannel, *, key: str | None = None) -> None:
        self._by_code[key or channel.code] = channel

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._by_code)

    def get(self, code: str) -> PaymentChannel:
        try:
            return self._by_code[code]
        except KeyError:
            raise UnknownChannel(code) from None

    def for_method(self, method: str) -> PaymentChannel:
        for channel in self._by_code.values():
            if method in channel.methods:
                return channel
        raise UnknownChannel(method)

    @property
    def methods(self) -> frozenset[str]:
        return frozenset(m for channel in self._by_code.values() for m in channel.methods)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code
