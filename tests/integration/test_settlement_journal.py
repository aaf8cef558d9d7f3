"""The settlement journal on SQLite and PostgreSQL: orders priced by the fee plan version in
force when they were created, the day's net moved merchant_pending → fees, agents, reserve,
available under deterministic ids, a second run settling nothing twice, and the invariant
(net + fees − fee returns + reserve = gross − refunds) over random days."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from stdnum.cn import uscc

from cloudpay import ledger
from cloudpay.channels.fake import FakeChannel
from cloudpay.channels.protocol import PaymentStatus
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.db.unit_of_work import Transact, run_in_transaction, transactor
from cloudpay.kernel.business_time import day_bounds_utc
from cloudpay.kernel.clock import FixedClock
from cloudpay.merchants.model import MerchantApplication
from cloudpay.merchants.service import create_agent
from cloudpay.merchants.service import onboard_merchant as onboard
from cloudpay.payments import flows as payment_flows
from cloudpay.payments import service as payment_service
from cloudpay.settlement import FeePlan, fee_for, fee_return_for
from cloudpay.settlement import service as settlement
from cloudpay.settlement.flows import SettlementContext, run_settlement
from cloudpay.settlement.model import RefundFeePolicy
from cloudpay.settlement.payouts import balances
from cloudpay.settlement.run import AccountClass
from cloudpay.settlement.tables import settlement_lines
from tests.integration.test_marketing_claims import VAULT, resident_id

MONDAY = date(2026, 3, 2)  # an ordinary week: T+1 of Monday is Tuesday
_numbers = itertools.count(1)


@dataclass
class ClockedFake(FakeChannel):
    """The fake wallet, reporting the time the customer paid as the channel's success time."""

    paid_at: dict[str, datetime] = field(default_factory=dict)
    clock: FixedClock | None = None

    def customer_pays(self, order_id: str, *, succeed: bool = True) -> None:
        super().customer_pays(order_id, succeed=succeed)
        if self.clock is not None:
            self.paid_at[order_id] = self.clock.now()

    def _status(self, order: Any) -> PaymentStatus:
        status = super()._status(order)
        paid_at = self.paid_at.get(order.request.order_id)
        return replace(status, paid_at=paid_at) if status.paid_at and paid_at else status


@dataclass
class World:
    """Merchants, a fake wallet channel and a movable clock: enough to take real orders."""

    engine: Engine
    clock: FixedClock
    fake: ClockedFake = field(default_factory=ClockedFake)

    def __post_init__(self) -> None:
        self.fake.clock = self.clock

    @property
    def transact(self) -> Transact:
        return transactor(self.engine, self.clock)

    def at(self, day: date, hour: int, minute: int = 0) -> None:
        """Move the clock to `hour:minute` Shanghai time on `day` (never backwards)."""
        start, _ = day_bounds_utc(day)
        target = start + timedelta(hours=hour, minutes=minute)
        if target > self.clock.now():
            self.clock.set(target)

    def merchant(self, agent_id: str | None = None) -> str:
        n = next(_numbers)
        body = f"91370702MA{n:07d}"
        application = MerchantApplication(
            legal_name=f"潍坊市第{n}面馆",
            unified_social_credit_code=body + uscc.calc_check_digit(body),
            legal_person_name="李四",
            legal_person_id_number=resident_id(100_000 + n),
            contact_phone="13900000000",
            mcc="5812",
            agent_id=agent_id,
        )
        return str(self.transact(lambda uow: onboard(uow, vault=VAULT, application=application)).id)

    def agent(self, parent: str | None = None) -> str:
        return str(
            self.transact(lambda uow: create_agent(uow, name="代理", parent_agent_id=parent)).id
        )

    def fee_plan(self, merchant_id: str, plan: FeePlan, **kw: Any) -> str:
        row = self.transact(
            lambda uow: settlement.create_fee_plan(
                uow, merchant_id=merchant_id, method="wechat_native", plan=plan, **kw
            )
        )
        return str(row["id"])

    def profile(self, merchant_id: str, **kw: Any) -> None:
        fields: dict[str, Any] = {
            "bank_code": "WFCB",
            "account_no": "WFCB9000000000000001",
            "account_class": AccountClass.CLASS_II,
            "account_name": "李四",
        }
        fields.update(kw)
        profile = settlement.ProfileInput(**fields)
        self.transact(
            lambda uow: settlement.set_profile(
                uow, merchant_id=merchant_id, profile=profile, known_banks=[fields["bank_code"]]
            )
        )

    def order(self, merchant_id: str, amount_fen: int, *, pay_after_s: float = 0) -> str:
        ctx = payment_flows.ChannelContext(
            ChannelRegistry([self.fake]), "http://127.0.0.1:9", self.clock
        )
        request = payment_service.OrderRequest(
            app_id=f"app_{merchant_id}",
            merchant_id=merchant_id,
            out_trade_no=f"T{next(_numbers)}",
            amount=amount_fen,
            currency="CNY",
            subject="面",
            method="wechat_native",
            expire_at=None,
            notify_url="http://127.0.0.1:9/hook",
            metadata={},
        )
        order = payment_flows.place_order(
            self.transact, ctx, request=request, enabled_methods=frozenset({"wechat_native"})
        )
        self.clock.advance(pay_after_s)
        self.fake.customer_pays(order.id)
        headers, body = self.fake.notification_for(order.id, f"n{order.id}")
        payment_flows.handle_notification(self.transact, self.fake, headers, body)
        return order.id

    def refund(self, merchant_id: str, order_id: str, amount_fen: int) -> None:
        ctx = payment_flows.ChannelContext(
            ChannelRegistry([self.fake]), "http://127.0.0.1:9", self.clock
        )
        payment_flows.refund_order(
            self.transact,
            ctx,
            app_id=f"app_{merchant_id}",
            order_id=order_id,
            out_refund_no=f"R{next(_numbers)}",
            amount=amount_fen,
            reason=None,
        )

    def settle(self, business_date: date, ctx: SettlementContext | None = None) -> Any:
        self.at(business_date, 2)
        return run_settlement(self.transact, ctx or SettlementContext(), business_date)

    def lines(self, merchant_id: str) -> list[Any]:
        query = select(settlement_lines).where(settlement_lines.c.merchant_id == merchant_id)
        with self.engine.connect() as connection:
            return list(connection.execute(query.order_by(settlement_lines.c.trade_date)).all())

    def balance(self, merchant_id: str) -> dict[str, Any]:
        return dict(self.transact(lambda uow: balances(uow, merchant_id)))

    def books_ok(self) -> bool:
        return bool(run_in_transaction(self.engine, ledger.check_books, read_only=True).ok)


def test_orders_are_priced_by_the_version_in_force_when_created(engine: Engine) -> None:
    """A payment created at 23:59 under the old plan and paid after midnight under the new
    one is priced by the old plan and settled with the next day; books balance."""
    world = World(engine, FixedClock(datetime(2026, 3, 1, 2, tzinfo=UTC)))
    shop = world.merchant()
    old = world.fee_plan(shop, FeePlan.percent(60))
    world.at(MONDAY - timedelta(days=1), 23, 59)
    world.order(shop, 12_345, pay_after_s=120)  # paid 00:01 Monday
    new = world.fee_plan(shop, FeePlan.percent(30, min_fen=10))
    world.at(MONDAY, 11)
    world.order(shop, 1_000)
    world.order(shop, 50_000)
    summary = world.settle(MONDAY + timedelta(days=1))
    [line] = world.lines(shop)
    assert (summary.settled, line.trade_date) == (1, MONDAY)
    expected_fees = (
        fee_for(FeePlan.percent(60), 12_345)
        + fee_for(FeePlan.percent(30, min_fen=10), 1_000)
        + fee_for(FeePlan.percent(30, min_fen=10), 50_000)
    )
    assert (line.gross_fen, line.fees_fen, line.orders_count) == (63_345, expected_fees, 3)
    assert sorted(json.loads(line.fee_plan_ids)) == sorted([old, new])
    assert world.balance(shop)["available"] == 63_345 - expected_fees
    assert world.balance(shop)["pending"] == 0
    assert world.books_ok()


def test_agents_reserve_refunds_and_a_second_run(engine: Engine) -> None:
    """Agents earn their spread, the reserve is held and released on its day, a refund
    returns its share of the fee, and running the same date again settles nothing twice."""
    world = World(engine, FixedClock(datetime(2026, 3, 1, 2, tzinfo=UTC)))
    province = world.agent()
    city = world.agent(province)
    world.transact(
        lambda uow: settlement.set_agent_rate(
            uow, agent_id=province, method="wechat_native", cost_rate_bp=20
        )
    )
    world.transact(
        lambda uow: settlement.set_agent_rate(
            uow, agent_id=city, method="wechat_native", cost_rate_bp=30
        )
    )
    shop = world.merchant(agent_id=city)
    world.fee_plan(shop, FeePlan.percent(60))
    world.profile(shop, reserve_rate_bp=1_000, reserve_hold_days=7)
    world.at(MONDAY, 10)
    first = world.order(shop, 100_000)
    world.order(shop, 20_000)
    world.refund(shop, first, 40_000)
    tuesday = MONDAY + timedelta(days=1)
    summary = world.settle(tuesday, SettlementContext(banks={}))
    again = world.settle(tuesday, SettlementContext(banks={}))
    assert (summary.settled, again.settled) == (1, 0)
    [line] = world.lines(shop)
    fees = fee_for(FeePlan.percent(60), 100_000) + fee_for(FeePlan.percent(60), 20_000)
    fee_return = fee_return_for(
        RefundFeePolicy.PROPORTIONAL,
        order_amount_fen=100_000,
        fee_fen=600,
        refunded_before_fen=0,
        fee_returned_before_fen=0,
        refund_amount_fen=40_000,
    )
    assert (line.fees_fen, line.fee_returns_fen, line.refunds_fen) == (fees, fee_return, 40_000)
    # The platform keeps the province's 20 bp; the province earns 30 − 20, the city 60 − 30.
    assert json.loads(line.commissions) == {province: 10 * 12, city: 30 * 12}
    assert (line.reserve_held_fen, line.reserve_release_on) == (12_000, MONDAY + timedelta(days=7))
    net = 120_000 - 40_000 - fees + fee_return - 12_000
    assert (line.net_fen, line.status, line.refusal) == (net, "settled", None)
    assert world.balance(shop) == {**world.balance(shop), "available": net, "reserved": 12_000}
    world.settle(MONDAY + timedelta(days=7))
    assert world.balance(shop)["available"] == net + 12_000
    assert world.balance(shop)["reserved"] == 0
    assert world.books_ok()


def test_a_payment_learned_late_settles_on_a_later_day(engine: Engine) -> None:
    """A payment made on Monday whose notification only arrives on Tuesday, after Monday's
    trades were settled, is booked on Tuesday and settles with Tuesday's trades: no day
    already run can swallow it."""
    world = World(engine, FixedClock(datetime(2026, 3, 1, 2, tzinfo=UTC)))
    shop = world.merchant()
    world.fee_plan(shop, FeePlan.percent(60))
    world.at(MONDAY, 10)
    ctx = payment_flows.ChannelContext(
        ChannelRegistry([world.fake]), "http://127.0.0.1:9", world.clock
    )
    request = payment_service.OrderRequest(
        app_id=f"app_{shop}", merchant_id=shop, out_trade_no="LATE1", amount=8_000,
        currency="CNY", subject="面", method="wechat_native", expire_at=None,
        notify_url="http://127.0.0.1:9/hook", metadata={},
    )  # fmt: skip
    order = payment_flows.place_order(
        world.transact, ctx, request=request, enabled_methods=frozenset({"wechat_native"})
    )
    world.fake.customer_pays(order.id)  # Monday 10:00, and the notification is lost
    tuesday, wednesday = MONDAY + timedelta(days=1), MONDAY + timedelta(days=2)
    assert world.settle(tuesday).settled == 0
    world.at(tuesday, 11)
    headers, body = world.fake.notification_for(order.id, "late")
    payment_flows.handle_notification(world.transact, world.fake, headers, body)
    summary = world.settle(wednesday)
    [line] = world.lines(shop)
    assert (summary.settled, line.trade_date, line.gross_fen) == (1, tuesday, 8_000)
    assert world.balance(shop)["pending"] == 0
    assert world.books_ok()


_orders = st.lists(
    st.tuples(st.integers(1, 5_000_000), st.integers(0, 100)), min_size=1, max_size=6
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(orders=_orders, rate=st.integers(0, 300), reserve_bp=st.integers(0, 2_000))
def test_settlement_accounts_for_every_fen(
    engine: Engine, orders: list[tuple[int, int]], rate: int, reserve_bp: int
) -> None:
    """For any day of orders and partial refunds: net + fees − fee returns + reserve equals
    gross − refunds, the merchant's available balance is the net, and the books balance."""
    world = World(engine, FixedClock(datetime(2026, 3, 1, 2, tzinfo=UTC)))
    shop = world.merchant()
    world.fee_plan(shop, FeePlan.percent(rate, min_fen=1))
    world.profile(shop, reserve_rate_bp=reserve_bp)
    world.at(MONDAY, 9)
    for amount, refund_percent in orders:
        order_id = world.order(shop, amount)
        if refund_percent and amount * refund_percent // 100:
            world.refund(shop, order_id, amount * refund_percent // 100)
    world.settle(MONDAY + timedelta(days=1))
    [line] = world.lines(shop)
    assert line.net_fen + line.fees_fen - line.fee_returns_fen + line.reserve_held_fen == (
        line.gross_fen - line.refunds_fen
    )
    assert line.gross_fen == sum(amount for amount, _ in orders)
    assert world.balance(shop)["available"] == line.net_fen
    assert world.balance(shop)["reserved"] == line.reserve_held_fen
    assert world.books_ok()
