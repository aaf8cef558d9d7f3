"""The end of the demo day at reconciliation (对账): every channel's bill of the day against
our orders and refunds, through the operator API, with two mistakes injected on purpose.

- A lost notification: the worker is down for its nightly restart when a last noodle-shop
  customer pays, and the channel's notification never arrives; we still think the order is
  paying. Reconciliation raises it, the operator repairs it (补单) through the API — the
  order is paid through the state machine and the merchant gets its webhook — and the re-run
  of the same file matches it.
- A fee off by one fen: WeChat's bill charges one fen more on one order than its route says.
  The operator writes it off with the reason.

The channels are reconciled before the settlement run, as an operator does in the morning,
so a repaired payment is in the merchant's settlement of the day.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cloudpay.channels.wechat.sandbox import BillTamper
from cloudpay.demo.gateway_day import GatewayDay, fresh_orders
from cloudpay.demo.servers import OperatorApi
from cloudpay.kernel.business_time import business_date
from cloudpay.kernel.clock import Clock
from cloudpay.reconciliation import BillRejected, reader_for

WECHAT_CONNECTORS = ("wechat", "wechat_provider")  # the sandboxes that can misreport a bill
LOST_NOTIFICATION_DELAY_S = 7 * 24 * 3600  # sandbox seconds: the notice never comes today
INJECTED = ("lost notification", "fee off by one fen")


@dataclass
class ReconOutcome:
    bill_date: date
    injected: dict[str, str] = field(default_factory=dict)  # order id → mistake
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # connector → first run
    skipped: dict[str, str] = field(default_factory=dict)  # connector → why not reconciled
    breaks: list[dict[str, Any]] = field(default_factory=list)  # as first raised
    resolved: list[dict[str, Any]] = field(default_factory=list)
    reruns: dict[str, dict[str, Any]] = field(default_factory=dict)
    open_after: int = 0

    @property
    def found(self) -> int:
        return len(self.breaks)

    @property
    def from_earlier_runs(self) -> int:
        """On a database an earlier demo run used today, our books hold that run's orders
        but the restarted sandboxes do not: those breaks are left for the console."""
        return sum(1 for b in self.breaks if b["order_id"] not in self.injected)

    def by_type(self) -> Counter[str]:
        return Counter(b["type"] for b in self.breaks)


def inject_mistakes(day: GatewayDay, rng: random.Random, outcome: ReconOutcome) -> None:
    """The two mistakes of the day, made in the channels' sandboxes."""
    paid = [o for o in fresh_orders(day) if o["status"] == "succeeded" and o.get("routing")
            and o["routing"]["connector"] in WECHAT_CONNECTORS]  # fmt: skip
    overcharged = rng.choice(paid)
    sandbox = day.channels.sandbox_for(overcharged["routing"]["connector"])
    sandbox.tamper_bill(overcharged["id"], BillTamper(fee_delta_fen=1))
    outcome.injected[overcharged["id"]] = INJECTED[1]
    day.stop_worker()  # nobody polls until the restart, after reconciliation
    noodles = day.clients["noodle-shop"]
    order = noodles.create_order(
        out_trade_no=f"LATE{rng.randrange(10**8):08d}", amount=3_200, subject="牛肉面 (last bowl)",
        method="wechat_native",
    )  # fmt: skip
    late = day.channels.sandbox_for(order["routing"]["connector"])
    late.pay(order["id"], "success", notify_delay_s=LOST_NOTIFICATION_DELAY_S)
    day.orders.append({"merchant": "noodle-shop", **order})
    outcome.injected[order["id"]] = INJECTED[0]


def reconcile_the_day(
    clock: Clock, day: GatewayDay, api: OperatorApi, *, seed: int = 13
) -> ReconOutcome:
    outcome = ReconOutcome(business_date(clock.now()))
    inject_mistakes(day, random.Random(seed), outcome)
    try:
        for connector in day.routes:
            _reconcile(day, api, connector, outcome)
        outcome.breaks = _breaks(api, outcome.bill_date, status="open")
        for found in outcome.breaks:
            if found["order_id"] in outcome.injected:
                outcome.resolved.append(_resolve(api, found))
        for connector, run in outcome.runs.items():
            outcome.reruns[connector] = api.post(f"/v1/reconciliation/runs/{run['id']}/rerun")
        outcome.open_after = len(_breaks(api, outcome.bill_date, status="open"))
    finally:
        day.start_worker()
    return outcome


def _reconcile(day: GatewayDay, api: OperatorApi, connector: str, outcome: ReconOutcome) -> None:
    bill_format = day.channels.adapters[connector].code
    try:
        reader_for(bill_format)
    except BillRejected:
        outcome.skipped[connector] = f"no {bill_format} bill reader yet"
        return
    body = {"channel": connector, "bill_date": outcome.bill_date.isoformat()}
    outcome.runs[connector] = api.post("/v1/reconciliation/runs", body)


def _breaks(api: OperatorApi, bill_date: date, *, status: str) -> list[dict[str, Any]]:
    page = api.get("/v1/reconciliation/breaks", status=status, bill_date=bill_date.isoformat(),
                   limit=100)  # fmt: skip
    return list(page["data"])


def _resolve(api: OperatorApi, found: dict[str, Any]) -> dict[str, Any]:
    """The lost payment is repaired; the fee the channel overcharged is written off."""
    path = f"/v1/reconciliation/breaks/{found['id']}/resolve"
    if found["type"] in ("missing_in_platform", "status_mismatch") and found["kind"] == "payment":
        body = {"action": "repair_order", "note": "补单: the channel confirms the payment"}
    else:
        body = {"action": "write_off", "note": "1 fen over the contracted fee: claimed back"}
    resolved: dict[str, Any] = api.post(path, body)
    return resolved
