"""The lottery's SQL: entries, and issuing the winners' vouchers in one statement each.

Kept apart from `repository.py` (campaigns, claims, red packets), which is at its size limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import Connection, insert, select, update

from cloudpay.marketing.model import CampaignStatus, Claim
from cloudpay.marketing.tables import (
    marketing_campaigns,
    marketing_claims,
    marketing_lottery_entries,
)

_campaigns = marketing_campaigns.c
_entries = marketing_lottery_entries.c


def find_entry(connection: Connection, campaign_id: str, citizen_id: str) -> datetime | None:
    """When the citizen registered for this lottery, if they did."""
    query = select(_entries.registered_at).where(
        _entries.campaign_id == campaign_id, _entries.citizen_id == citizen_id
    )
    registered_at: datetime | None = connection.execute(query).scalar_one_or_none()
    return registered_at


def insert_entry(connection: Connection, campaign_id: str, citizen_id: str, now: datetime) -> None:
    connection.execute(
        insert(marketing_lottery_entries).values(
            campaign_id=campaign_id, citizen_id=citizen_id, registered_at=now, won=None
        )
    )


def entrants(connection: Connection, campaign_id: str) -> list[str]:
    query = select(_entries.citizen_id).where(_entries.campaign_id == campaign_id)
    return list(connection.execute(query).scalars())


def record_draw(
    connection: Connection,
    campaign_id: str,
    *,
    claims: Sequence[Claim],
    day: date,
    seed: str,
    now: datetime,
) -> bool:
    """Issue the winners' claims and mark the draw, if the campaign still allows it (a
    conditional update: a concurrent draw, or funding spent meanwhile, leaves nothing)."""
    issued = len(claims)
    value = sum(claim.max_value_fen for claim in claims)
    result = connection.execute(
        update(marketing_campaigns)
        .where(
            _campaigns.id == campaign_id,
            _campaigns.status == CampaignStatus.ACTIVE.value,
            _campaigns.drawn_at.is_(None),
            _campaigns.issued + issued <= _campaigns.stock,
            _campaigns.committed_fen + value <= _campaigns.funded_fen,
        )
        .values(
            issued=_campaigns.issued + issued, committed_fen=_campaigns.committed_fen + value,
            draw_seed=seed, drawn_at=now, updated_at=now,
        )
    )  # fmt: skip
    if result.rowcount != 1:
        return False
    if claims:
        rows = [_claim_row(claim, day) for claim in claims]
        connection.execute(insert(marketing_claims), rows)
    connection.execute(
        update(marketing_lottery_entries)
        .where(_entries.campaign_id == campaign_id)
        .values(won=_entries.citizen_id.in_([c.citizen_id for c in claims]))
    )
    return True


def _claim_row(claim: Claim, day: date) -> dict[str, object]:
    return {
        "id": claim.id, "campaign_id": claim.campaign_id, "citizen_id": claim.citizen_id,
        "status": claim.status.value, "max_value_fen": claim.max_value_fen, "claim_day": day,
        "person_slot": 1, "day_slot": 1, "order_id": None, "created_at": claim.created_at,
        "updated_at": claim.created_at,
    }  # fmt: skip
