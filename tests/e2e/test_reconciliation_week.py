"""A simulated week of three-way reconciliation on SQLite and PostgreSQL: payments through the
gateway's flows into channel sandboxes, each channel settling its day's net into the platform's
custody account at a bank sandbox, and the worker's daily job reconciling every channel's bill
and the bank statement. Mistakes injected in the sandboxes are each found once with the right
type and nothing else is raised; the carry-over clears the next day; a repaired missed
notification makes the rerun clean; the job repeats nothing on a second pass or after a
restart."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine

from cloudpay import routing
from cloudpay.channels.alipay import AlipayChannel
from cloudpay.channels.alipay.sandbox import BillTamper as AlipayBillTamper
from cloudpay.channels.alipay.sandbox import start_alipay_sandbox
from cloudpay.channels.bank import PartnerBankClient
from cloudpay.channels.bank.sandbox import BankSandbox, start_bank_sandbox
from cloudpay.channels.protocol import RefundRequest
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.channels.sandbox_settlement import SettlementAccount, SettlementTamper
from cloudpay.channels.unionpay import UnionPayChannel
from cloudpay.channels.unionpay.sandbox import BillTamper as UnionPayBillTamper
from cloudpay.channels.unionpay.sandbox import start_unionpay_sandbox
from cloudpay.channels.wechat import WeChatPayChannel
from cloudpay.channels.wechat.sandbox import BillTamper, start_wechat_sandbox
from cloudpay.db.unit_of_work import Transact, transactor
from cloudpay.kernel import ids
from cloudpay.kernel.business_time import SHANGHAI
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.ids import new_id
from cloudpay.payments import (
    ChannelContext,
    OrderRequest,
    place_order,
    poll_processing_refunds,
    refund_order,
    repair_order,
)
from cloudpay.payments.service import POLL_FIRST_AFTER
from cloudpay.reconciliation import DEFAULT_RUN_AT, bank_channel_key
from cloudpay.reconciliation import service as recon
from cloudpay.worker import JOBS, WorkerContext

# A week ahead of the real date (see `_ids_follow_the_clock`), Monday to Sunday.
_TODAY = date.today()
WEEK = [_TODAY + timedelta(days=7 - _TODAY.weekday() + 7 + offset) for offset in range(7)]
APP_ID, MERCHANT_ID = "app_week", "mch_week"
Expected = dict[tuple[str, date, str], str]  # (channel, bill date, match key) → break type


def _at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=SHANGHAI).astimezone(UTC)


@dataclass
class Lane:
    """One channel of the week: its sandbox, our adapter for it, how its bill is tampered."""

    key: str
    method: str
    settlement_prefix: str  # the reference of its settlement credits: WXPAY-SETTLE-…
    sandbox: Any
    adapter: Any
    tamper: Callable[..., None]


@dataclass
class Week:
    clock: FixedClock
    transact: Transact
    ctx: ChannelContext
    bank: BankSandbox
    worker: WorkerContext
    lanes: list[Lane]
    expected: Expected = field(default_factory=dict)

    @property
    def bank_key(self) -> str:
        return bank_channel_key(self.bank.bank_code)

    def reconcile(self) -> int:
        (job,) = [job for job in JOBS if job.name == "reconciliation.daily"]
        return job.run(self.worker)


def _wechat_lane(sandbox: Any, adapter: WeChatPayChannel) -> Lane:
    def tamper(order_id: str, *, at: datetime | None = None, **changes: Any) -> None:
        sandbox.tamper_bill(order_id, BillTamper(traded_at=at, **changes))

    return Lane("wechat", "wechat_native", "WXPAY", sandbox, adapter, tamper)


def _alipay_lane(sandbox: Any, adapter: AlipayChannel) -> Lane:
    def tamper(order_id: str, *, at: datetime | None = None, **changes: Any) -> None:
        sandbox.tamper_bill(order_id, AlipayBillTamper(paid_at=at, **changes))

    return Lane("alipay", "alipay_qr", "ALIPAY", sandbox, adapter, tamper)


def _unionpay_lane(sandbox: Any, adapter: UnionPayChannel) -> Lane:
    def tamper(order_id: str, *, at: datetime | None = None, **changes: Any) -> None:
        sandbox.tamper_bill(order_id, UnionPayBillTamper(completed_at=at, **changes))

    return Lane("unionpay", "unionpay_qr", "UNIONPAY", sandbox, adapter, tamper)


def _ids_follow_the_clock(monkeypatch: pytest.MonkeyPatch, clock: FixedClock) -> None:
    """UnionPay names a transaction by its `txnTime`, the instant our id was minted, and its
    sandbox refuses one more than 10 minutes from its clock: over a simulated week, ids must
    be minted on the week's clock. A generator of its own keeps the process's ids monotonic
    once the test is over (the week lies ahead of the real date for the same reason)."""
    monkeypatch.setattr(ids, "_generator", ids._Generator())
    monkeypatch.setattr(ids, "time", SimpleNamespace(time_ns=clock.now_ns))


@pytest.fixture
def week(engine: Engine, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Week]:
    """Our platform on WeChat Pay, Alipay and UnionPay sandboxes and a bank sandbox sharing
    one clock; routes that say what each channel charges (0.60%), so every fee is checked."""
    clock.set(_at(WEEK[0], 8))
    _ids_follow_the_clock(monkeypatch, clock)
    with (
        start_wechat_sandbox(time_scale=0.001, refund_delay_s=0.0, clock=clock) as wechat,
        WeChatPayChannel(wechat.adapter_config(), clock=clock) as wechat_adapter,
        start_alipay_sandbox(time_scale=0.001, clock=clock, fee_rate_bp=60) as alipay,
        AlipayChannel(alipay.adapter_config(), clock=clock) as alipay_adapter,
        start_unionpay_sandbox(
            time_scale=0.001, clock=clock, refund_delay_s=0.0, fee_rate_bps=60
        ) as unionpay,
        start_bank_sandbox("WFCB", time_scale=0.001, clock=clock) as bank,
        PartnerBankClient(bank.adapter_config(), clock=clock) as bank_adapter,
    ):
        lanes = [
            _wechat_lane(wechat, wechat_adapter),
            _alipay_lane(alipay, alipay_adapter),
            _unionpay_lane(unionpay, UnionPayChannel(unionpay.adapter_config(), clock=clock)),
        ]
        ctx = ChannelContext(ChannelRegistry([lane.adapter for lane in lanes]),
                             "http://127.0.0.1:9", clock)  # fmt: skip
        transact = transactor(engine, clock)
        for lane in lanes:
            transact(
                lambda uow, lane=lane: routing.create_route(
                    uow, registry=ctx.channels, name=f"{lane.key} 0.60%", connector=lane.key,
                    methods=frozenset({lane.method}), cost=routing.RouteCost(rate_bp=60),
                )
            )  # fmt: skip
        worker = WorkerContext(engine=engine, clock=clock, channel_context=ctx,
                               reconcile_at=DEFAULT_RUN_AT,
                               banks={bank.bank_code: bank_adapter})  # fmt: skip
        yield Week(clock, transact, ctx, bank, worker, lanes)


# ---------------------------------------------------------------- the simulated customer


def _order(week: Week, lane: Lane, amount: int) -> str:
    request = OrderRequest(
        app_id=APP_ID, merchant_id=MERCHANT_ID, out_trade_no=uuid.uuid4().hex[:20],
        amount=amount, currency="CNY", subject="一周对账", method=lane.method, expire_at=None,
        notify_url=None, metadata={},
    )  # fmt: skip
    return place_order(week.transact, week.ctx, request=request,
                       enabled_methods=frozenset({lane.method})).id  # fmt: skip


def _paid(week: Week, lane: Lane, amount: int, *, heard: bool = True) -> str:
    """A paid order; `heard=False`: its notification is lost (nobody asks the channel)."""
    order_id = _order(week, lane, amount)
    lane.sandbox.pay(order_id, "success")
    if heard:  # what the notification would have done
        repair_order(week.transact, week.ctx, order_id=order_id)
    return order_id


def _refund_by_us(week: Week, order_id: str, amount: int) -> None:
    """A refund through payments; one the channel accepted but has not done yet is polled
    when due, as its notification would bring the outcome."""
    found = refund_order(
        week.transact, week.ctx, app_id=APP_ID, order_id=order_id,
        out_refund_no=uuid.uuid4().hex[:16], amount=amount, reason=None,
    )  # fmt: skip
    if found.status != "succeeded":
        week.clock.advance(2 * POLL_FIRST_AFTER.total_seconds())
        poll_processing_refunds(week.transact, week.ctx)


def _expect(week: Week, lane: Lane, day: date, key: str, kind: str) -> None:
    week.expected[(lane.key, day, key)] = kind


def _traffic(week: Week, lane: Lane, day: date) -> None:
    """The day's payments: a few clean ones and a refund every day, a mistake or two."""
    clean = [_paid(week, lane, amount) for amount in (1_000, 2_345, 9_999)]
    _refund_by_us(week, clean[2], 3_000)
    if day == WEEK[1]:  # a lost notification, a wrong amount
        _expect(week, lane, day, _paid(week, lane, 4_321, heard=False), "missing_in_platform")
        wrong = _paid(week, lane, 5_000)
        lane.tamper(wrong, amount_delta_fen=1)
        _expect(week, lane, day, wrong, "amount_mismatch")
    elif day == WEEK[2]:  # a fee off by one fen, a duplicate row
        fee_off, twice = _paid(week, lane, 6_000), _paid(week, lane, 7_000)
        lane.tamper(fee_off, fee_delta_fen=1)
        lane.tamper(twice, duplicate=True)
        _expect(week, lane, day, fee_off, "fee_mismatch")
        _expect(week, lane, day, twice, "duplicate")
    elif day == WEEK[3]:  # a refund we never saw
        behind_our_back = _paid(week, lane, 8_000)
        unseen = new_id("rfd")
        lane.adapter.refund(RefundRequest(unseen, behind_our_back, 8_000, 8_000, "CNY"))
        _expect(week, lane, day, unseen, "missing_in_platform")


def _across_midnight(week: Week, day: date) -> None:
    """Ordered at 23:59, paid at 00:00:01 by us, 23:59:58 by each channel's bill."""
    week.clock.set(_at(day, 23, 59))
    orders = [(lane, _order(week, lane, 777)) for lane in week.lanes]
    week.clock.set(_at(day + timedelta(days=1), 0, 0, 1))
    for lane, order_id in orders:
        lane.sandbox.pay(order_id, "success")
        repair_order(week.transact, week.ctx, order_id=order_id)
        lane.tamper(order_id, at=_at(day, 23, 59, 58))


# What the channels do to the settlement credit of a bill day (booked the next day).
SETTLEMENT_MISTAKES = {
    WEEK[3]: (SettlementTamper(missing=True), "bank_credit_missing"),
    WEEK[4]: (SettlementTamper(delta_fen=100), "bank_credit_mismatch"),
}


def _settle(week: Week, bill_day: date) -> None:
    """09:00 the next day: every channel pays its bill day's net into custody."""
    week.clock.set(_at(bill_day + timedelta(days=1), 9))
    custody = SettlementAccount(week.bank.base_url, week.bank.custody_account_no)
    tamper, kind = SETTLEMENT_MISTAKES.get(bill_day, (None, ""))
    for lane in week.lanes:
        credited = lane.sandbox.settle_day(bill_day, custody, tamper)
        assert (credited == 0) == (tamper is not None and tamper.missing)
        if tamper is not None:
            reference = f"{lane.settlement_prefix}-SETTLE-{bill_day:%Y%m%d}"
            week.expected[(week.bank_key, bill_day + timedelta(days=1), reference)] = kind


def _runs(week: Week, channel: str, day: date) -> list[dict[str, Any]]:
    return week.transact(lambda uow: recon.list_runs(
        uow, channel=channel, bill_date=day, limit=50, starting_after=None))  # fmt: skip


def _all_breaks(week: Week) -> list[dict[str, Any]]:
    return week.transact(lambda uow: recon.list_breaks(
        uow, status=None, type_=None, channel=None, bill_date=None, limit=500,
        starting_after=None))  # fmt: skip


def _repair_lost_notification(week: Week, day: date) -> None:
    """The operator repairs each lost notification's break; the rerun of its day no longer
    finds it."""
    lost = [b for b in _all_breaks(week) if b["bill_date"] == day
            and b["type"] == "missing_in_platform"]  # fmt: skip
    assert len(lost) == len(week.lanes)
    for found in lost:
        repaired = recon.repair(week.transact, week.ctx, break_id=found["id"], actor="op_week",
                                note="补单")  # fmt: skip
        assert (repaired["status"], repaired["resolution"]) == ("resolved", "repair_order")
    for lane in week.lanes:
        (first,) = _runs(week, lane.key, day)
        again = recon.rerun(week.transact, run_id=first["id"], actor="op_week")
        # Only the wrong amount of that day is left: the repaired payment now matches.
        assert again["breaks_by_type"] == {"amount_mismatch": 1}
        assert again["file_id"] == first["file_id"]


def test_a_week_of_three_way_reconciliation(week: Week) -> None:
    """Every injected mistake found with its type and nothing else; carry-over cleared;
    the repaired notification reruns clean; the job is idempotent and survives restart."""
    for index, day in enumerate([*WEEK, WEEK[-1] + timedelta(days=1)]):
        if index:
            _settle(week, WEEK[index - 1])
            week.clock.set(_at(day, 10, 5))
            reconciled = week.reconcile()
            assert reconciled == len(week.lanes) + 1  # yesterday's bills and statement
            assert week.reconcile() == 0  # a second pass repeats nothing
        if index == 2:
            _repair_lost_notification(week, WEEK[1])
        if day in WEEK:
            week.clock.set(_at(day, 12))
            for lane in week.lanes:
                _traffic(week, lane, day)
        if day == WEEK[3]:
            _across_midnight(week, day)
    found = {(b["channel"], b["bill_date"], b["match_key"]): b["type"] for b in _all_breaks(week)}
    assert found == week.expected
    _assert_carry_over_cleared(week)
    _assert_bank_leg(week)
    restarted = WorkerContext(engine=week.worker.engine, clock=week.clock,
                              channel_context=week.ctx, reconcile_at=DEFAULT_RUN_AT,
                              banks=week.worker.banks)  # fmt: skip
    week.worker = restarted
    assert week.reconcile() == 0


def _assert_carry_over_cleared(week: Week) -> None:
    """WeChat Pay and Alipay stamp the payment when it completes (00:00:01 for us, 23:59:58
    on their bill): carried from Thursday, matched on Friday. UnionPay stamps both its file
    and its query answer with the order's txnTime (23:59): Thursday on both sides."""
    thursday, friday = WEEK[3], WEEK[4]
    for lane in week.lanes:
        (carried,) = _runs(week, lane.key, thursday)
        (cleared,) = _runs(week, lane.key, friday)
        assert carried["carried_over_count"] == (0 if lane.key == "unionpay" else 1)
        assert cleared["carry_in_count"] == carried["carried_over_count"]
        assert (cleared["carried_over_count"], cleared["break_count"]) == (0, 0)


def _assert_bank_leg(week: Week) -> None:
    """One bank run a day; each checks every channel's credit of the bill day before."""
    for index, day in enumerate(WEEK):
        (run,) = _runs(week, week.bank_key, day)
        assert run["status"] == "completed"
        expected_credits = len(week.lanes) if index else 0
        raised = sum(1 for key in week.expected if key[:2] == (week.bank_key, day))
        assert run["matched_count"] + run["break_count"] == expected_credits
        assert run["break_count"] == raised
    report = week.transact(
        lambda uow: recon.daily_report(uow, channel=week.bank_key, bill_date=WEEK[4])
    )
    assert report["breaks_by_type"] == {"bank_credit_missing": len(week.lanes)}
    for lane in week.lanes:  # and each channel's report says what its credit came to
        leg = week.transact(
            lambda uow, lane=lane: recon.daily_report(uow, channel=lane.key, bill_date=WEEK[4])
        )["bank_leg"]
        assert (leg["statement_date"], leg["checked"]) == (WEEK[5], True)
        assert [b["type"] for b in leg["breaks"]] == ["bank_credit_mismatch"]
        assert leg["breaks"][0]["bank_amount_fen"] == leg["breaks"][0]["bill_amount_fen"] + 100
