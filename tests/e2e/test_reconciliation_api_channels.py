"""Reconciliation over HTTP for Alipay and UnionPay: `POST /v1/reconciliation/runs` with
the connector downloads its real bill (a zip of GBK CSVs; a zip of the ZM fixed-width file),
reads it with the channel's reader and raises exactly the injected mistake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from cloudpay.channels.alipay import AlipayChannel
from cloudpay.channels.alipay.sandbox import BillTamper as AlipayTamper
from cloudpay.channels.alipay.sandbox import start_alipay_sandbox
from cloudpay.channels.unionpay import UnionPayChannel
from cloudpay.channels.unionpay.sandbox import BillTamper as UnionPayTamper
from cloudpay.channels.unionpay.sandbox import start_unionpay_sandbox
from cloudpay.config import Settings
from cloudpay.kernel.business_time import business_date
from cloudpay.kernel.clock import SystemClock
from tests.e2e.api_helpers import get, post
from tests.e2e.gateway import (
    CHANNEL_TIMEOUT_S,
    SANDBOX_TIME_SCALE,
    Gateway,
    open_gateway,
    open_sandbox,
)

RATES_BP = {"alipay": 60, "unionpay": 38}  # what each sandbox charges by default


@pytest.fixture(params=["alipay", "unionpay"])
def world(
    request: pytest.FixtureRequest, settings: Settings, engine: Engine
) -> Iterator[tuple[Gateway, Any, str]]:
    """The gateway with the connector under test and a route that says what it charges.
    UnionPay's sandbox keeps real time: its txnTime is our id's real creation instant."""
    connector: str = request.param
    with open_sandbox() as (wechat, clock):
        if connector == "alipay":
            sandbox: Any = start_alipay_sandbox(time_scale=SANDBOX_TIME_SCALE, clock=clock)
            channel: Any = AlipayChannel(sandbox.adapter_config(timeout_s=CHANNEL_TIMEOUT_S),
                                         clock=clock)  # fmt: skip
        else:
            sandbox = start_unionpay_sandbox(time_scale=SANDBOX_TIME_SCALE, clock=SystemClock())
            channel = UnionPayChannel(sandbox.adapter_config(timeout_s=CHANNEL_TIMEOUT_S),
                                      clock=clock)  # fmt: skip
        method = f"{connector}_qr"
        with sandbox, open_gateway(settings, engine, wechat, clock,
                                   connectors={connector: channel},
                                   methods=(method,)) as gateway:  # fmt: skip
            route = {"name": connector, "connector": connector, "methods": [method],
                     "cost": {"rate_bp": RATES_BP[connector]}}  # fmt: skip
            assert post(gateway.http, "/v1/routes", route).status_code == 201
            yield gateway, sandbox, connector


def _paid(gateway: Gateway, sandbox: Any, connector: str, number: str, amount: int) -> str:
    order = gateway.client.create_order(out_trade_no=f"RC{connector}{number}", amount=amount,
                                        subject="对账", method=f"{connector}_qr")  # fmt: skip
    sandbox.pay(order["id"], "success")
    gateway.wait_for_order(order["id"], "succeeded")
    return str(order["id"])


def test_a_run_downloads_the_bill_and_raises_only_the_injected_fee(
    world: tuple[Gateway, Any, str],
) -> None:
    """Two payments, one billed with a fee a fen too high: one match, one `fee_mismatch`."""
    gateway, sandbox, connector = world
    _paid(gateway, sandbox, connector, "1", 2_000)
    off = _paid(gateway, sandbox, connector, "2", 3_000)
    tamper = AlipayTamper if connector == "alipay" else UnionPayTamper
    sandbox.tamper_bill(off, tamper(fee_delta_fen=1))
    day = business_date(gateway.clock.now() if connector == "alipay" else SystemClock().now())
    response = post(gateway.http, "/v1/reconciliation/runs",
                    {"channel": connector, "bill_date": day.isoformat()})  # fmt: skip
    assert response.status_code == 201, response.text
    run = response.json()
    assert (run["bill_format"], run["channel_rows"], run["matched_count"]) == (connector, 2, 1)
    assert run["breaks_by_type"] == {"fee_mismatch": 1}
    [found] = get(gateway.http, "/v1/reconciliation/breaks", channel=connector).json()["data"]
    assert (found["type"], found["order_id"]) == ("fee_mismatch", off)
    assert found["channel_fee_fen"] == found["platform_fee_fen"] + 1
