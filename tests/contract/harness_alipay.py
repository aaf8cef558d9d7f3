"""The Alipay `ChannelHarness` for the shared scenarios, and a notify_url that says `success`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from cloudpay.channels.alipay import AlipayChannel
from cloudpay.channels.alipay.bill import parse_trade_bill
from cloudpay.channels.alipay.sandbox import AlipaySandbox
from cloudpay.channels.protocol import PaymentChannel
from cloudpay.kernel.business_time import SHANGHAI
from tests.contract.receiver import Captured, NotificationReceiver
from tests.contract.scenarios import BillEntry, RawNotification


class AlipayNotifyReceiver(NotificationReceiver):
    """A notify_url answering 200 with `answer(index)` as its text body (`success` by default,
    which is what stops Alipay's retries)."""

    def __init__(self, answer: Callable[[int], bytes] = lambda index: b"success") -> None:
        super().__init__(answer=lambda index: (200, answer(index)))

    def posts(self, path: str | None = None) -> list[Captured]:
        return self.captured(path)


class AlipayHarness:
    method = "alipay_qr"

    def __init__(self, sandbox: AlipaySandbox, receiver: AlipayNotifyReceiver) -> None:
        self.sandbox, self.receiver = sandbox, receiver
        self._channels: list[AlipayChannel] = []

    def channel(self, *, timeout_s: float = 5.0) -> PaymentChannel:
        channel = AlipayChannel(self.sandbox.adapter_config(timeout_s=timeout_s))
        self._channels.append(channel)
        return channel

    def notify_url(self, order_id: str) -> str:
        return f"{self.receiver.url}/alipay/{order_id}"

    def customer(self, order_id: str, outcome: str, *, duplicate_notifications: int = 0) -> None:
        self.sandbox.pay(order_id, outcome, duplicate_notifications=duplicate_notifications)

    def notifications(self, order_id: str, count: int) -> list[RawNotification]:
        posts = self.receiver.wait_for(f"/alipay/{order_id}", count)
        return [RawNotification(post.headers, post.body) for post in posts[:count]]

    def inject_fault(self, kind: str) -> None:
        self.sandbox.inject_fault(kind)

    def bill_date(self) -> date:
        return datetime.now(SHANGHAI).date()

    def parse_bill(self, data: bytes) -> list[BillEntry]:
        return [
            BillEntry(
                "refund" if row.is_refund else "payment",
                row.out_trade_no,
                row.refund_request_no,
                abs(row.order_amount_fen),
            )
            for row in parse_trade_bill(data).rows
        ]

    def close(self) -> None:
        for channel in self._channels:
            channel.close()
