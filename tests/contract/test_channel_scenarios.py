"""The channel conformance scenarios (`scenarios.py`) run against every channel's sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import pytest

from cloudpay.channels.alipay.sandbox import start_alipay_sandbox
from cloudpay.channels.protocol import PaymentChannel
from cloudpay.channels.wechat import WeChatPayChannel
from cloudpay.channels.wechat.bill import parse_trade_bill
from cloudpay.channels.wechat.sandbox import WeChatSandbox, start_wechat_sandbox
from cloudpay.kernel.business_time import SHANGHAI
from tests.contract.harness_alipay import AlipayHarness, AlipayNotifyReceiver
from tests.contract.harness_unionpay import UnionPayHarness, unionpay_harness
from tests.contract.receiver import NotificationReceiver
from tests.contract.scenarios import SCENARIOS, BillEntry, ChannelHarness, RawNotification


class WeChatHarness:
    method = "wechat_native"

    def __init__(self, sandbox: WeChatSandbox, receiver: NotificationReceiver) -> None:
        self.sandbox, self.receiver = sandbox, receiver
        self._channels: list[WeChatPayChannel] = []

    def channel(self, *, timeout_s: float = 5.0) -> PaymentChannel:
        channel = WeChatPayChannel(self.sandbox.adapter_config(timeout_s=timeout_s))
        self._channels.append(channel)
        return channel

    def notify_url(self, order_id: str) -> str:
        return f"{self.receiver.url}/wechat/{order_id}"

    def customer(self, order_id: str, outcome: str, *, duplicate_notifications: int = 0) -> None:
        self.sandbox.pay(order_id, outcome, duplicate_notifications=duplicate_notifications)

    def notifications(self, order_id: str, count: int) -> list[RawNotification]:
        captured = self.receiver.wait_for(f"/wechat/{order_id}", count)
        return [RawNotification(c.headers, c.body) for c in captured[:count]]

    def inject_fault(self, kind: str) -> None:
        self.sandbox.inject_fault(kind)

    def bill_date(self) -> date:
        return datetime.now(SHANGHAI).date()

    def parse_bill(self, data: bytes) -> list[BillEntry]:
        return [
            BillEntry(
                "refund" if row.trade_state == "REFUND" else "payment",
                row.out_trade_no,
                row.out_refund_no if row.trade_state == "REFUND" else None,
                row.refund_fen if row.trade_state == "REFUND" else row.settlement_total_fen,
            )
            for row in parse_trade_bill(data).rows
        ]

    def close(self) -> None:
        for channel in self._channels:
            channel.close()


@pytest.fixture(scope="module")
def wechat() -> Iterator[WeChatHarness]:
    receiver = NotificationReceiver()
    with start_wechat_sandbox(time_scale=0.001, fault_hold_s=1.0) as sandbox:
        harness = WeChatHarness(sandbox, receiver)
        yield harness
        harness.close()
    receiver.close()


@pytest.fixture(scope="module")
def alipay() -> Iterator[AlipayHarness]:
    receiver = AlipayNotifyReceiver()
    with start_alipay_sandbox(time_scale=0.001, fault_hold_s=1.0) as sandbox:
        harness = AlipayHarness(sandbox, receiver)
        yield harness
        harness.close()
    receiver.close()


@pytest.fixture(scope="module")
def unionpay() -> Iterator[UnionPayHarness]:
    with unionpay_harness() as harness:
        yield harness


HARNESSES = ["wechat", "alipay", "unionpay"]


@pytest.fixture(params=HARNESSES)
def harness(request: pytest.FixtureRequest) -> ChannelHarness:
    found: ChannelHarness = request.getfixturevalue(request.param)
    return found


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(harness: ChannelHarness, scenario: str) -> None:
    """Every channel behaves as the named scenario in `scenarios.py` describes."""
    SCENARIOS[scenario](harness)
