"""What the Alipay and UnionPay reconciliation tests share: our platform on one channel's
sandbox, orders paid and refunded through payments, a day's bill downloaded and reconciled."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine

from cloudpay import routing
from cloudpay.channels.protocol import PaymentChannel
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.db.unit_of_work import Transact, transactor
from cloudpay.kernel.clock import FixedClock
from cloudpay.payments import (
    ChannelContext,
    OrderRequest,
    place_order,
    poll_processing_refunds,
    refund_order,
    repair_order,
)
from cloudpay.payments.service import POLL_FIRST_AFTER
from cloudpay.reconciliation import BillFile, run_day
from cloudpay.reconciliation import repository as recon_repo
from cloudpay.reconciliation import service as recon


@dataclass
class ChannelWorld:
    """Our platform on one sandbox. Notifications go to a dead address, so only what we ask
    the channel reaches us and a notification can be lost at will."""

    sandbox: Any
    channel: PaymentChannel
    ctx: ChannelContext
    transact: Transact
    connector: str
    method: str


def channel_world(
    engine: Engine, clock: FixedClock, sandbox: Any, channel: PaymentChannel, *, method: str,
    rate_bp: int,
) -> ChannelWorld:  # fmt: skip
    """A route on the channel whose cost is the sandbox's fee rate."""
    ctx = ChannelContext(ChannelRegistry([channel]), "http://127.0.0.1:9", clock)
    transact = transactor(engine, clock)
    transact(
        lambda uow: routing.create_route(
            uow, registry=ctx.channels, name=f"{channel.code} {rate_bp}bp",
            connector=channel.code, methods=frozenset({method}),
            cost=routing.RouteCost(rate_bp=rate_bp),
        )
    )  # fmt: skip
    return ChannelWorld(sandbox, channel, ctx, transact, channel.code, method)


def place(world: ChannelWorld, amount: int) -> str:
    request = OrderRequest(
        app_id="app_recon", merchant_id="mch_recon", out_trade_no=uuid.uuid4().hex[:20],
        amount=amount, currency="CNY", subject="对账 test", method=world.method,
        expire_at=None, notify_url=None, metadata={},
    )  # fmt: skip
    return place_order(world.transact, world.ctx, request=request,
                       enabled_methods=frozenset({world.method})).id  # fmt: skip


def paid(world: ChannelWorld, amount: int, *, heard: bool = True) -> str:
    """An order the payer pays; `heard=False`: its notification is lost (we never ask)."""
    order_id = place(world, amount)
    world.sandbox.pay(order_id, "success")
    if heard:  # what the notification would have done: the channel's answer applied
        repair_order(world.transact, world.ctx, order_id=order_id)
    return order_id


def refund(world: ChannelWorld, order_id: str, amount: int) -> str:
    """A refund through payments, its outcome polled as its notification would bring it."""
    found = refund_order(
        world.transact, world.ctx, app_id="app_recon", order_id=order_id,
        out_refund_no=uuid.uuid4().hex[:16], amount=amount, reason=None,
    )  # fmt: skip
    if found.status != "succeeded":  # accepted, not done (UnionPay): polled when due
        clock = world.ctx.clock
        assert isinstance(clock, FixedClock)
        clock.advance(2 * POLL_FIRST_AFTER.total_seconds())  # a refund's first poll
        poll_processing_refunds(world.transact, world.ctx)
    return found.id


def run(world: ChannelWorld, day: date) -> dict[str, Any]:
    data = world.channel.download_bill(day)
    bill = BillFile(world.connector, day, data, f"download:{world.connector}", world.connector)
    return run_day(world.transact, bill=bill, actor="operator")


def breaks(world: ChannelWorld, day: date, status: str | None = None) -> dict[str, str]:
    """The day's breaks: match key → type."""
    found = world.transact(
        lambda uow: recon.list_breaks(
            uow, status=status, type_=None, channel=world.connector, bill_date=day, limit=100,
            starting_after=None,
        )
    )  # fmt: skip
    return {b["match_key"]: b["type"] for b in found}


def break_ids(world: ChannelWorld, day: date) -> list[str]:
    found = world.transact(
        lambda uow: recon.list_breaks(
            uow, status="open", type_=None, channel=world.connector, bill_date=day, limit=100,
            starting_after=None,
        )
    )  # fmt: skip
    return [b["id"] for b in found]


def stored_after_rejection(world: ChannelWorld, day: date) -> tuple[list[str], int, int]:
    """Runs' statuses, breaks and carried rows of the day: a rejected file leaves only its
    rejected run (with the reason), no break and no carry-over."""
    runs = world.transact(lambda uow: recon.list_runs(
        uow, channel=world.connector, bill_date=day, limit=10, starting_after=None))  # fmt: skip
    carried = world.transact(
        lambda uow: recon_repo.carried_rows(uow.connection, world.connector, day)
    )
    return [r["status"] for r in runs], len(breaks(world, day)), len(carried)
