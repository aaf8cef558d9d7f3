"""Lottery issuance on SQLite and PostgreSQL: people register in the claim window, one seeded
draw after it issues exactly min(stock, registered) vouchers and records its seed, and every
refusal names its reason."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from cloudpay.kernel.clock import FixedClock
from cloudpay.marketing import (
    ClaimStatus,
    DrawResult,
    Issuance,
    draw_lottery,
    get_campaign,
    register_for_lottery,
    wallet,
)
from cloudpay.marketing.model import CampaignKind, draw_winners
from cloudpay.marketing.tables import marketing_lottery_entries
from tests.integration.test_marketing_claims import (
    START,
    claim,
    in_tx,
    open_campaign,
    refusal,
    register,
)


@pytest.fixture
def world_clock() -> FixedClock:
    return FixedClock(START)


def enter(engine: Engine, clock: FixedClock, campaign_id: str, citizen_id: str) -> str:
    entry = in_tx(
        engine, clock, lambda uow: register_for_lottery(uow, campaign_id, citizen_id=citizen_id)
    )
    return entry.registered_at.isoformat()


def draw(
    engine: Engine, clock: FixedClock, campaign_id: str, seed: str | None = "s1"
) -> DrawResult:
    return in_tx(engine, clock, lambda uow: draw_lottery(uow, campaign_id, seed=seed))


def vouchers_of(engine: Engine, clock: FixedClock, citizen_id: str) -> list[ClaimStatus]:
    return [e.claim.status for e in in_tx(engine, clock, lambda uow: wallet(uow, citizen_id))]


def test_the_draw_issues_stock_to_seeded_winners(engine: Engine, world_clock: FixedClock) -> None:
    """Six register for three vouchers: after the window the draw issues exactly three, to the
    winners `draw_winners` picks with the recorded seed; losers get none."""
    campaign_id = open_campaign(engine, world_clock, stock=3, issuance=Issuance.LOTTERY)
    people = [register(engine, world_clock, n) for n in range(6)]
    first = enter(engine, world_clock, campaign_id, people[0])
    world_clock.advance(minutes=5)
    assert enter(engine, world_clock, campaign_id, people[0]) == first  # once each
    for person in people[1:]:
        enter(engine, world_clock, campaign_id, person)
    assert refusal(lambda: draw(engine, world_clock, campaign_id)) == "lottery_not_closed"
    world_clock.advance(days=1)
    result = draw(engine, world_clock, campaign_id, seed="weifang-2026")
    assert result.winners == tuple(draw_winners(people, 3, seed="weifang-2026"))
    campaign = in_tx(engine, world_clock, lambda uow: get_campaign(uow, campaign_id))
    assert (campaign.issued, campaign.draw_seed) == (3, "weifang-2026")
    assert campaign.committed_fen == 3 * campaign.rule.max_value_fen
    for person in people:
        expected = [ClaimStatus.CLAIMED] if person in result.winners else []
        assert vouchers_of(engine, world_clock, person) == expected
    with engine.connect() as connection:
        won = dict(connection.execute(select(marketing_lottery_entries.c.citizen_id,
                                             marketing_lottery_entries.c.won)).all())  # fmt: skip
    assert sorted(p for p, w in won.items() if w) == sorted(result.winners)
    assert refusal(lambda: draw(engine, world_clock, campaign_id)) == "lottery_drawn"


def test_fewer_entrants_than_stock_all_win(engine: Engine, world_clock: FixedClock) -> None:
    """Two entrants for ten vouchers: both win, eight stay in stock; no seed given draws one."""
    campaign_id = open_campaign(engine, world_clock, stock=10, issuance=Issuance.LOTTERY)
    people = [register(engine, world_clock, n) for n in range(2)]
    for person in people:
        enter(engine, world_clock, campaign_id, person)
    world_clock.advance(days=1)
    result = draw(engine, world_clock, campaign_id, seed=None)
    assert sorted(result.winners) == sorted(people)
    campaign = in_tx(engine, world_clock, lambda uow: get_campaign(uow, campaign_id))
    assert campaign.issued == 2
    assert campaign.draw_seed is not None
    assert len(campaign.draw_seed) == 32


def test_lottery_refusals_name_their_reason(engine: Engine, world_clock: FixedClock) -> None:
    """First-come claims on a lottery, registering on a first-come campaign, after the window,
    before funding, or a draw the budget cannot pay: each refused with its code."""
    lottery = open_campaign(engine, world_clock, stock=3, issuance=Issuance.LOTTERY, fund_fen=1_000)
    first_come = open_campaign(engine, world_clock, stock=3)
    person, late = register(engine, world_clock, 1), register(engine, world_clock, 2)
    assert refusal(lambda: claim(engine, world_clock, lottery, person)) == "lottery_only"
    assert refusal(lambda: enter(engine, world_clock, first_come, person)) == "lottery_not_open"
    assert refusal(lambda: draw(engine, world_clock, first_come)) == "lottery_not_open"
    enter(engine, world_clock, lottery, person)
    enter(engine, world_clock, lottery, register(engine, world_clock, 3))
    world_clock.advance(days=1)
    assert refusal(lambda: enter(engine, world_clock, lottery, late)) == "campaign_expired"
    assert refusal(lambda: draw(engine, world_clock, lottery)) == "budget_exhausted"
    assert in_tx(engine, world_clock, lambda uow: get_campaign(uow, lottery)).issued == 0


def test_only_voucher_campaigns_issue_by_lottery(engine: Engine, world_clock: FixedClock) -> None:
    """A merchant coupon cannot be a lottery: refused at creation."""
    code = refusal(
        lambda: open_campaign(
            engine, world_clock, issuance=Issuance.LOTTERY, kind=CampaignKind.COUPON
        )
    )
    assert code == "campaign_invalid"
