"""Payment flows against real databases and the in-process FakeChannel."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine

from cloudpay.channels.fake import FakeChannel
from cloudpay.channels.protocol import ChannelErrorKind
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.db.unit_of_work import run_in_transaction, transactor
from cloudpay.kernel.clock import FixedClock
from cloudpay.kernel.errors import CloudPayError
from cloudpay.ledger import check_books, lookup_accounts
from cloudpay.ledger.repository import find_account
from cloudpay.payments import flows, service, webhooks
from cloudpay.payments.model import OrderStatus, RefundStatus

METHODS = frozenset({"wechat_native", "wechat_jsapi"})


@pytest.fixture
def fake() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def ctx(fake: FakeChannel, clock: FixedClock) -> flows.ChannelContext:
    return flows.ChannelContext(ChannelRegistry([fake]), "http://127.0.0.1:9", clock)


def _request(
    out_trade_no: str = "T1", amount: int = 2_500, **overrides: object
) -> service.OrderRequest:
    fields: dict[str, object] = {
        "app_id": "app_1", "merchant_id": "mch_1", "out_trade_no": out_trade_no,
        "amount": amount, "currency": "CNY", "subject": "牛肉面", "method": "wechat_native",
        "expire_at": None, "notify_url": "http://127.0.0.1:9/hook", "metadata": {},
    }  # fmt: skip
    fields.update(overrides)
    return service.OrderRequest(**fields)


def _place(engine: Engine, clock: FixedClock, ctx: flows.ChannelContext, **kw: object):
    return flows.place_order(
        transactor(engine, clock), ctx, request=_request(**kw), enabled_methods=METHODS
    )


def _merchant_pending(engine: Engine) -> int:
    def work(uow):
        account = find_account(
            uow.connection, owner="merchant:mch_1", code="merchant_pending", ledger="CNY"
        )
        return 0 if account is None else lookup_accounts(uow, [account.id])[0].balance.net_credit

    return int(run_in_transaction(engine, work, read_only=True))


def _books_ok(engine: Engine) -> bool:
    return run_in_transaction(engine, check_books, read_only=True).ok


def test_pay_notify_refund_journey_books_balance(
    engine: Engine, clock: FixedClock, ctx, fake
) -> None:
    """Create → paying with a QR code → paid by notification → partial then full refund."""
    transact = transactor(engine, clock)
    order = _place(engine, clock, ctx)
    assert order.status is OrderStatus.PAYING
    assert order.code_url
    fake.customer_pays(order.id)
    headers, body = fake.notification_for(order.id, "n-1")
    assert flows.handle_notification(transact, fake, headers, body).status_code == 200
    assert flows.handle_notification(transact, fake, headers, body).status_code == 200  # duplicate
    paid = transact(lambda uow: service.get_order(uow, order_id=order.id))
    assert paid.status is OrderStatus.SUCCEEDED
    assert _merchant_pending(engine) == 2_500
    first = flows.refund_order(transact, ctx, app_id="app_1", order_id=order.id,
                               out_refund_no="R1", amount=1_000, reason="少了一碗")  # fmt: skip
    assert first.status is RefundStatus.SUCCEEDED
    assert (
        transact(lambda uow: service.get_order(uow, order_id=order.id)).status
        is OrderStatus.PARTIALLY_REFUNDED
    )
    with pytest.raises(CloudPayError) as too_much:
        flows.refund_order(transact, ctx, app_id="app_1", order_id=order.id,
                           out_refund_no="R2", amount=1_501, reason=None)  # fmt: skip
    assert too_much.value.code == "refund_exceeds_paid"
    flows.refund_order(transact, ctx, app_id="app_1", order_id=order.id,
                       out_refund_no="R3", amount=1_500, reason=None)  # fmt: skip
    final = transact(lambda uow: service.get_order(uow, order_id=order.id))
    assert final.status is OrderStatus.REFUNDED
    assert final.refunded_amount == 2_500
    assert _merchant_pending(engine) == 0
    assert _books_ok(engine)
    events = transact(
        lambda uow: webhooks.list_events(uow, app_id="app_1", limit=10, starting_after=None)
    )
    assert [e.payload["event"]["type"] for e in events][::-1] == [
        "order.succeeded", "refund.succeeded", "refund.succeeded",
    ]  # fmt: skip


def test_same_out_trade_no_same_body_is_the_same_order(
    engine: Engine, clock: FixedClock, ctx
) -> None:
    """Retrying a create returns the first order; other parameters are a 409."""
    first = _place(engine, clock, ctx)
    again = _place(engine, clock, ctx)
    assert again.id == first.id
    with pytest.raises(CloudPayError) as conflict:
        _place(engine, clock, ctx, amount=2_501)
    assert conflict.value.code == "out_trade_no_used"


def test_channel_timeout_on_create_is_recovered_by_the_poller(
    engine: Engine, clock: FixedClock, ctx, fake
) -> None:
    """An unknown create outcome leaves the order `created`; polling finishes the job."""
    fake.fail_next.append(ChannelErrorKind.TIMEOUT)
    order = _place(engine, clock, ctx)
    assert order.status is OrderStatus.CREATED
    clock.advance(seconds=6)
    assert flows.poll_open_orders(transactor(engine, clock), ctx) == 1
    recovered = transactor(engine, clock)(lambda uow: service.get_order(uow, order_id=order.id))
    assert recovered.status is OrderStatus.PAYING
    assert recovered.code_url


def test_missed_notification_is_found_by_polling(
    engine: Engine, clock: FixedClock, ctx, fake
) -> None:
    """Paid but never notified: the poller queries the channel and captures once."""
    order = _place(engine, clock, ctx)
    fake.customer_pays(order.id)
    clock.advance(seconds=6)
    flows.poll_open_orders(transactor(engine, clock), ctx)
    assert (
        transactor(engine, clock)(lambda uow: service.get_order(uow, order_id=order.id)).status
        is OrderStatus.SUCCEEDED
    )
    assert _merchant_pending(engine) == 2_500


def test_unpaid_order_expires_and_is_closed_at_the_channel(
    engine: Engine, clock: FixedClock, ctx, fake
) -> None:
    """Past expire_at the poller closes the order at the channel and marks it expired."""
    order = _place(engine, clock, ctx)
    clock.advance(minutes=31)
    flows.poll_open_orders(transactor(engine, clock), ctx)
    expired = transactor(engine, clock)(lambda uow: service.get_order(uow, order_id=order.id))
    assert expired.status is OrderStatus.EXPIRED
    assert fake.orders[order.id].status.value == "closed"


def test_refund_of_unpaid_order_is_refused(engine: Engine, clock: FixedClock, ctx) -> None:
    """Refunds need a paid order."""
    order = _place(engine, clock, ctx)
    with pytest.raises(CloudPayError) as refused:
        flows.refund_order(transactor(engine, clock), ctx, app_id="app_1", order_id=order.id,
                           out_refund_no="R1", amount=1, reason=None)  # fmt: skip
    assert refused.value.code == "order_not_paid"


@pytest.mark.postgres_only
def test_racing_refunds_never_over_refund(engine: Engine, clock: FixedClock, ctx, fake) -> None:
    """Ten concurrent refunds of 400 on a 2,500 order: at most 6 succeed, books balance."""
    transact = transactor(engine, clock)
    order = _place(engine, clock, ctx)
    fake.customer_pays(order.id)
    headers, body = fake.notification_for(order.id)
    flows.handle_notification(transact, fake, headers, body)
    outcomes: list[str] = []

    def refund(n: int) -> None:
        try:
            flows.refund_order(transact, ctx, app_id="app_1", order_id=order.id,
                               out_refund_no=f"R{n}", amount=400, reason=None)  # fmt: skip
            outcomes.append("ok")
        except CloudPayError as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=refund, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 6
    final = transact(lambda uow: service.get_order(uow, order_id=order.id))
    assert final.refunded_amount == 2_400
    assert _merchant_pending(engine) == 100
    assert _books_ok(engine)


@pytest.mark.postgres_only
def test_concurrent_duplicate_notifications_capture_once(
    engine: Engine, clock: FixedClock, ctx, fake
) -> None:
    """The same payment notified and polled concurrently is captured exactly once."""
    transact = transactor(engine, clock)
    order = _place(engine, clock, ctx)
    fake.customer_pays(order.id)

    def notify(n: int) -> None:
        headers, body = fake.notification_for(order.id, f"n-{n % 3}")
        flows.handle_notification(transact, fake, headers, body)

    threads = [threading.Thread(target=notify, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _merchant_pending(engine) == 2_500
    assert _books_ok(engine)


def test_method_without_a_configured_channel_is_a_clear_424(
    engine: Engine, clock: FixedClock
) -> None:
    """A deployment without WeChat credentials refuses WeChat orders up front, writing nothing."""
    bare = flows.ChannelContext(ChannelRegistry(), "http://127.0.0.1:9", clock)
    with pytest.raises(CloudPayError) as refused:
        _place(engine, clock, bare)
    assert refused.value.code == "channel_not_configured"
    assert refused.value.http_status == 424
    listed = transactor(engine, clock)(lambda uow: service.list_orders(uow, app_id="app_1"))
    assert listed == []
