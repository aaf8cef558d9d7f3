"""Anti-abuse on SQLite and PostgreSQL: rules stored as data raise flags with reasons at claim
time, at redemption time and in the batch job — once per rule and subject — and a person's
review closes each flag with a decision."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy import Engine

from cloudpay.citizen import PayerChannel, link_payer_id
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.clock import FixedClock
from cloudpay.marketing import (
    MerchantFacts,
    Redemption,
    confirm_redemption,
    redeem,
    reverse_redemption,
    review_abuse,
)
from cloudpay.marketing.abuse import list_flags, register_merchant_person, review_flag, tune_rule
from cloudpay.marketing.abuse_model import (
    Decision,
    Flag,
    FlagStatus,
    MerchantPerson,
    MerchantRole,
    RuleCode,
    SubjectKind,
)
from tests.integration.test_marketing_claims import (
    START,
    VAULT,
    claim,
    in_tx,
    open_campaign,
    refusal,
    register,
    resident_id,
)
from tests.integration.test_marketing_redemption import onboard_merchant


@pytest.fixture
def world_clock() -> FixedClock:
    return FixedClock(START + timedelta(hours=1))


def flags(engine: Engine, clock: FixedClock) -> list[Flag]:
    return in_tx(engine, clock, lambda uow: list_flags(uow, status=None, limit=100,
                                                       starting_after=None))  # fmt: skip


def link(engine: Engine, clock: FixedClock, citizen_id: str, payer_id: str) -> None:
    in_tx(engine, clock, lambda uow: link_payer_id(
        uow, citizen_id, channel=PayerChannel.WECHAT, payer_id=payer_id))  # fmt: skip


def pay(engine: Engine, clock: FixedClock, citizen_id: str, shop: MerchantFacts, order: str,
        amount_fen: int = 5_000) -> int:  # fmt: skip
    def work(uow: UnitOfWork) -> Redemption:
        redeem(uow, order_id=order, citizen_id=citizen_id, merchant=shop, amount_fen=amount_fen)
        return confirm_redemption(uow, order_id=order)  # paid: a refund now reverses it

    done = in_tx(engine, clock, work)
    return len(done.lines)


def test_one_person_with_many_wallets_is_flagged_at_claim(
    engine: Engine, world_clock: FixedClock
) -> None:
    """A citizen with three wallets claiming a voucher is flagged once, with the count in the
    reason; the claim itself goes through; a citizen with one wallet is not flagged."""
    campaign_id = open_campaign(engine, world_clock, stock=10)
    many, one = register(engine, world_clock, 1), register(engine, world_clock, 2)
    for n in range(3):
        link(engine, world_clock, many, f"openid_many_{n}")
    link(engine, world_clock, one, "openid_one_0")
    claim(engine, world_clock, campaign_id, many)
    claim(engine, world_clock, campaign_id, one)
    [flag] = flags(engine, world_clock)
    assert (flag.rule, flag.subject_kind, flag.subject_id) == (
        RuleCode.MANY_WALLETS,
        SubjectKind.CITIZEN,
        many,
    )
    assert flag.status is FlagStatus.OPEN
    assert "3 wallet payer ids" in flag.reason
    assert in_tx(engine, world_clock, review_abuse) == 0  # the batch finds nothing new


def test_identical_amounts_and_refund_loops_are_flagged_at_redemption(
    engine: Engine, world_clock: FixedClock
) -> None:
    """Five voucher orders of exactly 50 yuan at one merchant flag the merchant; a citizen who
    redeems and reverses three times is flagged at the next redemption."""
    shop = MerchantFacts(onboard_merchant(engine, world_clock), "5812", "370702")
    campaign_id = open_campaign(engine, world_clock, stock=10)
    people = [register(engine, world_clock, n) for n in range(5)]
    for n, person in enumerate(people):
        claim(engine, world_clock, campaign_id, person)
        assert pay(engine, world_clock, person, shop, f"ord_same_{n}") == 1
    merchant_flags = [
        f for f in flags(engine, world_clock) if f.subject_kind is SubjectKind.MERCHANT
    ]
    assert [(f.rule, f.subject_id) for f in merchant_flags] == [
        (RuleCode.IDENTICAL_AMOUNTS, shop.merchant_id)
    ]
    assert "5 voucher orders of exactly 5000 fen" in merchant_flags[0].reason
    looper = people[0]
    for n in range(3):
        order = "ord_same_0" if n == 0 else f"ord_loop_{n}"
        in_tx(engine, world_clock, partial(reverse_redemption, order_id=order))
        pay(engine, world_clock, looper, shop, f"ord_loop_{n + 1}", amount_fen=4_000 + n)
    loop_flags = [f for f in flags(engine, world_clock) if f.rule is RuleCode.REDEEM_REFUND_LOOP]
    assert [f.subject_id for f in loop_flags] == [looper]


def test_rules_are_data_and_the_batch_job_applies_them(
    engine: Engine, world_clock: FixedClock
) -> None:
    """Lowering the wallets threshold to 2 makes the batch job flag a two-wallet citizen;
    switched off, the rule raises nothing."""
    person = register(engine, world_clock, 1)
    link(engine, world_clock, person, "openid_two_0")
    link(engine, world_clock, person, "openid_two_1")
    assert in_tx(engine, world_clock, review_abuse) == 0
    in_tx(engine, world_clock, lambda uow: tune_rule(
        uow, RuleCode.MANY_WALLETS, threshold=2, window_hours=0, enabled=False))  # fmt: skip
    assert in_tx(engine, world_clock, review_abuse) == 0
    in_tx(engine, world_clock, lambda uow: tune_rule(
        uow, RuleCode.MANY_WALLETS, threshold=2, window_hours=0, enabled=True))  # fmt: skip
    assert in_tx(engine, world_clock, review_abuse) == 1
    assert in_tx(engine, world_clock, review_abuse) == 0  # one flag per rule and subject


def test_a_review_closes_a_flag_once_with_its_decision(
    engine: Engine, world_clock: FixedClock
) -> None:
    """The reviewer's decision and note are kept; a second review is refused (409)."""
    person = register(engine, world_clock, 1)
    for n in range(3):
        link(engine, world_clock, person, f"openid_rev_{n}")
    in_tx(engine, world_clock, review_abuse)
    [flag] = flags(engine, world_clock)

    def review() -> Flag:
        return in_tx(engine, world_clock, lambda uow: review_flag(
            uow, flag.id, decision=Decision.DISMISSED, note="family phones"))  # fmt: skip

    reviewed = review()
    assert (reviewed.status, reviewed.decision, reviewed.note) == (
        FlagStatus.REVIEWED,
        Decision.DISMISSED,
        "family phones",
    )
    assert refusal(review) == "flag_already_reviewed"
    open_flags = in_tx(engine, world_clock, lambda uow: list_flags(
        uow, status=FlagStatus.OPEN, limit=10, starting_after=None))  # fmt: skip
    assert open_flags == []


def register_person(
    engine: Engine, clock: FixedClock, merchant_id: str, n: int, role: MerchantRole
) -> MerchantPerson:
    def work(uow: UnitOfWork) -> MerchantPerson:
        return register_merchant_person(
            uow, vault=VAULT, merchant_id=merchant_id, resident_id=resident_id(n), role=role
        )

    return in_tx(engine, clock, work)


def test_a_merchants_own_people_redeeming_there_flag_the_merchant(
    engine: Engine, world_clock: FixedClock
) -> None:
    """With the threshold tuned to 2: a stranger's voucher order flags nothing, the staff
    member's first order neither, the legal person's makes two — the merchant is flagged with
    both roles in the reason; an unknown ID or merchant is a 404 and binds nobody."""
    shop = MerchantFacts(onboard_merchant(engine, world_clock), "5812", "370702")
    campaign_id = open_campaign(engine, world_clock, stock=10)
    stranger, staff, boss = (register(engine, world_clock, n) for n in (1, 2, 3))
    bound = register_person(engine, world_clock, shop.merchant_id, 2, MerchantRole.STAFF)
    assert (bound.citizen_id, bound.role) == (staff, MerchantRole.STAFF)
    again = register_person(engine, world_clock, shop.merchant_id, 2, MerchantRole.LEGAL_PERSON)
    assert again.role is MerchantRole.STAFF  # registering again keeps the first binding
    register_person(engine, world_clock, shop.merchant_id, 3, MerchantRole.LEGAL_PERSON)
    unknown_id = partial(register_person, engine, world_clock, shop.merchant_id, 4)
    assert refusal(lambda: unknown_id(MerchantRole.STAFF)) == "citizen_not_found"
    unknown_shop = partial(register_person, engine, world_clock, "mch_nobody", 2)
    assert refusal(lambda: unknown_shop(MerchantRole.STAFF)) == "merchant_not_found"
    in_tx(engine, world_clock, lambda uow: tune_rule(
        uow, RuleCode.OWN_PEOPLE, threshold=2, window_hours=24, enabled=True))  # fmt: skip

    def own_flags() -> list[Flag]:
        return [f for f in flags(engine, world_clock) if f.rule is RuleCode.OWN_PEOPLE]

    for n, person in enumerate((stranger, staff, boss)):
        claim(engine, world_clock, campaign_id, person)
        pay(engine, world_clock, person, shop, f"ord_own_{n}", amount_fen=4_100 + n)
        assert len(own_flags()) == (1 if person == boss else 0)
    [flag] = own_flags()
    assert (flag.subject_kind, flag.subject_id) == (SubjectKind.MERCHANT, shop.merchant_id)
    assert "2 voucher orders paid by the merchant's own people (legal_person and staff)" in (
        flag.reason
    )
    assert in_tx(engine, world_clock, review_abuse) == 0  # the batch finds nothing new
