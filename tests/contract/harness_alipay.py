"""The Alipay `ChannelHarness` for the shared scenarios, and a notify_url that says `success`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cloudpay.channels.alipay import AlipayChannel
from cloudpay.channels.alipay.bill import parse_trade_bill
from cloudpay.channels.alipay.sandbox import AlipaySandbox
from cloudpay.channels.protocol import PaymentChannel
from cloudpay.kernel.business_time import SHANGHAI
from tests.contract.scenarios import BillEntry, RawNotification


@dataclass(frozen=True)
class FormPost:
    path: str
    headers: dict[str, str]
    body: bytes


class AlipayNotifyReceiver:
    """Records every POST and answers with `answer(index)` as text/plain (`success` by
    default, which is what stops Alipay's retries)."""

    def __init__(self, answer: Callable[[int], bytes] = lambda index: b"success") -> None:
        self.answer = answer
        self._posts: list[FormPost] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    index = len(receiver._posts)
                    receiver._posts.append(FormPost(self.path, dict(self.headers), body))
                payload = receiver.answer(index)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def posts(self, path: str | None = None) -> list[FormPost]:
        with self._lock:
            return [post for post in self._posts if path in (None, post.path)]

    def wait_for(self, path: str, count: int, timeout_s: float = 5.0) -> list[FormPost]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.posts(path)
            if len(found) >= count:
                return found
            time.sleep(0.005)
        raise AssertionError(f"{len(self.posts(path))} of {count} notifications at {path}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


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
