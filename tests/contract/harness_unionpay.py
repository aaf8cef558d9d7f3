"""The UnionPay `ChannelHarness`: the adapter pointed at its sandbox, for `scenarios.py`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime

from cloudpay.channels.protocol import PaymentChannel
from cloudpay.channels.unionpay import UnionPayChannel
from cloudpay.channels.unionpay import transformers as tf
from cloudpay.channels.unionpay.bill import parse_bill
from cloudpay.channels.unionpay.sandbox import UnionPaySandbox, start_unionpay_sandbox
from cloudpay.kernel.business_time import SHANGHAI
from tests.contract.receiver import NotificationReceiver
from tests.contract.scenarios import BillEntry, RawNotification


class UnionPayHarness:
    method = tf.METHOD_QR

    def __init__(self, sandbox: UnionPaySandbox, receiver: NotificationReceiver) -> None:
        self.sandbox, self.receiver = sandbox, receiver
        self._channels: list[UnionPayChannel] = []
        self._our_ids: dict[str, str] = {}  # UnionPay orderId → our id, to read the bill

    def channel(self, *, timeout_s: float = 5.0) -> PaymentChannel:
        channel = UnionPayChannel(self.sandbox.adapter_config(timeout_s=timeout_s))
        self._channels.append(channel)
        return channel

    def notify_url(self, order_id: str) -> str:
        self._our_ids[tf.order_number(order_id)] = order_id
        return f"{self.receiver.url}/unionpay/{order_id}"

    def customer(self, order_id: str, outcome: str, *, duplicate_notifications: int = 0) -> None:
        self.sandbox.pay(order_id, outcome, duplicate_notifications=duplicate_notifications)

    def notifications(self, order_id: str, count: int) -> list[RawNotification]:
        captured = self.receiver.wait_for(f"/unionpay/{order_id}", count)
        return [RawNotification(c.headers, c.body) for c in captured[:count]]

    def inject_fault(self, kind: str) -> None:
        self.sandbox.inject_fault(kind)

    def bill_date(self) -> date:
        return datetime.now(SHANGHAI).date()

    def parse_bill(self, data: bytes) -> list[BillEntry]:
        entries = []
        for line in parse_bill(data).lines:
            if line.txn_type == tf.TXN_CONSUME:
                our_id = self._our_ids.get(line.order_id, line.order_id)
                entries.append(BillEntry("payment", our_id, None, line.amount_fen))
            else:
                # A refund line names the refund's own orderId and the payment's queryId.
                paid = self._payment_of(data, line.orig_query_id)
                entries.append(BillEntry("refund", paid, line.order_id, line.amount_fen))
        return entries

    def _payment_of(self, data: bytes, query_id: str) -> str:
        for line in parse_bill(data).lines:
            if line.query_id == query_id:
                return self._our_ids.get(line.order_id, line.order_id)
        return ""

    def close(self) -> None:
        for channel in self._channels:
            channel.close()


@contextmanager
def unionpay_harness() -> Iterator[UnionPayHarness]:
    # UnionPay counts only HTTP 200 as delivered; answer it so the sandbox stops resending.
    receiver = NotificationReceiver(answer=lambda index: 200)
    with start_unionpay_sandbox(time_scale=0.001, fault_hold_s=1.0) as sandbox:
        harness = UnionPayHarness(sandbox, receiver)
        yield harness
        harness.close()
    receiver.close()
