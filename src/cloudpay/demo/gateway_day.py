"""A day at the gateway: the demo city's merchants take payments through the real API.

Everything is real and on loopback: our API (uvicorn), four channel sandboxes (WeChat Pay
through the city bank and through a service provider, Alipay, UnionPay — `channels.py`), the
worker (polling, webhooks), and a merchant webhook receiver that is down for the first part of
the day. Merchants call the API through the Python SDK with their own keys: QR orders, payment
codes at the till, and payers scanning a store's one QR from their wallet's browser
(`shoppers.py`). The city bank's WeChat sandbox is down for a stretch of the day; routing
sends those payments to the provider. The sandboxes' simulated customers pay, decline, walk
away, or pay twice.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine

from cloudpay.config import Settings
from cloudpay.console import create_demo_users
from cloudpay.db.unit_of_work import run_in_transaction
from cloudpay.demo.channels import DemoChannels, configure_routes, start_channels
from cloudpay.demo.city import Onboarded, demo_agent, seed_city
from cloudpay.demo.servers import RunningServer, WebhookReceiver, serve_in_thread
from cloudpay.demo.shoppers import pay_at_store, payment_code
from cloudpay.kernel.clock import Clock
from cloudpay.main import create_app
from cloudpay.payments import ChannelContext
from cloudpay.routing import BreakerPolicy, HealthBoard
from cloudpay.sdk import CloudPayAPIError, CloudPayClient
from cloudpay.worker import WorkerContext, run_worker

OUTCOMES = (("success", 82), ("fail", 6), ("timeout", 7), ("pay_twice", 5))
KINDS = (("wechat_native", 34), ("alipay_qr", 24), ("unionpay_qr", 10), ("micropay", 20),
         ("store_qr", 12))  # fmt: skip
DEMO_OPEN_FOR_S = 5.0
BANK_DOWN = (0.30, 0.45)  # the share of the day the city bank's WeChat API is down
RECEIVER_DOWN_SHARE = 0.4  # of the day's orders, while the merchant's endpoint is down
REFUND_SHARE = 0.06
SETTLE_TIMEOUT_S = 30.0
# Alipay leaves a trade WAIT_BUYER_PAY after a declined attempt, so the payer may try again.
RETRYABLE = frozenset({"alipay"})


@dataclass
class GatewayDay:
    """What ran, kept alive so `cloudpay demo` can go on serving it."""

    app: FastAPI
    api: RunningServer
    channels: DemoChannels
    routes: dict[str, str]  # connector → route id
    receiver: WebhookReceiver
    receiver_server: RunningServer
    worker_stop: threading.Event
    city: list[Onboarded]
    clients: dict[str, CloudPayClient]
    outcomes: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    payers: random.Random = field(default_factory=lambda: random.Random(11))  # what payers do
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # console: role, email, pw
    orders: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    resent: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    worker: WorkerContext | None = None
    worker_thread: threading.Thread | None = None

    def start_worker(self) -> None:
        assert self.worker is not None
        self.worker_stop = threading.Event()
        self.worker_thread = threading.Thread(
            target=run_worker, args=(self.worker,), kwargs={"stop": self.worker_stop}, daemon=True
        )
        self.worker_thread.start()

    def stop_worker(self) -> None:
        """Stop polling and webhook delivery until `start_worker` (a restart, a deploy)."""
        self.worker_stop.set()
        if self.worker_thread is not None:
            self.worker_thread.join(timeout=SETTLE_TIMEOUT_S)

    def stop(self) -> None:
        self.worker_stop.set()
        for client in self.clients.values():
            client.close()
        self.api.stop()
        self.receiver_server.stop()
        self.channels.stop()


def start_gateway(engine: Engine, clock: Clock, settings: Settings, *, port: int) -> GatewayDay:
    channels = start_channels(clock)
    app = create_app(settings, engine=engine, clock=clock)
    api = serve_in_thread(app, port=port)
    # Breakers reopen after 5 s here (30 s in production): the demo day is short, and the
    # bank's route should win its traffic back within it once the bank is up again.
    board = HealthBoard(clock, BreakerPolicy(open_for_s=DEMO_OPEN_FOR_S))
    app.state.channel_context = ChannelContext(channels.registry(), api.url, clock, board)
    routes = configure_routes(engine, clock, app.state.channel_context.channels)
    keyring = app.state.platform_keyring
    receiver = WebhookReceiver(platform_keys=lambda: keyring.public_keys())
    receiver_server = serve_in_thread(receiver.app())
    worker = WorkerContext(
        engine, clock, app.state.channel_context, lambda body: keyring.sign_now(body, clock)
    )
    stop = threading.Event()
    city = seed_city(
        engine, clock, app.state.vault,
        notify_url=f"{receiver_server.url}/webhooks/cloudpay", keys_dir=Path("var/demo-keys"),
    )  # fmt: skip
    clients = {
        o.merchant.key: CloudPayClient(api.url, o.app_id, o.private_key_pem, o.serial_no)
        for o in city
    }
    day = GatewayDay(app, api, channels, routes, receiver, receiver_server, stop, city, clients)
    day.worker = worker
    day.start_worker()
    day.logins = run_in_transaction(
        engine,
        lambda uow: create_demo_users(
            uow, merchant_id=city[0].merchant_id, agent_id=demo_agent(uow)
        ),
        clock=clock,
    )
    return day


def run_day(day: GatewayDay, *, orders: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    run_tag = time.strftime("%H%M%S")
    for index in range(orders):
        if index == int(orders * RECEIVER_DOWN_SHARE):
            day.receiver.down = False  # the merchant's endpoint is back
        day.channels.bank_wechat.set_available(not _bank_down(index, orders))
        _one_order(day, rng, f"{run_tag}{index:05d}")
    day.channels.bank_wechat.set_available(True)
    _wait_until_settled(day)
    _refund_some(day, rng, run_tag)
    _wait_until_settled(day)
    _resend_failed_webhooks(day)


def _bank_down(index: int, orders: int) -> bool:
    return int(orders * BANK_DOWN[0]) <= index < int(orders * BANK_DOWN[1])


def _one_order(day: GatewayDay, rng: random.Random, number: str) -> None:
    onboarded = rng.choice(day.city)
    low, high = onboarded.merchant.ticket_fen
    amount = rng.randint(low, high)
    kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
    day.kinds[kind] += 1
    if kind == "store_qr":
        order = pay_at_store(day.api.url, day.channels, onboarded, amount, rng)
        if order is not None:
            day.orders.append({"merchant": onboarded.merchant.key, **order})
        return
    client = day.clients[onboarded.merchant.key]
    fields: dict[str, Any] = {"method": kind}
    if kind == "micropay":
        fields["auth_code"] = payment_code(day.channels, rng)
    order = client.create_order(
        out_trade_no=f"{onboarded.merchant.key[:3].upper()}{number}", amount=amount,
        subject=f"{onboarded.merchant.legal_name} 消费", metadata={"till": "1"}, **fields,
    )  # fmt: skip
    if kind != "micropay" and order["status"] == "paying":
        order = _customer_acts(day, client, order, rng)
    day.orders.append({"merchant": onboarded.merchant.key, **order})


def _customer_acts(
    day: GatewayDay, client: CloudPayClient, order: dict[str, Any], rng: random.Random
) -> dict[str, Any]:
    outcome = day.payers.choices([o for o, _ in OUTCOMES], weights=[w for _, w in OUTCOMES])[0]
    sandbox = day.channels.sandbox_for(order["routing"]["connector"])
    sandbox.pay(order["id"], outcome, duplicate_notifications=1 if outcome == "pay_twice" else 0)
    day.outcomes[outcome] += 1
    if outcome == "timeout" or (outcome == "fail" and order["routing"]["connector"] in RETRYABLE):
        # The customer walked away, or gave up after a declined attempt on a wallet that keeps
        # the trade open for a retry: the till cancels the order rather than wait for expiry.
        return client.close_order(order["id"])
    return order


def _refund_some(day: GatewayDay, rng: random.Random, run_tag: str) -> None:
    paid = [o for o in fresh_orders(day) if o["status"] == "succeeded"]
    for n, order in enumerate(rng.sample(paid, k=max(1, int(len(paid) * REFUND_SHARE)))):
        amount = order["amount"] if n % 2 else order["amount"] // 2
        client = day.clients[order["merchant"]]
        try:
            refund = client.create_refund(order_id=order["id"], out_refund_no=f"R{run_tag}{n:04d}",
                                          amount=amount, reason="顾客退货")  # fmt: skip
            day.refunds.append(refund)
        except CloudPayAPIError as refused:
            day.refused[refused.code] += 1
    # One refund too many, on purpose: the API refuses it and nothing moves.
    if day.refunds:
        first = next(o for o in paid if o["id"] == day.refunds[0]["order_id"])
        try:
            day.clients[first["merchant"]].create_refund(
                order_id=first["id"], out_refund_no=f"X{run_tag}", amount=first["amount"]
            )
        except CloudPayAPIError as refused:
            day.refused[refused.code] += 1


def fresh_orders(day: GatewayDay) -> list[dict[str, Any]]:
    """Today's orders as the API sees them now, a page of 100 per call (not one call each)."""
    wanted = {o["id"]: o["merchant"] for o in day.orders}
    fresh: list[dict[str, Any]] = []
    for merchant, client in day.clients.items():
        remaining = sum(1 for m in wanted.values() if m == merchant)
        cursor: str | None = None
        while remaining > 0:
            page = client.list_orders(limit=100, **({"starting_after": cursor} if cursor else {}))
            mine = [o for o in page["data"] if o["id"] in wanted]
            fresh += [{"merchant": merchant, **o} for o in mine]
            remaining -= len(mine)
            if not page["has_more"]:
                break
            cursor = page["next_cursor"]
    return fresh


def _wait_until_settled(day: GatewayDay) -> None:
    """Until no order paid at the channel is still `paying` and no refund is processing."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        fresh = fresh_orders(day)
        paying = [o for o in fresh if o["status"] in ("created", "paying")]
        pending_refunds = [r for r in day.refunds if _refund_status(day, r) == "processing"]
        if not paying and not pending_refunds:
            return
        time.sleep(0.5)


def _refund_status(day: GatewayDay, refund: dict[str, Any]) -> str:
    merchant = next(o["merchant"] for o in day.orders if o["id"] == refund["order_id"])
    return str(day.clients[merchant].get_refund(refund["id"])["status"])


def _resend_failed_webhooks(day: GatewayDay) -> None:
    """The merchant's endpoint is back: resend what it missed (the worker would, later)."""
    for client in day.clients.values():
        for event in client.list_events(limit=100)["data"]:
            if event["delivery"]["status"] != "delivered" and event["delivery"]["attempts"]:
                client.resend_event(event["id"])
                day.resent += 1
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline and _undelivered(day):
        time.sleep(0.3)


def _undelivered(day: GatewayDay) -> int:
    return sum(
        1
        for client in day.clients.values()
        for event in client.list_events(limit=100)["data"]
        if event["delivery"]["status"] != "delivered"
    )
