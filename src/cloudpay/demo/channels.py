"""The demo city's channels: four sandboxes on loopback and the routes over them.

WeChat Pay is reached two ways, as a city hub often does: through the city bank as acquirer
(0.25%) and through a service provider (0.38%); Alipay and UnionPay through one route each.
The bank's WeChat sandbox goes down for part of the day, so routing has something to do.

Each route's cost is what its channel's sandbox bills (the sandboxes take a contracted rate),
so the night's reconciliation raises only the mistakes injected on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from cloudpay.channels.alipay import AlipayChannel
from cloudpay.channels.alipay.sandbox import AlipaySandbox, start_alipay_sandbox
from cloudpay.channels.protocol import PaymentChannel
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.channels.unionpay import UnionPayChannel
from cloudpay.channels.unionpay.sandbox import UnionPaySandbox, start_unionpay_sandbox
from cloudpay.channels.wechat import WeChatPayChannel
from cloudpay.channels.wechat.sandbox import WeChatSandbox, start_wechat_sandbox
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import Clock
from cloudpay.routing import RouteCost, create_route, list_routes

SANDBOX_TIME_SCALE = 0.05  # the channels' notification retry schedules, 20× faster

# (connector, name, methods, rate in basis points, minimum fen)
ROUTE_PLAN: tuple[tuple[str, str, tuple[str, ...], int, int], ...] = (
    ("wechat", "WeChat Pay via 潍坊城市银行 (acquirer)",
     ("wechat_native", "wechat_jsapi", "wechat_micropay"), 25, 0),
    ("wechat_provider", "WeChat Pay via 鸢都支付服务商 (service provider)",
     ("wechat_native", "wechat_micropay"), 38, 0),
    ("alipay", "Alipay via 潍坊城市银行", ("alipay_qr", "alipay_jsapi", "alipay_micropay"), 30, 0),
    ("unionpay", "UnionPay full channel", ("unionpay_qr", "unionpay_wap", "unionpay_micropay"),
     32, 0),
)  # fmt: skip


@dataclass
class DemoChannels:
    bank_wechat: WeChatSandbox
    provider_wechat: WeChatSandbox
    alipay: AlipaySandbox
    unionpay: UnionPaySandbox
    adapters: dict[str, PaymentChannel] = field(default_factory=dict)

    def registry(self) -> ChannelRegistry:
        registry = ChannelRegistry()
        for key, adapter in self.adapters.items():
            registry.register(adapter, key=key)
        return registry

    def sandbox_for(self, connector: str) -> Any:
        return {
            "wechat": self.bank_wechat, "wechat_provider": self.provider_wechat,
            "alipay": self.alipay, "unionpay": self.unionpay,
        }[connector]  # fmt: skip

    def urls(self) -> dict[str, str]:
        return {key: self.sandbox_for(key).base_url for key in self.adapters}

    def stop(self) -> None:
        for adapter in self.adapters.values():
            close = getattr(adapter, "close", None)
            if close is not None:
                close()
        for sandbox in (self.bank_wechat, self.provider_wechat, self.alipay, self.unionpay):
            sandbox.stop()


def _rate_bp(connector: str) -> int:
    return next(rate_bp for key, _, _, rate_bp, _ in ROUTE_PLAN if key == connector)


def start_channels(clock: Clock) -> DemoChannels:
    options: dict[str, Any] = {"time_scale": SANDBOX_TIME_SCALE, "clock": clock}
    # The channels bill the rates the routes were agreed at, so reconciliation's fee check
    # finds only real differences.
    channels = DemoChannels(
        bank_wechat=start_wechat_sandbox(**options, fee_rate_bp=_rate_bp("wechat")),
        provider_wechat=start_wechat_sandbox(**options, fee_rate_bp=_rate_bp("wechat_provider")),
        alipay=start_alipay_sandbox(**options, fee_rate_bp=_rate_bp("alipay")),
        unionpay=start_unionpay_sandbox(**options, fee_rate_bps=_rate_bp("unionpay")),
    )
    channels.adapters = {
        "wechat": WeChatPayChannel(channels.bank_wechat.adapter_config(), clock=clock),
        "wechat_provider": WeChatPayChannel(channels.provider_wechat.adapter_config(), clock=clock),
        "alipay": AlipayChannel(channels.alipay.adapter_config(), clock=clock),
        "unionpay": UnionPayChannel(channels.unionpay.adapter_config(), clock=clock),
    }
    return channels


def configure_routes(engine: Engine, clock: Clock, registry: ChannelRegistry) -> dict[str, str]:
    """The demo's routes, created once (a second demo run on the same database keeps them)."""

    def work(uow: UnitOfWork) -> dict[str, str]:
        existing = {route.connector: route.id for route in list_routes(uow)}
        for connector, name, methods, rate_bp, min_fen in ROUTE_PLAN:
            if connector not in existing:
                route = create_route(
                    uow, registry=registry, name=name, connector=connector, methods=methods,
                    cost=RouteCost(rate_bp=rate_bp, min_fen=min_fen),
                )  # fmt: skip
                existing[connector] = route.id
        return existing

    return run_in_transaction(engine, work, clock=clock)
