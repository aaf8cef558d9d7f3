"""Payouts through the sandbox partner bank, on SQLite and PostgreSQL: a Class II limit
carries the rest over to the next day or reroutes it to the Class I card, a frozen account's
payout fails with the money back on the merchant's balance, a returned payout (退票) is
credited back and paid again, and the ledger's custody account always equals the bank's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from cloudpay.channels.bank import PartnerBankClient
from cloudpay.channels.bank.protocol import AccountClass as BankClass
from cloudpay.channels.bank.protocol import OwnerKind, TransferStatus
from cloudpay.channels.bank.sandbox import BankSandbox, start_bank_sandbox
from cloudpay.channels.bank.sandbox.people import applicant
from cloudpay.kernel.clock import FixedClock
from cloudpay.settlement import FeePlan
from cloudpay.settlement.flows import SettlementContext, check_custody, sync_payout
from cloudpay.settlement.payouts import mirror_custody_opening
from cloudpay.settlement.run import OverLimitPolicy
from cloudpay.settlement.tables import settlement_payouts
from tests.integration.test_settlement_journal import MONDAY, World

CLASS_II_DAILY_FEN = 1_000_000  # PBoC: 10,000 CNY a day from a non-bound account


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 1, 2, tzinfo=UTC))


@pytest.fixture
def bank(clock: FixedClock) -> Iterator[BankSandbox]:
    with start_bank_sandbox(bank_code="WFCB", time_scale=0.001, clock=clock) as sandbox:
        yield sandbox


@pytest.fixture
def client(bank: BankSandbox, clock: FixedClock) -> Iterator[PartnerBankClient]:
    with PartnerBankClient(bank.adapter_config(), clock=clock) as the_client:
        yield the_client


@pytest.fixture
def world(engine: Engine, clock: FixedClock, client: PartnerBankClient) -> World:
    world = World(engine, clock)
    custody = client.balance(client.custody_account_no).balance_fen
    world.transact(lambda uow: mirror_custody_opening(uow, bank_code="WFCB", balance_fen=custody))
    return world


def _shop(world: World, client: PartnerBankClient, **profile: Any) -> tuple[str, str, str]:
    """A merchant with a 0-fee plan and a Class II e-account: (merchant, account, card)."""
    shop = world.merchant()
    person = applicant()
    opened = client.open_account(
        person.open_request(BankClass.CLASS_II, owner_reference=shop, owner_kind=OwnerKind.MERCHANT)
    )
    world.fee_plan(shop, FeePlan.percent(0))
    world.profile(
        shop, account_no=opened.account_no, class_i_card=person.bound_card_number, **profile
    )
    return shop, opened.account_no, person.bound_card_number


def _payouts(world: World, merchant_id: str) -> list[Any]:
    query = select(settlement_payouts).where(settlement_payouts.c.merchant_id == merchant_id)
    with world.engine.connect() as connection:
        return list(
            connection.execute(
                query.order_by(settlement_payouts.c.pay_date, settlement_payouts.c.destination_kind)
            ).all()
        )


def _custody_matches(world: World, ctx: SettlementContext) -> bool:
    return all(row["matches"] for row in check_custody(world.transact, ctx))


def test_over_the_class_ii_limit_the_rest_is_paid_the_next_day(
    world: World, client: PartnerBankClient
) -> None:
    """15,000 CNY of sales: 10,000 reach the Class II account on Tuesday, the other 5,000
    wait on the merchant's balance and go on Wednesday; nothing is dropped."""
    ctx = SettlementContext(banks={"WFCB": client})
    shop, account_no, _card = _shop(world, client)
    world.at(MONDAY, 10)
    world.order(shop, 1_500_000)
    tuesday = world.settle(MONDAY + timedelta(days=1), ctx)
    assert tuesday.payouts == {"succeeded": 1}
    [first] = _payouts(world, shop)
    assert (first.amount_fen, first.limited_by) == (CLASS_II_DAILY_FEN, "daily_limit")
    assert world.balance(shop)["available"] == 500_000
    world.settle(MONDAY + timedelta(days=2), ctx)
    assert [p.amount_fen for p in _payouts(world, shop)] == [CLASS_II_DAILY_FEN, 500_000]
    assert world.balance(shop)["available"] == 0
    assert client.balance(account_no).balance_fen == 1_500_000
    assert _custody_matches(world, ctx)
    assert world.books_ok()


def test_reroute_to_class_i_and_a_returned_payout(
    world: World, client: PartnerBankClient, bank: BankSandbox
) -> None:
    """With the reroute policy the excess goes to the bound Class I card the same day; when
    that payout is returned (退票) the money is back on the balance and paid the next day."""
    ctx = SettlementContext(banks={"WFCB": client})
    shop, account_no, card = _shop(
        world, client, over_limit_policy=OverLimitPolicy.REROUTE_TO_CLASS_I
    )
    world.at(MONDAY, 10)
    world.order(shop, 1_200_000)
    world.settle(MONDAY + timedelta(days=1), ctx)
    class_i, e_account = sorted(_payouts(world, shop), key=lambda p: p.destination_kind)
    assert (e_account.amount_fen, class_i.amount_fen) == (CLASS_II_DAILY_FEN, 200_000)
    assert (class_i.destination_account, class_i.status) == (card, "succeeded")
    bank.return_payout(class_i.id)
    assert client.query_transfer(class_i.id).status is TransferStatus.RETURNED
    assert sync_payout(world.transact, ctx, class_i.id)["status"] == "returned"
    assert sync_payout(world.transact, ctx, class_i.id)["status"] == "returned"  # once only
    assert world.balance(shop)["available"] == 200_000
    assert _custody_matches(world, ctx)
    world.settle(MONDAY + timedelta(days=2), ctx)
    assert client.balance(account_no).balance_fen == 1_200_000
    assert world.balance(shop)["available"] == 0
    assert _custody_matches(world, ctx)
    assert world.books_ok()


def test_a_frozen_account_fails_the_payout_and_keeps_the_money(
    world: World, client: PartnerBankClient, bank: BankSandbox
) -> None:
    """The bank refuses a payout to a frozen account: the hold is voided, the money stays
    available, and after the account is unfrozen the next run pays it; run twice, pay once."""
    ctx = SettlementContext(banks={"WFCB": client})
    shop, account_no, _card = _shop(world, client)
    world.at(MONDAY, 10)
    world.order(shop, 300_000)
    bank.freeze(account_no)
    world.settle(MONDAY + timedelta(days=1), ctx)
    [failed] = _payouts(world, shop)
    assert (failed.status, failed.failure_reason) == ("failed", "account_frozen")
    assert world.balance(shop)["available"] == 300_000
    assert world.balance(shop)["in_transit"] == 0
    bank.unfreeze(account_no)
    wednesday: date = MONDAY + timedelta(days=2)
    world.settle(wednesday, ctx)
    world.settle(wednesday, ctx)
    assert [p.status for p in _payouts(world, shop)] == ["failed", "succeeded"]
    assert client.balance(account_no).balance_fen == 300_000
    assert _custody_matches(world, ctx)
    assert world.books_ok()
