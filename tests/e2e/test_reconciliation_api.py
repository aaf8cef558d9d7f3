"""Reconciliation over HTTP against the whole gateway and the WeChat Pay sandbox: a run
downloads the real bill, a lost notification becomes a break, the operator repairs it (the
merchant's webhook goes out), the rerun is clean; errors keep the one error shape."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from cloudpay.config import Settings
from cloudpay.kernel.business_time import business_date
from tests.e2e.api_helpers import assert_error, get, post
from tests.e2e.gateway import Gateway, open_gateway, open_sandbox

RUNS = "/v1/reconciliation/runs"
BREAKS = "/v1/reconciliation/breaks"


@pytest.fixture
def gateway(settings: Settings, engine: Engine) -> Iterator[Gateway]:
    """A sandbox of its own (its bill holds this test's payments only) and a route that says
    what the sandbox charges, 0.60%: the fee every bill row is checked against."""
    with open_sandbox() as (sandbox, clock), open_gateway(settings, engine, sandbox, clock) as gw:
        route = {"name": "wechat 0.60%", "connector": "wechat", "methods": ["wechat_native"],
                 "cost": {"rate_bp": 60}}  # fmt: skip
        assert post(gw.http, "/v1/routes", route).status_code == 201
        yield gw


def _paid_order(gateway: Gateway, number: str, amount: int, *, lost: bool = False) -> str:
    order = gateway.client.create_order(
        out_trade_no=f"RC{number}", amount=amount, subject="对账", method="wechat_native"
    )
    if lost:  # the notification is held for ~17 minutes: lost, as far as this test sees
        gateway.pay(order["id"], "success", notify_delay_s=1_000_000)
    else:
        gateway.pay(order["id"], "success")
        gateway.wait_for_order(order["id"], "succeeded")
    return str(order["id"])


def _run(gateway: Gateway) -> dict[str, Any]:
    day = business_date(gateway.clock.now()).isoformat()
    response = post(gateway.http, RUNS, {"channel": "wechat", "bill_date": day})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_lost_notification_is_raised_repaired_and_the_rerun_is_clean(gateway: Gateway) -> None:
    """Run → one `missing_in_platform` break → investigate → repair_order (webhook sent) →
    rerun finds nothing; the report and the break's trail say so."""
    _paid_order(gateway, "1", 2_000)
    lost = _paid_order(gateway, "2", 3_000, lost=True)
    run = _run(gateway)
    assert (run["matched_count"], run["break_count"]) == (1, 1)
    [found] = get(gateway.http, BREAKS, status="open").json()["data"]
    assert (found["type"], found["order_id"], found["age_days"]) == ("missing_in_platform", lost, 0)
    moved = post(gateway.http, f"{BREAKS}/{found['id']}/investigate", {"note": "checking"})
    assert moved.json()["status"] == "investigating"
    resolved = post(gateway.http, f"{BREAKS}/{found['id']}/resolve",
                    {"action": "repair_order", "note": "补单"})  # fmt: skip
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["resolution"] == "repair_order"
    assert gateway.client.get_order(lost)["status"] == "succeeded"
    gateway.run_worker()
    events = [gateway.verified(c) for c in gateway.webhooks_received(2)]
    assert lost in {e["data"]["object"]["id"] for e in events if e["type"] == "order.succeeded"}
    again = post(gateway.http, f"{RUNS}/{run['id']}/rerun")
    assert again.json()["break_count"] == 0
    assert again.json()["file_id"] == run["file_id"]
    history = get(gateway.http, f"{BREAKS}/{found['id']}").json()["history"]
    assert [h["to_status"] for h in history] == ["open", "investigating", "resolved"]
    report = get(gateway.http, "/v1/reconciliation/report", channel="wechat",
                 bill_date=run["bill_date"]).json()  # fmt: skip
    assert (report["matched_count"], report["break_count"]) == (2, 0)
    assert report["matched_amount_fen"] == 5_000
    listed = get(gateway.http, RUNS, channel="wechat").json()["data"]
    assert [r["id"] for r in listed] == [again.json()["id"], run["id"]]


def test_bad_requests_get_the_one_error_shape(gateway: Gateway) -> None:
    """No credentials, no action, an unknown break, a repeated resolve: 4xx, never a 500."""
    _paid_order(gateway, "3", 500)
    lost = _paid_order(gateway, "4", 600, lost=True)
    _run(gateway)
    [found] = get(gateway.http, BREAKS).json()["data"]
    assert found["order_id"] == lost
    path = f"{BREAKS}/{found['id']}/resolve"
    assert_error(gateway.http.get(BREAKS), 401, "credentials_missing")
    assert_error(post(gateway.http, path, {"note": "no action"}), 400, "parameter_missing",
                 "action")  # fmt: skip
    assert_error(post(gateway.http, path, {"action": "adjust", "note": "x"}), 400,
                 "ledger_transfer_required", "ledger_transfer_id")  # fmt: skip
    assert_error(post(gateway.http, f"{BREAKS}/rcb_0000000000000000/resolve",
                      {"action": "write_off", "note": "x"}), 404, "resource_missing")  # fmt: skip
    assert post(gateway.http, path, {"action": "write_off", "note": "small"}).status_code == 200
    assert_error(post(gateway.http, path, {"action": "refund", "note": "again"}), 409,
                 "break_resolved")  # fmt: skip
    unknown = post(gateway.http, RUNS, {"channel": "nochannel", "bill_date": "2026-11-24"})
    assert_error(unknown, 400, "channel_unknown", "channel")


def test_a_day_without_a_bill_is_reconciled_as_empty(gateway: Gateway) -> None:
    """WeChat has no bill for a day without trades: the run completes, keeps no file, and
    raises nothing because we booked nothing that day either."""
    yesterday = business_date(gateway.clock.now()) - timedelta(days=1)
    response = post(gateway.http, RUNS, {"channel": "wechat", "bill_date": yesterday.isoformat()})
    assert response.status_code == 201, response.text
    run = response.json()
    assert (run["status"], run["file_id"], run["channel_rows"], run["break_count"]) == (
        "completed",
        None,
        0,
        0,
    )
