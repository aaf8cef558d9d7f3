"""Redemption inside an order's transactions, on SQLite and PostgreSQL: the best instruments
reduce the amount, the subsidy is held on the budget until the order is paid and then moves
budget → merchant under deterministic ids, a retry replays, an unpaid order's hold is voided,
and a reversal gives both the money and the instrument back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from stdnum.cn import uscc

from cloudpay import ledger
from cloudpay.kernel.clock import FixedClock
from cloudpay.ledger import Purpose
from cloudpay.marketing import (
    ClaimStatus,
    DiscountRule,
    MerchantFacts,
    RuleKind,
    best_quote,
    campaign_stats,
    confirm_redemption,
    end_campaign,
    get_campaign,
    redeem,
    refund_transfer_id,
    reverse_for_refund,
    reverse_redemption,
    subsidy_transfer_id,
    wallet,
)
from cloudpay.marketing.model import MerchantScope
from cloudpay.marketing.tables import marketing_redemptions
from cloudpay.merchants.model import MerchantApplication
from cloudpay.merchants.service import onboard_merchant as onboard
from tests.integration.test_marketing_claims import (
    START,
    VAULT,
    balance_of,
    claim,
    in_tx,
    open_campaign,
    refusal,
    register,
    resident_id,
)

ORDER = "ord_" + "1" * 26
FIVE_OFF = DiscountRule(RuleKind.NO_THRESHOLD, discount_fen=500)


def onboard_merchant(engine: Engine, clock: FixedClock, mcc: str = "5812") -> str:
    body = "91370702MA3C0000"[:17].ljust(17, "0")
    application = MerchantApplication(
        legal_name="潍坊市某某面馆", unified_social_credit_code=body + uscc.calc_check_digit(body),
        legal_person_name="李四", legal_person_id_number=resident_id(999_999),
        contact_phone="13900000000", mcc=mcc,
    )  # fmt: skip
    return in_tx(engine, clock, lambda uow: onboard(uow, vault=VAULT, application=application)).id


@pytest.fixture
def world_clock() -> FixedClock:
    return FixedClock(START + timedelta(hours=1))


@pytest.fixture
def shop(engine: Engine, world_clock: FixedClock) -> MerchantFacts:
    return MerchantFacts(onboard_merchant(engine, world_clock), "5812", "370702")


def _redeem(engine: Engine, clock: FixedClock, citizen_id: str, shop: MerchantFacts,
            amount_fen: int, order_id: str = ORDER, paid: bool = True, **options: object):  # type: ignore[no-untyped-def]  # fmt: skip
    """Redeem in the order's transaction, then (paid) confirm as the capture does."""
    held = in_tx(engine, clock, lambda uow: redeem(
        uow, order_id=order_id, citizen_id=citizen_id, merchant=shop, amount_fen=amount_fen,
        **options,  # type: ignore[arg-type]
    ))  # fmt: skip
    if not paid:
        return held
    return in_tx(engine, clock, lambda uow: confirm_redemption(uow, order_id=order_id))


def _available(engine: Engine, clock: FixedClock, purpose: Purpose, owner: str) -> int:
    """Posted credits less posted and pending debits: what the account can still pay."""

    def read(uow):  # type: ignore[no-untyped-def]
        balance = ledger.get_account(uow, ledger.open_chart_account(uow, purpose, owner).id).balance
        return balance.net_credit - balance.debits_pending

    return int(in_tx(engine, clock, read))


def _redemption_rows(engine: Engine) -> int:
    query = select(func.count()).select_from(marketing_redemptions)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def test_redeem_applies_the_best_instrument_and_moves_the_subsidy(
    engine: Engine, world_clock: FixedClock, shop: MerchantFacts
) -> None:
    """The 10-off-40 voucher beats the 5-yuan coupon; 10 yuan leaves the budget for the
    merchant under `{order}:subsidy:1`, and the claim is redeemed for this order."""
    voucher = open_campaign(engine, world_clock)
    coupon = open_campaign(engine, world_clock, rule=FIVE_OFF)
    citizen_id = register(engine, world_clock, 1)
    voucher_claim = claim(engine, world_clock, voucher, citizen_id)
    claim(engine, world_clock, coupon, citizen_id)
    redemption = _redeem(engine, world_clock, citizen_id, shop, 5_000)
    assert [(line.claim_id, line.discount_fen) for line in redemption.lines] == [
        (voucher_claim, 1_000)
    ]
    transfer_id = subsidy_transfer_id(ORDER, 1)
    transfer = in_tx(engine, world_clock, lambda uow: ledger.get_transfer(uow, transfer_id))
    assert (transfer.amount, transfer.user_data) == (1_000, voucher_claim)
    owner = ledger.campaign_owner(voucher)
    assert balance_of(engine, world_clock, Purpose.MARKETING_BUDGET, owner) == 9_000
    merchant_owner = ledger.merchant_owner(shop.merchant_id)
    assert balance_of(engine, world_clock, Purpose.MERCHANT_PENDING, merchant_owner) == 1_000
    statuses = {e.claim.id: e.claim.status for e in in_tx(
        engine, world_clock, lambda uow: wallet(uow, citizen_id))}  # fmt: skip
    assert statuses[voucher_claim] is ClaimStatus.REDEEMED


def test_a_retried_redemption_replays_and_moves_nothing_twice(
    engine: Engine, world_clock: FixedClock, shop: MerchantFacts
) -> None:
    """Redeeming the same order again returns the first breakdown; no second subsidy."""
    campaign_id = open_campaign(engine, world_clock)
    citizen_id = register(engine, world_clock, 1)
    claim(engine, world_clock, campaign_id, citizen_id)
    first = _redeem(engine, world_clock, citizen_id, shop, 5_000)
    again = _redeem(engine, world_clock, citizen_id, shop, 5_000)
    assert again == first
    assert _redemption_rows(engine) == 1
    owner = ledger.campaign_owner(campaign_id)
    assert balance_of(engine, world_clock, Purpose.MARKETING_BUDGET, owner) == 9_000


def test_reversal_returns_the_subsidy_and_restores_the_instrument(
    engine: Engine, world_clock: FixedClock, shop: MerchantFacts
) -> None:
    """A refunded order gives the budget its money back and the payer a usable instrument,
    which a later order can use; reversing twice changes nothing."""
    campaign_id = open_campaign(engine, world_clock)
    citizen_id = register(engine, world_clock, 1)
    claim_id = claim(engine, world_clock, campaign_id, citizen_id)
    _redeem(engine, world_clock, citizen_id, shop, 5_000)
    for _ in range(2):
        reversed_ = in_tx(engine, world_clock, lambda uow: reverse_redemption(uow, order_id=ORDER))
        assert reversed_.discount_fen == 0
    owner = ledger.campaign_owner(campaign_id)
    assert balance_of(engine, world_clock, Purpose.MARKETING_BUDGET, owner) == 10_000
    merchant_owner = ledger.merchant_owner(shop.merchant_id)
    assert balance_of(engine, world_clock, Purpose.MERCHANT_PENDING, merchant_owner) == 0
    [entry] = in_tx(engine, world_clock, lambda uow: wallet(uow, citizen_id))
    assert entry.claim.status is ClaimStatus.RESTORED
    second_order = "ord_" + "2" * 26
    used_again = _redeem(engine, world_clock, citizen_id, shop, 5_000, order_id=second_order)
    assert [line.claim_id for line in used_again.lines] == [claim_id]
    assert in_tx(engine, world_clock, ledger.check_books).ok


def test_a_reversal_after_the_campaign_ended_expires_the_instrument(
    engine: Engine, world_clock: FixedClock, shop: MerchantFacts
) -> None:
    """A refund after the end: the subsidy goes on through the budget to the funder (the
    ended budget stays empty), and the instrument is not given back."""
    campaign_id = open_campaign(engine, world_clock)
    citizen_id = register(engine, world_clock, 1)
    claim(engine, world_clock, campaign_id, citizen_id)
    _redeem(engine, world_clock, citizen_id, shop, 5_000)
    ended = in_tx(engine, world_clock, lambda uow: end_campaign(uow, campaign_id))
    assert ended.returned_fen == 9_000
    for _ in range(2):
        in_tx(engine, world_clock, lambda uow: reverse_redemption(uow, order_id=ORDER))
    [entry] = in_tx(engine, world_clock, lambda uow: wallet(uow, citizen_id))
    assert entry.claim.status is ClaimStatus.EXPIRED
    owner = ledger.campaign_owner(campaign_id)
    assert balance_of(engine, world_clock, Purpose.MARKETING_BUDGET, owner) == 0
    assert balance_of(engine, world_clock, Purpose.FUNDING, "government:weifang") == 0
    campaign = in_tx(engine, world_clock, lambda uow: get_campaign(uow, campaign_id))
    assert campaign.returned_fen == 10_000


def test_a_chosen_instrument_that_does_not_apply_is_refused_and_nothing_written(
    engine: Engine, world_clock: FixedClock, shop: MerchantFacts
) -> None:
    """A coupon for supermarkets (MCC 5411) chosen at a restaurant: 409, no redemption."""
    campaign_id = open_campaign(engine, world_clock,
                                scope=MerchantScope(mccs=frozenset({"5411"})))  # fmt: skip
    citizen_id = register(engine, world_clock, 1)
    claim_id = claim(engine, world_clock, campaign_id, citizen_id)
    code = refusal(lambda: _redeem(engine, world_clock, citizen_id, shop, 5_000,
                                   claim_ids=[claim_id]))  # fmt: skip
    assert code == "instrument_not_applicable"
    assert _redemption_rows(engine) == 0
    nothing = _redeem(engine, world_clock, citizen_id, shop, 5_000)
    assert nothing.lines == ()


def test_best_quote_writes_nothing(
    engine: Engine, world_clock: FixedClock, shop: MerchantFacts
) -> None:
    """Asking what the payer would save leaves the claim usable and the budget untouched."""
    campaign_id = open_campaign(engine, world_clock)
    citizen_id = register(engine, world_clock, 1)
    claim(engine, world_clock, campaign_id, citizen_id)
    result = in_tx(engine, world_clock, lambda uow: best_quote(
        uow, citizen_id=citizen_id, merchant=shop, amount_fen=4_000))  # fmt: skip
    assert (result.discount_fen, result.payable_fen) == (1_000, 3_000)
    assert _redemption_rows(engine) == 0
    [entry] = in_tx(engine, world_clock, lambda uow: wallet(uow, citizen_id))
    assert entry.claim.status is ClaimStatus.CLAIMED


def test_partial_refunds_give_back_their_share_then_the_rest(
    engine: Engine, world_clock: FixedClock, shop: MerchantFacts
) -> None:
    """Refunding 30 of a 50-yuan order returns 6 of the 10-yuan subsidy (and again nothing on
    a replay); refunding the other 20 returns the last 4 and restores the voucher."""
    campaign_id = open_campaign(engine, world_clock)
    citizen_id = register(engine, world_clock, 1)
    claim(engine, world_clock, campaign_id, citizen_id)
    _redeem(engine, world_clock, citizen_id, shop, 5_000)
    owner = ledger.campaign_owner(campaign_id)
    refund_id = "rfd_" + "3" * 26
    for _ in range(2):
        partly = in_tx(engine, world_clock, lambda uow: reverse_for_refund(
            uow, order_id=ORDER, refund_id=refund_id, order_amount_fen=5_000,
            refunded_total_fen=3_000))  # fmt: skip
        assert partly.discount_fen == 400
    assert balance_of(engine, world_clock, Purpose.MARKETING_BUDGET, owner) == 9_600
    transfer_id = refund_transfer_id(refund_id, 1)
    transfer = in_tx(engine, world_clock, lambda uow: ledger.get_transfer(uow, transfer_id))
    assert transfer.amount == 600
    [entry] = in_tx(engine, world_clock, lambda uow: wallet(uow, citizen_id))
    assert entry.claim.status is ClaimStatus.REDEEMED
    final = in_tx(engine, world_clock, lambda uow: reverse_for_refund(
        uow, order_id=ORDER, refund_id="rfd_" + "4" * 26, order_amount_fen=5_000,
        refunded_total_fen=5_000))  # fmt: skip
    assert final.discount_fen == 0
    assert balance_of(engine, world_clock, Purpose.MARKETING_BUDGET, owner) == 10_000
    [entry] = in_tx(engine, world_clock, lambda uow: wallet(uow, citizen_id))
    assert entry.claim.status is ClaimStatus.RESTORED
    assert in_tx(engine, world_clock, ledger.check_books).ok


def test_stats_show_the_leverage_of_a_campaign(
    engine: Engine, world_clock: FixedClock, shop: MerchantFacts
) -> None:
    """Two orders of 50 and 80 yuan with a 10-yuan voucher each: 130 yuan of spending for 20 of
    subsidy (leverage 6.50); a refunded order no longer counts."""
    campaign_id = open_campaign(engine, world_clock)
    for n, amount in ((1, 5_000), (2, 8_000), (3, 4_000)):
        citizen_id = register(engine, world_clock, n)
        claim(engine, world_clock, campaign_id, citizen_id)
        _redeem(engine, world_clock, citizen_id, shop, amount, order_id=f"ord_{n:026d}")
    in_tx(engine, world_clock, lambda uow: reverse_redemption(uow, order_id=f"ord_{3:026d}"))
    stats = in_tx(engine, world_clock, lambda uow: campaign_stats(uow, campaign_id))
    assert (stats.redemptions, stats.subsidy_fen, stats.driven_amount_fen) == (2, 2_000, 13_000)
    assert str(stats.leverage) == "6.50"
    assert stats.claims_by_status == {"redeemed": 2, "restored": 1}


def test_an_unpaid_order_holds_the_subsidy_and_its_end_voids_it(
    engine: Engine, world_clock: FixedClock, shop: MerchantFacts
) -> None:
    """Before payment the subsidy is only reserved (the budget cannot spend it, the merchant
    has nothing); the order ending unpaid voids the hold and the voucher is usable again."""
    campaign_id = open_campaign(engine, world_clock)
    citizen_id = register(engine, world_clock, 1)
    claim_id = claim(engine, world_clock, campaign_id, citizen_id)
    held = _redeem(engine, world_clock, citizen_id, shop, 5_000, paid=False)
    assert held.discount_fen == 1_000
    owner = ledger.campaign_owner(campaign_id)
    merchant_owner = ledger.merchant_owner(shop.merchant_id)
    assert balance_of(engine, world_clock, Purpose.MARKETING_BUDGET, owner) == 10_000
    assert _available(engine, world_clock, Purpose.MARKETING_BUDGET, owner) == 9_000
    assert balance_of(engine, world_clock, Purpose.MERCHANT_PENDING, merchant_owner) == 0
    stats = in_tx(engine, world_clock, lambda uow: campaign_stats(uow, campaign_id))
    assert (stats.redemptions, stats.subsidy_fen) == (0, 0)  # not spent until paid
    for _ in range(2):
        released = in_tx(engine, world_clock, lambda uow: reverse_redemption(uow, order_id=ORDER))
        assert released.discount_fen == 0
    assert _available(engine, world_clock, Purpose.MARKETING_BUDGET, owner) == 10_000
    assert balance_of(engine, world_clock, Purpose.MERCHANT_PENDING, merchant_owner) == 0
    void_id = subsidy_transfer_id(ORDER, 1) + ":void"
    void = in_tx(engine, world_clock, lambda uow: ledger.get_transfer(uow, void_id))
    assert void.amount == 1_000
    [entry] = in_tx(engine, world_clock, lambda uow: wallet(uow, citizen_id))
    assert (entry.claim.id, entry.claim.status) == (claim_id, ClaimStatus.RESTORED)
    assert in_tx(engine, world_clock, ledger.check_books).ok


def test_confirming_twice_posts_the_subsidy_once(
    engine: Engine, world_clock: FixedClock, shop: MerchantFacts
) -> None:
    """A duplicate payment notice confirms again: the merchant gets the subsidy once."""
    campaign_id = open_campaign(engine, world_clock)
    citizen_id = register(engine, world_clock, 1)
    claim(engine, world_clock, campaign_id, citizen_id)
    _redeem(engine, world_clock, citizen_id, shop, 5_000)
    again = in_tx(engine, world_clock, lambda uow: confirm_redemption(uow, order_id=ORDER))
    assert again.discount_fen == 1_000
    merchant_owner = ledger.merchant_owner(shop.merchant_id)
    assert balance_of(engine, world_clock, Purpose.MERCHANT_PENDING, merchant_owner) == 1_000
    owner = ledger.campaign_owner(campaign_id)
    assert _available(engine, world_clock, Purpose.MARKETING_BUDGET, owner) == 9_000


def test_an_order_left_unpaid_after_the_campaign_ended_returns_the_hold_to_the_funder(
    engine: Engine, world_clock: FixedClock, shop: MerchantFacts
) -> None:
    """Ending the campaign leaves an open order's hold alone (the payer may still pay); when
    the order then ends unpaid the voided hold goes on to the funder and the voucher expires."""
    campaign_id = open_campaign(engine, world_clock)
    citizen_id = register(engine, world_clock, 1)
    claim(engine, world_clock, campaign_id, citizen_id)
    _redeem(engine, world_clock, citizen_id, shop, 5_000, paid=False)
    ended = in_tx(engine, world_clock, lambda uow: end_campaign(uow, campaign_id))
    assert ended.returned_fen == 9_000
    in_tx(engine, world_clock, lambda uow: reverse_redemption(uow, order_id=ORDER))
    owner = ledger.campaign_owner(campaign_id)
    assert balance_of(engine, world_clock, Purpose.MARKETING_BUDGET, owner) == 0
    campaign = in_tx(engine, world_clock, lambda uow: get_campaign(uow, campaign_id))
    assert campaign.returned_fen == 10_000
    [entry] = in_tx(engine, world_clock, lambda uow: wallet(uow, citizen_id))
    assert entry.claim.status is ClaimStatus.EXPIRED
    assert in_tx(engine, world_clock, ledger.check_books).ok
