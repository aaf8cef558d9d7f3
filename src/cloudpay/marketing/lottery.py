"""摇号: voucher campaigns that issue by lottery instead of first come, first served.

People register during the claim window (once each; registering again answers the first
registration). After the window, one draw — seeded, reproducible, its seed recorded on the
campaign — issues exactly min(stock left, registered) vouchers to the winners. The seed is the
operator's (a publicly announced number, say) or a random one; with it and the entrant list
anyone can re-run `draw_winners` and check the result.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from cloudpay import citizen
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.business_time import business_date
from cloudpay.kernel.ids import new_id
from cloudpay.marketing import lottery_repository as repository
from cloudpay.marketing.errors import ClaimRefused
from cloudpay.marketing.model import (
    Campaign,
    CampaignStatus,
    Claim,
    ClaimStatus,
    Issuance,
    draw_winners,
)
from cloudpay.marketing.service import ConcurrentClaim, _check_audience, get_campaign


@dataclass(frozen=True)
class LotteryEntry:
    campaign_id: str
    citizen_id: str
    registered_at: datetime


@dataclass(frozen=True)
class DrawResult:
    campaign_id: str
    seed: str
    entrants: int
    winners: tuple[str, ...]
    drawn_at: datetime


def _require_lottery(campaign: Campaign) -> None:
    if campaign.issuance is not Issuance.LOTTERY:
        raise ClaimRefused("this campaign is first come, first served", code="lottery_not_open")


def register_for_lottery(uow: UnitOfWork, campaign_id: str, *, citizen_id: str) -> LotteryEntry:
    """报名: enter the citizen in the campaign's draw, within the claim window and audience."""
    campaign = get_campaign(uow, campaign_id)
    person = citizen.get_citizen(uow, citizen_id)
    _require_lottery(campaign)
    registered_at = repository.find_entry(uow.connection, campaign_id, citizen_id)
    if registered_at is not None:
        return LotteryEntry(campaign_id, citizen_id, registered_at)
    now = uow.clock.now()
    if campaign.status is CampaignStatus.ENDED or now >= campaign.windows.claim_ends_at:
        raise ClaimRefused("the registration window has closed", code="campaign_expired")
    if campaign.status is not CampaignStatus.ACTIVE:
        raise ClaimRefused("the campaign is not funded yet", code="campaign_not_active")
    if now < campaign.windows.claim_starts_at:
        raise ClaimRefused("registration is not open yet", code="claim_window_not_open")
    _check_audience(uow, campaign, person)
    repository.insert_entry(uow.connection, campaign_id, citizen_id, now)
    return LotteryEntry(campaign_id, citizen_id, now)


def draw_lottery(uow: UnitOfWork, campaign_id: str, *, seed: str | None = None) -> DrawResult:
    """开奖: issue one voucher to each of min(stock left, registered) winners, once."""
    campaign = get_campaign(uow, campaign_id, lock=True)
    _require_lottery(campaign)
    now = uow.clock.now()
    if campaign.drawn_at is not None:
        raise ClaimRefused("this lottery has been drawn", code="lottery_drawn")
    if campaign.status is CampaignStatus.ENDED:
        raise ClaimRefused("the campaign has ended", code="campaign_expired")
    if campaign.status is not CampaignStatus.ACTIVE:
        raise ClaimRefused("the campaign is not funded yet", code="campaign_not_active")
    if now < campaign.windows.claim_ends_at:
        raise ClaimRefused("registration is still open", code="lottery_not_closed")
    entrants = repository.entrants(uow.connection, campaign_id)
    count = min(campaign.stock - campaign.issued, len(entrants))
    value = campaign.rule.max_value_fen
    if campaign.committed_fen + count * value > campaign.funded_fen:
        raise ClaimRefused(
            f"the funded budget cannot cover {count} vouchers", code="budget_exhausted"
        )
    the_seed = seed or secrets.token_hex(16)
    winners = draw_winners(entrants, count, seed=the_seed)
    claims = [
        Claim(new_id("clm"), campaign_id, winner, ClaimStatus.CLAIMED, value, now)
        for winner in winners
    ]
    drawn = repository.record_draw(
        uow.connection, campaign_id, claims=claims, day=business_date(now), seed=the_seed,
        now=now,
    )  # fmt: skip
    if not drawn:  # changed under us (only possible without the row lock): run again
        raise ConcurrentClaim
    return DrawResult(campaign_id, the_seed, len(entrants), tuple(winners), now)
