"""The payment gateway on loopback, for end-to-end journeys over real HTTP.

`open_sandbox` starts the WeChat Pay sandbox (fast notification retries) once a session.
`open_gateway` serves our app with uvicorn, its `WeChatPayChannel` pointed at the sandbox
and channel notifications coming back to the server's own URL; onboards and approves a
merchant through the operator API; creates an app whose webhooks go to a loopback receiver;
and hands the app's generated key to a `CloudPayClient`. `Gateway.run_worker` is one pass of
the real worker jobs with the same channels and the platform's webhook signer.

Every part reads one `ShiftedClock`: real time, so the sandbox's refunds settle and both
sides' signatures are fresh, plus an offset a test advances to make polls, webhook retries
and expiry due.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy import Engine, func, select, table
from stdnum.cn import uscc

from cloudpay.channels.protocol import PaymentChannel
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.channels.wechat import WeChatPayChannel
from cloudpay.channels.wechat.sandbox import WeChatSandbox, start_wechat_sandbox
from cloudpay.channels.wechat.sandbox.state import Order
from cloudpay.config import Settings
from cloudpay.db.unit_of_work import run_in_transaction
from cloudpay.kernel.clock import SystemClock, datetime_from_ns
from cloudpay.main import create_app
from cloudpay.payments.flows import ChannelContext
from cloudpay.payments.service import order_history
from cloudpay.sdk import CloudPayClient, verify_webhook
from cloudpay.worker.jobs import WorkerContext, run_due_jobs
from tests.conftest import OPERATOR_HEADERS, serving
from tests.contract.receiver import Captured, NotificationReceiver

SANDBOX_TIME_SCALE = 0.001  # WeChat's 24 h notification retry schedule in ~90 s
CHANNEL_TIMEOUT_S = 1.5  # how long we wait for the sandbox; a `timeout` fault holds 3 s
SANDBOX_FAULT_HOLD_S = 3.0
WEBHOOK_PATH = "/webhooks/cloudpay"
METHODS = ("wechat_native", "wechat_jsapi")
PAYMENT_TABLES = (
    "orders", "order_transitions", "refunds", "channel_notifications", "webhook_attempts",
    "idempotency_keys", "outbox_events", "ledger_accounts", "ledger_transfers", "ledger_pending",
)  # fmt: skip
T = TypeVar("T")
_numbers = itertools.count(1)


class ShiftedClock:
    """The wall clock plus an offset that only grows: a `Clock` tests can move forward."""

    def __init__(self) -> None:
        self._system = SystemClock()
        self._offset_ns = 0
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        with self._lock:
            return self._system.now_ns() + self._offset_ns

    def now(self) -> datetime:
        return datetime_from_ns(self.now_ns())

    def timestamp(self) -> float:
        return self.now_ns() / 1_000_000_000

    def advance(self, seconds: float = 0, *, minutes: float = 0) -> None:
        step = timedelta(seconds=seconds, minutes=minutes)
        assert step >= timedelta(0), "time only moves forward"
        with self._lock:
            self._offset_ns += step // timedelta(microseconds=1) * 1_000


@dataclass(frozen=True)
class MerchantApp:
    merchant_id: str
    app_id: str
    serial_no: str
    private_key: str


class RecordingTransport(httpx.HTTPTransport):
    """Keeps the last response, so a test sees the raw answer the SDK verified."""

    last: httpx.Response | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.last = response
        return response


def eventually(read: Callable[[], T | None], timeout_s: float = 10.0, what: str = "") -> T:
    """`read()` once it returns something truthy; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or read}")
        time.sleep(0.02)


@dataclass
class Gateway:
    http: httpx.Client  # unsigned: operator routes, QR images, attacks
    sandbox: WeChatSandbox
    webhooks: NotificationReceiver
    engine: Engine
    settings: Settings
    clock: ShiftedClock
    channel_context: ChannelContext
    worker: WorkerContext
    merchant: MerchantApp
    client: CloudPayClient
    transport: RecordingTransport

    @property
    def base_url(self) -> str:
        return str(self.http.base_url).rstrip("/")

    # ------------------------------------------------------------ merchants and clients

    def onboard(self, *, methods: tuple[str, ...] = METHODS) -> MerchantApp:
        """Another approved merchant with an app (webhooks to the same receiver)."""
        return onboard(self.http, notify_url=self.webhooks.url + WEBHOOK_PATH, methods=methods)

    def sdk(
        self, merchant: MerchantApp | None = None, transport: httpx.BaseTransport | None = None
    ) -> CloudPayClient:
        """A merchant's client; it trusts the platform keys it fetches first (TOFU)."""
        who = merchant or self.merchant
        return CloudPayClient(
            self.base_url, who.app_id, who.private_key, who.serial_no,
            clock=self.clock.timestamp, transport=transport,
        )  # fmt: skip

    # ------------------------------------------------------------ the customer, the worker

    def pay(self, order_id: str, outcome: str = "success", **options: Any) -> dict[str, Any]:
        """The simulated customer acts on our order (our order id is WeChat's out_trade_no)."""
        return self.sandbox.pay(order_id, outcome, **options)

    def run_worker(self, *, after_s: float = 0) -> dict[str, int]:
        """Advance the clock by `after_s`, then one pass of every worker job."""
        self.clock.advance(after_s)
        done = run_due_jobs(self.worker, {})
        assert all(count >= 0 for count in done.values()), done
        return done

    def wait_for_order(self, order_id: str, status: str, timeout_s: float = 10.0) -> Any:
        def read() -> Any:
            order = self.client.get_order(order_id)
            return order if order["status"] == status else None

        return eventually(read, timeout_s, f"order {order_id} to be {status}")

    def wait_for_refund(self, refund_id: str, timeout_s: float = 10.0) -> Any:
        def read() -> Any:
            refund = self.client.get_refund(refund_id)
            return refund if refund["status"] != "processing" else None

        return eventually(read, timeout_s, f"refund {refund_id} to settle")

    def order_history(self, order_id: str) -> list[tuple[str | None, str, str]]:
        """(from, to, source) of each status change of an order, oldest first."""
        rows = run_in_transaction(
            self.engine, lambda uow: order_history(uow, order_id=order_id), read_only=True
        )
        return [(row["from_status"], row["to_status"], row["source"]) for row in rows]

    def wechat_order(self, order_id: str) -> Order:
        """The order as WeChat (the sandbox) holds it: the channel's side of the truth."""
        [order] = self.sandbox._core.state.orders_snapshot(order_id)  # no public reader
        return order

    # ------------------------------------------------------------ what was written

    def webhooks_received(self, count: int, timeout_s: float = 5.0) -> list[Captured]:
        return self.webhooks.wait_for(WEBHOOK_PATH, count, timeout_s)

    def verified(self, captured: Captured) -> dict[str, Any]:
        """The event of a webhook, verified against `GET /v1/platform/keys` as published."""
        keys = {
            k["serial_no"]: k["public_key"]
            for k in self.http.get("/v1/platform/keys").json()["data"]
        }
        return verify_webhook(captured.headers, captured.body, keys, now=self.clock.timestamp())

    def merchant_pending(self, merchant: MerchantApp | None = None) -> int:
        """Net posted credit of the merchant's `merchant_pending` account (0 if none yet)."""
        owner = f"merchant:{(merchant or self.merchant).merchant_id}"
        response = self.http.get(
            "/v1/ledger/accounts", params={"owner": owner}, headers=OPERATOR_HEADERS
        )
        assert response.status_code == 200, response.text
        pending = [a for a in response.json()["data"] if a["code"] == "merchant_pending"]
        return sum(a["balance"]["net_credit_posted"] for a in pending)

    def assert_books_balance(self) -> None:
        response = self.http.get("/v1/ledger/check", headers=OPERATOR_HEADERS)
        assert response.status_code == 200, response.text
        check = response.json()
        assert check["ok"], check["problems"]

    def row_counts(self, tables: tuple[str, ...] = PAYMENT_TABLES) -> dict[str, int]:
        with self.engine.connect() as connection:
            return {
                name: connection.execute(select(func.count()).select_from(table(name))).scalar_one()
                for name in tables
            }


def operator_post(http: httpx.Client, path: str, body: dict[str, Any] | None = None) -> Any:
    response = http.post(path, json=body, headers=OPERATOR_HEADERS)
    assert response.status_code in (200, 201), response.text
    return response.json()


def onboard(
    http: httpx.Client, *, notify_url: str, methods: tuple[str, ...] = METHODS
) -> MerchantApp:
    """A merchant created, submitted and approved by the operator; an app with a key the
    platform generated (its private key is shown this once)."""
    merchant = operator_post(http, "/v1/merchants", {
        "legal_name": "潍坊市白浪河面馆", "unified_social_credit_code": _uscc(),
        "legal_person_name": "张三", "legal_person_id_number": "11010519491231002X",
        "contact_phone": "13800138000", "mcc": "5812",
    })  # fmt: skip
    operator_post(http, f"/v1/merchants/{merchant['id']}/submit")
    approved = operator_post(http, f"/v1/merchants/{merchant['id']}/approve")
    assert approved["status"] == "approved"
    app = operator_post(http, f"/v1/merchants/{merchant['id']}/apps", {
        "name": "收银台", "notify_url": notify_url, "payment_methods": list(methods),
        "key": {"algorithm": "RSA"},
    })  # fmt: skip
    [key] = app["keys"]
    return MerchantApp(merchant["id"], app["id"], key["serial_no"], app["private_key"])


def _uscc() -> str:
    body = f"91370786{next(_numbers):09d}"
    return body + uscc.calc_check_digit(body)


@contextmanager
def open_sandbox() -> Iterator[tuple[WeChatSandbox, ShiftedClock]]:
    """One sandbox for a whole session (its keys take a while to make); orders in it are
    keyed by our order ids, so tests never meet each other's."""
    clock = ShiftedClock()
    with start_wechat_sandbox(
        time_scale=SANDBOX_TIME_SCALE, clock=clock, fault_hold_s=SANDBOX_FAULT_HOLD_S
    ) as sandbox:
        yield sandbox, clock


@contextmanager
def open_gateway(
    settings: Settings, engine: Engine, sandbox: WeChatSandbox, clock: ShiftedClock,
    *, connectors: dict[str, PaymentChannel] | None = None,
    methods: tuple[str, ...] = METHODS,
) -> Iterator[Gateway]:  # fmt: skip
    """Our server on a free loopback port, wired to `sandbox` (and any other `connectors`, by
    registry key), with a merchant onboarded whose app enables `methods`."""
    webhooks = NotificationReceiver()
    channel = WeChatPayChannel(sandbox.adapter_config(timeout_s=CHANNEL_TIMEOUT_S), clock=clock)
    registry = ChannelRegistry([channel])
    for key, connector in (connectors or {}).items():
        registry.register(connector, key=key)
    app = create_app(settings, engine=engine, clock=clock)
    try:
        with serving(app) as http:
            # The port is known only now: channels notify the server's own URL.
            context = ChannelContext(registry, str(http.base_url), clock)
            app.state.channel_context = context
            keyring = app.state.platform_keyring
            worker = WorkerContext(
                engine=engine, clock=clock, channel_context=context,
                sign_webhook=lambda body: keyring.sign_now(body, clock),
            )  # fmt: skip
            merchant = onboard(http, notify_url=webhooks.url + WEBHOOK_PATH, methods=methods)
            transport = RecordingTransport()
            client = CloudPayClient(
                str(http.base_url), merchant.app_id, merchant.private_key, merchant.serial_no,
                clock=clock.timestamp, transport=transport,
            )  # fmt: skip
            gateway = Gateway(
                http=http, sandbox=sandbox, webhooks=webhooks, engine=engine, settings=settings,
                clock=clock, channel_context=context, worker=worker, merchant=merchant,
                client=client, transport=transport,
            )  # fmt: skip
            try:
                yield gateway
            finally:
                gateway.client.close()
                worker.http.close()
    finally:
        channel.close()
        webhooks.close()
