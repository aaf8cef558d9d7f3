"""The dashboard's numbers on both databases: today's volume, count, success rate and refunds,
and the 30-day trend, the same whether a day comes from the platform cache or is counted live,
and limited to the reader's merchants."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from cloudpay.config import Settings
from cloudpay.console.model import Role
from cloudpay.console.tables import console_day_totals
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.ids import new_id
from cloudpay.payments.tables import orders, refunds
from tests.browser.console_world import World, open_world

NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai


@pytest.fixture
def world(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[World]:
    with open_world(settings, engine, clock) as opened:
        yield opened


def _order(merchant_id: str, amount: int, status: str, created: datetime) -> dict[str, Any]:
    return {
        "id": new_id("ord"), "app_id": "app_x", "merchant_id": merchant_id,
        "out_trade_no": new_id("otn")[-20:], "request_hash": "0" * 64, "amount": amount,
        "currency": "CNY", "subject": "s", "method": "wechat_native", "channel": "wechat",
        "status": status, "expire_at": created, "metadata": "{}",
        "refunded_amount": amount if status == "refunded" else 0, "refund_reserved_amount": 0,
        "poll_attempts": 0, "created_at": created, "updated_at": created,
    }  # fmt: skip


def _seed(world: World) -> None:
    mine, theirs = world.city.merchant_id, world.city.other_merchant_id
    jan5 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    today = datetime(2026, 1, 20, 11, 0, tzinfo=UTC)
    rows = [
        _order(mine, 1_000, "succeeded", jan5), _order(mine, 2_500, "succeeded", jan5),
        _order(mine, 700, "failed", jan5), _order(theirs, 9_900, "succeeded", jan5),
        _order(mine, 4_200, "succeeded", today), _order(mine, 1_000, "refunded", today),
        _order(mine, 300, "paying", today),
    ]  # fmt: skip
    refunded = rows[5]
    with world.engine.begin() as connection:
        connection.execute(insert(orders), rows)
        connection.execute(insert(refunds).values(
            id=new_id("rfd"), order_id=refunded["id"], app_id="app_x", merchant_id=mine,
            out_refund_no="r1", request_hash="0" * 64, amount=1_000, currency="CNY",
            status="succeeded", created_at=today, updated_at=today,
        ))  # fmt: skip


def _figures(page: str) -> tuple[str, str]:
    volume = re.search(r'id="today-volume">([^<]+)<', page)
    count = re.search(r'id="today-count">([^<]+)<', page)
    assert volume
    assert count
    return volume.group(1), count.group(1)


def test_dashboard_totals_and_trend_by_scope_cached_or_live(world: World) -> None:
    """Admin (cached past days) and merchant/agent (live) see consistent, scoped figures."""
    world.clock.set(NOW)
    _seed(world)
    admin = world.session(Role.PLATFORM_ADMIN)
    first = admin.get("/console/dashboard").text
    assert _figures(first) == ("¥52.00", "3")
    assert "100.00%" in first  # 2 paid of 2 finished (the paying one is not finished)
    assert "1 / ¥10.00" in first  # one refund today
    assert "2026-01-05 ¥134" in first
    with world.engine.connect() as connection:
        cached = connection.execute(select(func.count()).select_from(console_day_totals))
        assert cached.scalar_one() >= 28  # every settled day of the trend, empty ones too
    assert admin.get("/console/dashboard").text.count("2026-01-05 ¥134") == 1
    for role in (Role.MERCHANT, Role.AGENT):
        page = world.session(role).get("/console/dashboard").text
        assert _figures(page) == ("¥52.00", "3"), role
        assert "2026-01-05 ¥35" in page, role
